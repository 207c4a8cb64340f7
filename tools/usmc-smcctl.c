/* SPDX-License-Identifier: MIT */
/*
 * usmc-smcctl: configures the kernel's own SMC (AF_SMC) over generic
 * netlink, for the VM tier (docs/vm.md), where the kernel is usmc's peer:
 * pnetids on a netdev and an RDMA device port (family SMC_PNETID), UEIDs
 * (family SMC_GEN_NETLINK) and the SMC-R link groups and links. Raw
 * netlink, no library: the attributes are those of <linux/smc.h>.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>
#include <linux/smc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "usmc_tool.h"

#define BUF_LEN	 32768
#define PNET_MAX 16 /* SMC_MAX_PNETID_LEN in the kernel */

static const char *prog = "usmc-smcctl";

typedef struct nlreq {
	struct nlmsghdr nh;
	struct genlmsghdr gh;
	char attrs[512];
} nlreq;

typedef void (*msg_cb)(struct nlattr *attrs, int len);

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    usmc-smcctl - configure and show the kernel's SMC "
		"(AF_SMC)\n"
		"\n"
		"SYNOPSIS\n"
		"    usmc-smcctl pnet add PNETID --eth IFNAME\n"
		"    usmc-smcctl pnet add PNETID --ib DEVICE [--port N]\n"
		"    usmc-smcctl pnet show\n"
		"    usmc-smcctl ueid add UEID\n"
		"    usmc-smcctl ueid show\n"
		"    usmc-smcctl lgr\n"
		"    usmc-smcctl --help | --version\n"
		"\n"
		"DESCRIPTION\n"
		"    Talks generic netlink to the kernel's smc module (it must "
		"be\n"
		"    loaded). SMC-R over a device without get_netdev "
		"(rdma_rxe) "
		"needs\n"
		"    the same pnetid on the netdev and on the RDMA port; "
		"SMC-Rv2, the\n"
		"    only version over RoCEv2-only GIDs, needs a UEID on both "
		"peers.\n"
		"    pnet add    PNETID (up to 16 letters or digits) on a "
		"netdev "
		"or on\n"
		"                port N (default 1) of an RDMA device\n"
		"    pnet show   the pnetid table\n"
		"    ueid add    a user-defined EID (up to 32 of A-Z 0-9 . -)\n"
		"    ueid show   the UEID table\n"
		"    lgr         the SMC-R link groups and their links\n"
		"\n"
		"EXIT STATUS\n"
		"    0 success; 1 the kernel refused (its error is printed); 2 "
		"usage.\n"
		"\n"
		"EXAMPLE\n"
		"    usmc-smcctl pnet add NET1 --eth eth0\n"
		"    usmc-smcctl pnet add NET1 --ib rxe0 --port 1\n"
		"    usmc-smcctl ueid add USMC-VM\n");
}

static _Noreturn void die_usage(const char *msg)
{
	usmc_tool_usage_error(prog, "%s", msg);
}

static void put_attr(nlreq *r, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + r->nh.nlmsg_len);

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->nh.nlmsg_len += NLA_ALIGN(a->nla_len);
}

static void req_init(nlreq *r, uint16_t family, uint8_t cmd, int dump)
{
	memset(r, 0, sizeof(*r));
	r->nh.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r->nh.nlmsg_type = family;
	r->nh.nlmsg_flags = NLM_F_REQUEST | (dump ? NLM_F_DUMP : NLM_F_ACK);
	r->gh.cmd = cmd;
	r->gh.version = 1;
}

