/* SPDX-License-Identifier: MIT */
/* Names for work-completion status codes, as ibv_wc_status_str. */
#include "usmc_wr.h"

const char *usmc_wc_status_str(usmc_wc_status status)
{
	switch (status) {
	case USMC_WC_SUCCESS:
		return "success";
	case USMC_WC_LOC_LEN_ERR:
		return "local length error";
	case USMC_WC_LOC_QP_OP_ERR:
		return "local QP operation error";
	case USMC_WC_LOC_PROT_ERR:
		return "local protection error";
	case USMC_WC_WR_FLUSH_ERR:
		return "work request flushed";
	case USMC_WC_REM_INV_REQ_ERR:
		return "remote invalid request";
	case USMC_WC_REM_ACCESS_ERR:
		return "remote access error";
	case USMC_WC_REM_OP_ERR:
		return "remote operation error";
	case USMC_WC_RETRY_EXC_ERR:
		return "transport retry counter exceeded";
	case USMC_WC_RNR_RETRY_EXC_ERR:
		return "RNR retry counter exceeded";
	case USMC_WC_FATAL_ERR:
		return "fatal error";
	case USMC_WC_GENERAL_ERR:
		return "general error";
	}
	return "unknown status";
}
