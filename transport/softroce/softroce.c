/* SPDX-License-Identifier: MIT */
/* recvmmsg, sendmmsg */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/*
 * softroce device: the UDP socket, memory registration, the completion
 * queue and its fd, timers, and batched packet I/O. The RC protocol itself
 * is in roce_qp.c.
 *
 * The completion fd is an epoll fd holding the UDP socket, a timerfd for
 * the nearest retransmit/RNR deadline, an eventfd that stays readable
 * while completions or async events are queued, and a NETLINK_ROUTE
 * socket that reports the interface going down and up (the port state).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "softroce_int.h"
#include "usmc_conv.h"

#define SR_SOCKBUF (8 << 20)

/* retry_time= default: a silent peer is noticed within 1.5 s, inside the
 * 2 s bound of docs/runtime.md with room for the poll that sees it */
#define SR_RETRY_TIME_NS (1500ULL * 1000000)
/* the netlink socket is read from poll_cq at most this often */
#define SR_NL_PERIOD_NS	 (1000000ULL)

usmc_tstamp sr_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (usmc_tstamp)ts.tv_sec * USMC_NS_PER_SEC +
	       (usmc_tstamp)ts.tv_nsec;
}

static sr_dev *dev_of(usmc_tp *tp)
{
	return (sr_dev *)tp;
}

static usmc_tstamp dev_now(const sr_dev *d)
{
	return d->fake_now ? d->fake_now : sr_now();
}

static uint32_t random_u32(void)
{
	uint32_t v = 0;

	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != sizeof(v)) {
		/* no entropy yet: still not a small sequential number */
		v = (uint32_t)sr_now() * 2654435761u;
	}
	return v;
}

/* ---- addresses -------------------------------------------------------- */

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static socklen_t addr_len(const sr_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->v6) : sizeof(a->v4);
}

static uint16_t addr_port(const sr_addr *a)
{
	return ntohs(a->sa.sa_family == AF_INET6 ? a->v6.sin6_port
						 : a->v4.sin_port);
}

static const uint8_t *addr_ip(const sr_addr *a)
{
	return a->sa.sa_family == AF_INET6 ? (const uint8_t *)&a->v6.sin6_addr
					   : (const uint8_t *)&a->v4.sin_addr;
}

/* Same family and IP address (ports are not compared: rxe ignores the
 * source port) */
static int addr_eq(const sr_addr *a, const sr_addr *b)
{
	if (a->sa.sa_family != b->sa.sa_family)
		return 0;
	return !memcmp(addr_ip(a), addr_ip(b),
		       a->sa.sa_family == AF_INET6 ? 16 : 4);
}

static void addr_copy(sr_addr *to, const struct sockaddr *from)
{
	memset(to, 0, sizeof(*to));
	if (from->sa_family == AF_INET6)
		memcpy(&to->v6, from, sizeof(to->v6));
	else if (from->sa_family == AF_INET)
		memcpy(&to->v4, from, sizeof(to->v4));
}

/* The send window in packets for |mtu|: RXE_MAX_UNACKED_PSNS, or less when
 * the receive buffer (ours, standing in for the peer's) could not hold that
 * many packets; a kernel skb costs about twice its payload. */
uint32_t sr_window(const sr_dev *d, uint32_t mtu)
{
	uint64_t w = d->rcvbuf ? d->rcvbuf / (2 * ((uint64_t)mtu + 256))
			       : SR_MAX_UNACKED_PSNS;

	if (w > SR_MAX_UNACKED_PSNS)
		w = SR_MAX_UNACKED_PSNS;
	return w < 4 ? 4 : (uint32_t)w;
}

int sr_addr_from_gid(const sr_dev *d, const uint8_t gid[16], sr_addr *a)
{
	int mapped = !memcmp(gid, v4mapped, sizeof(v4mapped));

	memset(a, 0, sizeof(*a));
	if (d->family == AF_INET) {
		if (!mapped)
			return USMC_ERR_INVALID_ARGUMENT;
		a->v4.sin_family = AF_INET;
		a->v4.sin_port = htons(d->port);
		memcpy(&a->v4.sin_addr, gid + 12, 4);
		return 0;
	}
	if (mapped)
		return USMC_ERR_INVALID_ARGUMENT;
	a->v6.sin6_family = AF_INET6;
	a->v6.sin6_port = htons(d->port);
	memcpy(&a->v6.sin6_addr, gid, 16);
	return 0;
}

/* ---- options ---------------------------------------------------------- */

static int mtu_bytes_to_enum(uint32_t b)
{
	for (int e = USMC_IB_MTU_256; e <= USMC_IB_MTU_4096; e++)
		if (usmc_ib_mtu_to_int(e) == b)
			return e;
	return 0;
}

/* Why the last open's options were refused ("" when they were not). */
static char opt_error[192];

const char *usmc_softroce_option_error(void)
{
	return opt_error;
}

/* Refuses option number |idx| (1-based), at column |col| of the string:
 * |why| names what the key takes. */
static int opt_refuse(char *err, size_t errlen, int idx, size_t col,
		      const char *p, size_t len, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "option %d (column %zu) \"%.*s\": %s",
			 idx, col, (int)(len > 64 ? 64 : len), p, why);
	return USMC_ERR_INVALID_ARGUMENT;
}

static int parse_options(sr_dev *d, const char *opts, int *mtu_enum, char *err,
			 size_t errlen)
{
	const char *cur = opts;
	usmc_tp_opt o = {0};
	uint32_t seed = 1, n;

	*mtu_enum = 0;
	while (usmc_tp_opt_next(opts, &cur, &o)) {
#define REFUSE(why) opt_refuse(err, errlen, o.idx, o.col, o.item, o.len, why)
#define KEY(s)	    usmc_tp_opt_key_is(&o, s)
#define VAL(s)	    usmc_tp_opt_val_is(&o, s)
		if (!o.val)
			return REFUSE("want KEY=VALUE");
		if (KEY("icrc")) {
			if (VAL("verify"))
				d->icrc_verify = SR_ICRC_VERIFY;
			else if (VAL("strict"))
				d->icrc_verify = SR_ICRC_STRICT;
			else if (VAL("off"))
				d->icrc_verify = SR_ICRC_OFF;
			else
				return REFUSE("icrc is verify, strict or off");
		} else if (KEY("mtu")) {
			if (usmc_tp_opt_u32(&o, &n) || !mtu_bytes_to_enum(n))
				return REFUSE("mtu is 256, 512, 1024, 2048 or "
					      "4096");
			*mtu_enum = mtu_bytes_to_enum(n);
		} else if (KEY("port")) {
			if (usmc_tp_opt_u32(&o, &n) || !n || n > 65535)
				return REFUSE("port is 1..65535");
			d->port = (uint16_t)n;
		} else if (KEY("drop")) {
			if (usmc_tp_opt_u32(&o, &n) || n > 1000)
				return REFUSE("drop is 0..1000 (per mille)");
			d->drop_permille = n;
		} else if (KEY("rcvbuf")) {
			if (usmc_tp_opt_u32(&o, &n) || n < 4096 ||
			    n > (1u << 30))
				return REFUSE("rcvbuf is 4096..2^30 bytes");
			d->rcvbuf_opt = n;
		} else if (KEY("txfail")) {
			if (usmc_tp_opt_u32(&o, &n) || n > 1000)
				return REFUSE("txfail is 0..1000 (per mille)");
			d->txfail_permille = n;
		} else if (KEY("share")) {
			if (usmc_tp_opt_onoff(&o, "auto", &d->share_opt))
				return REFUSE("share is auto or off");
		} else if (KEY("ipid")) {
			if (VAL("zero"))
				d->ipid_random = 0;
			else if (VAL("random"))
				d->ipid_random = 1;
			else
				return REFUSE("ipid is zero or random");
		} else if (KEY("seed")) {
			if (usmc_tp_opt_u32(&o, &seed))
				return REFUSE("seed is 0..2^32-1");
		} else if (KEY("retry_time")) {
			if (usmc_tp_opt_u32(&o, &n) || n > 600000)
				return REFUSE("retry_time is 0..600000 "
					      "(milliseconds, 0: no bound)");
			d->retry_time_ns = (uint64_t)n * 1000000;
		} else if (KEY("gso")) {
			if (usmc_tp_opt_onoff(&o, "on", &d->gso))
				return REFUSE("gso is on or off");
		} else if (KEY("ackhold")) {
			if (usmc_tp_opt_onoff(&o, "on", &d->ackhold_opt))
				return REFUSE("ackhold is on or off");
		} else if (KEY("portwatch")) {
			if (usmc_tp_opt_onoff(&o, "auto", &d->portwatch_opt))
				return REFUSE("portwatch is auto or off");
		} else {
			return REFUSE("unknown key (want icrc, mtu, port, "
				      "share, rcvbuf, drop, txfail, ipid, "
				      "seed, retry_time, portwatch, gso "
				      "or ackhold)");
		}
#undef VAL
#undef KEY
#undef REFUSE
	}
	d->rng = 0x9e3779b97f4a7c15ULL ^ ((uint64_t)seed << 1 | 1);
	return 0;
}

