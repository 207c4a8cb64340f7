/* SPDX-License-Identifier: MIT */
/*
 * TX (net/smc smc_tx.c, smc_cdc.c send side): application bytes are copied
 * into the sndbuf, then RDMA-written into the peer's RMBE (up to 2 WRITEs
 * for the RMBE wrap, each with up to 2 SGEs for the sndbuf wrap), followed
 * by a signaled CDC SEND that moves the producer cursor. The CDC's
 * completion frees the sndbuf space. Small writes are corked while a CDC is
 * in flight (autocorking) and pushed from the completion.
 */
#include "usmc_core_int.h"

static void wire_curs(usmc_curs *c, uint64_t n, uint32_t size)
{
	c->count = (uint32_t)(n % size);
	c->wrap = (uint16_t)(n / size);
}

/* RDMA WRITEs for the next |len| bytes at tx_sent (|len| is at most the
 * peer's RMBE, so there are at most two). */
static void queue_writes(usmc_conn *conn, uint64_t len)
{
	usmc_link *link = conn->link;
	const usmc_buf *sb = conn->sndbuf;
	/* the sndbuf's and the peer RMB's keys for this link's device */
	uint32_t lkey = usmc_buf_mr(sb, link->dev_idx)->lkey;
	uint64_t pos = conn->tx_sent;

	while (len) {
		uint32_t doff = (uint32_t)(pos % conn->peer_rmb_size);
		uint32_t soff = (uint32_t)(pos & (sb->size - 1));
		uint32_t chunk = conn->peer_rmb_size - doff;
		uint32_t a;
		usmc_wr wr;

		if (chunk > len)
			chunk = (uint32_t)len;
		memset(&wr, 0, sizeof(wr));
		wr.wr_id = USMC_WRID(USMC_WRID_WRITE, 0);
		wr.opcode = USMC_WR_RDMA_WRITE;
		wr.remote_addr = conn->peer_vaddr[link->link_idx] + doff;
		wr.rkey = conn->peer_rkey[link->link_idx];
		a = sb->size - soff;
		if (a > chunk)
			a = chunk;
		wr.num_sge = 1;
		wr.sg_list[0].addr = (uint64_t)(uintptr_t)sb->mr.addr + soff;
		wr.sg_list[0].length = a;
		wr.sg_list[0].lkey = lkey;
		if (a < chunk) {
			wr.num_sge = 2;
			wr.sg_list[1].addr = (uint64_t)(uintptr_t)sb->mr.addr;
			wr.sg_list[1].length = chunk - a;
			wr.sg_list[1].lkey = lkey;
		}
		usmc_link_queue_send(link, &wr);
		conn->n_writes++;
		pos += chunk;
		len -= chunk;
	}
}

static int cork(const usmc_conn *conn, uint64_t pending)
{
	uint64_t lim = conn->sndbuf->size / 2;

	if (!conn->ctx->s.autocorking_size || !conn->cdc_pend || conn->nodelay)
		return 0;
	if (lim > conn->ctx->s.autocorking_size)
		lim = conn->ctx->s.autocorking_size;
	return pending <= lim;
}

/* Queues WRITEs and a CDC for what is ready to go (smc_tx_sndbuf_nonempty):
 * data the peer has room for, close flags, a consumer-cursor update. It
 * only queues work requests, so nothing it does can end the connection
 * or the link group under the caller. */
void usmc_tx_push(usmc_conn *conn)
{
	usmc_link *link = conn->link;

	if (conn->smcd) {
		usmc_smcd_tx_push(conn);
		return;
	}
	if (!link || !usmc_link_usable(link) || !conn->peer_rmb_size ||
	    conn->waiting_slot)
		return;
	if (conn->mode != USMC_MODE_SMCR && conn->mode != USMC_MODE_HANDSHAKE)
		return;
	for (;;) {
		uint64_t pending = conn->tx_prep - conn->tx_sent;
		uint64_t space =
			conn->peer_rmb_size - (conn->tx_sent - conn->peer_cons);
		uint64_t len = pending < space ? pending : space;
		uint8_t flags = 0, pflags = 0;
		int new_flags, idx;
		usmc_tx_slot *slot;
		usmc_cdc_msg m;

		if (conn->tx_sent + len == conn->tx_prep)
			flags = conn->close_flags_want;
		new_flags = (flags & ~conn->close_flags_sent) != 0;
		if (!len && !conn->cons_upd_pending && !new_flags)
			return;
		if (len && !new_flags && !conn->cons_upd_pending &&
		    len == pending && cork(conn, pending))
			return;
		/* control messages waiting for a slot go first: after a
		 * failover the validation CDC may be one of them */
		idx = link->nllc_pend ? -1 : usmc_link_get_slot(link);
		if (idx < 0) {
			conn->waiting_slot = 1;
			link->waiters++;
			return;
		}
		if (pending && pending >= space) {
			pflags |= USMC_CDC_WRITE_BLOCKED;
			conn->n_peer_full++;
		}
		if (len)
			queue_writes(conn, len);
		conn->tx_sent += len;
		if (conn->tx_sent > conn->tx_sent_max)
			conn->tx_sent_max = conn->tx_sent;
		memset(&m, 0, sizeof(m));
		m.seqno = ++conn->tx_seq;
		m.token = conn->peer_token;
		wire_curs(&m.prod, conn->tx_sent, conn->peer_rmb_size);
		wire_curs(&m.cons, conn->rx_cons, conn->rmb->size);
		m.prod_flags = pflags;
		m.conn_state_flags = flags;
		usmc_cdc_encode(usmc_link_slot_buf(link, idx), USMC_WR_BUF_SIZE,
				&m);
		slot = &link->slots[idx];
		slot->conn = conn;
		slot->tx_sent = conn->tx_sent;
		slot->seq = m.seqno;
		slot->rx_cons = conn->rx_cons;
		slot->close_flags = flags;
		conn->cdc_pend++;
		conn->n_tx_cdcs++;
		conn->rx_cons_sent = conn->rx_cons;
		conn->cons_upd_pending = 0;
		conn->close_flags_sent |= flags;
		if (conn->close_expiry != USMC_TSTAMP_NONE &&
		    !(conn->close_flags_want & ~conn->close_flags_sent))
			usmc_close_timer(conn, USMC_TSTAMP_NONE);
		usmc_link_queue_slot(link, idx);
		if (!len || conn->tx_sent == conn->tx_prep)
			return;
	}
}

