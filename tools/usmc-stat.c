/* SPDX-License-Identifier: MIT */
/*
 * usmc-stat: the connections of every usmc process, as smcss shows the
 * kernel's. Reads the tables the runtimes publish (runtime/usmc_stat.c,
 * docs/stat.md); the files of processes that are gone are removed.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "usmc_json.h"
#include "usmc_tool.h"

enum {
	F_FD,
	F_ROLE,
	F_STATE,
	F_MODE,
	F_LOCAL,
	F_PEER,
	F_CODE,
	F_NAME,
	F_DESC,
	F_LGR,
	F_LINK,
	F_VER,
	F_SENT,
	F_RECV,
	F_RXPROD,
	F_RXCONS,
	F_TXPROD,
	F_TXCONS,
	F_DETAIL,
	F_DEVICE,
	F_GID,
	F_FAILOVERS, /* newer runtimes: a table without it shows "-" */
	F_N
};

/* A "link" line's fields after the tag (runtime/usmc_smc.c) */
enum {
	L_LGR,
	L_LINK,
	L_STATE,
	L_DEVICE,
	L_LGID,
	L_PGID,
	L_QPN,
	L_PQPN,
	L_TXB,
	L_RXB,
	L_TXW,
	L_RXW,
	L_RETRANS,
	L_NAKSEQ,
	L_RNRNAK,
	L_TIMEOUTS,
	L_N
};

/* An "lgr" line's */
enum { G_ID, G_ROLE, G_VER, G_TYPE, G_CONNS, G_LINKS, G_PEERID, G_N };

static int opt_all, opt_debug, opt_json, opt_allns, opt_links, opt_wide,
	opt_summary;
static int nfound;
/* the table being read: its namespace as shown (an `ip netns` name when
 * one under /run/netns is it, else net:[INODE]) */
static char cur_ns[256] = "-";

/* --summary: counts per namespace, per fallback reason, per process */
enum { C_SMCR, C_SMCD, C_TCP, C_FAILED, C_LGRS, C_LINKS, C_N };
static const char *const cnames[C_N] = {"smcr",	  "smcd", "tcp",
					"failed", "lgrs", "links"};
#define SUM_MAX 512
static struct sum_ns {
	char ns[256];
	unsigned long n[C_N];
} sum_ns[SUM_MAX];
static struct sum_fb {
	char ns[256], name[32], code[16], peer[64];
	unsigned long n;
} sum_fb[SUM_MAX];
static struct sum_proc {
	char ns[256], comm[64];
	int pid;
	unsigned long n[C_N];
} sum_proc[SUM_MAX];
static int n_sum_ns, n_sum_fb, n_sum_proc;
/* --links: the link group whose links follow, and whether a JSON object
 * of one is open */
static char *cur_lgr[G_N];
static char cur_lgr_buf[512];
static int lgr_open, lgr_nlinks;