int usmc_softroce_check_options(const char *opts, char *err, size_t errlen)
{
	sr_dev d;
	int mtu;

	memset(&d, 0, sizeof(d));
	if (err && errlen)
		err[0] = '\0';
	return parse_options(&d, opts, &mtu, err, errlen);
}

/* Interface MTU and MAC of the netdev that owns the local address. */
static void query_netdev(sr_dev *d, uint32_t *mtu)
{
	struct ifaddrs *ifa, *i;
	struct ifreq ifr;

	*mtu = 1500;
	if (getifaddrs(&ifa))
		return;
	for (i = ifa; i; i = i->ifa_next) {
		sr_addr a;

		if (!i->ifa_addr || i->ifa_addr->sa_family != d->family)
			continue;
		addr_copy(&a, i->ifa_addr);
		if (!addr_eq(&a, &d->local))
			continue;
		snprintf(d->ifname, sizeof(d->ifname), "%s", i->ifa_name);
		break;
	}
	/* 127.0.0.2 and the like are on lo without an ifaddr of their own */
	if (!d->ifname[0] && d->family == AF_INET &&
	    (ntohl(d->local.v4.sin_addr.s_addr) >> 24) == 127)
		snprintf(d->ifname, sizeof(d->ifname), "lo");
	for (i = ifa; i && d->ifname[0]; i = i->ifa_next) {
		const struct sockaddr_ll *sll =
			(const struct sockaddr_ll *)i->ifa_addr;

		if (!sll || sll->sll_family != AF_PACKET ||
		    strcmp(i->ifa_name, d->ifname) || sll->sll_halen != 6)
			continue;
		memcpy(d->mac, sll->sll_addr, 6);
	}
	freeifaddrs(ifa);
	if (!d->ifname[0])
		return;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%.*s",
		 (int)sizeof(ifr.ifr_name) - 1, d->ifname);
	if (!ioctl(d->sock, SIOCGIFMTU, &ifr) && ifr.ifr_mtu > 0)
		*mtu = (uint32_t)ifr.ifr_mtu;
}

/* eth_mtu_int_to_enum: largest IB MTU <= netdev MTU - 80 */
static int mtu_enum_of(uint32_t netdev_mtu)
{
	uint32_t room = netdev_mtu > 80 ? netdev_mtu - 80 : 0;

	for (int e = USMC_IB_MTU_4096; e >= USMC_IB_MTU_256; e--)
		if (usmc_ib_mtu_to_int(e) <= room)
			return e;
	return USMC_IB_MTU_256;
}

/* ---- port state -------------------------------------------------------- */

static void sr_log(sr_dev *d, int level, const char *fmt, const char *a,
		   const char *b)
{
	char m[192];

	if (!d->log)
		return;
	snprintf(m, sizeof(m), fmt, a, b);
	d->log(d->log_arg, level, m);
}

/* The port is up while its interface is up and has a carrier, as rxe's
 * rxe_set_port_state (netif_running && netif_carrier_ok). */
static int flags_up(unsigned int f)
{
	return (f & IFF_UP) && (f & IFF_RUNNING);
}

static void sync_efd(sr_dev *d);

/* A change of port state: the async event rxe raises (rxe_port_up,
 * rxe_port_down), queued for get_async_event; the eventfd keeps the
 * device fd readable until it is taken. */
static void port_set(sr_dev *d, int up)
{
	usmc_tp_event *ev;

	if (up == !d->port_down)
		return;
	d->port_down = !up;
	if (up)
		d->st.port_ups++;
	else
		d->st.port_downs++;
	sr_log(d, 1, "softroce: interface %s %s", d->ifname,
	       up ? "up: PORT_ACTIVE" : "down: PORT_ERR");
	if (d->ev_n == SR_EVQ) { /* keep the newest: the state now */
		d->ev_head = (d->ev_head + 1) % SR_EVQ;
		d->ev_n--;
	}
	ev = &d->evq[(d->ev_head + d->ev_n++) % SR_EVQ];
	memset(ev, 0, sizeof(*ev));
	ev->type = up ? USMC_TP_EV_PORT_ACTIVE : USMC_TP_EV_PORT_ERR;
	sync_efd(d);
}

/* The interface's state now (SIOCGIFFLAGS): at open, and when netlink
 * messages were lost (ENOBUFS). */
static void port_query(sr_dev *d)
{
	struct ifreq ifr;

	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%.*s",
		 (int)sizeof(ifr.ifr_name) - 1, d->ifname);
	if (!ioctl(d->sock, SIOCGIFFLAGS, &ifr))
		port_set(d, flags_up((unsigned int)(uint16_t)ifr.ifr_flags));
}

/* Reads what the kernel said about links; only our interface's
 * RTM_NEWLINK (its flags) and RTM_DELLINK (gone: down) count, and only
 * messages from the kernel itself (nl_pid 0). */
static void port_drain(sr_dev *d)
{
	union {
		struct nlmsghdr h;
		char b[8192];
	} buf;

	for (;;) {
		struct sockaddr_nl from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(d->nl, buf.b, sizeof(buf.b), MSG_DONTWAIT,
				     (struct sockaddr *)&from, &fl);
		unsigned int len = n > 0 ? (unsigned int)n : 0;

		if (n < 0) {
			if (errno == ENOBUFS) { /* overrun: ask instead */
				port_query(d);
				continue;
			}
			return;
		}
		if (fl != sizeof(from) || from.nl_family != AF_NETLINK ||
		    from.nl_pid != 0)
			continue;
		for (struct nlmsghdr *h = &buf.h; NLMSG_OK(h, len);
		     h = NLMSG_NEXT(h, len)) {
			const struct ifinfomsg *ifi;

			if ((h->nlmsg_type != RTM_NEWLINK &&
			     h->nlmsg_type != RTM_DELLINK) ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
				continue;
			ifi = NLMSG_DATA(h);
			if (ifi->ifi_index != d->ifindex)
				continue;
			port_set(d, h->nlmsg_type == RTM_NEWLINK &&
					    flags_up(ifi->ifi_flags));
		}
	}
}

/* Subscribes to link changes (RTMGRP_LINK) for the address's interface
 * and takes its state now. Without a netlink socket the port stays up,
 * said once. */
static void port_watch(sr_dev *d)
{
	struct sockaddr_nl sa;
	struct epoll_event ev;

	if (!d->ifname[0] || !(d->ifindex = (int)if_nametoindex(d->ifname)))
		return;
	d->nl = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
		       NETLINK_ROUTE);
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	sa.nl_groups = RTMGRP_LINK;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = d->nl;
	if (d->nl < 0 || bind(d->nl, (struct sockaddr *)&sa, sizeof(sa)) ||
	    epoll_ctl(d->ep, EPOLL_CTL_ADD, d->nl, &ev)) {
		sr_log(d, 0,
		       "softroce: cannot watch interface %s (%s): its port "
		       "is taken as always up",
		       d->ifname, strerror(errno));
		if (d->nl >= 0)
			close(d->nl);
		d->nl = -1;
		return;
	}
	port_query(d);
	/* the state at open is no event */
	d->ev_head = d->ev_n = 0;
	sync_efd(d);
}

