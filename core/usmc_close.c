/* SPDX-License-Identifier: MIT */
/*
 * Close FSM (net/smc smc_close.c): the kernel's states and transitions for
 * shutdown(SHUT_WR), close() and abort, actively and passively. Close flags
 * ride on the CDC that carries the last data byte (usmc_tx_push sends them
 * once the sndbuf is drained), which is the kernel's "stream wait" without
 * blocking. SMC resources go back to the lgr when CLOSED and no CDC is in
 * flight.
 */
#include "usmc_core_int.h"

#define ANY_CLOSE (USMC_CDC_PEER_CONN_CLOSED | USMC_CDC_PEER_CONN_ABORT)

const char *usmc_conn_state_name(int state)
{
	switch (state) {
	case SMC_ACTIVE:
		return "ACTIVE";
	case SMC_INIT:
		return "INIT";
	case SMC_CLOSED:
		return "CLOSED";
	case SMC_LISTEN:
		return "LISTEN";
	case SMC_PEERCLOSEWAIT1:
		return "PEERCLOSEWAIT1";
	case SMC_PEERCLOSEWAIT2:
		return "PEERCLOSEWAIT2";
	case SMC_APPCLOSEWAIT1:
		return "APPCLOSEWAIT1";
	case SMC_APPCLOSEWAIT2:
		return "APPCLOSEWAIT2";
	case SMC_APPFINCLOSEWAIT:
		return "APPFINCLOSEWAIT";
	case SMC_PEERFINCLOSEWAIT:
		return "PEERFINCLOSEWAIT";
	case SMC_PEERABORTWAIT:
		return "PEERABORTWAIT";
	case SMC_PROCESSABORT:
		return "PROCESSABORT";
	}
	return "UNKNOWN";
}

static int rxed_any_close(const usmc_conn *conn)
{
	return !!(conn->peer_conn_flags & ANY_CLOSE);
}

static int sent_any_close(const usmc_conn *conn)
{
	return !!(conn->close_flags_want & ANY_CLOSE);
}

/* Nothing said to this connection's peer arrives any more. */
static int peer_lost(const usmc_conn *conn)
{
	return conn->peer_dmb_gone || (conn->lgr && conn->lgr->peer_gone);
}

void usmc_close_progress(usmc_conn *conn, usmc_tstamp ts)
{
	/* CDCs to a peer that is gone never complete: do not wait for them */
	if (conn->state == SMC_CLOSED && conn->lgr &&
	    (!conn->cdc_pend || peer_lost(conn)))
		usmc_conn_release_smc(conn, ts);
}

static void set_state(usmc_conn *conn, int state, usmc_tstamp ts)
{
	if (conn->state == state)
		return;
	usmc_log(conn->ctx, USMC_LOG_DEBUG, "conn %08x: %s -> %s", conn->token,
		 usmc_conn_state_name(conn->state),
		 usmc_conn_state_name(state));
	conn->state = state;
	if (state != SMC_CLOSED)
		return;
	usmc_conn_event_raise(conn, USMC_EV_CLOSED);
	usmc_close_progress(conn, ts);
}

static void send_abort(usmc_conn *conn)
{
	/* unsent data is dropped; the flag goes out at once */
	conn->tx_prep = conn->tx_sent;
	conn->close_flags_want |= USMC_CDC_PEER_CONN_ABORT;
	usmc_tx_push(conn);
}

/* smc_close_final: closed, or abort when unread data is left behind. The
 * closed flag rides behind the data still in the sndbuf; but data that
 * nobody will read is dropped so the flag is not stuck behind a full
 * window: after an abort, and when the peer has closed already (it reads
 * no more). The kernel gets out of the same corner by a 2 s stream wait.
 * Returns 1 when it aborted: nobody answers an abort, so the caller goes
 * to CLOSED (as smc_close_active_abort). */
static int close_final(usmc_conn *conn, usmc_tstamp ts)
{
	int abort = conn->rx_prod != conn->rx_cons;

	if (abort) {
		conn->close_flags_want |= USMC_CDC_PEER_CONN_ABORT;
		conn->tx_prep = conn->tx_sent;
	} else {
		conn->close_flags_want |= USMC_CDC_PEER_CONN_CLOSED;
		if (rxed_any_close(conn))
			conn->tx_prep = conn->tx_sent;
	}
	usmc_tx_push(conn);
	/* a peer that neither reads nor closes keeps the flag waiting:
	 * give the data the kernel's stream wait, then give up on it */
	if (!abort && conn->lgr &&
	    (conn->close_flags_want & ~conn->close_flags_sent))
		usmc_close_timer(conn, ts + USMC_STREAM_WAIT);
	return abort;
}

void usmc_close_timer(usmc_conn *conn, usmc_tstamp when)
{
	usmc_ctx *ctx = conn->ctx;

	if (conn->close_expiry == USMC_TSTAMP_NONE && when != USMC_TSTAMP_NONE)
		ctx->nclosewait++;
	else if (conn->close_expiry != USMC_TSTAMP_NONE &&
		 when == USMC_TSTAMP_NONE && ctx->nclosewait)
		ctx->nclosewait--;
	conn->close_expiry = when;
}