static void usage(FILE *f)
{
	fprintf(f,
		"NAME\n"
		"    usmc-stat - list the SMC-R and fallback connections, "
		"and the link\n"
		"    groups, of usmc processes\n"
		"\n"
		"SYNOPSIS\n"
		"    usmc-stat [-a] [-d] [-W] [--json] [--all-ns] [-i SECONDS "
		"[-c COUNT]]\n"
		"    usmc-stat -l [-d] [-W] [--json] [--all-ns] [-i SECONDS "
		"[-c COUNT]]\n"
		"    usmc-stat -s [-d] [--json] [--all-ns] [-i SECONDS [-c "
		"COUNT]]\n"
		"\n"
		"DESCRIPTION\n"
		"    Like smcss for the kernel's SMC: one line per socket of "
		"every usmc\n"
		"    process (programs under usmc-run, usmc-perf, programs "
		"linked with\n"
		"    libusmc) in this network namespace: pid and program, "
		"state (the\n"
		"    kernel's SMC state names: ACTIVE, APPCLW1, PEERCLW2, "
		"CLOSED, ...),\n"
		"    local and peer address, mode (SMCR, SMCD (shm) for SMC-D "
		"with a\n"
		"    peer on this host, or TCP with the fallback\n"
		"    reason's name and code), link group and link id, bytes "
		"sent and\n"
		"    received, and how often the connection failed over to "
		"another\n"
		"    link of its group. Each process rewrites its table every "
		"0.5 s, so\n"
		"    figures are up to that old.\n"
		"\n"
		"    With -l, like smcr linkgroup show-links: one line per "
		"link "
		"of every\n"
		"    link group of those processes: the group (id, role, SMC "
		"version,\n"
		"    type SINGLE, SYM, ASYMP or ASYML, or SMCD without links,\n"
		"    connections), the link id and\n"
		"    state (ACTIVE, ACTIVATING, INACTIVE, UNUSED), the local "
		"device as\n"
		"    INDEX:TRANSPORT@ADDRESS, local and peer GID, local and "
		"peer "
		"QP\n"
		"    number, and the link's counters: TxBytes the RDMA WRITE "
		"bytes\n"
		"    (the data) sent, TxWRs the work requests posted (WRITEs "
		"and\n"
		"    SENDs), RxWRs and RxBytes the CDC and LLC messages "
		"received (data\n"
		"    the peer writes arrives with no receive: it is the "
		"connections'\n"
		"    Recv), Retrans the packets the transport sent again. "
		"Counters\n"
		"    a transport does not keep per QP (verbs) show as -.\n"
		"\n"
		"OPTIONS\n"
		"    -a, --all     also listening sockets and handshakes in "
		"progress\n"
		"    -d, --debug   also the cursors (wrap:count: RMB "
		"producer/consumer,\n"
		"                  send producer/peer consumer), the local "
		"device\n"
		"                  (INDEX:TRANSPORT@ADDRESS) and its GID, and "
		"the\n"
		"                  fallback detail; with -l also the NAKs "
		"for PSN\n"
		"                  sequence errors and RNR NAKs received, the "
		"retransmit\n"
		"                  timeouts, and the peer's system id\n"
		"    -l, --links   the link groups and their links, not the "
		"connections\n"
		"    -s, --summary counts: connections by mode, fallbacks by "
		"reason,\n"
		"                  link groups; with -d per process too\n"
		"    -W, --wide    no truncated program names, address "
		"columns wide\n"
		"                  enough for IPv6\n"
		"    -i, --interval SECONDS\n"
		"                  print again every SECONDS, after a "
		"timestamp line,\n"
		"                  until interrupted (SIGINT)\n"
		"    -c, --count COUNT\n"
		"                  with -i: stop after COUNT prints\n"
		"    --json        one JSON array of objects (every field); "
		"with -l one\n"
		"                  object per link group with its \"links\" "
		"array, and\n"
		"                  null for a counter the transport does not "
		"keep\n"
		"    --all-ns      processes of every network namespace, with "
		"a NETNS\n"
		"                  column (the ip netns name, else "
		"net:[INODE]); JSON\n"
		"                  has \"netns\" always\n"
		"    -h, --help    this text\n"
		"    --version     the version, and exit\n"
		"\n"
		"ENVIRONMENT\n"
		"    USMC_STAT_DIR  where tables are published (default "
		"/dev/shm; the\n"
		"                   runtime and usmc-stat must agree; an "
		"existing\n"
		"                   directory, best absolute; empty: off, "
		"nothing\n"
		"                   listed)\n"
		"\n"
		"EXAMPLES\n"
		"    usmc-stat -a -d           every socket, with cursors and "
		"devices\n"
		"    usmc-stat -l              each link: state, device, GIDs, "
		"QPNs, counters\n"
		"    usmc-stat -l --json | jq '.[].links[].retransmits'\n"
		"    usmc-stat -s --all-ns -i 2  fallback counts of the host, "
		"every 2 s\n"
		"\n"
		"EXIT STATUS\n"
		"    0 (also with no connection); 1 the directory cannot be "
		"read;\n"
		"    2 usage error.\n");
}

static void json_str(const char *s)
{
	usmc_json_fputs(stdout, s);
}

/* A number, or JSON null for "-" (a counter not kept) and for anything
 * else that is not a decimal number (a damaged table stays valid JSON). */
static void json_num(const char *v)
{
	if (!*v || v[strspn(v, "0123456789")])
		printf("null");
	else
		printf("%s", v);
}

static void show_link(int pid, const char *comm, char **l);

/* Width of an address column: -W fits an IPv6 address and port. */
static int addr_w(void)
{
	return opt_wide ? 47 : 21;
}

