/* SPDX-License-Identifier: MIT */
/* Error names and descriptions for the USMC_ERR_* codes. */
#include "usmc_err.h"

#define USMC_ERR_TABLE(X)                                                 \
	X(USMC_ERR_INVALID_ARGUMENT, "invalid argument")                  \
	X(USMC_ERR_NOBUF, "output buffer too small")                      \
	X(USMC_ERR_PROTO, "protocol violation")                           \
	X(USMC_ERR_TRUNCATED, "message truncated")                        \
	X(USMC_ERR_BAD_EYECATCHER, "bad eyecatcher")                      \
	X(USMC_ERR_BAD_LENGTH, "bad length field")                        \
	X(USMC_ERR_BAD_TYPE, "unknown or unexpected message type")        \
	X(USMC_ERR_BAD_VERSION, "unsupported version")                    \
	X(USMC_ERR_BAD_VALUE, "field value out of range")                 \
	X(USMC_ERR_BAD_OFFSET, "offset field points outside the message") \
	X(USMC_ERR_BAD_COUNT, "element count out of range")               \
	X(USMC_ERR_RESERVED_SET, "reserved field is not zero")            \
	X(USMC_ERR_INVALID_STATE, "operation not valid in this state")    \
	X(USMC_ERR_WOULDBLOCK, "operation would block")                   \
	X(USMC_ERR_NOTSUP, "operation not supported")                     \
	X(USMC_ERR_DECLINED, "SMC declined")                              \
	X(USMC_ERR_TIMEOUT, "timed out")                                  \
	X(USMC_ERR_CONNRESET, "connection reset by peer")                 \
	X(USMC_ERR_CONNABORTED, "connection aborted")                     \
	X(USMC_ERR_PIPE, "write after shutdown")                          \
	X(USMC_ERR_NOTFOUND, "not found")                                 \
	X(USMC_ERR_BUSY, "resource busy")                                 \
	X(USMC_ERR_LIMIT, "limit reached")                                \
	X(USMC_ERR_ACCESS, "remote access outside registered memory")     \
	X(USMC_ERR_CLOSED, "object closed")                               \
	X(USMC_ERR_NOMEM, "out of memory")                                \
	X(USMC_ERR_CALLBACK_FAILURE, "callback failed")                   \
	X(USMC_ERR_TRANSPORT, "transport failure")                        \
	X(USMC_ERR_INTERNAL, "internal error")

const char *usmc_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
#define X(code, text) \
	case code:    \
		return text;
		USMC_ERR_TABLE(X)
#undef X
	default:
		return "unknown error";
	}
}

const char *usmc_err_name(int err)
{
	switch (err) {
	case 0:
		return "OK";
#define X(code, text) \
	case code:    \
		return #code;
		USMC_ERR_TABLE(X)
#undef X
	default:
		return "USMC_ERR_UNKNOWN";
	}
}

int usmc_err_is_fatal(int err)
{
	return err < USMC_ERR_FATAL;
}
