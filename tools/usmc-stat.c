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

static int opt_all, opt_debug, opt_json, opt_allns, opt_links;
static int nfound;
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
		"    usmc-stat [-a] [-d] [--json] [--all-ns]\n"
		"    usmc-stat -l [-d] [--json] [--all-ns]\n"
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
		"    --json        one JSON array of objects (every field); "
		"with -l one\n"
		"                  object per link group with its \"links\" "
		"array, and\n"
		"                  null for a counter the transport does not "
		"keep\n"
		"    --all-ns      processes of every network namespace\n"
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

/* An "lgr" line: remembered for the "link" lines after it. */
static void show_lgr(int pid, const char *comm, char **g)
{
	size_t off = 0;

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
	if (!nfound)
		printf("%-7s %-12s %5s %-6s %3s %-6s %5s %4s %-10s %-24s "
		       "%-18s %-18s %8s %8s %14s %14s %10s %10s %8s%s\n",
		       "PID", "COMM", "LGR", "Role", "Ver", "Type", "Conns",
		       "Link", "State", "Device", "Local GID", "Peer GID",
		       "QPN", "PeerQPN", "TxBytes", "RxBytes", "TxWRs", "RxWRs",
		       "Retrans",
		       opt_debug ? "   SeqNAK   RNRNAK Timeouts PeerSystemId"
				 : "");
	nfound++;
	printf("%-7d %-12.12s %5s %-6s %3s %-6s %5s %4s %-10s %-24s %-18s "
	       "%-18s %8s %8s %14s %14s %10s %10s %8s",
	       pid, comm, cur_lgr[G_ID], cur_lgr[G_ROLE], cur_lgr[G_VER],
	       cur_lgr[G_TYPE], cur_lgr[G_CONNS], l[L_LINK], l[L_STATE],
	       l[L_DEVICE], l[L_LGID], l[L_PGID], l[L_QPN], l[L_PQPN], l[L_TXB],
	       l[L_RXB], l[L_TXW], l[L_RXW], l[L_RETRANS]);
	if (opt_debug)
		printf(" %8s %8s %8s %s", l[L_NAKSEQ], l[L_RNRNAK],
		       l[L_TIMEOUTS], cur_lgr[G_PEERID]);
	putchar('\n');
}

static void show(int pid, const char *comm, char **f)
{
	int listen = !strcmp(f[F_MODE], "LISTEN");
	char mode[64];

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
	if (!nfound)
		printf("%-7s %-12s %-4s %-9s %-21s %-21s %-27s %5s %4s %12s "
		       "%12s %9s%s\n",
		       "PID", "COMM", "FD", "State", "Local Address",
		       "Peer Address", "Mode", "LGR", "Link", "Sent", "Recv",
		       "Failovers",
		       opt_debug ? "  RxProd      RxCons      TxProd      "
				   "TxCons      Device                     "
				   "Local GID                  Detail"
				 : "");
	nfound++;
	if (!strcmp(f[F_MODE], "TCP") && strcmp(f[F_NAME], "-"))
		snprintf(mode, sizeof(mode), "TCP %s %s", f[F_NAME], f[F_CODE]);
	else if (!strcmp(f[F_MODE], "SMCR"))
		snprintf(mode, sizeof(mode), "SMCR v%s", f[F_VER]);
	else if (!strcmp(f[F_MODE], "SMCD"))
		snprintf(mode, sizeof(mode), "SMCD (shm)");
	else
		snprintf(mode, sizeof(mode), "%s", f[F_MODE]);
	printf("%-7d %-12.12s %-4s %-9s %-21s %-21s %-27s %5s %4s %12s %12s "
	       "%9s",
	       pid, comm, f[F_FD], f[F_STATE], f[F_LOCAL], f[F_PEER], mode,
	       f[F_LGR], f[F_LINK], f[F_SENT], f[F_RECV], f[F_FAILOVERS]);
	if (opt_debug)
		printf("  %-11s %-11s %-11s %-11s %-26s %-26s %s", f[F_RXPROD],
		       f[F_RXCONS], f[F_TXPROD], f[F_TXCONS], f[F_DEVICE],
		       f[F_GID], f[F_DETAIL]);
	putchar('\n');
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
			continue;
		}
		for (p = strtok_r(line, "\t", &save); p && n < F_N;
		     p = strtok_r(NULL, "\t", &save))
			f[n++] = p;
		if (n && !strcmp(f[0], "lgr")) {
			if (opt_links && n >= 1 + G_N)
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

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{"all", no_argument, NULL, 'a'},
		{"debug", no_argument, NULL, 'd'},
		{"json", no_argument, NULL, 'j'},
		{"all-ns", no_argument, NULL, 'N'},
		{"links", no_argument, NULL, 'l'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *dir = getenv("USMC_STAT_DIR");
	char myns[64] = "", path[PATH_MAX];
	struct dirent *de;
	struct stat st;
	ssize_t n;
	DIR *d;
	int o;

	argv[0] = (char *)"usmc-stat"; /* getopt's messages name the tool */
	while ((o = getopt_long(argc, argv, "adhl", lo, NULL)) != -1) {
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
	if (!dir)
		dir = "/dev/shm";
	n = readlink("/proc/self/ns/net", myns, sizeof(myns) - 1);
	myns[n > 0 ? n : 0] = '\0';
	d = *dir ? opendir(dir) : NULL;
	if (*dir && !d) {
		fprintf(stderr, "usmc-stat: USMC_STAT_DIR %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	if (opt_json)
		putchar('[');
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
	if (opt_json && lgr_open)
		printf("]}");
	if (opt_json)
		printf("%s]\n", nfound ? "\n" : "");
	return 0;
}
