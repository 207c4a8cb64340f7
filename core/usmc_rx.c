/* SPDX-License-Identifier: MIT */
/*
 * RX (net/smc smc_cdc.c receive side, smc_rx.c): every CDC is validated
 * before it moves anything (token, seqno, cursors inside the RMBE, no
 * backwards move, no write beyond the space we granted); a hostile CDC
 * aborts the connection. Reads copy out of the RMBE and return credit with
 * the kernel's consumer-cursor update policy.
 */
#include "usmc_core_int.h"

/* SOCK_MIN_SNDBUF / 2 on x86_64: the floor of rmbe_update_limit */
#define USMC_UPDATE_LIMIT_MIN 2304

/* Distance from the byte counter |old| to the wire cursor |c| in a ring of
 * |size| bytes, exact over the 16-bit wrap (negative = backwards). The
 * codec's diff helpers cap at one ring, which would hide a hostile jump. */
static int64_t curs_dist(uint64_t old, const usmc_curs *c, uint32_t size)
{
	/* a modulo: an SMC-D RMBE is its DMB less the header, no power of
	 * two */
	uint32_t ocount = (uint32_t)(old % size);
	uint16_t owrap = (uint16_t)(old / size);
	uint16_t dwrap = (uint16_t)(c->wrap - owrap);

	return (int64_t)dwrap * size + (int64_t)c->count - (int64_t)ocount;
}

static void rx_hostile(usmc_conn *conn, const char *what, usmc_tstamp ts)
{
	usmc_log(conn->ctx, USMC_LOG_ERR, "conn %08x: hostile CDC (%s): abort",
		 conn->token, what);
	usmc_close_abort_local(conn, USMC_ERR_PROTO, 1, ts);
}

static int rx_apply(usmc_conn *conn, const usmc_cdc_msg *mp, int has_seq,
		    usmc_tstamp ts);

void usmc_rx_cdc(usmc_link *link, const uint8_t *buf, size_t len,
		 usmc_tstamp ts)
{
	usmc_lgr *lgr = link->lgr;
	usmc_cdc_msg m;
	usmc_conn *conn;
	uint8_t newflags;
	usmc_ssize n = usmc_cdc_decode(&m, buf, len);

	if (n < 0) {
		usmc_log(lgr->ctx, USMC_LOG_WARN, "bad CDC dropped: %s",
			 usmc_strerror((int)n));
		return;
	}
	conn = usmc_lgr_conn_by_token(lgr, m.token);
	if (!conn || !conn->rmb || conn->state == SMC_CLOSED) {
		usmc_log(lgr->ctx, USMC_LOG_WARN,
			 "CDC for unknown token %08x dropped", m.token);
		return;
	}
	if (m.prod_flags & USMC_CDC_FAILOVER_VALIDATION) {
		/* the peer failed over (smc_cdc_msg_validate): its last
		 * completed CDC must be one we saw, else the stream has a
		 * hole and the connection aborts */
		conn->rx_failover_seen = 1;
		if (usmc_cdc_seq_before(conn->rx_seq, m.seqno) &&
		    conn->rx_valid_expiry == USMC_TSTAMP_NONE) {
			/* the CDCs up to it may still wait on the dead
			 * link's CQ: judged when the grace ends
			 * (usmc_failover_handle_expiry) */
			conn->rx_valid_seq = m.seqno;
			conn->rx_valid_expiry = ts + USMC_FAILOVER_GRACE;
			lgr->nvalid++;
		}
		return;
	}
	if (!usmc_cdc_seq_before(conn->rx_seq, m.seqno)) {
		/* after a failover the dead link's CDCs may come late:
		 * old, dropped (smc_cdc_msg_recv); the data they announced
		 * is in the RMB and a newer CDC covered it, only their
		 * close flags still count */
		if (!conn->rx_failover_seen) {
			rx_hostile(conn, "seqno replay", ts);
			return;
		}
		newflags =
			(uint8_t)(m.conn_state_flags & ~conn->peer_conn_flags);
		conn->peer_conn_flags |= m.conn_state_flags;
		if (newflags && conn->lgr)
			usmc_close_peer_flags(conn, newflags, ts);
		return;
	}
	rx_apply(conn, &m, 1, ts);
}

