/* SPDX-License-Identifier: MIT */
/*
 * A growable FIFO of work completions, for the backends that queue their
 * own: the CQ of sim and softroce, and verbs' backlog (completions made by
 * the backend or drained ahead of time, returned before the RNIC's).
 * Backend-internal: not part of the ops table.
 */
#ifndef USMC_TP_WCQ_H
#define USMC_TP_WCQ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "usmc_wr.h"

typedef struct usmc_tp_wcq {
	usmc_wc *e;
	uint32_t cap, head, n;
} usmc_tp_wcq;

/* A completion as a software RNIC reports one: the fields its WR and
 * receive path know, everything else zero. */
static inline usmc_wc usmc_tp_wc_make(uint64_t wr_id, usmc_wc_status st,
				      usmc_wc_opcode op, uint32_t byte_len,
				      uint32_t imm, uint32_t flags,
				      uint32_t qp_num)
{
	usmc_wc wc;

	memset(&wc, 0, sizeof(wc));
	wc.wr_id = wr_id;
	wc.status = st;
	wc.opcode = op;
	wc.byte_len = byte_len;
	wc.imm_data = imm;
	wc.wc_flags = flags;
	wc.qp_num = qp_num;
	return wc;
}

/* Room for |cap| completions (cap > 0), or for twice as many as now;
 * 0, or -1 with the queue as it was. */
static inline int usmc_tp_wcq_grow(usmc_tp_wcq *q, uint32_t cap)
{
	usmc_wc *e;

	if (q->cap)
		cap = q->cap * 2;
	e = malloc(cap * sizeof(*e));
	if (!e)
		return -1;
	for (uint32_t i = 0; i < q->n; i++)
		e[i] = q->e[(q->head + i) % q->cap];
	free(q->e);
	q->e = e;
	q->cap = cap;
	q->head = 0;
	return 0;
}

/* Appends |wc|, growing a full queue (an empty one to |first_cap|); 0, or
 * -1 when it cannot grow (the completion is not queued). */
static inline int usmc_tp_wcq_push(usmc_tp_wcq *q, const usmc_wc *wc,
				   uint32_t first_cap)
{
	if (q->n == q->cap && usmc_tp_wcq_grow(q, first_cap))
		return -1;
	q->e[(q->head + q->n++) % q->cap] = *wc;
	return 0;
}

/* Takes up to |n| completions, oldest first, into |wcs|; how many. */
static inline int usmc_tp_wcq_pop(usmc_tp_wcq *q, usmc_wc *wcs, int n)
{
	int k = 0;

	while (k < n && q->n) {
		wcs[k++] = q->e[q->head];
		q->head = (q->head + 1) % q->cap;
		q->n--;
	}
	return k;
}

/* Whether a queued completion names QP |qpn| (a QPN is not reused while
 * one does: consumers map completions to QPs by number). */
static inline int usmc_tp_wcq_names(const usmc_tp_wcq *q, uint32_t qpn)
{
	for (uint32_t i = 0; i < q->n; i++)
		if (q->e[(q->head + i) % q->cap].qp_num == qpn)
			return 1;
	return 0;
}

static inline void usmc_tp_wcq_free(usmc_tp_wcq *q)
{
	free(q->e);
	q->e = NULL;
	q->cap = q->head = q->n = 0;
}

#endif /* USMC_TP_WCQ_H */
