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
extern const usmc_tp_ops usmc_tp_shm_ops;
#ifdef USMC_HAVE_VERBS
extern const usmc_tp_ops usmc_tp_verbs_ops;
#endif

const usmc_tp_ops *const usmc_transports[] = {
	&usmc_tp_softroce_ops,
	&usmc_tp_fault_ops,
	&usmc_tp_sim_ops,
	&usmc_tp_shm_ops,
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
	case USMC_TP_EV_PEER_GONE:
		return "PEER_GONE";
	}
	return "?";
}