static int sr_get_async_event(usmc_tp *tp, usmc_tp_event *ev)
{
	sr_dev *d = dev_of(tp);

	if (!d->ev_n)
		return 0;
	*ev = d->evq[d->ev_head];
	d->ev_head = (d->ev_head + 1) % SR_EVQ;
	d->ev_n--;
	sync_efd(d);
	return 1;
}

/* ---- device ----------------------------------------------------------- */

static void sr_close(usmc_tp *tp);
static uint64_t rng_next(sr_dev *d);

static int sr_open(const usmc_tp_config *cfg, usmc_tp **ptp)
{
	sr_dev *d;
	int one = 1, buf = SR_SOCKBUF, pmtu = IP_PMTUDISC_DO, mtu_opt, rc;
	uint32_t netdev_mtu;
	struct epoll_event ev;

	*ptp = NULL;
	opt_error[0] = '\0';
	if (!cfg || (cfg->local_addr.ss_family != AF_INET &&
		     cfg->local_addr.ss_family != AF_INET6))
		return USMC_ERR_INVALID_ARGUMENT;
	{
		/* the GID is the address: a wildcard cannot be one */
		static const uint8_t any[16];
		sr_addr a;

		addr_copy(&a, (const struct sockaddr *)&cfg->local_addr);
		if (!memcmp(addr_ip(&a), any,
			    a.sa.sa_family == AF_INET6 ? 16 : 4))
			return USMC_ERR_INVALID_ARGUMENT;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return USMC_ERR_NOMEM;
	d->pub.ops = &usmc_tp_softroce_ops;
	d->sock = d->ep = d->tfd = d->efd = d->raw = -1;
	d->share_slot = d->share_socks_fd = d->share_drops_fd = -1;
	d->share_opt = 1;
	d->nl = -1;
	d->portwatch_opt = 1;
	d->ackhold_opt = 0;
	d->retry_time_ns = SR_RETRY_TIME_NS;
	d->icrc_verify = SR_ICRC_VERIFY;
	d->log = cfg->log;
	d->log_arg = cfg->log_arg;
	d->timer_armed = USMC_TSTAMP_NONE;
	d->qpn_next = SR_MIN_QPN;
	addr_copy(&d->local, (const struct sockaddr *)&cfg->local_addr);
	d->family = cfg->local_addr.ss_family;
	d->port = cfg->udp_port ? cfg->udp_port : USMC_ROCE_UDP_PORT;
	rc = parse_options(d, cfg->options, &mtu_opt, opt_error,
			   sizeof(opt_error));
	if (rc)
		goto fail;
	if (d->family == AF_INET6)
		d->local.v6.sin6_port = htons(d->port);
	else
		d->local.v4.sin_port = htons(d->port);

	if (d->gso && d->ipid_random)
		d->gso = 0; /* ipid=random sends its own IP headers */
	d->rx_bufsz = d->gso ? SR_GRO_BUFSZ : SR_RX_BUFSZ;
	d->rx_mem = malloc(SR_RX_BATCH * d->rx_bufsz);
	if (!d->rx_mem || usmc_tp_wcq_grow(&d->cq, 256)) {
		rc = USMC_ERR_NOMEM;
		goto fail;
	}

	d->sock =
		socket(d->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->sock < 0)
		goto fail_errno;
	if (d->family == AF_INET) {
		/* DF on an unconnected socket makes Linux send IP ID 0,
		 * which the ICRC covers; rxe peers send DF too. */
		setsockopt(d->sock, IPPROTO_IP, IP_MTU_DISCOVER, &pmtu,
			   sizeof(pmtu));
		setsockopt(d->sock, IPPROTO_IP, IP_PKTINFO, &one, sizeof(one));
	} else {
		int p6 = IPV6_PMTUDISC_DO;

		setsockopt(d->sock, IPPROTO_IPV6, IPV6_V6ONLY, &one,
			   sizeof(one));
		setsockopt(d->sock, IPPROTO_IPV6, IPV6_MTU_DISCOVER, &p6,
			   sizeof(p6));
		setsockopt(d->sock, IPPROTO_IPV6, IPV6_RECVPKTINFO, &one,
			   sizeof(one));
		/* rxe sends a zero UDP checksum over IPv6 too */
		setsockopt(d->sock, IPPROTO_UDP, UDP_NO_CHECK6_RX, &one,
			   sizeof(one));
		setsockopt(d->sock, IPPROTO_UDP, UDP_NO_CHECK6_TX, &one,
			   sizeof(one));
	}
	/* GSO needs a UDP checksum, which rxe's IPv6 leaves out: IPv4 only.
	 * UDP_GRO is Linux >= 5.0; without it, what arrives coalesced is
	 * split by the kernel and each packet comes alone. */
	if (d->gso && d->family != AF_INET)
		d->gso = 0;
	if (d->gso &&
	    setsockopt(d->sock, IPPROTO_UDP, UDP_GRO, &one, sizeof(one)) &&
	    cfg->log)
		cfg->log(cfg->log_arg, 1,
			 "softroce: no UDP_GRO on this kernel: gso=on sends "
			 "coalesced, receives one packet per datagram");
	if (d->ipid_random) {
		/* IP_HDRINCL: the kernel keeps a nonzero ID and fills in the
		 * length and header checksum (raw_send_hdrinc) */
		if (d->family != AF_INET) {
			snprintf(opt_error, sizeof(opt_error),
				 "ipid=random: IPv4 only");
			rc = USMC_ERR_INVALID_ARGUMENT;
			goto fail;
		}
		d->raw =
			socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC,
			       IPPROTO_RAW);
		if (d->raw < 0) {
			snprintf(opt_error, sizeof(opt_error),
				 "ipid=random needs a raw IPv4 socket "
				 "(CAP_NET_RAW): %s",
				 strerror(errno));
			goto fail_errno;
		}
		if (setsockopt(d->raw, SOL_SOCKET, SO_SNDBUFFORCE, &buf,
			       sizeof(buf)))
			setsockopt(d->raw, SOL_SOCKET, SO_SNDBUF, &buf,
				   sizeof(buf));
		/* a random start, as each rxe peer's (ip_idents) */
		if (getrandom(&d->ipid_next, sizeof(d->ipid_next), 0) !=
		    (ssize_t)sizeof(d->ipid_next))
			d->ipid_next = (uint16_t)(rng_next(d) >> 20);
	}
	if (d->rcvbuf_opt) {
		int rb = (int)d->rcvbuf_opt;

		setsockopt(d->sock, SOL_SOCKET, SO_RCVBUF, &rb, sizeof(rb));
	} else if (setsockopt(d->sock, SOL_SOCKET, SO_RCVBUFFORCE, &buf,
			      sizeof(buf))) {
		setsockopt(d->sock, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	}
	{
		int rb = 0;
		socklen_t rl = sizeof(rb);

		if (!getsockopt(d->sock, SOL_SOCKET, SO_RCVBUF, &rb, &rl) &&
		    rb > 0)
			d->rcvbuf = (uint32_t)rb;
	}
	if (setsockopt(d->sock, SOL_SOCKET, SO_SNDBUFFORCE, &buf, sizeof(buf)))
		setsockopt(d->sock, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	rc = sr_share_bind(d);
	if (rc)
		goto fail;

	d->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	d->ep = epoll_create1(EPOLL_CLOEXEC);
	if (d->tfd < 0 || d->efd < 0 || d->ep < 0)
		goto fail_errno;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.fd = d->sock;
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->sock, &ev))
		goto fail_errno;
	ev.data.fd = d->tfd;
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->tfd, &ev))
		goto fail_errno;
	ev.data.fd = d->efd;
	if (epoll_ctl(d->ep, EPOLL_CTL_ADD, d->efd, &ev))
		goto fail_errno;

	query_netdev(d, &netdev_mtu);
	if (d->portwatch_opt)
		port_watch(d);
	d->active_mtu = (uint8_t)(mtu_opt ? mtu_opt : mtu_enum_of(netdev_mtu));
	/* GID: the IPv6 address, or IPv4-mapped, as rxe's RoCEv2 GIDs */
	if (d->family == AF_INET6) {
		memcpy(d->gid, &d->local.v6.sin6_addr, 16);
	} else {
		memcpy(d->gid, v4mapped, sizeof(v4mapped));
		memcpy(d->gid + 12, &d->local.v4.sin_addr, 4);
	}

	for (uint32_t i = 0; i < SR_RX_BATCH; i++) {
		d->rx_iov[i].iov_base = d->rx_mem + i * d->rx_bufsz;
		d->rx_iov[i].iov_len = d->rx_bufsz;
	}
	*ptp = &d->pub;
	return 0;