/* --summary: add |add| to counter |c| of this table's namespace and
 * process. */
static void sum_count(int pid, const char *comm, int c, unsigned long add)
{
	int i;

	for (i = 0; i < n_sum_ns && strcmp(sum_ns[i].ns, cur_ns); i++)
		;
	if (i == n_sum_ns && n_sum_ns < SUM_MAX)
		snprintf(sum_ns[n_sum_ns++].ns, sizeof(sum_ns[0].ns), "%s",
			 cur_ns);
	if (i < n_sum_ns)
		sum_ns[i].n[c] += add;
	for (i = 0; i < n_sum_proc && sum_proc[i].pid != pid; i++)
		;
	if (i == n_sum_proc && n_sum_proc < SUM_MAX) {
		sum_proc[i].pid = pid;
		snprintf(sum_proc[i].comm, sizeof(sum_proc[i].comm), "%s",
			 comm);
		snprintf(sum_proc[i].ns, sizeof(sum_proc[i].ns), "%s", cur_ns);
		n_sum_proc++;
	}
	if (i < n_sum_proc)
		sum_proc[i].n[c] += add;
}

/* --summary: one fallback of reason |name| |code|; for PEERDECL the
 * peer's own reason, from the detail "peer declined: NAME 0xCODE ..."
 * (runtime/usmc_hs.c) */
static void sum_fallback(const char *name, const char *code, const char *detail)
{
	char peer[64] = "-";
	const char *p = strstr(detail, "peer declined: ");
	int i;

	if (p) {
		char pn[32] = "", pc[16] = "";

		if (sscanf(p + 15, "%31s %15s", pn, pc) == 2)
			snprintf(peer, sizeof(peer), "%s %s", pn, pc);
	}
	for (i = 0; i < n_sum_fb; i++)
		if (!strcmp(sum_fb[i].ns, cur_ns) &&
		    !strcmp(sum_fb[i].code, code) &&
		    !strcmp(sum_fb[i].peer, peer))
			break;
	if (i == n_sum_fb) {
		if (n_sum_fb == SUM_MAX)
			return;
		snprintf(sum_fb[i].ns, sizeof(sum_fb[i].ns), "%s", cur_ns);
		snprintf(sum_fb[i].name, sizeof(sum_fb[i].name), "%s", name);
		snprintf(sum_fb[i].code, sizeof(sum_fb[i].code), "%s", code);
		snprintf(sum_fb[i].peer, sizeof(sum_fb[i].peer), "%s", peer);
		n_sum_fb++;
	}
	sum_fb[i].n++;
}

/* An "lgr" line: remembered for the "link" lines after it. */
static void show_lgr(int pid, const char *comm, char **g)
{
	size_t off = 0;

	if (opt_summary) {
		sum_count(pid, comm, C_LGRS, 1);
		sum_count(pid, comm, C_LINKS, strtoul(g[G_LINKS], NULL, 10));
		return;
	}
	for (int i = 0; i < G_N; i++) {
		int n = snprintf(cur_lgr_buf + off, sizeof(cur_lgr_buf) - off,
				 "%s", g[i]);

		cur_lgr[i] = cur_lgr_buf + off;
		off += (size_t)n + 1;
		if (off >= sizeof(cur_lgr_buf))
			off = sizeof(cur_lgr_buf) - 1;
	}
	if (opt_json) {
		if (lgr_open)
			printf("]}");
		printf("%s\n  {\"pid\": %d, \"comm\": ", nfound ? "," : "",
		       pid);
		json_str(comm);
		printf(", \"netns\": ");
		json_str(cur_ns);
		printf(", \"lgr_id\": ");
		json_num(g[G_ID]);
		printf(", \"role\": ");
		json_str(g[G_ROLE]);
		printf(", \"smc_version\": ");
		json_num(g[G_VER]);
		printf(", \"type\": ");
		json_str(g[G_TYPE]);
		printf(", \"conns\": ");
		json_num(g[G_CONNS]);
		printf(", \"peer_system_id\": ");
		json_str(g[G_PEERID]);
		printf(", \"links\": [");
		lgr_open = 1;
		lgr_nlinks = 0;
		nfound++;
		return;
	}
	lgr_nlinks = 0;
	if (!strcmp(g[G_LINKS], "0")) {
		/* a group without a link (ending): still shown */
		static char dash[] = "-";
		char *none[L_N];

		for (int i = 0; i < L_N; i++)
			none[i] = dash;
		none[L_LGR] = g[G_ID];
		show_link(pid, comm, none);
	}
}