static struct nlattr *attr_find(struct nlattr *a, int len, int type)
{
	while (len >= NLA_HDRLEN && a->nla_len >= NLA_HDRLEN &&
	       a->nla_len <= len) {
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		len -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return NULL;
}

static void *attr_data(struct nlattr *a)
{
	return (char *)a + NLA_HDRLEN;
}

static int attr_len(struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

/* A string attribute, or "-"; kernel strings may lack the NUL. */
static const char *attr_str(struct nlattr *in, int len, int type, char *buf,
			    size_t n)
{
	struct nlattr *a = attr_find(in, len, type);
	int l;

	if (!a)
		return "-";
	l = attr_len(a);
	if (l >= (int)n)
		l = (int)n - 1;
	memcpy(buf, attr_data(a), (size_t)l);
	buf[l] = 0;
	while (l > 0 && (buf[l - 1] == ' ' || buf[l - 1] == 0))
		buf[--l] = 0;
	return buf;
}

static uint64_t attr_uint(struct nlattr *in, int len, int type)
{
	struct nlattr *a = attr_find(in, len, type);
	uint64_t v = 0;

	if (!a)
		return 0;
	switch (attr_len(a)) {
	case 1:
		v = *(uint8_t *)attr_data(a);
		break;
	case 2:
		v = *(uint16_t *)attr_data(a);
		break;
	case 4:
		v = *(uint32_t *)attr_data(a);
		break;
	case 8:
		memcpy(&v, attr_data(a), 8);
		break;
	}
	return v;
}

/*
 * Sends |r| and reads the answer: for a dump, calls |cb| with each
 * message's attributes; otherwise waits for the ACK. Returns 0 or a
 * negative errno from the kernel.
 */
static int transact(int fd, nlreq *r, msg_cb cb)
{
	static uint32_t seq;
	char *buf = malloc(BUF_LEN);
	int rc = -EIO;

	if (!buf)
		return -ENOMEM;
	r->nh.nlmsg_seq = ++seq;
	if (send(fd, r, r->nh.nlmsg_len, 0) < 0) {
		rc = -errno;
		goto out;
	}
	for (;;) {
		ssize_t n = recv(fd, buf, BUF_LEN, 0);
		struct nlmsghdr *h;

		if (n < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto out;
		}
		for (h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != r->nh.nlmsg_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE) {
				rc = 0;
				goto out;
			}
			if (h->nlmsg_type == NLMSG_ERROR) {
				struct nlmsgerr *e = NLMSG_DATA(h);

				rc = e->error;
				goto out;
			}
			if (cb) {
				int hl = NLMSG_LENGTH(GENL_HDRLEN);

				cb((struct nlattr *)((char *)h + hl),
				   (int)h->nlmsg_len - hl);
			}
		}
	}
out:
	free(buf);
	return rc;
}

static int family_id;

static void family_cb(struct nlattr *attrs, int len)
{
	family_id = (int)attr_uint(attrs, len, CTRL_ATTR_FAMILY_ID);
}

/* The id of generic netlink family |name|, or -1 (message printed). */
static int resolve(int fd, const char *name)
{
	nlreq r;
	int rc;

	/* one answer message, then the ACK that ends transact() */
	req_init(&r, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, 0);
	put_attr(&r, CTRL_ATTR_FAMILY_NAME, name, strlen(name) + 1);
	family_id = 0;
	rc = transact(fd, &r, family_cb);
	if (rc || !family_id) {
		fprintf(stderr,
			"%s: no generic netlink family %s (%s): is the smc "
			"module loaded?\n",
			prog, name, rc ? strerror(-rc) : "no id");
		return -1;
	}
	return family_id;
}

static int report(int rc, const char *what)
{
	if (!rc)
		return 0;
	fprintf(stderr, "%s: %s: %s\n", prog, what, strerror(-rc));
	return 1;
}

static int valid_pnetid(const char *s)
{
	size_t n = strlen(s);

	if (!n || n > PNET_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s))
			return 0;
	return 1;
}

