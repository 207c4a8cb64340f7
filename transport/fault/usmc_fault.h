/* SPDX-License-Identifier: MIT */
/*
 * fault: a transport that wraps another and injects faults by schedule
 * (usmc_fault_sched.h; docs/fault.md). Reached through the ops table
 * usmc_tp_fault_ops (name "fault"); this header adds run-time control and
 * counters.
 *
 * Options (usmc_tp_config.options): inner=NAME picks the wrapped backend
 * (default softroce); every other option goes to it unchanged. At open the
 * schedule is read from USMC_FAULT, then USMC_FAULT_FILE; one that does not
 * parse fails the open (usmc_fault_last_error says where). Unless
 * USMC_FAULT_CTL=off, the device listens on a unix datagram socket
 * USMC_FAULT_CTL_DIR (default /run/usmc/fault) /usmc-fault.PID.N.sock for
 * more clauses at run time; each datagram is one schedule, answered with
 * "ok" or "error: position N: expected ...", or "stats", answered with
 * the counters below as key=value.
 */
#ifndef USMC_FAULT_H
#define USMC_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_transport.h"

typedef struct usmc_fault_stats {
	uint64_t pkts;	     /* received packets the hook saw */
	uint64_t dropped;    /* drop=, and everything while down or dead */
	uint64_t delayed;    /* delay */
	uint64_t duplicated; /* duplicate */
	uint64_t reordered;  /* reorder */
	uint64_t corrupted;  /* corrupt */
	uint64_t posts;	     /* post_send calls */
	uint64_t posts_failed;
	uint64_t qp_errors;
	uint64_t port_downs;
	uint64_t port_ups;
	uint64_t device_fatals;
	uint64_t ctl_msgs; /* schedules taken over the control socket */
} usmc_fault_stats;

extern const usmc_tp_ops usmc_tp_fault_ops;

/* usmc_fault_add parses |text| and adds its clauses, timed from now; on a
 * parse error nothing is added and |err| says where. |tp| must be a fault
 * device (USMC_ERR_INVALID_ARGUMENT otherwise). */
int usmc_fault_add(usmc_tp *tp, const char *text, char *err, size_t errlen);

int usmc_fault_get_stats(usmc_tp *tp, usmc_fault_stats *st);

/* The wrapped device. */
usmc_tp *usmc_fault_inner(usmc_tp *tp);

/* Path of the device's control socket ("" when it has none). */
const char *usmc_fault_ctl_path(usmc_tp *tp);

/* Why the last fault open in this process failed ("" if it did not). */
const char *usmc_fault_last_error(void);

#endif /* USMC_FAULT_H */
