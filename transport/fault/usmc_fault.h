/* SPDX-License-Identifier: MIT */
/*
 * fault: a transport that wraps another and injects faults by schedule
 * (usmc_fault_sched.h; docs/fault.md). Reached through the ops table
 * usmc_tp_fault_ops (name "fault"); this header adds run-time control and
 * counters.
 *
 * Options (usmc_tp_config.options): inner=NAME picks the wrapped backend
 * (default softroce); env=off ignores the environment below; ctl=off opens
 * no control socket; every other option goes to the inner device unchanged.
 * At open the schedule is read from USMC_FAULT, then USMC_FAULT_FILE; one
 * that does not parse fails the open (usmc_fault_last_error says where).
 * Unless USMC_FAULT_CTL=off (or ctl=off), the device listens on a unix datagram socket
 * USMC_FAULT_CTL_DIR (default /run/usmc/fault) /usmc-fault.PID.N.sock for
 * more clauses at run time; each datagram is one schedule, answered with
 * "ok" or "error: position N: expected ...", or "stats", answered with
 * the counters below as key=value.
 */
#ifndef USMC_FAULT_H
#define USMC_FAULT_H

#include <stddef.h>
#include <stdint.h>

#include "usmc_fault_sched.h"
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
	uint64_t mrs_failed;	  /* fail-reg-mr: registrations refused */
	uint64_t modifies_failed; /* fail-modify-qp: RTR/RTS refused */
	uint64_t llc_rewritten;	  /* rewrite-llc: LLC messages changed */
	uint64_t ctl_msgs;	  /* schedules taken over the control socket */
	uint64_t fired; /* firings of the schedule's clauses (a port-down
			    * and its end: one) */
} usmc_fault_stats;

extern const usmc_tp_ops usmc_tp_fault_ops;

/* usmc_fault_add parses |text| and adds its clauses, timed from now; on a
 * parse error nothing is added and |err| says where. |tp| must be a fault
 * device (USMC_ERR_INVALID_ARGUMENT otherwise). */
int usmc_fault_add(usmc_tp *tp, const char *text, char *err, size_t errlen);

int usmc_fault_get_stats(usmc_tp *tp, usmc_fault_stats *st);

/* usmc_fault_set_sched replaces the device's schedule with a copy of |s|
 * (parsed on the device's clock: usmc_fault_now), or with none (NULL).
 * USMC_ERR_NOTSUP for packet faults over an inner device without a
 * packet hook. */
int usmc_fault_set_sched(usmc_tp *tp, const usmc_fault_sched *s);

/* The wrapped device. */
usmc_tp *usmc_fault_inner(usmc_tp *tp);

/* Path of the device's control socket ("" when it has none). */
const char *usmc_fault_ctl_path(usmc_tp *tp);

/* Why the last fault open in this process failed ("" if it did not). */
const char *usmc_fault_last_error(void);

/* The device's time: the inner device's clock when it has one (sim's
 * virtual clock: timed clauses follow it and replay exactly), else
 * CLOCK_MONOTONIC. Schedules for usmc_fault_set_sched are timed on it. */
uint64_t usmc_fault_now(usmc_tp *tp);

#endif /* USMC_FAULT_H */