fail_errno:
	d->pub.last_errno = errno;
	rc = errno == ENOMEM ? USMC_ERR_NOMEM : USMC_ERR_TRANSPORT;
fail : {
	int e = d->pub.last_errno;

	sr_close(&d->pub);
	if (e)
		errno = e;
}
	return rc;
}

static void sr_close(usmc_tp *tp)
{
	sr_dev *d = dev_of(tp);

	if (!d)
		return;
	for (uint32_t i = 0; i < d->nqps; i++)
		if (d->qps[i]) {
			sr_qp_destroy(d->qps[i]);
			d->qps[i] = NULL;
		}
	for (uint32_t i = 0; i < d->nmrs; i++)
		if (d->mrs[i]) {
			free(d->mrs[i]->pub.addr);
			free(d->mrs[i]);
		}
	sr_share_close(d);
	if (d->nl >= 0)
		close(d->nl);
	if (d->raw >= 0)
		close(d->raw);
	if (d->ep >= 0)
		close(d->ep);
	if (d->tfd >= 0)
		close(d->tfd);
	if (d->efd >= 0)
		close(d->efd);
	free(d->qps);
	free(d->qpn_ht);
	free(d->mrs);
	usmc_tp_wcq_free(&d->cq);
	free(d->rx_mem);
	free(d);
}

static int sr_query_port(usmc_tp *tp, usmc_port_attr *a)
{
	sr_dev *d = dev_of(tp);
	char ip[INET6_ADDRSTRLEN];

	memset(a, 0, sizeof(*a));
	memcpy(a->gid, d->gid, 16);
	memcpy(a->mac, d->mac, 6);
	a->active_mtu = d->active_mtu;
	a->max_inline_data = SR_MAX_INLINE;
	a->max_qp_wr = SR_MAX_QP_WR;
	a->udp_port = d->port;
	inet_ntop(d->family, addr_ip(&d->local), ip, sizeof(ip));
	snprintf(a->name, sizeof(a->name), "softroce:%.22s", ip);
	return 0;
}

static int sr_get_fd(usmc_tp *tp)
{
	return dev_of(tp)->ep;
}

int usmc_softroce_get_stats(usmc_tp *tp, usmc_softroce_stats *st)
{
	if (!tp || tp->ops != &usmc_tp_softroce_ops || !st)
		return USMC_ERR_INVALID_ARGUMENT;
	*st = dev_of(tp)->st;
	sr_share_drops(dev_of(tp), &st->share_drop_qpn, &st->share_drop_short);
	return 0;
}

/* ---- memory ----------------------------------------------------------- */

/* Keys: low 16 bits index the MR table, high 16 bits are random so that a
 * peer cannot guess a valid rkey from another. */
static sr_mr *mr_by_key(sr_dev *d, uint32_t key, int remote)
{
	sr_mr *mr;
	uint32_t idx = key & 0xffff;

	if (idx >= d->nmrs)
		return NULL;
	mr = d->mrs[idx];
	if (!mr || (remote ? mr->pub.rkey : mr->pub.lkey) != key)
		return NULL;
	return mr;
}

sr_mr *sr_mr_by_lkey(sr_dev *d, uint32_t lkey)
{
	return mr_by_key(d, lkey, 0);
}

sr_mr *sr_mr_by_rkey(sr_dev *d, uint32_t rkey)
{
	return mr_by_key(d, rkey, 1);
}

