/* SPDX-License-Identifier: MIT */
/*
 * The verbs backend's pure parts: options, the address's GID and where a
 * device holds it (the GID table as sysfs shows it), and what verbs'
 * statuses, events and errnos become in the ops table.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "verbs_int.h"

static int parse_u32(const char *v, size_t n, uint32_t *out)
{
	uint64_t x = 0;

	if (!n || n > 10)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > UINT32_MAX)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

int usmc_verbs_parse_opts(const char *s, vb_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->gid_index = -1;
	while (s && *s) {
		const char *end = strchr(s, ',');
		size_t len = end ? (size_t)(end - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		size_t klen, vlen;
		const char *v;
		uint32_t n;

		if (!eq)
			return USMC_ERR_INVALID_ARGUMENT;
		klen = (size_t)(eq - s);
		v = eq + 1;
		vlen = len - klen - 1;
#define KEY(k) (klen == sizeof(k) - 1 && !memcmp(s, k, klen))
		if (KEY("dev")) {
			if (!vlen || vlen >= sizeof(o->dev) ||
			    memchr(v, '/', vlen))
				return USMC_ERR_INVALID_ARGUMENT;
			memcpy(o->dev, v, vlen);
			o->dev[vlen] = 0;
		} else if (KEY("port")) {
			if (parse_u32(v, vlen, &n) || !n || n > 255)
				return USMC_ERR_INVALID_ARGUMENT;
			o->port = n;
		} else if (KEY("gid_index")) {
			if (parse_u32(v, vlen, &n) || n > 65535)
				return USMC_ERR_INVALID_ARGUMENT;
			o->gid_index = (int)n;
		} else if (KEY("cqe")) {
			if (parse_u32(v, vlen, &n) || n < 16 || n > (1u << 22))
				return USMC_ERR_INVALID_ARGUMENT;
			o->cqe = n;
		} else {
			return USMC_ERR_INVALID_ARGUMENT;
		}
#undef KEY
		s = end ? end + 1 : NULL;
	}
	/* a GID index names an entry of one port of one device */
	if (o->gid_index >= 0 && !o->dev[0])
		return USMC_ERR_INVALID_ARGUMENT;
	return 0;
}

int usmc_verbs_addr_gid(const struct sockaddr_storage *addr, uint8_t gid[16])
{
	if (addr->ss_family == AF_INET) {
		const struct sockaddr_in *sin =
			(const struct sockaddr_in *)addr;

		memset(gid, 0, 10);
		gid[10] = gid[11] = 0xff;
		memcpy(gid + 12, &sin->sin_addr, 4);
		return 0;
	}
	if (addr->ss_family == AF_INET6) {
		const struct sockaddr_in6 *s6 =
			(const struct sockaddr_in6 *)addr;

		memcpy(gid, &s6->sin6_addr, 16);
		return 0;
	}
	return USMC_ERR_INVALID_ARGUMENT;
}

/* One line of a sysfs file, without its newline; -1 if unreadable. */
static int read_line(const char *path, char *buf, size_t n)
{
	FILE *f = fopen(path, "re");
	size_t l;

	if (!f)
		return -1;
	if (!fgets(buf, (int)n, f)) {
		fclose(f);
		return -1;
	}
	fclose(f);
	l = strlen(buf);
	while (l && (buf[l - 1] == '\n' || buf[l - 1] == ' '))
		buf[--l] = 0;
	return 0;
}

/* "fe80:0000:...:0001" (8 groups of 4 hex digits) into 16 bytes. */
static int parse_gid(const char *s, uint8_t gid[16])
{
	for (int g = 0; g < 8; g++) {
		unsigned int v = 0;

		for (int k = 0; k < 4; k++, s++) {
			int c = *s;

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= (unsigned int)(c - '0');
			else if (c >= 'a' && c <= 'f')
				v |= (unsigned int)(c - 'a' + 10);
			else if (c >= 'A' && c <= 'F')
				v |= (unsigned int)(c - 'A' + 10);
			else
				return -1;
		}
		gid[2 * g] = (uint8_t)(v >> 8);
		gid[2 * g + 1] = (uint8_t)v;
		if (g < 7 && *s++ != ':')
			return -1;
	}
	return *s ? -1 : 0;
}