/* A "link" line (of the last "lgr" line's group). */
static void show_link(int pid, const char *comm, char **l)
{
	static const char *keys[L_N] = {
		"lgr_id",      "link_id",    "state",	   "device",
		"local_gid",   "peer_gid",   "qpn",	   "peer_qpn",
		"tx_bytes",    "rx_bytes",   "tx_wrs",	   "rx_wrs",
		"retransmits", "nak_seq_rx", "rnr_nak_rx", "retry_timeouts"};

	if (!cur_lgr[G_ID] || strcmp(cur_lgr[G_ID], l[L_LGR]))
		return; /* not after its group's line: a broken table */
	if (opt_json) {
		printf("%s{", lgr_nlinks++ ? ", " : "");
		for (int i = L_LINK; i < L_N; i++) {
			int str = i == L_STATE || i == L_DEVICE ||
				  i == L_LGID || i == L_PGID;

			printf("%s\"%s\": ", i == L_LINK ? "" : ", ", keys[i]);
			if (str)
				json_str(l[i]);
			else
				json_num(l[i]);
		}
		putchar('}');
		return;
	}
	lgr_nlinks++;
	nfound++;
	printf("%-7d %-*.*s %5s %-6s %3s %-6s %5s %4s %-10s %-24s %-18s "
	       "%-18s %8s %8s %14s %14s %10s %10s %8s",
	       pid, opt_wide ? 15 : 12, opt_wide ? 63 : 12, comm, cur_lgr[G_ID],
	       cur_lgr[G_ROLE], cur_lgr[G_VER], cur_lgr[G_TYPE],
	       cur_lgr[G_CONNS], l[L_LINK], l[L_STATE], l[L_DEVICE], l[L_LGID],
	       l[L_PGID], l[L_QPN], l[L_PQPN], l[L_TXB], l[L_RXB], l[L_TXW],
	       l[L_RXW], l[L_RETRANS]);
	if (opt_allns)
		printf(" %s", cur_ns);
	if (opt_debug)
		printf(" %8s %8s %8s %s", l[L_NAKSEQ], l[L_RNRNAK],
		       l[L_TIMEOUTS], cur_lgr[G_PEERID]);
	putchar('\n');
}

static void show(int pid, const char *comm, char **f)
{
	int listen = !strcmp(f[F_MODE], "LISTEN");
	static char listener[] = "listener";
	char mode[64];

	/* a table from a runtime before "listener" says "client" */
	if (listen)
		f[F_ROLE] = listener;
	if (opt_summary) {
		static const char *const m[] = {"SMCR", "SMCD", "TCP",
						"FAILED"};

		for (int i = 0; i < 4; i++)
			if (!strcmp(f[F_MODE], m[i]))
				sum_count(pid, comm, i, 1);
		if (!strcmp(f[F_MODE], "TCP") && strcmp(f[F_NAME], "-"))
			sum_fallback(f[F_NAME], f[F_CODE], f[F_DETAIL]);
		return;
	}
	if (!opt_all && (listen || !strcmp(f[F_MODE], "HANDSHAKE")))
		return;
	if (opt_json) {
		static const char *keys[F_N] = {"fd",
						"role",
						"state",
						"mode",
						"local",
						"peer",
						"fallback_code",
						"fallback_name",
						"fallback_desc",
						"lgr_id",
						"link_id",
						"smc_version",
						"bytes_sent",
						"bytes_received",
						"rx_prod",
						"rx_cons",
						"tx_prod",
						"tx_cons",
						"detail",
						"device",
						"local_gid",
						"failovers"};

		printf("%s\n  {\"pid\": %d, \"comm\": ", nfound ? "," : "",
		       pid);
		json_str(comm);
		printf(", \"netns\": ");
		json_str(cur_ns);
		for (int i = 0; i < F_N; i++) {
			int num = i == F_FD || i == F_LGR || i == F_LINK ||
				  i == F_VER || i == F_SENT || i == F_RECV ||
				  i == F_FAILOVERS;

			printf(", \"%s\": ", keys[i]);
			if (num)
				json_num(f[i]);
			else
				json_str(f[i]);
		}
		putchar('}');
		nfound++;
		return;
	}
	nfound++;
	if (!strcmp(f[F_MODE], "TCP") && strcmp(f[F_NAME], "-"))
		snprintf(mode, sizeof(mode), "TCP %s %s", f[F_NAME], f[F_CODE]);
	else if (!strcmp(f[F_MODE], "SMCR"))
		snprintf(mode, sizeof(mode), "SMCR v%s", f[F_VER]);
	else if (!strcmp(f[F_MODE], "SMCD"))
		snprintf(mode, sizeof(mode), "SMCD (shm)");
	else
		snprintf(mode, sizeof(mode), "%s", f[F_MODE]);
	printf("%-7d %-*.*s %-4s %-9s %-*s %-*s %-27s %5s %4s %12s %12s "
	       "%9s",
	       pid, opt_wide ? 15 : 12, opt_wide ? 63 : 12, comm, f[F_FD],
	       f[F_STATE], addr_w(), f[F_LOCAL], addr_w(), f[F_PEER], mode,
	       f[F_LGR], f[F_LINK], f[F_SENT], f[F_RECV], f[F_FAILOVERS]);
	if (opt_allns)
		printf(" %-16s", cur_ns);
	if (opt_debug)
		printf("  %-11s %-11s %-11s %-11s %-26s %-26s %s", f[F_RXPROD],
		       f[F_RXCONS], f[F_TXPROD], f[F_TXCONS], f[F_DEVICE],
		       f[F_GID], f[F_DETAIL]);
	putchar('\n');
}