/* An MR over |mem| (NULL: fresh zeroed pages, owned by the MR). */
static int sr_mr_new(usmc_tp *tp, void *mem, size_t length, uint32_t access,
		     usmc_tp_mr **pmr)
{
	sr_dev *d = dev_of(tp);
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096, alloc;
	uint32_t idx;
	sr_mr *mr;

	*pmr = NULL;
	if (!length || length > ((size_t)1 << 40))
		return USMC_ERR_INVALID_ARGUMENT;
	for (idx = 0; idx < d->nmrs && d->mrs[idx]; idx++)
		;
	if (idx == d->nmrs) {
		uint32_t n = d->nmrs ? d->nmrs * 2 : 16;
		sr_mr **t;

		if (n > 0x10000)
			return USMC_ERR_LIMIT;
		t = realloc(d->mrs, n * sizeof(*t));
		if (!t)
			return USMC_ERR_NOMEM;
		memset(t + d->nmrs, 0, (n - d->nmrs) * sizeof(*t));
		d->mrs = t;
		d->nmrs = n;
	}
	alloc = (length + page - 1) & ~(page - 1);
	mr = calloc(1, sizeof(*mr));
	if (!mr)
		return USMC_ERR_NOMEM;
	if (mem) {
		alloc = 0; /* registered, not allocated: not freed */
	} else {
		/* fresh anonymous pages read as zero and take no memory
		 * until written: an idle connection's RMB and send buffer
		 * cost nothing but the pages its data has touched */
		mem = mmap(NULL, alloc, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (mem == MAP_FAILED) {
			free(mr);
			return USMC_ERR_NOMEM;
		}
	}
	mr->pub.tp = tp;
	mr->pub.addr = mem;
	mr->pub.length = length;
	mr->pub.iova = (uint64_t)(uintptr_t)mem;
	mr->pub.access = access;
	do {
		mr->pub.lkey = (random_u32() & 0xffff0000u) | idx;
		mr->pub.rkey = (random_u32() & 0xffff0000u) | idx;
	} while (mr->pub.lkey == mr->pub.rkey);
	mr->index = idx;
	mr->alloc_len = alloc;
	d->mrs[idx] = mr;
	*pmr = &mr->pub;
	return 0;
}

static int sr_alloc_mr(usmc_tp *tp, size_t length, uint32_t access,
		       usmc_tp_mr **pmr)
{
	return sr_mr_new(tp, NULL, length, access, pmr);
}

/* The same memory on a second device (a link group's RMB reached through
 * another link): its own keys, the memory stays its owner's. */
static int sr_reg_mr(usmc_tp *tp, void *addr, size_t length, uint32_t access,
		     usmc_tp_mr **pmr)
{
	return sr_mr_new(tp, addr, length, access, pmr);
}

static void sr_free_mr(usmc_tp_mr *pub)
{
	sr_mr *mr = (sr_mr *)pub;
	sr_dev *d;

	if (!mr)
		return;
	d = dev_of(pub->tp);
	if (mr->index < d->nmrs && d->mrs[mr->index] == mr)
		d->mrs[mr->index] = NULL;
	if (mr->alloc_len)
		munmap(pub->addr, mr->alloc_len);
	free(mr);
}

/* ---- completion queue ------------------------------------------------- */

void sr_cq_push(sr_dev *d, const usmc_wc *wc)
{
	/* cannot grow: lose it rather than crash */
	(void)usmc_tp_wcq_push(&d->cq, wc, 256);
}

/* The eventfd mirrors "completions or async events queued" so epoll
 * stays level-true. */
static void sync_efd(sr_dev *d)
{
	uint64_t v = 1;
	int pending = d->cq.n || d->ev_n || d->ack_hold;

	if (d->efd < 0)
		return;
	if (pending && !d->efd_signaled) {
		if (write(d->efd, &v, sizeof(v)) == sizeof(v))
			d->efd_signaled = 1;
	} else if (!pending && d->efd_signaled) {
		if (read(d->efd, &v, sizeof(v)) == sizeof(v) || errno == EAGAIN)
			d->efd_signaled = 0;
	}
}

/* ---- transmit --------------------------------------------------------- */

static uint64_t rng_next(sr_dev *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

/* gso=on: the position the next packet, of |udp_len| bytes to |to| with
 * BTH |hdr|, takes in the open GSO send (0: it starts a new one). A send
 * holds packets of one size but its last, to one address and one QPN
 * (the shared port's eBPF program steers a datagram by its first BTH). */
static uint16_t gso_join(sr_dev *d, const sr_addr *to, const uint8_t *hdr,
			 size_t udp_len)
{
	uint32_t f = d->g_first;

	/* a test's tx hook takes packets one by one, as the wire shows them */
	if (d->gso && !d->tx_hook && d->ntx > f && d->g_n < SR_GSO_SEGS &&
	    !d->g_closed && udp_len <= d->g_seg &&
	    d->g_bytes + udp_len <= SR_GSO_BYTES &&
	    addr_eq(to, &d->tx_addr[f]) &&
	    !memcmp(hdr + 5, d->tx_hdr[f] + 5, 3)) {
		d->g_closed = udp_len < d->g_seg;
		d->g_bytes += (uint32_t)udp_len;
		return (uint16_t)d->g_n++;
	}
	d->g_first = d->ntx;
	d->g_n = 1;
	d->g_seg = d->g_bytes = (uint32_t)udp_len;
	d->g_closed = 0;
	return 0;
}

void sr_tx_append(sr_dev *d, sr_qp *qp, const sr_addr *to, const uint8_t *hdr,
		  size_t hlen, const struct iovec *pl, int npl, size_t plen)
{
	static const uint8_t zero[4];
	uint8_t iph[40], udph[8];
	size_t pad = (4 - (plen & 3)) & 3;
	size_t udp_len = hlen + plen + pad + USMC_ROCE_ICRC_LEN;
	uint32_t crc, i;
	struct msghdr *m;
	int k = 0;

	if (d->drop_permille && rng_next(d) % 1000 < d->drop_permille) {
		d->st.tx_fault_drops++;
		return;
	}
	if (d->port_down) { /* no carrier: nothing leaves */
		d->st.drop_port_tx++;
		return;
	}
	if (d->ntx == SR_TX_BATCH)
		sr_tx_flush(d);
	i = d->ntx;
	d->tx_segk[i] = gso_join(d, to, hdr, udp_len);

	usmc_roce_udp_hdr(udph, d->port, addr_port(to), udp_len);
	if (d->family == AF_INET6) {
		usmc_roce_ipv6_hdr(iph, addr_ip(&d->local), addr_ip(to),
				   udp_len, 0);
		crc = usmc_roce_icrc_start_ipv6(iph, udph, hdr, hlen);
	} else {
		usmc_roce_ipv4_hdr(iph, addr_ip(&d->local), addr_ip(to),
				   udp_len, 0);
		if (d->raw >= 0) {
			if (!++d->ipid_next)
				d->ipid_next = 1;
			usmc_put_be16(iph + 4, d->ipid_next);
			iph[8] = 64; /* TTL; masked by the ICRC */
			memcpy(d->tx_ip[i], iph, 20);
			memcpy(d->tx_ip[i] + 20, udph, 8);
			d->tx_iov[i][k].iov_base = d->tx_ip[i];
			d->tx_iov[i][k++].iov_len = 28;
		} else if (d->tx_segk[i]) /* packet k of a GSO send */
			usmc_put_be16(iph + 4, d->tx_segk[i]);
		crc = usmc_roce_icrc_start_ipv4(iph, udph, hdr, hlen);
	}
	for (int j = 0; j < npl; j++)
		crc = usmc_roce_icrc_update(crc, pl[j].iov_base, pl[j].iov_len);
	crc = usmc_roce_icrc_update(crc, zero, pad);
	memset(d->tx_trail[i], 0, pad);
	usmc_put_le32(d->tx_trail[i] + pad, usmc_roce_icrc_final(crc));

	memcpy(d->tx_hdr[i], hdr, hlen);
	d->tx_iov[i][k].iov_base = d->tx_hdr[i];
	d->tx_iov[i][k++].iov_len = hlen;
	for (int j = 0; j < npl && j < 4; j++)
		d->tx_iov[i][k++] = pl[j];
	d->tx_iov[i][k].iov_base = d->tx_trail[i];
	d->tx_iov[i][k++].iov_len = pad + USMC_ROCE_ICRC_LEN;
	d->tx_addr[i] = *to;
	d->tx_qp[i] = qp;

	m = &d->tx_msgs[i].msg_hdr;
	memset(m, 0, sizeof(*m));
	m->msg_name = &d->tx_addr[i];
	m->msg_namelen = addr_len(to);
	m->msg_iov = d->tx_iov[i];
	m->msg_iovlen = (size_t)k;
	d->ntx++;
	d->st.tx_pkts++;
	d->st.tx_bytes += udp_len;
}

/* Packets [from, ntx) did not leave: error |e|. */
static void tx_failed(sr_dev *d, uint32_t from, int e)
{
	d->pub.last_errno = e;
	d->st.tx_errors += d->ntx - from;
	/* a full socket buffer: the requesters pause briefly and go back;
	 * other errors wait for the timer */
	if (e == EAGAIN || e == ENOBUFS || e == ENOMEM) {
		usmc_tstamp now = dev_now(d);

		for (uint32_t i = from; i < d->ntx; i++)
			if (d->tx_qp[i])
				sr_qp_tx_stalled(d->tx_qp[i], now);
	}
}

/* gso=on: one datagram per GSO send (tx_segk 0 starts one), with
 * UDP_SEGMENT when it holds more than one packet. */
static void gso_flush(sr_dev *d)
{
	uint32_t nm = 0, niov = 0, off = 0;

	for (uint32_t i = 0; i < d->ntx; i++) {
		const struct msghdr *pm = &d->tx_msgs[i].msg_hdr;
		struct msghdr *m;

		if (d->tx_segk[i] == 0) {
			m = &d->gso_msgs[nm].msg_hdr;
			*m = *pm;
			m->msg_iov = d->gso_iov + niov;
			m->msg_iovlen = 0;
			d->gso_first[nm++] = i;
		}
		m = &d->gso_msgs[nm - 1].msg_hdr;
		memcpy(d->gso_iov + niov, pm->msg_iov,
		       pm->msg_iovlen * sizeof(struct iovec));
		niov += (uint32_t)pm->msg_iovlen;
		m->msg_iovlen += pm->msg_iovlen;
		if (d->tx_segk[i] == 1) { /* a second packet: segment it */
			struct cmsghdr *c;
			uint16_t seg = 0;

			const struct msghdr *f =
				&d->tx_msgs[d->gso_first[nm - 1]].msg_hdr;

			for (size_t j = 0; j < f->msg_iovlen; j++)
				seg += (uint16_t)f->msg_iov[j].iov_len;

			m->msg_control = d->gso_ctl[nm - 1];
			m->msg_controllen = sizeof(d->gso_ctl[nm - 1]);
			c = CMSG_FIRSTHDR(m);
			c->cmsg_level = IPPROTO_UDP;
			c->cmsg_type = UDP_SEGMENT;
			c->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(c), &seg, sizeof(seg));
			d->st.tx_gso++;
		}
	}
	while (off < nm) {
		int n;

		if (d->txfail_permille &&
		    rng_next(d) % 1000 < d->txfail_permille) {
			n = -1;
			errno = EAGAIN;
		} else {
			n = sendmmsg(d->sock, d->gso_msgs + off, nm - off, 0);
			d->st.tx_calls++;
		}
		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			if (e == EIO || e == EINVAL || e == ENOPROTOOPT ||
			    e == EOPNOTSUPP) {
				/* the kernel or the device refuses UDP GSO:
				 * one packet per datagram from now on; the
				 * requesters resend (their ICRCs assumed
				 * the segments' IDs) */
				d->gso = 0;
				d->st.gso_refused = 1;
				if (d->log)
					d->log(d->log_arg, 1,
					       "softroce: the kernel refuses "
					       "UDP GSO; gso=on is off");
				e = EAGAIN;
			}
			tx_failed(d, d->gso_first[off], e);
			break;
		}
		off += (uint32_t)n;
	}
	d->ntx = 0;
	d->g_first = 0;
}