/* The close flag is still stuck behind data the peer does not take: drop
 * the data and abort (the kernel would send "closed" over a silently
 * truncated stream; an abort says what happened). */
void usmc_close_stream_wait_expired(usmc_conn *conn, usmc_tstamp ts)
{
	usmc_close_timer(conn, USMC_TSTAMP_NONE);
	if (!(conn->close_flags_want & ~conn->close_flags_sent) ||
	    conn->state == SMC_CLOSED)
		return;
	usmc_log(conn->ctx, USMC_LOG_WARN,
		 "conn %08x: %llu unsent bytes dropped at close", conn->token,
		 (unsigned long long)(conn->tx_prep - conn->tx_sent));
	send_abort(conn);
	set_state(conn, SMC_CLOSED, ts);
}

/* The peer's CDC carried new conn_state flags (smc_close_passive_work). */
void usmc_close_peer_flags(usmc_conn *conn, uint8_t newflags, usmc_tstamp ts)
{
	if (conn->mode != USMC_MODE_SMCR)
		return; /* handled when the handshake completes */
	if (newflags & ANY_CLOSE) {
		/* the peer reads no more: drop unsent data, so close flags
		 * we owe it are not stuck behind a window that never opens */
		conn->tx_prep = conn->tx_sent;
		if (conn->close_flags_want & ~conn->close_flags_sent)
			usmc_tx_push(conn);
	}
	if (newflags & USMC_CDC_PEER_CONN_ABORT) {
		/* smc_close_passive_abort_received; the error is raised
		 * before any CLOSED event, as for a local abort */
		if (!conn->err)
			conn->err = USMC_ERR_CONNRESET;
		usmc_conn_event_raise(conn, USMC_EV_ERROR);
		switch (conn->state) {
		case SMC_INIT:
		case SMC_ACTIVE:
		case SMC_APPCLOSEWAIT1:
		case SMC_APPFINCLOSEWAIT:
			set_state(conn, SMC_PROCESSABORT, ts);
			break;
		case SMC_PEERCLOSEWAIT1:
		case SMC_PEERCLOSEWAIT2:
			if ((conn->close_flags_want &
			     USMC_CDC_PEER_DONE_WRITING) &&
			    !sent_any_close(conn))
				set_state(conn, SMC_PROCESSABORT, ts);
			else
				set_state(conn, SMC_CLOSED, ts);
			break;
		case SMC_APPCLOSEWAIT2:
		case SMC_PEERFINCLOSEWAIT:
		case SMC_PEERABORTWAIT:
			set_state(conn, SMC_CLOSED, ts);
			break;
		default:
			break;
		}
		return;
	}
	switch (conn->state) {
	case SMC_INIT:
	case SMC_ACTIVE:
		set_state(conn, SMC_APPCLOSEWAIT1, ts);
		break;
	case SMC_PEERCLOSEWAIT1:
		if (conn->peer_conn_flags & USMC_CDC_PEER_DONE_WRITING)
			set_state(conn, SMC_PEERCLOSEWAIT2, ts);
		/* fall through */
	case SMC_PEERCLOSEWAIT2:
		if (!rxed_any_close(conn))
			break;
		if (conn->app_closed && sent_any_close(conn))
			set_state(conn, SMC_CLOSED, ts);
		else
			set_state(conn, SMC_APPFINCLOSEWAIT, ts);
		break;
	case SMC_PEERFINCLOSEWAIT:
		if (rxed_any_close(conn))
			set_state(conn, SMC_CLOSED, ts);
		break;
	default:
		break;
	}
	if (!conn->peer_shutdown_seen && conn->mode == USMC_MODE_SMCR) {
		conn->peer_shutdown_seen = 1;
		usmc_conn_event_raise(conn, USMC_EV_PEER_SHUTDOWN);
		usmc_conn_event_raise(conn, USMC_EV_READABLE);
	}
}

/* A local abort: |err| is reported to the application (0 when it asked
 * for the abort itself); |send| says whether peer_conn_abort can still be
 * sent (not after the link is gone). */
void usmc_close_abort_local(usmc_conn *conn, int err, int send, usmc_tstamp ts)
{
	if (conn->mode == USMC_MODE_HANDSHAKE) {
		usmc_conn_handshake_failed(conn, err ? err : USMC_ERR_CLOSED, 0,
					   ts);
		return;
	}
	if (conn->mode != USMC_MODE_SMCR || conn->state == SMC_CLOSED)
		return;
	if (err && !conn->err)
		conn->err = err;
	if (send && usmc_conn_can_send(conn) &&
	    !(conn->close_flags_want & USMC_CDC_PEER_CONN_ABORT))
		send_abort(conn);
	/* smc_close_active_abort: every state ends in CLOSED here, since no
	 * work is left to cancel */
	if (err)
		usmc_conn_event_raise(conn, USMC_EV_ERROR);
	set_state(conn, SMC_CLOSED, ts);
}

