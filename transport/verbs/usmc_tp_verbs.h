/* SPDX-License-Identifier: MIT */
/*
 * The verbs backend (libibverbs from rdma-core): an RNIC the kernel
 * drives, rxe or hardware, behind the ops table. transport/verbs/README.md
 * says what it needs and how it chooses its device.
 */
#ifndef USMC_TP_VERBS_H
#define USMC_TP_VERBS_H

#include <stdint.h>

#include "usmc_transport.h"

extern const usmc_tp_ops usmc_tp_verbs_ops;

/* The number of RDMA devices libibverbs sees (0 on a host without any),
 * or a negative USMC_ERR_*. */
int usmc_tp_verbs_device_count(void);

/* The device's port counter |name| (sysfs hw_counters, named by the
 * provider: rxe's "send_rnr_err", "rcvd_rnr_err", ...). 0 and |*v|, or
 * USMC_ERR_NOTFOUND if the provider has no such counter. */
int usmc_tp_verbs_hw_counter(usmc_tp *tp, const char *name, uint64_t *v);

#endif /* USMC_TP_VERBS_H */