/* The column header, printed even when no row follows (so that an empty
 * listing and a broken one differ). */
static void print_header(void)
{
	int cw = opt_wide ? 15 : 12;

	if (opt_links) {
		printf("%-7s %-*s %5s %-6s %3s %-6s %5s %4s %-10s %-24s "
		       "%-18s %-18s %8s %8s %14s %14s %10s %10s %8s%s%s\n",
		       "PID", cw, "COMM", "LGR", "Role", "Ver", "Type", "Conns",
		       "Link", "State", "Device", "Local GID", "Peer GID",
		       "QPN", "PeerQPN", "TxBytes", "RxBytes", "TxWRs", "RxWRs",
		       "Retrans", opt_allns ? " NETNS" : "",
		       opt_debug ? "   SeqNAK   RNRNAK Timeouts PeerSystemId"
				 : "");
		return;
	}
	printf("%-7s %-*s %-4s %-9s %-*s %-*s %-27s %5s %4s %12s "
	       "%12s %9s%s%s\n",
	       "PID", cw, "COMM", "FD", "State", addr_w(), "Local Address",
	       addr_w(), "Peer Address", "Mode", "LGR", "Link", "Sent", "Recv",
	       "Failovers", opt_allns ? " NETNS           " : "",
	       opt_debug ? "  RxProd      RxCons      TxProd      "
			   "TxCons      Device                     "
			   "Local GID                  Detail"
			 : "");
}

/* One published table; 0 if read (or skipped as another namespace's). */
/* When process |pid| started, in seconds since the epoch, or -1. */
static double pid_start_time(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long long ticks = 0, btime = 0;
	FILE *f;
	int ok = 0;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	if (fgets(buf, sizeof(buf), f) && (p = strrchr(buf, ')')))
		/* after comm: state is field 3, starttime field 22 */
		ok = sscanf(p + 2,
			    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
			    "%*u %*u %*d %*d %*d %*d %*d %*d %llu",
			    &ticks) == 1;
	fclose(f);
	f = fopen("/proc/stat", "re");
	if (!ok || !f) {
		if (f)
			fclose(f);
		return -1;
	}
	while (fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "btime %llu", &btime) == 1)
			break;
	fclose(f);
	return btime ? (double)btime +
			       (double)ticks / (double)sysconf(_SC_CLK_TCK)
		     : -1;
}

/* The name of namespace |ns| ("net:[INODE]"): the `ip netns` name whose
 * /run/netns file is that namespace, else |ns| itself. */
