/* SPDX-License-Identifier: MIT */
/*
 * Shared between the SK_REUSEPORT program (usmc_sr_share.bpf.c) and its
 * loader (softroce_share.c): how a BTH destination QPN names the process
 * whose socket takes the datagram.
 */
#ifndef USMC_SR_SHARE_BPF_H
#define USMC_SR_SHARE_BPF_H

/* QPN = slot << USMC_SR_SLOT_SHIFT | cyclic counter (softroce.c); the
 * counter spans rxe's QP index range, the slot the rest of the 24 bits. */
#define USMC_SR_SLOT_SHIFT 17
#define USMC_SR_SLOTS	   (1u << (24 - USMC_SR_SLOT_SHIFT))

/* usmc_sr_drops keys */
#define USMC_SR_DROP_QPN   0 /* no process owns the QPN's slot */
#define USMC_SR_DROP_SHORT 1 /* too short to hold a BTH */
#define USMC_SR_NDROPS	   2

/* UDP header + BTH bytes 4..7 (reserved byte, then the 24-bit dest QPN) */
#define USMC_SR_QPN_OFF (8 + 4)

#endif /* USMC_SR_SHARE_BPF_H */
