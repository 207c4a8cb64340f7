/* SPDX-License-Identifier: MIT */
/*
 * The transport registry: an explicit list rather than constructors, whose
 * order inside an LD_PRELOAD library is fragile.
 */
#include <stdio.h>
#include <string.h>

#include "usmc_transport.h"

extern const usmc_tp_ops usmc_tp_softroce_ops;
extern const usmc_tp_ops usmc_tp_fault_ops;
extern const usmc_tp_ops usmc_tp_sim_ops;
#ifdef USMC_HAVE_VERBS
extern const usmc_tp_ops usmc_tp_verbs_ops;
#endif

const usmc_tp_ops *const usmc_transports[] = {
	&usmc_tp_softroce_ops,
	&usmc_tp_fault_ops,
	&usmc_tp_sim_ops,
#ifdef USMC_HAVE_VERBS
	&usmc_tp_verbs_ops,
#endif
	NULL,
};

const usmc_tp_ops *usmc_tp_find(const char *name)
{
	for (size_t i = 0; usmc_transports[i]; i++)
		if (!strcmp(usmc_transports[i]->name, name))
			return usmc_transports[i];
	return NULL;
}

/* "OUTER:INNER" opens the decorator OUTER over INNER (fault:softroce):
 * OUTER gets inner=INNER ahead of the caller's options. */
int usmc_tp_open(const char *name, const usmc_tp_config *cfg, usmc_tp **ptp)
{
	const char *colon = strchr(name, ':');
	const usmc_tp_ops *ops;
	char outer[32], opts[512];
	usmc_tp_config c;
	int n;

	if (!colon) {
		ops = usmc_tp_find(name);
		return ops ? ops->open(cfg, ptp) : USMC_ERR_NOTFOUND;
	}
	if ((size_t)(colon - name) >= sizeof(outer))
		return USMC_ERR_NOTFOUND;
	memcpy(outer, name, (size_t)(colon - name));
	outer[colon - name] = 0;
	ops = usmc_tp_find(outer);
	if (!ops)
		return USMC_ERR_NOTFOUND;
	c = *cfg;
	n = snprintf(opts, sizeof(opts), "inner=%s%s%s", colon + 1,
		     cfg->options && *cfg->options ? "," : "",
		     cfg->options ? cfg->options : "");
	if (n < 0 || (size_t)n >= sizeof(opts))
		return USMC_ERR_INVALID_ARGUMENT;
	c.options = opts;
	return ops->open(&c, ptp);
}

int usmc_tp_opt_next(const char *opts, const char **cursor, usmc_tp_opt *o)
{
	const char *p = *cursor, *end, *eq;

	if (!p || !*p) {
		*cursor = NULL;
		return 0;
	}
	end = strchr(p, ',');
	o->item = o->key = p;
	o->len = end ? (size_t)(end - p) : strlen(p);
	o->idx++;
	o->col = (size_t)(p - opts) + 1;
	eq = memchr(p, '=', o->len);
	o->klen = eq ? (size_t)(eq - p) : o->len;
	o->val = eq ? eq + 1 : NULL;
	o->vlen = eq ? o->len - o->klen - 1 : 0;
	*cursor = end ? end + 1 : NULL;
	return 1;
}

int usmc_tp_opt_key_is(const usmc_tp_opt *o, const char *s)
{
	return o->klen == strlen(s) && !memcmp(o->key, s, o->klen);
}

int usmc_tp_opt_val_is(const usmc_tp_opt *o, const char *s)
{
	return o->val && o->vlen == strlen(s) && !memcmp(o->val, s, o->vlen);
}

int usmc_tp_opt_u32(const usmc_tp_opt *o, uint32_t *out)
{
	uint64_t v = 0;

	if (!o->val || !o->vlen || o->vlen > 10)
		return -1;
	for (size_t i = 0; i < o->vlen; i++) {
		if (o->val[i] < '0' || o->val[i] > '9')
			return -1;
		v = v * 10 + (uint64_t)(o->val[i] - '0');
	}
	if (v > UINT32_MAX)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

const char *usmc_tp_event_name(usmc_tp_event_type t)
{
	switch (t) {
	case USMC_TP_EV_PORT_ACTIVE:
		return "PORT_ACTIVE";
	case USMC_TP_EV_PORT_ERR:
		return "PORT_ERR";
	case USMC_TP_EV_DEVICE_FATAL:
		return "DEVICE_FATAL";
	case USMC_TP_EV_QP_FATAL:
		return "QP_FATAL";
	}
	return "?";
}
