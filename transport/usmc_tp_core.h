/* SPDX-License-Identifier: MIT */
/*
 * What a driver of the core over a transport (the runtime, sim/) hands on
 * from one to the other: a device's MR as the core's usmc_mr, and the
 * link-down reason of its async events. Not part of the ops table.
 */
#ifndef USMC_TP_CORE_H
#define USMC_TP_CORE_H

#include <string.h>

#include "usmc_core.h"
#include "usmc_transport.h"

/* |t| as the core's MR: |handle| is |t|, for free_mr. */
static inline void usmc_tp_mr_to_core(usmc_tp_mr *t, usmc_mr *mr)
{
	memset(mr, 0, sizeof(*mr));
	mr->addr = t->addr;
	mr->length = t->length;
	mr->iova = t->iova;
	mr->lkey = t->lkey;
	mr->rkey = t->rkey;
	mr->handle = t;
}

/* A device's async events, read right after a batch of its completions (a
 * fault may strike in the poll): a failed completion of a QP an event
 * names takes its link down with the event's reason, since the flushes of
 * a dead port or device only say "flushed". */
#define USMC_TP_EVS_MAX 16
typedef struct usmc_tp_evs {
	usmc_tp_event ev[USMC_TP_EVS_MAX];
	int n;
} usmc_tp_evs;

/* Adds |tp|'s pending events to |e|, as many as it holds. */
static inline void usmc_tp_evs_read(usmc_tp *tp, usmc_tp_evs *e)
{
	while (e->n < USMC_TP_EVS_MAX &&
	       usmc_tp_get_async_event(tp, &e->ev[e->n]) == 1)
		e->n++;
}

/* Why a link goes down for |ev| (not PORT_ACTIVE, nor PEER_GONE, which
 * concerns a DMB and no link). */
static inline usmc_link_down_reason
usmc_tp_event_reason(const usmc_tp_event *ev)
{
	return ev->type == USMC_TP_EV_QP_FATAL ? USMC_LINK_DOWN_QP_ERROR
	       : ev->type == USMC_TP_EV_DEVICE_FATAL
		       ? USMC_LINK_DOWN_DEVICE_FATAL
		       : USMC_LINK_DOWN_PORT;
}

/* The reason an event of |e| gives QP |qpn|'s link, or -1. */
static inline int usmc_tp_evs_reason(const usmc_tp_evs *e, uint32_t qpn)
{
	for (int i = 0; e && i < e->n; i++)
		if (e->ev[i].type != USMC_TP_EV_PORT_ACTIVE &&
		    e->ev[i].type != USMC_TP_EV_PEER_GONE &&
		    (e->ev[i].type != USMC_TP_EV_QP_FATAL ||
		     e->ev[i].qp_num == qpn))
			return (int)usmc_tp_event_reason(&e->ev[i]);
	return -1;
}

#endif