static int not_dot(const struct dirent *e)
{
	return e->d_name[0] != '.';
}

/* Numeric order for port and GID index directories. */
static int num_sort(const struct dirent **a, const struct dirent **b)
{
	long x = strtol((*a)->d_name, NULL, 10);
	long y = strtol((*b)->d_name, NULL, 10);

	return x < y ? -1 : x > y;
}

static int find_in_port(const char *pdir, const uint8_t gid[16],
			const char *ifname, vb_gid_loc *out)
{
	char path[512], line[128];
	struct dirent **ents;
	int n, found = 0;

	if (snprintf(path, sizeof(path), "%s/gids", pdir) >= (int)sizeof(path))
		return 0;
	n = scandir(path, &ents, not_dot, num_sort);
	if (n < 0)
		return 0;
	for (int i = 0; i < n; i++) {
		uint8_t g[16];
		char ndev[32] = "";

		if (found)
			goto next;
		if (snprintf(path, sizeof(path), "%s/gids/%s", pdir,
			     ents[i]->d_name) >= (int)sizeof(path) ||
		    read_line(path, line, sizeof(line)) || parse_gid(line, g) ||
		    memcmp(g, gid, 16))
			goto next;
		/* only RoCEv2 (UDP-encapsulated, as SMC-R over IP needs);
		 * an entry without a type is an IB port, not RoCE */
		if (snprintf(path, sizeof(path), "%s/gid_attrs/types/%s", pdir,
			     ents[i]->d_name) >= (int)sizeof(path) ||
		    read_line(path, line, sizeof(line)) ||
		    strcmp(line, "RoCE v2"))
			goto next;
		if (snprintf(path, sizeof(path), "%s/gid_attrs/ndevs/%s", pdir,
			     ents[i]->d_name) >= (int)sizeof(path) ||
		    read_line(path, ndev, sizeof(ndev)))
			ndev[0] = 0;
		if (ifname && *ifname && strcmp(ifname, ndev))
			goto next;
		out->index = (uint32_t)strtoul(ents[i]->d_name, NULL, 10);
		memcpy(out->ndev, ndev, sizeof(out->ndev));
		memcpy(out->gid, g, 16);
		found = 1;
	next:
		free(ents[i]);
	}
	free(ents);
	return found;
}

int usmc_verbs_find_gid(const char *root, const uint8_t gid[16],
			const char *dev, uint32_t port, const char *ifname,
			vb_gid_loc *out)
{
	struct dirent **devs;
	int nd, found = 0;

	memset(out, 0, sizeof(*out));
	nd = scandir(root, &devs, not_dot, alphasort);
	if (nd < 0)
		return USMC_ERR_NOTFOUND;
	for (int i = 0; i < nd; i++) {
		struct dirent **ports;
		char path[512];
		int np;

		if (found || (dev && *dev && strcmp(dev, devs[i]->d_name)) ||
		    strlen(devs[i]->d_name) >= sizeof(out->dev))
			goto next_dev;
		if (snprintf(path, sizeof(path), "%s/%s/ports", root,
			     devs[i]->d_name) >= (int)sizeof(path))
			goto next_dev;
		np = scandir(path, &ports, not_dot, num_sort);
		if (np < 0)
			goto next_dev;
		for (int k = 0; k < np; k++) {
			uint32_t pn =
				(uint32_t)strtoul(ports[k]->d_name, NULL, 10);
			char pdir[600];

			if (!found && (!port || port == pn) &&
			    snprintf(pdir, sizeof(pdir), "%s/%s", path,
				     ports[k]->d_name) < (int)sizeof(pdir)) {
				if (find_in_port(pdir, gid, ifname, out)) {
					found = 1;
					out->port = pn;
					memcpy(out->dev, devs[i]->d_name,
					       strlen(devs[i]->d_name) + 1);
				}
			}
			free(ports[k]);
		}
		free(ports);
	next_dev:
		free(devs[i]);
	}
	free(devs);
	return found ? 0 : USMC_ERR_NOTFOUND;
}