void sr_tx_flush(sr_dev *d)
{
	uint32_t off = 0;

	if (d->tx_hook) {
		static uint8_t b[SR_RX_BUFSZ];

		for (uint32_t i = 0; i < d->ntx; i++) {
			const struct msghdr *m = &d->tx_msgs[i].msg_hdr;
			size_t n = 0;

			/* the UDP payload, without ipid=random's headers */
			for (size_t j = d->raw >= 0; j < m->msg_iovlen; j++) {
				size_t l = m->msg_iov[j].iov_len;

				if (n + l > sizeof(b))
					break;
				memcpy(b + n, m->msg_iov[j].iov_base, l);
				n += l;
			}
			d->tx_hook(d->tx_hook_arg, b, n, &d->tx_addr[i].sa);
		}
		d->ntx = 0;
		return;
	}
	if (d->no_tx) {
		d->ntx = 0;
		return;
	}
	if (d->gso) {
		gso_flush(d);
		return;
	}
	while (off < d->ntx) {
		int n;

		/* txfail= test fault: the socket refuses the rest */
		if (d->txfail_permille &&
		    rng_next(d) % 1000 < d->txfail_permille) {
			n = -1;
			errno = EAGAIN;
		} else {
			n = sendmmsg(d->raw >= 0 ? d->raw : d->sock,
				     d->tx_msgs + off, d->ntx - off, 0);
			d->st.tx_calls++;
		}

		if (n < 0) {
			int e = errno;

			if (e == EINTR)
				continue;
			tx_failed(d, off, e);
			break;
		}
		off += (uint32_t)n;
	}
	d->ntx = 0;
}

/* ---- receive ---------------------------------------------------------- */

static sr_qp *qp_by_qpn(sr_dev *d, uint32_t qpn)
{
	sr_qp *qp;

	if (!d->nqps)
		return NULL;
	for (qp = d->qpn_ht[qpn & (d->nqps - 1)]; qp; qp = qp->hnext)
		if (qp->pub.qp_num == qpn)
			return qp;
	return NULL;
}

/* An IPv4 packet whose ICRC is not the one with ID 0: rxe's, sent with a
 * pseudo-random ID that the UDP socket does not show. Accepted when some
 * ID makes its ICRC right (usmc_roce_icrc_ipv4_id), off the ID-0 path. */
static int icrc_id_ok(sr_dev *d, uint32_t crc_id0, uint32_t icrc, size_t len)
{
	uint16_t id;

	if (d->icrc_verify != SR_ICRC_VERIFY || d->family != AF_INET ||
	    usmc_roce_icrc_ipv4_id(crc_id0, icrc, len, &id))
		return 0;
	d->st.rx_icrc_id++;
	if (!d->icrc_id_said && d->log) {
		d->icrc_id_said = 1;
		d->log(d->log_arg, 1,
		       "softroce: a peer sends nonzero IPv4 IDs (kernel rxe); "
		       "its packets pass a 16-bit ICRC check (the ID is "
		       "inferred from the ICRC) plus each link's Ethernet FCS; "
		       "icrc=strict takes ID 0 only");
	}
	return 1;
}

/* |id|: the IPv4 ID the packet most likely had, the ICRC's first guess:
 * its position in a coalesced (GRO) datagram, which a GSO sender's
 * segmentation numbers from 0; 0 for a datagram that came alone. */
static void input_checked(sr_dev *d, const uint8_t *buf, size_t len,
			  const sr_addr *src, const sr_addr *dst,
			  usmc_tstamp now, uint16_t id)
{
	usmc_roce_pkt pkt;
	sr_qp *qp;

	d->st.rx_pkts++;
	d->st.rx_bytes += len;
	if (usmc_roce_decode(buf, len, &pkt)) {
		d->st.drop_hdr++;
		return;
	}
	if (!addr_eq(dst, &d->local)) {
		d->st.drop_dip++;
		return;
	}
	if (d->icrc_verify) {
		uint8_t iph[40], udph[8];
		uint32_t crc;

		usmc_roce_udp_hdr(udph, addr_port(src), d->port, len);
		if (d->family == AF_INET6) {
			usmc_roce_ipv6_hdr(iph, addr_ip(src), addr_ip(dst), len,
					   0);
			crc = usmc_roce_icrc_ipv6(iph, udph, buf, len - 4);
		} else {
			usmc_roce_ipv4_hdr(iph, addr_ip(src), addr_ip(dst), len,
					   0);
			usmc_put_be16(iph + 4, id);
			crc = usmc_roce_icrc_ipv4(iph, udph, buf, len - 4);
		}
		if (crc != pkt.icrc && !icrc_id_ok(d, crc, pkt.icrc, len)) {
			d->st.drop_icrc++;
			return;
		}
	}
	qp = qp_by_qpn(d, pkt.dest_qpn);
	if (!qp) {
		d->st.drop_qp++;
		return;
	}
	if (pkt.pkey != USMC_ROCE_DEFAULT_PKEY) {
		d->st.drop_pkey++;
		return;
	}
	if ((pkt.flags & USMC_ROCE_F_REQ) ? (qp->pub.state != USMC_QPS_RTR &&
					     qp->pub.state != USMC_QPS_RTS)
					  : qp->pub.state != USMC_QPS_RTS) {
		d->st.drop_state++;
		return;
	}
	if (!addr_eq(src, &qp->peer)) {
		d->st.drop_addr++;
		return;
	}
	sr_qp_input(qp, &pkt, now);
}

/* Every received datagram: the packet hook (fault injection) first. */
static void input(sr_dev *d, uint8_t *buf, size_t len, const sr_addr *src,
		  const sr_addr *dst, usmc_tstamp now, uint16_t id)
{
	if (d->rx_hook) {
		usmc_tp_rx_pkt hp = {buf, len, &src->sa, &dst->sa};

		if (d->rx_hook(d->rx_hook_arg, &hp))
			return;
	}
	input_checked(d, buf, len, src, dst, now, id);
}