int usmc_conn_shutdown_write(usmc_conn *conn, usmc_tstamp ts)
{
	if (!conn)
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->mode != USMC_MODE_SMCR)
		return USMC_ERR_INVALID_STATE;
	switch (conn->state) {
	case SMC_ACTIVE:
		conn->close_flags_want |= USMC_CDC_PEER_DONE_WRITING;
		set_state(conn, SMC_PEERCLOSEWAIT1, ts);
		usmc_tx_push(conn);
		break;
	case SMC_APPCLOSEWAIT1:
		conn->close_flags_want |= USMC_CDC_PEER_DONE_WRITING;
		set_state(conn, SMC_APPCLOSEWAIT2, ts);
		usmc_tx_push(conn);
		break;
	default:
		break;
	}
	return 0;
}

int usmc_conn_close(usmc_conn *conn, usmc_tstamp ts)
{
	int aborted;

	if (!conn)
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->mode == USMC_MODE_HANDSHAKE) {
		/* closed before the handshake ended: nothing to tell the peer
		 * beyond what TCP will (the kernel just releases) */
		usmc_conn_clc_done(conn);
		usmc_conn_release_smc(conn, ts);
		conn->state = SMC_CLOSED;
		return 0;
	}
	if (conn->mode == USMC_MODE_FALLBACK) {
		conn->state = SMC_CLOSED;
		return 0;
	}
	if (conn->app_closed)
		return 0;
	conn->app_closed = 1;
	switch (conn->state) {
	case SMC_INIT:
		set_state(conn, SMC_CLOSED, ts);
		break;
	case SMC_ACTIVE:
		if (close_final(conn, ts))
			set_state(conn, SMC_CLOSED, ts);
		else if (conn->state == SMC_ACTIVE)
			set_state(conn, SMC_PEERCLOSEWAIT1, ts);
		break;
	case SMC_APPFINCLOSEWAIT:
		if ((conn->close_flags_want & USMC_CDC_PEER_DONE_WRITING) &&
		    !sent_any_close(conn))
			close_final(conn, ts);
		set_state(conn, SMC_CLOSED, ts);
		break;
	case SMC_APPCLOSEWAIT1:
	case SMC_APPCLOSEWAIT2:
		aborted = close_final(conn, ts);
		if (aborted || rxed_any_close(conn))
			set_state(conn, SMC_CLOSED, ts);
		else
			set_state(conn, SMC_PEERFINCLOSEWAIT, ts);
		break;
	case SMC_PEERCLOSEWAIT1:
	case SMC_PEERCLOSEWAIT2:
		if ((conn->close_flags_want & USMC_CDC_PEER_DONE_WRITING) &&
		    !sent_any_close(conn) && close_final(conn, ts))
			set_state(conn, SMC_CLOSED, ts);
		break;
	case SMC_PROCESSABORT:
		if (!conn->lgr || !peer_lost(conn))
			send_abort(conn);
		set_state(conn, SMC_CLOSED, ts);
		break;
	case SMC_PEERABORTWAIT:
		set_state(conn, SMC_CLOSED, ts);
		break;
	default:
		break;
	}
	return 0;
}

void usmc_conn_peer_gone(usmc_conn *conn, usmc_tstamp ts)
{
	if (!conn || conn->mode != USMC_MODE_SMCR)
		return;
	/* SMC-D: the ISM device says it per DMB and per attachment (the
	 * peer unregistered or detached one at its connection's end; a peer
	 * process that died gives one for each of its connections). Only
	 * this connection lost its peer: the link group, which has no link,
	 * carries the others on. */
	if (conn->smcd)
		conn->peer_dmb_gone = 1;
	else if (conn->lgr)
		conn->lgr->peer_gone = 1;
	if (conn->state == SMC_CLOSED || rxed_any_close(conn))
		return;
	usmc_log(conn->ctx, USMC_LOG_INFO, "conn %08x: peer gone", conn->token);
	conn->peer_conn_flags |= USMC_CDC_PEER_CONN_ABORT;
	usmc_close_peer_flags(conn, USMC_CDC_PEER_CONN_ABORT, ts);
	usmc_close_progress(conn, ts);
}

int usmc_conn_close_done(const usmc_conn *conn)
{
	if (!conn || conn->mode != USMC_MODE_SMCR || !conn->lgr ||
	    !usmc_conn_can_send(conn))
		return 1;
	return (conn->close_flags_done & ANY_CLOSE) != 0;
}

int usmc_conn_abort(usmc_conn *conn, usmc_tstamp ts)
{
	if (!conn)
		return USMC_ERR_INVALID_ARGUMENT;
	if (conn->mode != USMC_MODE_SMCR)
		return usmc_conn_close(conn, ts);
	conn->app_closed = 1;
	usmc_close_abort_local(conn, 0, 1, ts);
	return 0;
}
