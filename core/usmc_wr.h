/* SPDX-License-Identifier: MIT */
/*
 * Work requests and completions, in the shape of verbs (ibv_send_wr,
 * ibv_wc). The core produces these and consumes completions; every
 * transport executes them. This header is pure types so that transports can
 * include it without depending on the rest of the core.
 */
#ifndef USMC_WR_H
#define USMC_WR_H

#include <stdint.h>

/* SMC_WR_TX_SIZE: LLC and CDC messages are exactly 44 bytes (v1). */
#define USMC_WR_TX_SIZE	    44
/* SMC_WR_BUF_SIZE: size of one send/receive slot for a 44-byte message. */
#define USMC_WR_BUF_SIZE    48
/* SMC_WR_BUF_V2_SIZE: v2 LLC messages may be up to 8192 bytes long. */
#define USMC_WR_BUF_V2_SIZE 8192
#define USMC_WR_MAX_SGE	    2

/* IB path MTU enum (enum ib_mtu), as carried in CLC and LLC. */
enum usmc_ib_mtu {
	USMC_IB_MTU_256 = 1,
	USMC_IB_MTU_512 = 2,
	USMC_IB_MTU_1024 = 3,
	USMC_IB_MTU_2048 = 4,
	USMC_IB_MTU_4096 = 5,
};

static inline uint32_t usmc_ib_mtu_to_int(int mtu)
{
	return (mtu >= USMC_IB_MTU_256 && mtu <= USMC_IB_MTU_4096) ? 128u << mtu
								   : 0;
}

typedef enum usmc_wr_opcode {
	USMC_WR_SEND = 1,
	USMC_WR_RDMA_WRITE = 2,
	USMC_WR_RDMA_WRITE_WITH_IMM = 3,
} usmc_wr_opcode;

/* send_flags, as IBV_SEND_* */
#define USMC_SEND_SIGNALED  0x1u
#define USMC_SEND_SOLICITED 0x2u
#define USMC_SEND_INLINE    0x4u

/* A scatter/gather element: |addr| is a process virtual address inside a
 * buffer registered with the transport under |lkey|. */
typedef struct usmc_sge {
	uint64_t addr;
	uint32_t length;
	uint32_t lkey;
} usmc_sge;

typedef struct usmc_wr {
	uint64_t wr_id;
	usmc_wr_opcode opcode;
	uint32_t send_flags;
	uint32_t num_sge;
	usmc_sge sg_list[USMC_WR_MAX_SGE];
	/* RDMA WRITE target: peer's registered address and rkey */
	uint64_t remote_addr;
	uint32_t rkey;
	/* WRITE_WITH_IMM: host-order value; carried big-endian on the wire */
	uint32_t imm_data;
} usmc_wr;

typedef struct usmc_recv_wr {
	uint64_t wr_id;
	uint32_t num_sge;
	usmc_sge sg_list[USMC_WR_MAX_SGE];
} usmc_recv_wr;

typedef enum usmc_wc_status {
	USMC_WC_SUCCESS = 0,
	USMC_WC_LOC_LEN_ERR,
	USMC_WC_LOC_QP_OP_ERR,
	USMC_WC_LOC_PROT_ERR,
	USMC_WC_WR_FLUSH_ERR,
	USMC_WC_REM_INV_REQ_ERR,
	USMC_WC_REM_ACCESS_ERR,
	USMC_WC_REM_OP_ERR,
	USMC_WC_RETRY_EXC_ERR,
	USMC_WC_RNR_RETRY_EXC_ERR,
	USMC_WC_FATAL_ERR,
	USMC_WC_GENERAL_ERR,
} usmc_wc_status;

typedef enum usmc_wc_opcode {
	USMC_WC_SEND = 1,
	USMC_WC_RDMA_WRITE,
	USMC_WC_RECV,
	USMC_WC_RECV_RDMA_WITH_IMM,
	/* ISM-shaped devices (shm): a peer's move_data with the signal flag
	 * hit the local DMB whose context is wr_id; several signals of one
	 * DMB may come as one (the CDC header is re-read). */
	USMC_WC_DMB_SIGNAL,
} usmc_wc_opcode;

#define USMC_WC_WITH_IMM 0x1u

typedef struct usmc_wc {
	uint64_t wr_id;
	usmc_wc_status status;
	usmc_wc_opcode opcode;
	/* bytes received (RECV) */
	uint32_t byte_len;
	uint32_t imm_data;
	uint32_t wc_flags;
	/* local QP number the completion belongs to */
	uint32_t qp_num;
} usmc_wc;

const char *usmc_wc_status_str(usmc_wc_status status);

/* Memory access flags for registration, as IBV_ACCESS_* */
#define USMC_ACCESS_LOCAL_WRITE	 0x1u
#define USMC_ACCESS_REMOTE_WRITE 0x2u
#define USMC_ACCESS_REMOTE_READ	 0x4u

#endif /* USMC_WR_H */