/* RC lets one ACK cover every request up to its PSN, and a responder may
 * hold it back while a later ACK covers it (IBTA's coalesced ACKs). While ack_hold is set, the ACKs of what poll_cq handed
 * the consumer wait for its answer: they leave in the same sendmmsg as
 * its RDMA WRITE and CDC SEND, one call and one wake-up of the peer fewer
 * each way of a ping-pong. The hold ends at the next post_send or
 * poll_cq, and the eventfd stays readable while it lasts, so a thread
 * that waits on the device polls it at once: the bound is the consumer's
 * own turn, never a timer. Opt-in (ackhold=on): over the lab veth the
 * early ACK is handled by the peer while this side's application works,
 * and the hold adds an eventfd write and read to the answer's path, so
 * ping-pong p50 did not drop (docs/lab.md). */
static int acks_pending(const sr_dev *d)
{
	for (uint32_t i = 0; i < d->nqps; i++)
		if (d->qps[i] && d->qps[i]->ack_pending)
			return 1;
	return 0;
}

static void flush_acks(sr_dev *d)
{
	if (d->ack_hold)
		return;
	for (uint32_t i = 0; i < d->nqps; i++)
		if (d->qps[i] && d->qps[i]->ack_pending)
			sr_qp_flush_ack(d->qps[i]);
}

static void rx_drain(sr_dev *d, usmc_tstamp now)
{
	sr_addr dst;
	uint8_t *buf;
	size_t len, seg;

	for (int round = 0; round < 8; round++) {
		int n;

		for (uint32_t i = 0; i < SR_RX_BATCH; i++) {
			struct msghdr *m = &d->rx_msgs[i].msg_hdr;

			m->msg_name = &d->rx_addr[i];
			m->msg_namelen = sizeof(d->rx_addr[i]);
			m->msg_iov = &d->rx_iov[i];
			m->msg_iovlen = 1;
			m->msg_control = d->rx_ctl[i];
			m->msg_controllen = sizeof(d->rx_ctl[i]);
			m->msg_flags = 0;
		}
		n = recvmmsg(d->sock, d->rx_msgs, SR_RX_BATCH, MSG_DONTWAIT,
			     NULL);
		if (n <= 0)
			break;
		if (d->port_down) { /* what was queued before it went down */
			d->st.drop_port_rx += (uint64_t)n;
			continue;
		}
		for (int i = 0; i < n; i++) {
			struct msghdr *m = &d->rx_msgs[i].msg_hdr;
			struct cmsghdr *c;

			if (m->msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
				d->st.drop_trunc++;
				continue;
			}
			dst = d->local;
			seg = 0;
			for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c)) {
				if (c->cmsg_level == IPPROTO_UDP &&
				    c->cmsg_type == UDP_GRO) {
					int g;

					memcpy(&g, CMSG_DATA(c), sizeof(g));
					seg = g > 0 ? (size_t)g : 0;
				}
				if (c->cmsg_level == IPPROTO_IP &&
				    c->cmsg_type == IP_PKTINFO) {
					struct in_pktinfo pi;

					memcpy(&pi, CMSG_DATA(c), sizeof(pi));
					dst.v4.sin_addr = pi.ipi_addr;
				} else if (c->cmsg_level == IPPROTO_IPV6 &&
					   c->cmsg_type == IPV6_PKTINFO) {
					struct in6_pktinfo pi;

					memcpy(&pi, CMSG_DATA(c), sizeof(pi));
					dst.v6.sin6_addr = pi.ipi6_addr;
				}
			}
			if (d->rx_addr[i].sa.sa_family != d->family) {
				d->st.drop_addr++;
				continue;
			}
			buf = d->rx_mem + i * d->rx_bufsz;
			len = d->rx_msgs[i].msg_len;
			if (!seg || seg >= len) {
				input(d, buf, len, &d->rx_addr[i], &dst, now,
				      0);
				continue;
			}
			/* coalesced: packets of |seg| bytes, the last maybe
			 * shorter */
			d->st.rx_gro++;
			for (size_t o = 0, k = 0; o < len; o += seg, k++)
				input(d, buf + o, len - o < seg ? len - o : seg,
				      &d->rx_addr[i], &dst, now, (uint16_t)k);
		}
		flush_acks(d);
		if (n < SR_RX_BATCH)
			break;
	}
}

/* ---- timers and progress ---------------------------------------------- */

static void progress(sr_dev *d, usmc_tstamp now)
{
	usmc_tstamp next = USMC_TSTAMP_NONE;

	for (uint32_t i = 0; i < d->nqps; i++) {
		sr_qp *qp = d->qps[i];
		usmc_tstamp t;

		if (!qp)
			continue;
		t = sr_qp_timers(qp, now);
		sr_qp_tx(qp, now);
		/* the transmit may have armed a timer */
		t = sr_qp_timers(qp, now);
		if (t && t < next)
			next = t;
	}
	flush_acks(d);
	if (!d->batch)
		sr_tx_flush(d);
	/* Only ever move the timer earlier: a deadline that moved later (the
	 * retransmit timer on every ACK) costs one early wake-up instead of
	 * a syscall per packet. */
	if (next < d->timer_armed) {
		struct itimerspec its;

		memset(&its, 0, sizeof(its));
		its.it_value.tv_sec = (time_t)(next / USMC_NS_PER_SEC);
		its.it_value.tv_nsec = (long)(next % USMC_NS_PER_SEC);
		if (!d->no_tx && !d->tx_hook)
			timerfd_settime(d->tfd, TFD_TIMER_ABSTIME, &its, NULL);
		d->timer_armed = next;
	}
}

static int sr_poll_cq(usmc_tp *tp, usmc_wc *wcs, int n)
{
	sr_dev *d = dev_of(tp);
	usmc_tstamp now = dev_now(d);
	uint64_t exp;
	int k = 0;

	if (d->timer_armed != USMC_TSTAMP_NONE && now >= d->timer_armed) {
		if (!d->fake_now && read(d->tfd, &exp, sizeof(exp)) < 0 &&
		    errno != EAGAIN)
			d->pub.last_errno = errno;
		d->timer_armed = USMC_TSTAMP_NONE;
	}
	if (d->nl >= 0 && now >= d->nl_next) {
		port_drain(d);
		d->nl_next = now + SR_NL_PERIOD_NS;
	}
	/* ACKs held since the last call leave now, whatever comes */
	if (d->ack_hold) {
		d->ack_hold = 0;
		flush_acks(d);
	}
	/* only where the eventfd bounds the hold (tests driving the clock
	 * or taking the packets see every ACK at once) */
	d->ack_hold = d->ackhold_opt && d->efd >= 0 && !d->fake_now &&
		      !d->tx_hook && !d->no_tx;
	rx_drain(d, now);
	progress(d, now);
	k = usmc_tp_wcq_pop(&d->cq, wcs, n);
	if (!d->ack_hold) {
		sync_efd(d);
		return k;
	}
	/* nothing the consumer could answer, or nothing to hold */
	if (k <= 0 || !acks_pending(d))
		d->ack_hold = 0;
	sync_efd(d);
	if (d->ack_hold && !d->efd_signaled)
		d->ack_hold = 0; /* no eventfd to bound the hold */
	if (!d->ack_hold) {
		flush_acks(d);
		if (!d->batch)
			sr_tx_flush(d);
	}
	return k;
}

/* ---- QP ops ----------------------------------------------------------- */

/* A QPN is taken while a QP has it or a completion naming it is still
 * queued: a consumer maps completions to its QPs by QPN, so a new QP must
 * never inherit the flushes of a destroyed one. */
static int qpn_taken(sr_dev *d, uint32_t qpn)
{
	if (qp_by_qpn(d, qpn))
		return 1;
	return usmc_tp_wcq_names(&d->cq, qpn);
}

/* Cyclic over [SR_MIN_QPN, SR_QPN_SPAN) as rxe's xa_alloc_cyclic, so a
 * destroyed QP's number comes back only after the whole range. */
