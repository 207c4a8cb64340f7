/* SPDX-License-Identifier: MIT */
/*
 * Rules: which sockets usmc owns (speaks SMC on) and which stay plain TCP.
 * Pure code (no I/O): the runtime, tools/usmc-rules and the tests share the
 * one parser and matcher. Syntax and precedence: docs/rules.md.
 */
#ifndef USMC_RULES_H
#define USMC_RULES_H

#include <stddef.h>
#include <stdint.h>

/* A set of TCP ports: sorted, merged ranges. */
#define USMC_PORTSET_MAX 64
typedef struct usmc_portset {
	int n;
	uint16_t lo[USMC_PORTSET_MAX];
	uint16_t hi[USMC_PORTSET_MAX];
} usmc_portset;

/* usmc_portset_parse parses "7070,8000-8010" (spaces allowed around
 * items). Returns 0, or -1 with a message in |err|. */
int usmc_portset_parse(usmc_portset *ps, const char *s, char *err,
		       size_t errlen);
int usmc_portset_has(const usmc_portset *ps, uint16_t port);
/* Writes the set back as text ("7070,8000-8010"). */
void usmc_portset_format(const usmc_portset *ps, char *buf, size_t len);

enum {
	USMC_RULE_TCP = 0,
	USMC_RULE_SMC = 1,
	/* Only from a query with unknown fields (a listener before any
	 * connection): smc for some values, tcp for others; decide per
	 * connection. */
	USMC_RULE_MAYBE = 2,
};

/* An address (family 4 or 6) with a prefix length; a query address has
 * the full length. IPv4-mapped IPv6 addresses are stored as IPv4. */
typedef struct usmc_rule_net {
	uint8_t family; /* 4 or 6 */
	uint8_t len;
	uint8_t addr[16];
} usmc_rule_net;

#define USMC_RULE_NETS 8
#define USMC_RULES_MAX 64
#define USMC_RULE_PROG 128
#define USMC_RULE_SRC  96
#define USMC_RULE_TEXT 160
#define USMC_RULE_OPTS 128

typedef struct usmc_rule {
	int action; /* USMC_RULE_SMC or USMC_RULE_TCP */
	/* comma-separated fnmatch(3) patterns; "" = any program */
	char program[USMC_RULE_PROG];
	int nlocal, nremote;
	usmc_rule_net local[USMC_RULE_NETS], remote[USMC_RULE_NETS];
	int has_ports;
	usmc_portset ports;
	/* smc rules: the transport the connection's device uses ("" =
	 * USMC_TRANSPORT) */
	char transport[32];
	/* smc rules: transport options added after USMC_TRANSPORT_OPTIONS
	 * for the connections this rule decides ("" = none) */
	char options[USMC_RULE_OPTS];
	int from_ports;		   /* the USMC_SMC_PORTS rule */
	char src[USMC_RULE_SRC];   /* file name, or the variable */
	int line;		   /* 1-based, 0 for USMC_SMC_PORTS */
	char text[USMC_RULE_TEXT]; /* the rule as written */
} usmc_rule;

typedef struct usmc_rules {
	int n;
	usmc_rule v[USMC_RULES_MAX];
	/* nonzero: the rules were refused (err says why): everything TCP */
	int error;
	char err[256];
} usmc_rules;

/*
 * Appends the rules in |text| (one per line or ';'-separated, '#'
 * comments) from source |src| (a file name or "USMC_RULES"). Returns 0,
 * or -1 with "SRC:LINE:COL: message" in |err|; on error nothing from
 * |text| is kept.
 */
int usmc_rules_parse(usmc_rules *rs, const char *text, const char *src,
		     char *err, size_t errlen);
/* Puts (or replaces) the "smc port LIST" rule of USMC_SMC_PORTS at
 * index |at|. Returns 0 or -1 (full). */
int usmc_rules_set_ports(usmc_rules *rs, int at, const usmc_portset *ps);
/* Nonzero if some rule says smc (then the rules name what uses SMC, and
 * the default stays tcp even with the SMC TCP option). */
int usmc_rules_has_smc(const usmc_rules *rs);
/* Nonzero if some rule has a local address condition. */
int usmc_rules_use_local(const usmc_rules *rs);
/* Nonzero if some rule names a transport or transport options. */
int usmc_rules_name_transport(const usmc_rules *rs);

