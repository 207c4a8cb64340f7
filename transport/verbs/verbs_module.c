/* SPDX-License-Identifier: MIT */
/*
 * The one symbol libusmc-verbs.so exports (everything else is hidden):
 * the registry's verbs_load.c finds the backend through it.
 */
#include "verbs_int.h"
#include "verbs_module.h"

__attribute__((visibility("default")))
const usmc_verbs_module usmc_verbs_entry = {
	.abi = USMC_VERBS_MODULE_ABI,
	.ops_size = sizeof(usmc_tp_ops),
	.config_size = sizeof(usmc_tp_config),
	.wr_size = sizeof(usmc_wr),
	.qp_size = sizeof(usmc_tp_qp),
	.ops = &vb_ops,
	.device_count = vb_device_count,
	.hw_counter = vb_hw_counter,
};