static int pnet_add(int fd, int argc, char **argv)
{
	const char *pnet, *eth = NULL, *ib = NULL;
	uint8_t port = 1;
	char up[PNET_MAX + 1];
	nlreq r;
	int fam, i;

	if (argc < 3)
		die_usage("pnet add needs PNETID and --eth IFNAME or --ib DEV");
	pnet = argv[0];
	if (!valid_pnetid(pnet))
		die_usage("bad PNETID (1 to 16 letters or digits)");
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--eth") && i + 1 < argc) {
			eth = argv[++i];
		} else if (!strcmp(argv[i], "--ib") && i + 1 < argc) {
			ib = argv[++i];
		} else if (!strcmp(argv[i], "--port") && i + 1 < argc) {
			char *end;
			long p = strtol(argv[++i], &end, 10);

			if (*end || p < 1 || p > 2)
				die_usage("--port: 1 or 2");
			port = (uint8_t)p;
		} else {
			die_usage("pnet add: unknown or incomplete option");
		}
	}
	if (!eth == !ib)
		die_usage("pnet add: give exactly one of --eth or --ib");
	for (i = 0; pnet[i]; i++)
		up[i] = (char)toupper((unsigned char)pnet[i]);
	up[i] = 0;
	fam = resolve(fd, SMCR_GENL_FAMILY_NAME);
	if (fam < 0)
		return 1;
	req_init(&r, (uint16_t)fam, SMC_PNETID_ADD, 0);
	put_attr(&r, SMC_PNETID_NAME, up, strlen(up) + 1);
	if (eth) {
		put_attr(&r, SMC_PNETID_ETHNAME, eth, strlen(eth) + 1);
	} else {
		put_attr(&r, SMC_PNETID_IBNAME, ib, strlen(ib) + 1);
		put_attr(&r, SMC_PNETID_IBPORT, &port, 1);
	}
	return report(transact(fd, &r, NULL), "pnet add");
}

static void pnet_cb(struct nlattr *a, int len)
{
	char n[32], e[32], i[72];

	printf("%-16s %-16s %-16s %u\n",
	       attr_str(a, len, SMC_PNETID_NAME, n, sizeof(n)),
	       attr_str(a, len, SMC_PNETID_ETHNAME, e, sizeof(e)),
	       attr_str(a, len, SMC_PNETID_IBNAME, i, sizeof(i)),
	       (unsigned)attr_uint(a, len, SMC_PNETID_IBPORT));
}

static int pnet_show(int fd)
{
	nlreq r;
	int fam = resolve(fd, SMCR_GENL_FAMILY_NAME);

	if (fam < 0)
		return 1;
	req_init(&r, (uint16_t)fam, SMC_PNETID_GET, 1);
	printf("%-16s %-16s %-16s %s\n", "PNETID", "NETDEV", "IBDEV", "PORT");
	return report(transact(fd, &r, pnet_cb), "pnet show");
}

static int ueid_add(int fd, const char *ueid)
{
	/* The kernel takes exactly SMC_MAX_EID_LEN + 1 bytes: the EID padded
	 * with blanks and a NUL (smc_nl_add_ueid), upper case. */
	char e[SMC_MAX_EID_LEN + 1];
	size_t n = strlen(ueid), i;
	nlreq r;
	int fam;

	if (!n || n > SMC_MAX_EID_LEN)
		die_usage("bad UEID (1 to 32 characters)");
	for (i = 0; i < n; i++) {
		char c = (char)toupper((unsigned char)ueid[i]);

		if (!isalnum((unsigned char)c) && c != '.' && c != '-')
			die_usage("bad UEID (A-Z, 0-9, '.' and '-' only)");
		if (!i && !isalnum((unsigned char)c))
			die_usage("bad UEID (must start with A-Z or 0-9)");
		e[i] = c;
	}
	memset(e + n, ' ', SMC_MAX_EID_LEN - n);
	e[SMC_MAX_EID_LEN] = 0;
	fam = resolve(fd, SMC_GENL_FAMILY_NAME);
	if (fam < 0)
		return 1;
	req_init(&r, (uint16_t)fam, SMC_NETLINK_ADD_UEID, 0);
	put_attr(&r, SMC_NLA_EID_TABLE_ENTRY, e, sizeof(e));
	return report(transact(fd, &r, NULL), "ueid add");
}

static void ueid_cb(struct nlattr *a, int len)
{
	char e[SMC_MAX_EID_LEN + 2];

	printf("%s\n", attr_str(a, len, SMC_NLA_EID_TABLE_ENTRY, e, sizeof(e)));
}