/* Takes a CDC's cursors and flags (after usmc_rx_cdc's token and seqno
 * checks; SMC-D has neither). Returns 0, or 1 when the CDC was hostile
 * and the connection aborted. */
static int rx_apply(usmc_conn *conn, const usmc_cdc_msg *mp, int has_seq,
		    usmc_tstamp ts)
{
	usmc_cdc_msg m = *mp;
	usmc_lgr *lgr = conn->lgr;
	int64_t dprod, dcons = 0;
	uint32_t rmb;
	uint8_t newflags;

	rmb = conn->rmb->size;
	if (usmc_cdc_curs_valid(&m.prod, rmb)) {
		rx_hostile(conn, "producer cursor beyond RMBE", ts);
		return 1;
	}
	dprod = curs_dist(conn->rx_prod, &m.prod, rmb);
	/* after a failover the peer writes again from what its RNIC
	 * confirmed: bytes we have are rewritten as they were */
	if (dprod < 0 && conn->rx_failover_seen && -dprod <= (int64_t)rmb)
		dprod = 0;
	/* the peer may fill only what we granted with our last cursor */
	if (dprod < 0 ||
	    (uint64_t)dprod > conn->rx_cons_sent + rmb - conn->rx_prod) {
		rx_hostile(conn, "producer cursor moved out of window", ts);
		return 1;
	}
	if (conn->peer_rmb_size) {
		if (usmc_cdc_curs_valid(&m.cons, conn->peer_rmb_size)) {
			rx_hostile(conn, "consumer cursor beyond RMBE", ts);
			return 1;
		}
		dcons = curs_dist(conn->peer_cons, &m.cons,
				  conn->peer_rmb_size);
		/* after our failover tx_sent went back: the peer may have
		 * read up to the highest one */
		if (dcons < 0 ||
		    (uint64_t)dcons > conn->tx_sent_max - conn->peer_cons) {
			rx_hostile(conn, "consumer cursor moved out of window",
				   ts);
			return 1;
		}
	} else if (m.cons.wrap || m.cons.count) {
		rx_hostile(conn, "consumer cursor before Confirm", ts);
		return 1;
	}
	if ((conn->peer_conn_flags & USMC_CDC_PEER_CONN_CLOSED) && dprod) {
		rx_hostile(conn, "data after close", ts);
		return 1;
	}
	if (has_seq)
		conn->rx_seq = m.seqno;
	if (conn->rx_valid_expiry != USMC_TSTAMP_NONE &&
	    !usmc_cdc_seq_before(conn->rx_seq, conn->rx_valid_seq)) {
		conn->rx_valid_expiry = USMC_TSTAMP_NONE;
		if (lgr->nvalid)
			lgr->nvalid--;
	}
	conn->n_rx_cdcs++;
	conn->rx_prod += (uint64_t)dprod;
	conn->bytes_received += (uint64_t)dprod;
	conn->peer_cons += (uint64_t)dcons;
	if (conn->peer_cons > conn->tx_sent) {
		/* read beyond our rewound cursor: those bytes arrived, and
		 * their sndbuf space is free (no CDC completion will say so) */
		conn->tx_sent = conn->peer_cons;
		if (conn->tx_fin < conn->peer_cons) {
			conn->tx_fin = conn->peer_cons;
			if (conn->want_writable &&
			    conn->mode == USMC_MODE_SMCR) {
				conn->want_writable = 0;
				usmc_conn_event_raise(conn, USMC_EV_WRITABLE);
			}
		}
	}
	if (dcons && conn->peer_ring) {
		/* the peer reads again: no more bytes into the sndbuf, the
		 * ring once it drained (one copy); its reads make room */
		conn->ovf_open = 0;
		if (conn->want_writable && usmc_smcd_writable(conn) &&
		    conn->mode == USMC_MODE_SMCR) {
			conn->want_writable = 0;
			usmc_conn_event_raise(conn, USMC_EV_WRITABLE);
		}
	}
	conn->peer_prod_flags = m.prod_flags;
	newflags = (uint8_t)(m.conn_state_flags & ~conn->peer_conn_flags);
	conn->peer_conn_flags |= m.conn_state_flags;
	if (dprod && conn->mode == USMC_MODE_SMCR)
		usmc_conn_event_raise(conn, USMC_EV_READABLE);
	if (m.prod_flags & USMC_CDC_CONS_CURS_UPD_REQ)
		conn->cons_upd_pending = 1;
	if ((dcons || conn->cons_upd_pending) && conn->mode == USMC_MODE_SMCR)
		usmc_tx_push(conn);
	if (newflags && conn->lgr)
		usmc_close_peer_flags(conn, newflags, ts);
	return 0;
}