/* What is known about a socket; NULL/0 fields are unknown. */
typedef struct usmc_rule_query {
	const char *program;
	const usmc_rule_net *local, *remote;
	/* local port of a listener or accepted socket, remote port of a
	 * connecting one */
	uint16_t port;
	/* nonzero: no match is smc (the SMC TCP option is on, so a peer
	 * that does not speak SMC is found out before any CLC byte, and no
	 * rule says smc). A field of the query, not of the shared rules:
	 * threads decide at once. */
	int dflt_smc;
} usmc_rule_query;

/*
 * First match wins; no match is TCP. Returns USMC_RULE_SMC,
 * USMC_RULE_TCP or (unknown fields only) USMC_RULE_MAYBE; *idx is the
 * deciding rule (for MAYBE the first rule that may match), -1 for the
 * default or refused rules. *by_default (if not NULL): whether the default
 * (q->dflt_smc) took part, i.e. no rule surely matched.
 */
int usmc_rules_eval(const usmc_rules *rs, const usmc_rule_query *q, int *idx,
		    int *by_default);
/* Why: "rule 3 at /etc/usmc.conf:12 (smc port 7070) matched", "no rule
 * matched, default tcp", ... |q| is the evaluated query. */
void usmc_rules_why(const usmc_rules *rs, const usmc_rule_query *q, int verdict,
		    int idx, char *buf, size_t len);
/* Parses "10.0.0.1", "10.0.0.0/8", "fe80::1/64". Returns 0 or -1. */
int usmc_rule_net_parse(usmc_rule_net *n, const char *s);
/* From a sockaddr_in / sockaddr_in6 (full length); -1 otherwise. */
int usmc_rule_net_from_sa(usmc_rule_net *n, const void *sa);

/*
 * Short-lived connections (docs/rules.md, "Short-lived connections"): a
 * client that saw |n| SMC-R connections in a row to one peer (address and
 * port) each move at most |bytes| (both ways) and live at most |ms| from
 * connect to close offers that peer plain TCP for |hold_ms|. n == 0: off.
 */
typedef struct usmc_shortconn {
	unsigned int n;
	uint64_t bytes;
	uint64_t ms, hold_ms;
} usmc_shortconn;

#define USMC_SHORTCONN_DEFAULT "8,2048,200,10000"

/* Parses "off" or "N,BYTES,MS,HOLD_MS" (N 1..255, BYTES and MS >= 0,
 * HOLD_MS 1..3600000). Returns 0, or -1 with a message in |err|. */
int usmc_shortconn_parse(usmc_shortconn *sc, const char *s, char *err,
			 size_t errlen);

#define USMC_PEERHIST_MAX 64

typedef struct usmc_peerhist_ent {
	uint32_t addr; /* IPv4, network order; 0 = free */
	uint16_t port;
	uint8_t nshort;	     /* short connections in a row */
	uint8_t nosmc;	     /* the hold is for a peer without SMC */
	uint64_t hold_until; /* ns: TCP until then, 0 = none */
	uint64_t last;	     /* ns of the last note (LRU) */
} usmc_peerhist_ent;

/* The per-peer history: the USMC_PEERHIST_MAX peers noted last. */
typedef struct usmc_peerhist {
	usmc_peerhist_ent e[USMC_PEERHIST_MAX];
} usmc_peerhist;

/* Notes an SMC-R connection to addr:port that moved |bytes| and lived
 * |life_ns|, at |now| (ns). Returns 1 if this note starts a hold. */
int usmc_peerhist_note(usmc_peerhist *h, const usmc_shortconn *sc,
		       uint32_t addr, uint16_t port, uint64_t bytes,
		       uint64_t life_ns, uint64_t now);
/* Notes that addr:port answered a connect without the SMC option, at
 * |now|: its next connections go to TCP at once, without the option,
 * for |sc|'s hold_ms (a peer that did not offer SMC a moment ago will
 * not the next time either, and the SYN option's hand-off to the
 * progress thread costs a fallback a thread switch or two). Returns 1 if
 * this note starts a hold. */
int usmc_peerhist_nosmc(usmc_peerhist *h, const usmc_shortconn *sc,
			uint32_t addr, uint16_t port, uint64_t now);
/* While addr:port is held to TCP at |now|: 1 for short connections, 2
 * for a peer without SMC (usmc_peerhist_nosmc); else 0. *left_ms (if not
 * NULL) is the time the hold has left. */
int usmc_peerhist_held(const usmc_peerhist *h, const usmc_shortconn *sc,
		       uint32_t addr, uint16_t port, uint64_t now,
		       uint64_t *left_ms);

#endif /* USMC_RULES_H */