static int ueid_show(int fd)
{
	nlreq r;
	int fam = resolve(fd, SMC_GENL_FAMILY_NAME);

	if (fam < 0)
		return 1;
	req_init(&r, (uint16_t)fam, SMC_NETLINK_DUMP_UEID, 1);
	return report(transact(fd, &r, ueid_cb), "ueid show");
}

static void lgr_cb(struct nlattr *a, int len)
{
	struct nlattr *n = attr_find(a, len, SMC_GEN_LGR_SMCR);
	char p[32];

	if (!n)
		return;
	a = attr_data(n);
	len = attr_len(n);
	printf("lgr id=%08x role=%s type=%u pnetid=%s conns=%u\n",
	       (unsigned)attr_uint(a, len, SMC_NLA_LGR_R_ID),
	       attr_uint(a, len, SMC_NLA_LGR_R_ROLE) ? "SERV" : "CLNT",
	       (unsigned)attr_uint(a, len, SMC_NLA_LGR_R_TYPE),
	       attr_str(a, len, SMC_NLA_LGR_R_PNETID, p, sizeof(p)),
	       (unsigned)attr_uint(a, len, SMC_NLA_LGR_R_CONNS_NUM));
}

static void link_cb(struct nlattr *a, int len)
{
	struct nlattr *n = attr_find(a, len, SMC_GEN_LINK_SMCR);
	char d[72], g[72], pg[72];

	if (!n)
		return;
	a = attr_data(n);
	len = attr_len(n);
	printf("  link id=%u dev=%s port=%u gid=%s peer_gid=%s conns=%u "
	       "state=%u\n",
	       (unsigned)attr_uint(a, len, SMC_NLA_LINK_ID),
	       attr_str(a, len, SMC_NLA_LINK_IB_DEV, d, sizeof(d)),
	       (unsigned)attr_uint(a, len, SMC_NLA_LINK_IB_PORT),
	       attr_str(a, len, SMC_NLA_LINK_GID, g, sizeof(g)),
	       attr_str(a, len, SMC_NLA_LINK_PEER_GID, pg, sizeof(pg)),
	       (unsigned)attr_uint(a, len, SMC_NLA_LINK_CONN_CNT),
	       (unsigned)attr_uint(a, len, SMC_NLA_LINK_STATE));
}

static int lgr_show(int fd)
{
	nlreq r;
	int fam = resolve(fd, SMC_GENL_FAMILY_NAME), rc;

	if (fam < 0)
		return 1;
	req_init(&r, (uint16_t)fam, SMC_NETLINK_GET_LGR_SMCR, 1);
	rc = report(transact(fd, &r, lgr_cb), "lgr");
	if (rc)
		return rc;
	req_init(&r, (uint16_t)fam, SMC_NETLINK_GET_LINK_SMCR, 1);
	return report(transact(fd, &r, link_cb), "links");
}

int main(int argc, char **argv)
{
	int fd, rc;

	if (argc < 2)
		die_usage("no command given");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version")) {
		usmc_tool_version(prog);
		return 0;
	}
	fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_GENERIC);
	if (fd < 0) {
		fprintf(stderr, "%s: netlink socket: %s\n", prog,
			strerror(errno));
		return 1;
	}
	if (!strcmp(argv[1], "pnet") && argc >= 3 && !strcmp(argv[2], "add"))
		rc = pnet_add(fd, argc - 3, argv + 3);
	else if (!strcmp(argv[1], "pnet") && argc == 3 &&
		 !strcmp(argv[2], "show"))
		rc = pnet_show(fd);
	else if (!strcmp(argv[1], "ueid") && argc == 4 &&
		 !strcmp(argv[2], "add"))
		rc = ueid_add(fd, argv[3]);
	else if (!strcmp(argv[1], "ueid") && argc == 3 &&
		 !strcmp(argv[2], "show"))
		rc = ueid_show(fd);
	else if (!strcmp(argv[1], "lgr") && argc == 2)
		rc = lgr_show(fd);
	else
		die_usage("unknown command");
	close(fd);
	return rc;
}
