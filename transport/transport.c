/* SPDX-License-Identifier: MIT */
/*
 * The transport registry: an explicit list rather than constructors, whose
 * order inside an LD_PRELOAD library is fragile.
 */
#include <string.h>

#include "usmc_transport.h"

extern const usmc_tp_ops usmc_tp_softroce_ops;

const usmc_tp_ops *const usmc_transports[] = {
	&usmc_tp_softroce_ops,
	NULL,
};

const usmc_tp_ops *usmc_tp_find(const char *name)
{
	for (size_t i = 0; usmc_transports[i]; i++)
		if (!strcmp(usmc_transports[i]->name, name))
			return usmc_transports[i];
	return NULL;
}

int usmc_tp_open(const char *name, const usmc_tp_config *cfg, usmc_tp **ptp)
{
	const usmc_tp_ops *ops = usmc_tp_find(name);

	if (!ops)
		return USMC_ERR_NOTFOUND;
	return ops->open(cfg, ptp);
}
