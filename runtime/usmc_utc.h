/* SPDX-License-Identifier: MIT */
/*
 * UTC calendar fields from seconds since the epoch, by arithmetic alone:
 * no time zone, no lock (glibc's gmtime_r takes its tz lock, which a
 * fork or a signal handler may find held), no libc call. Proleptic
 * Gregorian, for any int64 time whose year fits an int.
 */
#ifndef USMC_UTC_H
#define USMC_UTC_H

#include <stdint.h>

typedef struct usmc_utc {
	int64_t year;
	int mon;  /* 1-12 */
	int mday; /* 1-31 */
	int hour, min, sec;
} usmc_utc;

static inline void usmc_utc_from(int64_t t, usmc_utc *u)
{
	int64_t days = t / 86400, s = t % 86400;
	int64_t z, cycle, doc, yoc, doy, mp;

	if (s < 0) {
		s += 86400;
		days--;
	}
	u->hour = (int)(s / 3600);
	u->min = (int)(s / 60 % 60);
	u->sec = (int)(s % 60);
	/* Count days from 0000-03-01, so that the leap day ends a year,
	 * in 400-year cycles of 146097 days (the Gregorian period);
	 * 719468 days lie between 0000-03-01 and 1970-01-01. */
	z = days + 719468;
	cycle = (z >= 0 ? z : z - 146096) / 146097;
	doc = z - cycle * 146097; /* 0-146096 */
	/* the year in the cycle: one day less every 4 years, one more
	 * every 100, one less again at the cycle's last day */
	yoc = (doc - doc / 1460 + doc / 36524 - doc / 146096) / 365;
	doy = doc - (365 * yoc + yoc / 4 - yoc / 100); /* 0-365 from Mar 1 */
	/* months from March run 31,30,31,30,31 twice and then 31,28/29:
	 * 153 days each five, so day -> month is linear in fifths */
	mp = (5 * doy + 2) / 153; /* 0 = March ... 11 = February */
	u->mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	u->mon = (int)(mp < 10 ? mp + 3 : mp - 9);
	u->year = yoc + cycle * 400 + (u->mon <= 2);
}

#endif
