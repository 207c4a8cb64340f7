/* SPDX-License-Identifier: MIT */
/*
 * Fault schedules: the parser and the trigger engine of the fault
 * decorator (fault.c). No I/O and no clock: time is passed in, so a
 * virtual clock replays a seeded schedule exactly. Syntax in docs/fault.md:
 *
 *   seed=42; drop:rate=0.01; fail-post:op=WRITE,nth=100;
 *   port-down:after=1s,for=500ms; device-fatal:after=3s;
 *   fail-reg-mr:nth=1; fail-modify-qp:nth=2;
 *   rewrite-llc:type=CONFIRM_RKEY,dir=resp,set=0x20,nth=1
 */
#ifndef USMC_FAULT_SCHED_H
#define USMC_FAULT_SCHED_H

#include <stddef.h>
#include <stdint.h>

#define USMC_FAULT_MAX_CLAUSES 32

typedef enum usmc_fault_kind {
	/* packet level: received datagrams, inside the backend's wire */
	USMC_FAULT_DROP = 1,
	USMC_FAULT_DELAY,
	USMC_FAULT_DUPLICATE,
	USMC_FAULT_REORDER,
	USMC_FAULT_CORRUPT,
	/* device level: the decorator itself */
	USMC_FAULT_FAIL_POST,
	USMC_FAULT_QP_ERROR,
	USMC_FAULT_PORT_DOWN,
	USMC_FAULT_DEVICE_FATAL,
	/* resource level: a verb that fails */
	USMC_FAULT_FAIL_REG_MR,
	USMC_FAULT_FAIL_MODIFY_QP,
	/* message level: a posted LLC message's flags rewritten */
	USMC_FAULT_REWRITE_LLC,
} usmc_fault_kind;

/* What a clause counts: received packets, posted send WRs, MR
 * registrations (reg_mr, alloc_mr), QP modifications to RTR or RTS (a
 * link being made ready), or posted SENDs of the LLC type and direction
 * the clause names (usmc_fault_sched_on_llc). */
typedef enum usmc_fault_on {
	USMC_FAULT_ON_PKT = 1,
	USMC_FAULT_ON_POST,
	USMC_FAULT_ON_REG_MR,
	USMC_FAULT_ON_MODIFY_QP,
	USMC_FAULT_ON_LLC,
} usmc_fault_on;

/* rewrite-llc's dir=: requests (the RESP flag clear), responses, both */
#define USMC_FAULT_DIR_ANY  0
#define USMC_FAULT_DIR_REQ  1
#define USMC_FAULT_DIR_RESP 2

/* corrupt's in=: any byte behind the BTH, or WRITE payload only */
#define USMC_FAULT_IN_ANY     0
#define USMC_FAULT_IN_PAYLOAD 1

/* op= of the post-counting kinds: a bit per usmc_wr_opcode */
#define USMC_FAULT_OP_ANY 0xeu

typedef struct usmc_fault_clause {
	usmc_fault_kind kind;
	uint32_t rate_ppm; /* rate= in parts per million; 0: unset */
	uint64_t nth;	   /* fires at the nth counted event; 0: unset */
	uint64_t count;	   /* at most this many firings; 0: no limit */
	uint64_t after_ns; /* active from t0 + after */
	uint64_t for_ns;   /* for this long (0: no end); port-down: down time */
	uint64_t by_ns;	   /* delay: how long */
	uint32_t op_mask;  /* posts counted: bits 1 << usmc_wr_opcode */
	uint32_t qpn;	   /* qp=: only this QP (has_qpn) */
	uint8_t has_qpn;
	/* rewrite-llc: the LLC type (byte 0) matched, either version's code
	 * when named (llc_any_ver), exactly when a number; the direction;
	 * the bits of the flags byte (byte 3) set and cleared */
	uint8_t llc_type;
	uint8_t llc_any_ver;
	uint8_t llc_dir;
	uint8_t set_mask;
	uint8_t clear_mask;
	/* corrupt's in=: USMC_FAULT_IN_ANY, or only the payload of RDMA
	 * WRITE packets (what lands in a peer's RMB) */
	uint8_t in;
	/* state */
	uint64_t t0; /* when the clause was added (schedule time) */
	uint64_t seen;
	uint64_t fired;
	uint8_t up_pending; /* port-down fired and has a for= */
	uint64_t up_at;	    /* ... and comes up then */
} usmc_fault_clause;

typedef struct usmc_fault_sched {
	uint64_t seed;
	uint64_t rng;
	uint8_t seeded; /* the text had a seed= */
	uint32_t n;
	usmc_fault_clause c[USMC_FAULT_MAX_CLAUSES];
} usmc_fault_sched;

const char *usmc_fault_kind_name(usmc_fault_kind k);

/* usmc_fault_sched_parse parses |text| (NUL-terminated) into |out|, whose
 * clauses start at time |t0|. Clauses are separated by ';' or a newline,
 * '#' starts a comment, blanks are ignored. On error returns
 * USMC_ERR_INVALID_ARGUMENT, writes "position N: expected ..." into |err|
 * (N counts bytes from 1) and leaves |out| untouched: a schedule is taken
 * whole or not at all. A seed= clause sets the seed (default 1). */
int usmc_fault_sched_parse(const char *text, uint64_t t0, usmc_fault_sched *out,
			   char *err, size_t errlen);

/* usmc_fault_sched_merge appends the clauses of |more| (a seed= in it
 * restarts the random stream); USMC_ERR_LIMIT, and nothing appended, when
 * they do not all fit. */
int usmc_fault_sched_merge(usmc_fault_sched *s, const usmc_fault_sched *more);

/* usmc_fault_sched_on counts one event (a received packet, with |opcode|
 * 1 when it carries RDMA WRITE payload, else 0; a posted WR with |opcode|
 * on |qpn|; an MR registration; a QP made ready) at |now| and returns the
 * index of the first
 * clause that fires for it, or -1. Every matching clause counts the event
 * and draws its random number, so the pattern depends only on the seed and
 * the sequence of events. */
int usmc_fault_sched_on(usmc_fault_sched *s, usmc_fault_on on, int opcode,
			uint32_t qpn, uint64_t now);

/* usmc_fault_sched_on_llc counts a posted SEND whose first bytes are an
 * LLC header of |type| (byte 0) with |flags| (byte 3) on |qpn| at |now|,
 * for the rewrite-llc clauses that match its type and direction, and
 * returns the index of the first that fires, or -1; the caller applies
 * that clause's set_mask and clear_mask to byte 3. */
int usmc_fault_sched_on_llc(usmc_fault_sched *s, uint8_t type, uint8_t flags,
			    uint32_t qpn, uint64_t now);

/* usmc_fault_sched_timed returns the index of a clause that fires by time
 * alone and is due at |now| (device-level kinds with neither nth= nor
 * rate=, and port-down's end, reported as the clause with up_pending
 * cleared), or -1. Call until -1. */
int usmc_fault_sched_timed(usmc_fault_sched *s, uint64_t now, int *port_up);

/* The earliest time usmc_fault_sched_timed has something to do, or
 * UINT64_MAX. */
uint64_t usmc_fault_sched_next(const usmc_fault_sched *s);

/* A random number from the schedule's stream (corrupt's byte position). */
uint64_t usmc_fault_sched_rand(usmc_fault_sched *s);

#endif /* USMC_FAULT_SCHED_H */