usmc_wc_status usmc_verbs_wc_status(enum ibv_wc_status s)
{
	switch (s) {
	case IBV_WC_SUCCESS:
		return USMC_WC_SUCCESS;
	case IBV_WC_LOC_LEN_ERR:
		return USMC_WC_LOC_LEN_ERR;
	case IBV_WC_LOC_QP_OP_ERR:
		return USMC_WC_LOC_QP_OP_ERR;
	case IBV_WC_LOC_PROT_ERR:
		return USMC_WC_LOC_PROT_ERR;
	case IBV_WC_WR_FLUSH_ERR:
		return USMC_WC_WR_FLUSH_ERR;
	case IBV_WC_REM_INV_REQ_ERR:
		return USMC_WC_REM_INV_REQ_ERR;
	case IBV_WC_REM_ACCESS_ERR:
		return USMC_WC_REM_ACCESS_ERR;
	case IBV_WC_REM_OP_ERR:
		return USMC_WC_REM_OP_ERR;
	case IBV_WC_RETRY_EXC_ERR:
		return USMC_WC_RETRY_EXC_ERR;
	case IBV_WC_RNR_RETRY_EXC_ERR:
		return USMC_WC_RNR_RETRY_EXC_ERR;
	case IBV_WC_FATAL_ERR:
		return USMC_WC_FATAL_ERR;
	default:
		/* LOC_EEC, MW_BIND, BAD_RESP, LOC_ACCESS, REM_ABORT, ...:
		 * no counterpart in the ops table; the WR failed */
		return USMC_WC_GENERAL_ERR;
	}
}

int usmc_verbs_event(enum ibv_event_type t, usmc_tp_event_type *out)
{
	switch (t) {
	case IBV_EVENT_PORT_ACTIVE:
		*out = USMC_TP_EV_PORT_ACTIVE;
		return 1;
	case IBV_EVENT_PORT_ERR:
		*out = USMC_TP_EV_PORT_ERR;
		return 1;
	case IBV_EVENT_DEVICE_FATAL:
	/* the device's one CQ overran: completions are lost for every QP */
	case IBV_EVENT_CQ_ERR:
		*out = USMC_TP_EV_DEVICE_FATAL;
		return 1;
	/* each leaves the QP in ERR; net/smc's smc_ib_qp_event_handler
	 * takes the link down on QP_FATAL and QP_ACCESS_ERR alike */
	case IBV_EVENT_QP_FATAL:
	case IBV_EVENT_QP_REQ_ERR:
	case IBV_EVENT_QP_ACCESS_ERR:
		*out = USMC_TP_EV_QP_FATAL;
		return 1;
	default:
		/* COMM_EST, SQ_DRAINED, LID/PKEY/GID_CHANGE, SRQ_*, ...:
		 * nothing the ops table has a use for */
		return 0;
	}
}

int usmc_verbs_err(int err)
{
	switch (err) {
	case 0:
		return 0;
	case EINVAL:
		return USMC_ERR_INVALID_ARGUMENT;
	case ENOMEM:
	case ENOBUFS:
		return USMC_ERR_NOMEM;
	case EAGAIN:
		return USMC_ERR_WOULDBLOCK;
	case ENODEV:
	case ENOENT:
	case ENXIO:
		return USMC_ERR_NOTFOUND;
	case EPERM:
	case EACCES:
		return USMC_ERR_ACCESS;
	case EOPNOTSUPP:
		return USMC_ERR_NOTSUP;
	case EBUSY:
		return USMC_ERR_BUSY;
	default:
		return USMC_ERR_TRANSPORT;
	}
}