static void ns_name(const char *ns, char *out, size_t len)
{
	unsigned long long ino;
	struct dirent *de;
	DIR *d;

	snprintf(out, len, "%s", ns);
	if (sscanf(ns, "net:[%llu]", &ino) != 1 || !(d = opendir("/run/netns")))
		return;
	while ((de = readdir(d)) != NULL) {
		char path[PATH_MAX];
		struct stat st;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/run/netns/%s", de->d_name);
		/* a bind mount of /proc/PID/ns/net: its inode is the
		 * namespace's */
		if (!stat(path, &st) && (unsigned long long)st.st_ino == ino) {
			snprintf(out, len, "%s", de->d_name);
			break;
		}
	}
	closedir(d);
}

/* |stale|: the table is older than a live publisher leaves one. */
static int read_table(const char *path, int pid, const char *myns, int stale,
		      time_t mtime)
{
	char *line = NULL, comm[64] = "?", ns[64] = "-";
	size_t cap = 0;
	FILE *fp = fopen(path, "re");
	int first = 1;

	if (!fp)
		return -1;
	while (getline(&line, &cap, fp) > 0) {
		char *f[F_N], *save = NULL, *p;
		int n = 0;

		line[strcspn(line, "\n")] = '\0';
		if (first) {
			double st;

			first = 0;
			if (strncmp(line, "usmc-stat 1\t", 12))
				break;
			/* A quiet table stands until something changes: its
			 * publisher ended (docs/stat.md). Any other stale one
			 * is a stopped process's. Either is a dead process's
			 * if its pid was reused since it was written. */
			if (stale && (!strstr(line, "\tquiet 1") ||
				      (st = pid_start_time(pid)) < 0 ||
				      st > (double)mtime + 1))
				break;
			p = strstr(line, "\tcomm ");
			if (p)
				sscanf(p + 6, "%63[^\t]", comm);
			p = strstr(line, "\tnetns ");
			if (p)
				sscanf(p + 7, "%63[^\t]", ns);
			if (!opt_allns && myns[0] && strcmp(ns, myns))
				break;
			ns_name(ns, cur_ns, sizeof(cur_ns));
			continue;
		}
		for (p = strtok_r(line, "\t", &save); p && n < F_N;
		     p = strtok_r(NULL, "\t", &save))
			f[n++] = p;
		if (n && !strcmp(f[0], "lgr")) {
			if ((opt_links || opt_summary) && n >= 1 + G_N)
				show_lgr(pid, comm, f + 1);
		} else if (n && !strcmp(f[0], "link")) {
			if (opt_links && n >= 1 + L_N)
				show_link(pid, comm, f + 1);
		} else if (!opt_links && n >= F_FAILOVERS) {
			/* an older runtime's table has no failovers */
			static char dash[] = "-";

			for (int i = n; i < F_N; i++)
				f[i] = dash;
			show(pid, comm, f);
		}
	}
	cur_lgr[G_ID] = NULL; /* links belong to their own table's groups */
	free(line);
	fclose(fp);
	return 0;
}

