/* SPDX-License-Identifier: MIT */
/*
 * Backend options strings ("KEY=VALUE,..."): one reader for every backend,
 * so that all of them refuse a bad item the same way. A file of its own
 * because the verbs module (libusmc-verbs.so) links it too.
 */
#include <string.h>

#include "usmc_transport.h"

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

int usmc_tp_opt_onoff(const usmc_tp_opt *o, const char *on, int *out)
{
	if (usmc_tp_opt_val_is(o, on))
		*out = 1;
	else if (usmc_tp_opt_val_is(o, "off"))
		*out = 0;
	else
		return -1;
	return 0;
}