int usmc_rx_apply(usmc_conn *conn, const usmc_cdc_msg *m, usmc_tstamp ts)
{
	return rx_apply(conn, m, 0, ts);
}

void usmc_rx_consumer_update(usmc_conn *conn, int force)
{
	uint32_t rmb = conn->rmb->size;
	uint64_t to_confirm = conn->rx_cons - conn->rx_cons_sent;
	uint64_t sender_free = rmb - (conn->rx_prod - conn->rx_cons_sent);
	uint64_t limit = rmb / 10;

	if (limit < USMC_UPDATE_LIMIT_MIN)
		limit = USMC_UPDATE_LIMIT_MIN;
	if (!to_confirm && !force)
		return;
	if ((conn->peer_prod_flags & USMC_CDC_CONS_CURS_UPD_REQ) || force ||
	    (to_confirm > limit &&
	     (sender_free <= rmb / 2 ||
	      (conn->peer_prod_flags & USMC_CDC_WRITE_BLOCKED))))
		usmc_tx_cdc_ctrl(conn);
}

usmc_ssize usmc_conn_read(usmc_conn *conn, uint8_t *buf, size_t len,
			  usmc_tstamp ts)
{
	uint64_t avail, n;
	uint32_t size, off, a;

	if (!conn || (!buf && len))
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->mode != USMC_MODE_SMCR)
		return conn->err ? conn->err : USMC_ERR_INVALID_STATE;
	avail = conn->rmb ? conn->rx_prod - conn->rx_cons : 0;
	/* Data the peer wrote before an abort or error is still read first,
	 * as the kernel's smc_rx_recvmsg (and TCP) do; the error follows. */
	if (!avail) {
		if (conn->err)
			return conn->err;
		if (conn->peer_conn_flags &
		    (USMC_CDC_PEER_DONE_WRITING | USMC_CDC_PEER_CONN_CLOSED))
			return 0;
		if (conn->state == SMC_CLOSED)
			return 0;
		return USMC_ERR_WOULDBLOCK;
	}
	if (!len)
		return 0;
	conn->ctx->now = ts;
	size = conn->rmb->size;
	n = len < avail ? len : avail;
	off = (uint32_t)(conn->rx_cons % size);
	a = size - off;
	if (a > n)
		a = (uint32_t)n;
	memcpy(buf, (const uint8_t *)conn->rmb->mr.addr + off, a);
	if (a < n)
		memcpy(buf + a, conn->rmb->mr.addr, (size_t)(n - a));
	conn->rx_cons += n;
	if (conn->lgr && conn->state != SMC_CLOSED)
		usmc_rx_consumer_update(conn, 0);
	return (usmc_ssize)n;
}

size_t usmc_conn_readable(const usmc_conn *conn)
{
	if (conn->mode != USMC_MODE_SMCR || !conn->rmb)
		return 0;
	return (size_t)(conn->rx_prod - conn->rx_cons);
}