/* --summary: the counts gathered by one scan. */
static void print_summary(void)
{
	unsigned long tot[C_N] = {0};

	if (opt_json) {
		printf("{\"netns\": [");
		for (int i = 0; i < n_sum_ns; i++) {
			printf("%s\n  {\"netns\": ", i ? "," : "");
			json_str(sum_ns[i].ns);
			for (int c = 0; c < C_N; c++) {
				printf(", \"%s\": %lu", cnames[c],
				       sum_ns[i].n[c]);
				tot[c] += sum_ns[i].n[c];
			}
			putchar('}');
		}
		printf("],\n \"total\": {");
		for (int c = 0; c < C_N; c++)
			printf("%s\"%s\": %lu", c ? ", " : "", cnames[c],
			       tot[c]);
		printf("},\n \"fallbacks\": [");
		for (int i = 0; i < n_sum_fb; i++) {
			printf("%s\n  {\"netns\": ", i ? "," : "");
			json_str(sum_fb[i].ns);
			printf(", \"fallback_name\": ");
			json_str(sum_fb[i].name);
			printf(", \"fallback_code\": ");
			json_str(sum_fb[i].code);
			printf(", \"peer_reason\": ");
			if (strcmp(sum_fb[i].peer, "-"))
				json_str(sum_fb[i].peer);
			else
				printf("null");
			printf(", \"count\": %lu}", sum_fb[i].n);
		}
		printf("]");
		if (opt_debug) {
			printf(",\n \"processes\": [");
			for (int i = 0; i < n_sum_proc; i++) {
				printf("%s\n  {\"pid\": %d, \"comm\": ",
				       i ? "," : "", sum_proc[i].pid);
				json_str(sum_proc[i].comm);
				printf(", \"netns\": ");
				json_str(sum_proc[i].ns);
				for (int c = 0; c < C_N; c++)
					printf(", \"%s\": %lu", cnames[c],
					       sum_proc[i].n[c]);
				putchar('}');
			}
			printf("]");
		}
		printf("}\n");
		return;
	}
	printf("%-24s %8s %8s %8s %8s %6s %6s\n", "NETNS", "SMCR", "SMCD",
	       "TCP", "FAILED", "LGRs", "Links");
	for (int i = 0; i < n_sum_ns; i++) {
		printf("%-24s", sum_ns[i].ns);
		for (int c = 0; c < C_N; c++) {
			printf(" %*lu", c < C_LGRS ? 8 : 6, sum_ns[i].n[c]);
			tot[c] += sum_ns[i].n[c];
		}
		putchar('\n');
	}
	if (opt_allns) {
		printf("%-24s", "total");
		for (int c = 0; c < C_N; c++)
			printf(" %*lu", c < C_LGRS ? 8 : 6, tot[c]);
		putchar('\n');
	}
	printf("\n%-24s %-15s %-10s %-24s %6s\n", "NETNS", "FALLBACK", "CODE",
	       "PEER REASON", "COUNT");
	for (int i = 0; i < n_sum_fb; i++)
		printf("%-24s %-15s %-10s %-24s %6lu\n", sum_fb[i].ns,
		       sum_fb[i].name, sum_fb[i].code, sum_fb[i].peer,
		       sum_fb[i].n);
	if (!opt_debug)
		return;
	printf("\n%-7s %-*s %-24s %8s %8s %8s %8s %6s %6s\n", "PID",
	       opt_wide ? 15 : 12, "COMM", "NETNS", "SMCR", "SMCD", "TCP",
	       "FAILED", "LGRs", "Links");
	for (int i = 0; i < n_sum_proc; i++) {
		printf("%-7d %-*.*s %-24s", sum_proc[i].pid, opt_wide ? 15 : 12,
		       opt_wide ? 63 : 12, sum_proc[i].comm, sum_proc[i].ns);
		for (int c = 0; c < C_N; c++)
			printf(" %*lu", c < C_LGRS ? 8 : 6, sum_proc[i].n[c]);
		putchar('\n');
	}
}

static volatile sig_atomic_t stop;

static void on_sigint(int sig)
{
	(void)sig;
	stop = 1;
}

