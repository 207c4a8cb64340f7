/* SPDX-License-Identifier: MIT */
/*
 * What libusmc-verbs.so (the verbs backend, with libibverbs behind it)
 * gives the transport registry that dlopens it (verbs_load.c): one
 * exported table. Only the registry and the module include this.
 */
#ifndef USMC_VERBS_MODULE_H
#define USMC_VERBS_MODULE_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_transport.h"

/* Raised when the table or the structs it passes change shape (2: the QP
 * accessor ops gave way to fields of usmc_tp_qp). */
#define USMC_VERBS_MODULE_ABI 2
#define USMC_VERBS_MODULE_SYM "usmc_verbs_entry"
#define USMC_VERBS_MODULE_SO  "libusmc-verbs.so"

typedef struct usmc_verbs_module {
	uint32_t abi;	      /* USMC_VERBS_MODULE_ABI */
	uint32_t ops_size;    /* sizeof(usmc_tp_ops) */
	uint32_t config_size; /* sizeof(usmc_tp_config) */
	uint32_t wr_size;     /* sizeof(usmc_wr) */
	uint32_t qp_size;     /* sizeof(usmc_tp_qp) */
	const usmc_tp_ops *ops;
	int (*device_count)(void);
	int (*hw_counter)(usmc_tp *tp, const char *name, uint64_t *v);
} usmc_verbs_module;

#endif /* USMC_VERBS_MODULE_H */
