/* SPDX-License-Identifier: MIT */
/*
 * Library error codes. 0 is success; errors are negative USMC_ERR_* values.
 * Codes below USMC_ERR_FATAL leave the object unusable. Wire codes that a
 * peer sees (SMC_CLC_DECL_*, DELETE_LINK reasons) live in their own
 * namespace in usmc_clc.h / usmc_llc.h.
 */
#ifndef USMC_ERR_H
#define USMC_ERR_H

#include <stdint.h>
#include <sys/types.h>

/* A count of bytes, or a negative USMC_ERR_* code. */
typedef ssize_t usmc_ssize;

/* Nanoseconds on the caller's monotonic clock; core never reads a clock. */
typedef uint64_t usmc_tstamp;
typedef uint64_t usmc_duration;
#define USMC_TSTAMP_NONE UINT64_MAX
#define USMC_NS_PER_MS	 1000000ULL
#define USMC_NS_PER_SEC	 1000000000ULL

/* Caller errors */
#define USMC_ERR_INVALID_ARGUMENT (-201)
/* The output buffer is too small for the encoding. */
#define USMC_ERR_NOBUF		  (-202)

/* Wire decoding errors: each names what was wrong. */
#define USMC_ERR_PROTO		(-203)
#define USMC_ERR_TRUNCATED	(-204)
#define USMC_ERR_BAD_EYECATCHER (-205)
#define USMC_ERR_BAD_LENGTH	(-206)
#define USMC_ERR_BAD_TYPE	(-207)
#define USMC_ERR_BAD_VERSION	(-208)
#define USMC_ERR_BAD_VALUE	(-209)
#define USMC_ERR_BAD_OFFSET	(-210)
#define USMC_ERR_BAD_COUNT	(-211)
#define USMC_ERR_RESERVED_SET	(-212)

/* State and flow */
#define USMC_ERR_INVALID_STATE (-220)
#define USMC_ERR_WOULDBLOCK    (-221)
#define USMC_ERR_NOTSUP	       (-222)
#define USMC_ERR_DECLINED      (-223)
#define USMC_ERR_TIMEOUT       (-224)
#define USMC_ERR_CONNRESET     (-225)
#define USMC_ERR_CONNABORTED   (-226)
#define USMC_ERR_PIPE	       (-227)
#define USMC_ERR_NOTFOUND      (-228)
#define USMC_ERR_BUSY	       (-229)
#define USMC_ERR_LIMIT	       (-230)
/* A peer tried to touch memory it was not given (rkey or bounds). */
#define USMC_ERR_ACCESS	       (-231)
#define USMC_ERR_CLOSED	       (-232)

/* Fatal errors */
#define USMC_ERR_FATAL		  (-500)
#define USMC_ERR_NOMEM		  (-501)
#define USMC_ERR_CALLBACK_FAILURE (-502)
#define USMC_ERR_TRANSPORT	  (-503)
#define USMC_ERR_INTERNAL	  (-504)

/* usmc_strerror returns a static English description of |err|. */
const char *usmc_strerror(int err);

/* usmc_err_name returns the macro name of |err| ("USMC_ERR_PROTO"). */
const char *usmc_err_name(int err);

/* usmc_err_is_fatal returns nonzero if |err| is below USMC_ERR_FATAL. */
int usmc_err_is_fatal(int err);

#endif /* USMC_ERR_H */