/* One look at every table in |dir|; 1 if the directory cannot be read. */
static int scan(const char *dir, const char *myns)
{
	char path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	DIR *d;

	nfound = 0;
	n_sum_ns = n_sum_fb = n_sum_proc = 0;
	memset(sum_ns, 0, sizeof(sum_ns));
	memset(sum_proc, 0, sizeof(sum_proc));
	lgr_open = 0;
	if (opt_summary && !opt_allns) {
		/* this namespace's row, zero when nothing is in it */
		ns_name(myns, sum_ns[0].ns, sizeof(sum_ns[0].ns));
		n_sum_ns = 1;
	}
	d = *dir ? opendir(dir) : NULL;
	if (*dir && !d) {
		fprintf(stderr, "usmc-stat: USMC_STAT_DIR %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	if (opt_json && !opt_summary)
		putchar('[');
	else if (!opt_json && !opt_summary)
		print_header();
	while (d && (de = readdir(d)) != NULL) {
		char *end;
		long pid;
		int plen;

		if (strncmp(de->d_name, "usmc-stat.", 10))
			continue;
		pid = strtol(de->d_name + 10, &end, 10);
		if ((*end && strcmp(end, ".tmp")) || pid <= 0)
			continue;
		plen = snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (plen < 0 || (size_t)plen >= sizeof(path))
			continue;
		if (kill((pid_t)pid, 0) && errno == ESRCH) {
			/* its process is gone (killed: no exit-time unlink;
			 * a .tmp if killed while writing) */
			unlink(path);
			continue;
		}
		if (*end)
			continue; /* a .tmp being written */
		/* rewritten every 0.5 s while anything may change: an old
		 * one is a stopped process's, or a dead one's whose pid was
		 * reused, unless it says it is quiet (read_table) */
		if (stat(path, &st))
			continue;
		read_table(path, (int)pid, myns, time(NULL) - st.st_mtime > 5,
			   st.st_mtime);
	}
	if (d)
		closedir(d);
	if (opt_summary) {
		print_summary();
		if (!opt_json && opt_allns && !n_sum_ns)
			printf("no usmc sockets in any network namespace\n");
	} else if (opt_json) {
		if (lgr_open)
			printf("]}");
		printf("%s]\n", nfound ? "\n" : "");
	} else if (!nfound) {
		/* an empty listing, said so: not a broken one */
		if (opt_allns)
			printf("no usmc %s in any network namespace\n",
			       opt_links ? "link groups" : "sockets");
		else
			printf("no usmc %s in %s\n",
			       opt_links ? "link groups" : "sockets",
			       myns[0] ? myns : "this network namespace");
	}
	fflush(stdout);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"all", no_argument, NULL, 'a'},
		{"debug", no_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"all-ns", no_argument, NULL, 'N'},
		{"links", no_argument, NULL, 'l'},
		{"summary", no_argument, NULL, 's'},
		{"wide", no_argument, NULL, 'W'},
		{"interval", required_argument, NULL, 'i'},
		{"count", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = getenv("USMC_STAT_DIR");
	char myns[64] = "";
	uint64_t interval = 0, count = 0;
	ssize_t n;
	int o, rc;

	argv[0] = (char *)"usmc-stat"; /* getopt's messages name the tool */
	while ((o = getopt_long(argc, argv, "adhlsWi:c:", lo, NULL)) != -1) {
		switch (o) {
		case 'l':
			opt_links = 1;
			break;
		case 'a':
			opt_all = 1;
			break;
		case 'd':
			opt_debug = 1;
			break;
		case 'j':
			opt_json = 1;
			break;
		case 'N':
			opt_allns = 1;
			break;
		case 's':
			opt_summary = 1;
			break;
		case 'W':
			opt_wide = 1;
			break;
		case 'i':
			if (usmc_tool_number(optarg, 0, 1, 86400, &interval))
				usmc_tool_usage_error(
					"usmc-stat",
					"invalid interval '%s' (seconds, "
					"1 to 86400)",
					optarg);
			break;
		case 'c':
			if (usmc_tool_number(optarg, 0, 1, UINT32_MAX, &count))
				usmc_tool_usage_error(
					"usmc-stat",
					"invalid count '%s' (1 or more)",
					optarg);
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			usmc_tool_version("usmc-stat");
			return 0;
		default:
			usmc_tool_try("usmc-stat");
		}
	}
	if (optind != argc)
		usmc_tool_usage_error("usmc-stat", "unexpected argument '%s'",
				      argv[optind]);
	if (opt_summary && opt_links)
		usmc_tool_usage_error("usmc-stat",
				      "-s and -l do not go together (the "
				      "summary counts link groups)");
	if (count && !interval)
		usmc_tool_usage_error("usmc-stat", "-c needs -i");
	if (!dir)
		dir = "/dev/shm";
	n = readlink("/proc/self/ns/net", myns, sizeof(myns) - 1);
	myns[n > 0 ? n : 0] = '\0';
	if (!interval)
		return scan(dir, myns);
	signal(SIGINT, on_sigint);
	signal(SIGTERM, on_sigint);
	for (uint64_t k = 0; !stop && (!count || k < count); k++) {
		struct timespec ts, left;
		char stamp[64];
		time_t now;

		if (k && !opt_json)
			putchar('\n');
		now = time(NULL);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S%z",
			 localtime(&now));
		if (!opt_json)
			printf("--- %s\n", stamp);
		rc = scan(dir, myns);
		if (rc)
			return rc;
		if (count && k + 1 == count)
			break;
		ts.tv_sec = (time_t)interval;
		ts.tv_nsec = 0;
		/* SIGINT ends the wait (EINTR) and the loop */
		while (!stop && nanosleep(&ts, &left) && errno == EINTR)
			ts = left;
	}
	return 0;
}