/* The connection leaves its lgr still owing close flags (every TX slot was
 * busy, or it is deleted early): send them now with the current cursors,
 * or queue them behind the waiting LLC answers, without completion
 * accounting. Data not sent by now is lost, so "closed" becomes abort. */
void usmc_tx_flush_close(usmc_conn *conn)
{
	usmc_link *link = conn->link;
	uint8_t buf[USMC_WR_TX_SIZE];
	uint8_t flags = conn->close_flags_want;
	usmc_cdc_msg m;

	if (!link || !usmc_link_usable(link) || !conn->peer_rmb_size ||
	    !conn->rmb || !(flags & ~conn->close_flags_sent))
		return;
	if (conn->tx_sent != conn->tx_prep)
		flags |= USMC_CDC_PEER_CONN_ABORT;
	memset(&m, 0, sizeof(m));
	m.seqno = ++conn->tx_seq;
	m.token = conn->peer_token;
	wire_curs(&m.prod, conn->tx_sent, conn->peer_rmb_size);
	wire_curs(&m.cons, conn->rx_cons, conn->rmb->size);
	m.conn_state_flags = flags;
	if (usmc_cdc_encode(buf, sizeof(buf), &m) != USMC_WR_TX_SIZE)
		return;
	conn->close_flags_sent |= flags;
	conn->n_tx_cdcs++;
	usmc_link_send_raw(link, buf);
}

void usmc_tx_cdc_ctrl(usmc_conn *conn)
{
	conn->cons_upd_pending = 1;
	usmc_tx_push(conn);
}

void usmc_tx_cdc_done(usmc_conn *conn, const usmc_tx_slot *slot, usmc_tstamp ts)
{
	uint64_t freed = 0;

	if (conn->cdc_pend)
		conn->cdc_pend--;
	conn->tx_seq_fin = slot->seq;
	if (slot->tx_sent > conn->tx_fin) {
		freed = slot->tx_sent - conn->tx_fin;
		conn->tx_fin = slot->tx_sent;
	}
	conn->close_flags_done |= slot->close_flags;
	if (freed && conn->want_writable && conn->mode == USMC_MODE_SMCR) {
		conn->want_writable = 0;
		usmc_conn_event_raise(conn, USMC_EV_WRITABLE);
	}
	usmc_close_progress(conn, ts);
	if (conn->lgr)
		usmc_tx_push(conn);
}

usmc_ssize usmc_conn_write(usmc_conn *conn, const uint8_t *data, size_t len,
			   usmc_tstamp ts)
{
	const usmc_buf *sb;
	uint64_t space, n;
	uint32_t off, a;

	if (!conn || (!data && len))
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->err)
		return conn->err;
	if (conn->mode != USMC_MODE_SMCR)
		return USMC_ERR_INVALID_STATE;
	conn->ctx->now = ts;
	if (conn->peer_conn_flags &
	    (USMC_CDC_PEER_CONN_CLOSED | USMC_CDC_PEER_CONN_ABORT))
		return USMC_ERR_CONNRESET;
	if (conn->close_flags_want || conn->app_closed ||
	    (conn->state != SMC_ACTIVE && conn->state != SMC_APPCLOSEWAIT1))
		return USMC_ERR_PIPE;
	sb = conn->sndbuf;
	if (!sb)
		return USMC_ERR_PIPE;
	if (conn->peer_ring)
		return usmc_smcd_write(conn, data, len, ts);
	space = sb->size - (conn->tx_prep - conn->tx_fin);
	if (!space) {
		conn->want_writable = 1;
		conn->n_buf_full++;
		return USMC_ERR_WOULDBLOCK;
	}
	if (!len)
		return 0;
	n = len < space ? len : space;
	off = (uint32_t)(conn->tx_prep & (sb->size - 1));
	a = sb->size - off;
	if (a > n)
		a = (uint32_t)n;
	memcpy((uint8_t *)sb->mr.addr + off, data, a);
	if (a < n)
		memcpy(sb->mr.addr, data + a, (size_t)(n - a));
	conn->tx_prep += n;
	conn->bytes_sent += n;
	if (n < len)
		conn->want_writable = 1;
	usmc_tx_push(conn);
	return (usmc_ssize)n;
}

size_t usmc_conn_writable(const usmc_conn *conn)
{
	if (conn->mode != USMC_MODE_SMCR || !conn->sndbuf || conn->err ||
	    conn->close_flags_want)
		return 0;
	if (conn->peer_ring)
		return usmc_smcd_writable(conn);
	return (size_t)(conn->sndbuf->size - (conn->tx_prep - conn->tx_fin));
}

void usmc_conn_set_nodelay(usmc_conn *conn, int on)
{
	conn->nodelay = !!on;
	if (on && conn->mode == USMC_MODE_SMCR && conn->lgr)
		usmc_tx_push(conn);
}

size_t usmc_conn_unsent(const usmc_conn *conn)
{
	return (size_t)(conn->tx_prep - conn->tx_fin);
}