static int qpn_alloc(sr_dev *d, uint32_t *qpn)
{
	for (uint32_t n = SR_MIN_QPN; n < SR_QPN_SPAN; n++) {
		uint32_t cand = d->qpn_base | d->qpn_next;

		d->qpn_next = d->qpn_next + 1 < SR_QPN_SPAN ? d->qpn_next + 1
							    : SR_MIN_QPN;
		if (!qpn_taken(d, cand)) {
			*qpn = cand;
			return 0;
		}
	}
	return USMC_ERR_LIMIT;
}

static void qpn_link(sr_dev *d, sr_qp *qp)
{
	sr_qp **b = &d->qpn_ht[qp->pub.qp_num & (d->nqps - 1)];

	qp->hnext = *b;
	*b = qp;
}

static void qpn_unlink(sr_dev *d, sr_qp *qp)
{
	sr_qp **pp = &d->qpn_ht[qp->pub.qp_num & (d->nqps - 1)];

	while (*pp && *pp != qp)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = qp->hnext;
}

/* Doubles the QP table and the QPN hash (one bucket per slot). */
static int qps_grow(sr_dev *d)
{
	uint32_t n = d->nqps ? d->nqps * 2 : 8;
	sr_qp **t, **h;

	if (n > 0x100000)
		return USMC_ERR_LIMIT;
	h = calloc(n, sizeof(*h));
	t = h ? realloc(d->qps, n * sizeof(*t)) : NULL;
	if (!t) {
		free(h);
		return USMC_ERR_NOMEM;
	}
	memset(t + d->nqps, 0, (n - d->nqps) * sizeof(*t));
	d->qps = t;
	free(d->qpn_ht);
	d->qpn_ht = h;
	d->nqps = n;
	for (uint32_t i = 0; i < n; i++)
		if (t[i])
			qpn_link(d, t[i]);
	return 0;
}

static int sr_create_qp(usmc_tp *tp, const usmc_qp_init_attr *attr,
			usmc_tp_qp **pqp)
{
	sr_dev *d = dev_of(tp);
	sr_qp *qp;
	uint32_t idx, qpn;
	int rc;

	*pqp = NULL;
	for (idx = 0; idx < d->nqps && d->qps[idx]; idx++)
		;
	if (idx == d->nqps && (rc = qps_grow(d)) != 0)
		return rc;
	rc = qpn_alloc(d, &qpn);
	if (rc)
		return rc;
	rc = sr_qp_create(d, attr, &qp);
	if (rc)
		return rc;
	qp->index = idx;
	qp->pub.qp_num = qpn;
	d->qps[idx] = qp;
	qpn_link(d, qp);
	*pqp = &qp->pub;
	return 0;
}

static void sr_destroy_qp(usmc_tp_qp *pub)
{
	sr_qp *qp = (sr_qp *)pub;
	sr_dev *d;

	if (!qp)
		return;
	d = qp->dev;
	/* outstanding WRs complete with WR_FLUSH_ERR; they keep this QPN,
	 * which qpn_alloc hands out again only once they are polled */
	if (qp->pub.state != USMC_QPS_RESET && qp->pub.state != USMC_QPS_ERR) {
		usmc_qp_attr a;

		memset(&a, 0, sizeof(a));
		a.qp_state = USMC_QPS_ERR;
		sr_qp_modify(qp, &a);
	}
	/* Packets of a batch leave now, as rxe's are on the wire once built:
	 * their payload points into MRs the caller may free next, and a
	 * refused one would name this QP. */
	sr_tx_flush(d);
	d->qps[qp->index] = NULL;
	qpn_unlink(d, qp);
	sr_qp_destroy(qp);
	sync_efd(d);
}

static int sr_modify_qp(usmc_tp_qp *pub, const usmc_qp_attr *attr)
{
	sr_qp *qp = (sr_qp *)pub;
	int rc = sr_qp_modify(qp, attr);

	sync_efd(qp->dev);
	return rc;
}

static int sr_post_send(usmc_tp_qp *pub, const usmc_wr *wr)
{
	sr_qp *qp = (sr_qp *)pub;
	usmc_tstamp now = dev_now(qp->dev);
	int rc, held;

	/* a port without link takes no work (as the fault decorator's
	 * port-down) */
	if (qp->dev->port_down)
		return USMC_ERR_TRANSPORT;
	held = qp->dev->ack_hold;
	qp->dev->ack_hold = 0; /* the held ACKs go with this */
	rc = sr_qp_post_send(qp, wr, now);
	if (!rc || held)
		progress(qp->dev, now);
	sync_efd(qp->dev);
	return rc;
}

static void sr_batch(usmc_tp *tp, int on)
{
	sr_dev *d = dev_of(tp);

	if (on) {
		d->batch++;
	} else if (d->batch && !--d->batch) {
		flush_acks(d);
		sr_tx_flush(d);
	}
}

static int sr_post_recv(usmc_tp_qp *pub, const usmc_recv_wr *wr)
{
	sr_qp *qp = (sr_qp *)pub;
	int rc = sr_qp_post_recv(qp, wr);

	sync_efd(qp->dev);
	return rc;
}

/* ---- test and fuzz entry points --------------------------------------- */

void usmc_softroce_input(usmc_tp *tp, const uint8_t *buf, size_t len,
			 const struct sockaddr *src, const struct sockaddr *dst,
			 usmc_tstamp now)
{
	sr_dev *d = dev_of(tp);
	sr_addr s, t;

	addr_copy(&s, src);
	addr_copy(&t, dst);
	input_checked(d, buf, len, &s, &t, now, 0);
	flush_acks(d);
	progress(d, now);
}

void usmc_softroce_set_no_tx(usmc_tp *tp, int on)
{
	dev_of(tp)->no_tx = on;
}

void usmc_softroce_set_time(usmc_tp *tp, usmc_tstamp now)
{
	dev_of(tp)->fake_now = now;
}

void usmc_softroce_set_tx_hook(usmc_tp *tp, usmc_softroce_tx_hook hook,
			       void *arg)
{
	dev_of(tp)->tx_hook = hook;
	dev_of(tp)->tx_hook_arg = arg;
}

uint32_t usmc_softroce_qp_expected_psn(const usmc_tp_qp *qp)
{
	return ((const sr_qp *)qp)->resp_psn;
}

static void sr_set_rx_hook(usmc_tp *tp, usmc_tp_rx_hook hook, void *arg)
{
	sr_dev *d = dev_of(tp);

	d->rx_hook = hook;
	d->rx_hook_arg = arg;
}

/* A packet the hook kept comes back: checked as any received one; ACKs
 * and transmits follow in the next poll_cq, where injection happens. */
static void sr_rx_inject(usmc_tp *tp, const usmc_tp_rx_pkt *pkt)
{
	sr_dev *d = dev_of(tp);
	sr_addr s, t;

	addr_copy(&s, pkt->src);
	addr_copy(&t, pkt->dst);
	input_checked(d, pkt->data, pkt->len, &s, &t, dev_now(d), 0);
	flush_acks(d);
}

static int sr_query_qp_stats(const usmc_tp_qp *pub, usmc_tp_qp_stats *st)
{
	*st = ((const sr_qp *)pub)->st;
	return 0;
}

const usmc_tp_ops usmc_tp_softroce_ops = {
	.name = "softroce",
	.open = sr_open,
	.close = sr_close,
	.query_port = sr_query_port,
	.get_fd = sr_get_fd,
	.alloc_mr = sr_alloc_mr,
	.reg_mr = sr_reg_mr,
	.free_mr = sr_free_mr,
	.create_qp = sr_create_qp,
	.modify_qp = sr_modify_qp,
	.destroy_qp = sr_destroy_qp,
	.query_qp_stats = sr_query_qp_stats,
	.post_send = sr_post_send,
	.post_recv = sr_post_recv,
	.poll_cq = sr_poll_cq,
	.batch = sr_batch,
	.get_async_event = sr_get_async_event,
	.set_rx_hook = sr_set_rx_hook,
	.rx_inject = sr_rx_inject,
};
