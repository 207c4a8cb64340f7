/* SPDX-License-Identifier: MIT */
/* LLC codec; see usmc_llc.h. Offsets follow the kernel's struct
 * smc_llc_msg_*. */
#include "usmc_llc.h"

#include <string.h>

#include "usmc_conv.h"

#define LLC_V2_NIBBLE 0x20
#define U24_MAX	      0xffffffu

/* Byte 0 values that Linux dispatches, per version. */
static int llc_type_defined(uint8_t type, uint8_t version)
{
	switch (type) {
	case SMC_LLC_CONFIRM_LINK:
	case SMC_LLC_ADD_LINK:
	case SMC_LLC_DELETE_LINK:
	case SMC_LLC_CONFIRM_RKEY:
	case SMC_LLC_TEST_LINK:
	case SMC_LLC_DELETE_RKEY:
		return version == 1 || version == 2;
	case SMC_LLC_ADD_LINK_CONT:
	case SMC_LLC_CONFIRM_RKEY_CONT:
		/* v2 moves rkeys in the ADD_LINK extension instead */
		return version == 1;
	case SMC_LLC_REQ_ADD_LINK:
		return version == 2;
	default:
		return 0;
	}
}

static size_t req_add_link_len(unsigned int gid_cnt)
{
	size_t n =
		USMC_LLC_REQ_ADD_LINK_FIXED_LEN + USMC_LLC_GID_SIZE * gid_cnt;

	/* Linux pads to the 44-byte message (a response carries no GIDs). */
	return n < SMC_LLC_MSG_LEN ? SMC_LLC_MSG_LEN : n;
}

static size_t add_link_v2_len(unsigned int num_rkeys)
{
	return SMC_LLC_MSG_LEN + USMC_LLC_ADD_LINK_V2_EXT_LEN +
	       (size_t)USMC_LLC_RT_LEN * num_rkeys;
}

static void rt_get(usmc_llc_rt *rt, const uint8_t *p)
{
	rt->rmb_key = usmc_get_be32(p);
	rt->rmb_key_new = usmc_get_be32(p + 4);
	rt->rmb_vaddr_new = usmc_get_be64(p + 8);
}

static uint8_t *rt_put(uint8_t *p, const usmc_llc_rt *rt)
{
	p = usmc_put_be32(p, rt->rmb_key);
	p = usmc_put_be32(p, rt->rmb_key_new);
	return usmc_put_be64(p, rt->rmb_vaddr_new);
}

/* 13-byte rtoken: link id (or count), rkey, vaddr */
static void rtoken_get(usmc_llc_rtoken *t, const uint8_t *p)
{
	t->link_id = p[0];
	t->rmb_key = usmc_get_be32(p + 1);
	t->rmb_vaddr = usmc_get_be64(p + 5);
}

static uint8_t *rtoken_put(uint8_t *p, uint8_t first, const usmc_llc_rtoken *t)
{
	p = usmc_put_u8(p, first);
	p = usmc_put_be32(p, t->rmb_key);
	return usmc_put_be64(p, t->rmb_vaddr);
}

void usmc_llc_msg_init(usmc_llc_msg *msg, uint8_t type, uint8_t version,
		       uint8_t flags)
{
	memset(msg, 0, sizeof(*msg));
	msg->hdr.type = type;
	msg->hdr.version = version;
	msg->hdr.flags = flags;
}

static int decode_add_link(usmc_llc_add_link *m, const usmc_llc_hdr *h,
			   const uint8_t *b)
{
	const uint8_t *ext = b + SMC_LLC_MSG_LEN;

	memcpy(m->sender_mac, b + 4, USMC_LLC_MAC_SIZE);
	memcpy(m->sender_gid, b + 12, USMC_LLC_GID_SIZE);
	m->sender_qp_num = usmc_get_be24(b + 28);
	m->link_num = b[31];
	m->qp_mtu = b[32] & 0x0f;
	m->initial_psn = usmc_get_be24(b + 33);
	/* 0: no new link yet (client suggestion); else enum ib_mtu */
	if (m->qp_mtu > 5)
		return USMC_ERR_BAD_VALUE;
	if (h->version != 2 || h->length == SMC_LLC_MSG_LEN)
		return 0;
	if (h->length < add_link_v2_len(0))
		return USMC_ERR_BAD_LENGTH;
	m->has_v2_ext = 1;
	m->v2_direct = (ext[0] & 0x80) ? 1 : 0;
	memcpy(m->client_target_gid, ext + 2, USMC_LLC_GID_SIZE);
	/* host order in Linux: little-endian on the x86 peers we meet */
	m->num_rkeys = usmc_get_le16(ext + 26);
	if (m->num_rkeys > SMC_LLC_RKEYS_PER_MSG_V2)
		return USMC_ERR_BAD_COUNT;
	if (h->length != add_link_v2_len(m->num_rkeys))
		return USMC_ERR_BAD_LENGTH;
	for (unsigned int i = 0; i < m->num_rkeys; i++)
		rt_get(&m->rt[i], ext + USMC_LLC_ADD_LINK_V2_EXT_LEN +
					  USMC_LLC_RT_LEN * i);
	return 0;
}

static int decode_body(usmc_llc_msg *msg, const uint8_t *b)
{
	const usmc_llc_hdr *h = &msg->hdr;

	/* Only ADD_LINK and REQ_ADD_LINK grow beyond 44 bytes. */
	if (h->type != SMC_LLC_ADD_LINK && h->type != SMC_LLC_REQ_ADD_LINK &&
	    h->length != SMC_LLC_MSG_LEN)
		return USMC_ERR_BAD_LENGTH;

	switch (h->type) {
	case SMC_LLC_CONFIRM_LINK: {
		usmc_llc_confirm_link *m = &msg->confirm_link;

		memcpy(m->sender_mac, b + 4, USMC_LLC_MAC_SIZE);
		memcpy(m->sender_gid, b + 10, USMC_LLC_GID_SIZE);
		m->sender_qp_num = usmc_get_be24(b + 26);
		m->link_num = b[29];
		m->link_uid = usmc_get_be32(b + 30);
		m->max_links = b[34];
		m->max_conns = b[35];
		return 0;
	}
	case SMC_LLC_ADD_LINK:
		return decode_add_link(&msg->add_link, h, b);
	case SMC_LLC_ADD_LINK_CONT: {
		usmc_llc_add_link_cont *m = &msg->add_link_cont;

		m->link_num = b[4];
		m->num_rkeys = b[5];
		rt_get(&m->rt[0], b + 8);
		rt_get(&m->rt[1], b + 24);
		return 0;
	}
	case SMC_LLC_DELETE_LINK:
		msg->delete_link.link_num = b[4];
		msg->delete_link.reason = usmc_get_be32(b + 5);
		return 0;
	case SMC_LLC_REQ_ADD_LINK: {
		usmc_llc_req_add_link *m = &msg->req_add_link;

		m->gid_cnt = b[24];
		if (m->gid_cnt > USMC_LLC_REQ_ADD_LINK_MAX_GIDS)
			return USMC_ERR_BAD_COUNT;
		if (h->length != req_add_link_len(m->gid_cnt))
			return USMC_ERR_BAD_LENGTH;
		for (unsigned int i = 0; i < m->gid_cnt; i++)
			memcpy(m->gid[i], b + 28 + USMC_LLC_GID_SIZE * i,
			       USMC_LLC_GID_SIZE);
		return 0;
	}
	case SMC_LLC_CONFIRM_RKEY: {
		usmc_llc_confirm_rkey *m = &msg->confirm_rkey;

		for (unsigned int i = 0; i < SMC_LLC_RKEYS_PER_MSG; i++)
			rtoken_get(&m->rtoken[i], b + 4 + 13 * i);
		/* the first rtoken's link id byte is the count */
		m->num_rkeys = m->rtoken[0].link_id;
		m->rtoken[0].link_id = 0;
		if (m->num_rkeys > SMC_LLC_RKEYS_PER_MSG - 1)
			return USMC_ERR_BAD_COUNT;
		return 0;
	}
	case SMC_LLC_CONFIRM_RKEY_CONT: {
		usmc_llc_confirm_rkey_cont *m = &msg->confirm_rkey_cont;

		m->num_rkeys = b[4];
		for (unsigned int i = 0; i < SMC_LLC_RKEYS_PER_MSG; i++)
			rtoken_get(&m->rtoken[i], b + 5 + 13 * i);
		return 0;
	}
	case SMC_LLC_TEST_LINK:
		memcpy(msg->test_link.user_data, b + 4,
		       sizeof(msg->test_link.user_data));
		return 0;
	case SMC_LLC_DELETE_RKEY: {
		usmc_llc_delete_rkey *m = &msg->delete_rkey;

		m->num_rkeys = b[4];
		m->err_mask = b[5];
		if (m->num_rkeys < 1 || m->num_rkeys > SMC_LLC_DEL_RKEY_MAX)
			return USMC_ERR_BAD_COUNT;
		for (unsigned int i = 0; i < SMC_LLC_DEL_RKEY_MAX; i++)
			m->rkey[i] = usmc_get_be32(b + 8 + 4 * i);
		return 0;
	}
	default:
		return USMC_ERR_BAD_TYPE;
	}
}

usmc_ssize usmc_llc_decode(usmc_llc_msg *msg, const uint8_t *buf, size_t len)
{
	usmc_llc_hdr *h;
	uint8_t version;
	int rc;

	if (!msg || (!buf && len))
		return USMC_ERR_INVALID_ARGUMENT;
	if (!len)
		return USMC_ERR_TRUNCATED;
	switch (buf[0] & 0xf0) {
	case 0:
		version = 1;
		break;
	case LLC_V2_NIBBLE:
		version = 2;
		break;
	default:
		return USMC_ERR_BAD_TYPE;
	}
	if (!llc_type_defined(buf[0] & 0x0f, version))
		return USMC_ERR_BAD_TYPE;
	if (len < SMC_LLC_MSG_LEN)
		return USMC_ERR_TRUNCATED;

	memset(msg, 0, sizeof(*msg));
	h = &msg->hdr;
	h->type = buf[0] & 0x0f;
	h->version = version;
	h->flags = buf[3];
	if (version == 1) {
		h->length = buf[1];
		if (h->length != SMC_LLC_MSG_LEN)
			return USMC_ERR_BAD_LENGTH;
		h->add_link_rej_rsn = buf[2] & 0x0f;
	} else {
		h->length = usmc_get_le16(buf + 1);
		if (h->length < SMC_LLC_MSG_LEN ||
		    h->length > SMC_LLC_MAX_LEN_V2)
			return USMC_ERR_BAD_LENGTH;
		if (h->length > len)
			return USMC_ERR_TRUNCATED;
	}
	rc = decode_body(msg, buf);
	if (rc)
		return rc;
	return h->length;
}

/* Checks what decode checks, from the encoder's side; returns the encoded
 * length or USMC_ERR_INVALID_ARGUMENT. */
static usmc_ssize encode_check(const usmc_llc_msg *msg)
{
	const usmc_llc_hdr *h = &msg->hdr;
	usmc_ssize n = SMC_LLC_MSG_LEN;

	if (h->version != 1 && h->version != 2)
		return USMC_ERR_INVALID_ARGUMENT;
	if (!llc_type_defined(h->type, h->version))
		return USMC_ERR_INVALID_ARGUMENT;
	if (h->add_link_rej_rsn > 0x0f ||
	    (h->version == 2 && h->add_link_rej_rsn))
		return USMC_ERR_INVALID_ARGUMENT;

	switch (h->type) {
	case SMC_LLC_CONFIRM_LINK:
		if (msg->confirm_link.sender_qp_num > U24_MAX)
			return USMC_ERR_INVALID_ARGUMENT;
		break;
	case SMC_LLC_ADD_LINK: {
		const usmc_llc_add_link *m = &msg->add_link;

		if (m->sender_qp_num > U24_MAX || m->initial_psn > U24_MAX ||
		    m->qp_mtu > 5)
			return USMC_ERR_INVALID_ARGUMENT;
		if (!m->has_v2_ext)
			break;
		if (h->version != 2 || m->v2_direct > 1 ||
		    m->num_rkeys > SMC_LLC_RKEYS_PER_MSG_V2)
			return USMC_ERR_INVALID_ARGUMENT;
		n = (usmc_ssize)add_link_v2_len(m->num_rkeys);
		break;
	}
	case SMC_LLC_REQ_ADD_LINK:
		if (msg->req_add_link.gid_cnt > USMC_LLC_REQ_ADD_LINK_MAX_GIDS)
			return USMC_ERR_INVALID_ARGUMENT;
		n = (usmc_ssize)req_add_link_len(msg->req_add_link.gid_cnt);
		break;
	case SMC_LLC_CONFIRM_RKEY:
		if (msg->confirm_rkey.num_rkeys > SMC_LLC_RKEYS_PER_MSG - 1)
			return USMC_ERR_INVALID_ARGUMENT;
		break;
	case SMC_LLC_DELETE_RKEY:
		if (msg->delete_rkey.num_rkeys < 1 ||
		    msg->delete_rkey.num_rkeys > SMC_LLC_DEL_RKEY_MAX)
			return USMC_ERR_INVALID_ARGUMENT;
		break;
	default:
		break;
	}
	return n;
}

static void encode_body(uint8_t *b, const usmc_llc_msg *msg)
{
	switch (msg->hdr.type) {
	case SMC_LLC_CONFIRM_LINK: {
		const usmc_llc_confirm_link *m = &msg->confirm_link;

		usmc_put_bytes(b + 4, m->sender_mac, USMC_LLC_MAC_SIZE);
		usmc_put_bytes(b + 10, m->sender_gid, USMC_LLC_GID_SIZE);
		usmc_put_be24(b + 26, m->sender_qp_num);
		b[29] = m->link_num;
		usmc_put_be32(b + 30, m->link_uid);
		b[34] = m->max_links;
		b[35] = m->max_conns;
		break;
	}
	case SMC_LLC_ADD_LINK: {
		const usmc_llc_add_link *m = &msg->add_link;
		uint8_t *ext = b + SMC_LLC_MSG_LEN;

		usmc_put_bytes(b + 4, m->sender_mac, USMC_LLC_MAC_SIZE);
		usmc_put_bytes(b + 12, m->sender_gid, USMC_LLC_GID_SIZE);
		usmc_put_be24(b + 28, m->sender_qp_num);
		b[31] = m->link_num;
		b[32] = m->qp_mtu;
		usmc_put_be24(b + 33, m->initial_psn);
		if (!m->has_v2_ext)
			break;
		usmc_put_zero(ext, USMC_LLC_ADD_LINK_V2_EXT_LEN);
		ext[0] = m->v2_direct ? 0x80 : 0;
		usmc_put_bytes(ext + 2, m->client_target_gid,
			       USMC_LLC_GID_SIZE);
		usmc_put_le16(ext + 26, m->num_rkeys);
		for (unsigned int i = 0; i < m->num_rkeys; i++)
			rt_put(ext + USMC_LLC_ADD_LINK_V2_EXT_LEN +
				       USMC_LLC_RT_LEN * i,
			       &m->rt[i]);
		break;
	}
	case SMC_LLC_ADD_LINK_CONT: {
		const usmc_llc_add_link_cont *m = &msg->add_link_cont;

		b[4] = m->link_num;
		b[5] = m->num_rkeys;
		rt_put(b + 8, &m->rt[0]);
		rt_put(b + 24, &m->rt[1]);
		break;
	}
	case SMC_LLC_DELETE_LINK:
		b[4] = msg->delete_link.link_num;
		usmc_put_be32(b + 5, msg->delete_link.reason);
		break;
	case SMC_LLC_REQ_ADD_LINK: {
		const usmc_llc_req_add_link *m = &msg->req_add_link;

		b[24] = m->gid_cnt;
		for (unsigned int i = 0; i < m->gid_cnt; i++)
			usmc_put_bytes(b + 28 + USMC_LLC_GID_SIZE * i,
				       m->gid[i], USMC_LLC_GID_SIZE);
		break;
	}
	case SMC_LLC_CONFIRM_RKEY: {
		const usmc_llc_confirm_rkey *m = &msg->confirm_rkey;

		rtoken_put(b + 4, m->num_rkeys, &m->rtoken[0]);
		for (unsigned int i = 1; i < SMC_LLC_RKEYS_PER_MSG; i++)
			rtoken_put(b + 4 + 13 * i, m->rtoken[i].link_id,
				   &m->rtoken[i]);
		break;
	}
	case SMC_LLC_CONFIRM_RKEY_CONT: {
		const usmc_llc_confirm_rkey_cont *m = &msg->confirm_rkey_cont;

		b[4] = m->num_rkeys;
		for (unsigned int i = 0; i < SMC_LLC_RKEYS_PER_MSG; i++)
			rtoken_put(b + 5 + 13 * i, m->rtoken[i].link_id,
				   &m->rtoken[i]);
		break;
	}
	case SMC_LLC_TEST_LINK:
		usmc_put_bytes(b + 4, msg->test_link.user_data,
			       sizeof(msg->test_link.user_data));
		break;
	case SMC_LLC_DELETE_RKEY: {
		const usmc_llc_delete_rkey *m = &msg->delete_rkey;

		b[4] = m->num_rkeys;
		b[5] = m->err_mask;
		for (unsigned int i = 0; i < SMC_LLC_DEL_RKEY_MAX; i++)
			usmc_put_be32(b + 8 + 4 * i, m->rkey[i]);
		break;
	}
	default:
		break;
	}
}

usmc_ssize usmc_llc_encode(uint8_t *buf, size_t cap, const usmc_llc_msg *msg)
{
	const usmc_llc_hdr *h;
	usmc_ssize n;

	if (!msg || (!buf && cap))
		return USMC_ERR_INVALID_ARGUMENT;
	n = encode_check(msg);
	if (n < 0)
		return n;
	if (cap < (size_t)n)
		return USMC_ERR_NOBUF;
	h = &msg->hdr;
	/* reserved bytes are zero: start from a clean 44-byte message */
	usmc_put_zero(buf, SMC_LLC_MSG_LEN);
	buf[0] = usmc_llc_wire_type(h->type, h->version);
	if (h->version == 1) {
		buf[1] = SMC_LLC_MSG_LEN;
		buf[2] = h->add_link_rej_rsn;
	} else {
		usmc_put_le16(buf + 1, (uint16_t)n);
	}
	buf[3] = h->flags;
	encode_body(buf, msg);
	return n;
}

uint8_t usmc_llc_wire_type(uint8_t type, uint8_t version)
{
	return version == 2 ? (uint8_t)(type | LLC_V2_NIBBLE) : type;
}

const char *usmc_llc_type_name(uint8_t wire_type)
{
	static const char *const v1[] = {
		[SMC_LLC_CONFIRM_LINK] = "CONFIRM_LINK",
		[SMC_LLC_ADD_LINK] = "ADD_LINK",
		[SMC_LLC_ADD_LINK_CONT] = "ADD_LINK_CONT",
		[SMC_LLC_DELETE_LINK] = "DELETE_LINK",
		[SMC_LLC_REQ_ADD_LINK] = "REQ_ADD_LINK",
		[SMC_LLC_CONFIRM_RKEY] = "CONFIRM_RKEY",
		[SMC_LLC_TEST_LINK] = "TEST_LINK",
		[SMC_LLC_CONFIRM_RKEY_CONT] = "CONFIRM_RKEY_CONT",
		[SMC_LLC_DELETE_RKEY] = "DELETE_RKEY",
	};
	static const char *const v2[] = {
		[SMC_LLC_CONFIRM_LINK] = "CONFIRM_LINK_V2",
		[SMC_LLC_ADD_LINK] = "ADD_LINK_V2",
		[SMC_LLC_DELETE_LINK] = "DELETE_LINK_V2",
		[SMC_LLC_REQ_ADD_LINK] = "REQ_ADD_LINK_V2",
		[SMC_LLC_CONFIRM_RKEY] = "CONFIRM_RKEY_V2",
		[SMC_LLC_TEST_LINK] = "TEST_LINK_V2",
		[SMC_LLC_DELETE_RKEY] = "DELETE_RKEY_V2",
	};
	const char *name = NULL;

	if (wire_type == 0xFE)
		return "CDC";
	if (wire_type <= SMC_LLC_DELETE_RKEY)
		name = v1[wire_type];
	else if (wire_type >= SMC_LLC_CONFIRM_LINK_V2 &&
		 wire_type <= SMC_LLC_DELETE_RKEY_V2)
		name = v2[wire_type & 0x0f];
	return name ? name : "UNKNOWN";
}

const char *usmc_llc_del_reason_name(uint32_t reason)
{
	switch (reason) {
	case 0:
		return "NONE";
	case SMC_LLC_DEL_LOST_PATH:
		return "LOST_PATH";
	case SMC_LLC_DEL_OP_INIT_TERM:
		return "OP_INIT_TERM";
	case SMC_LLC_DEL_PROG_INIT_TERM:
		return "PROG_INIT_TERM";
	case SMC_LLC_DEL_PROT_VIOL:
		return "PROT_VIOL";
	case SMC_LLC_DEL_NO_ASYM_NEEDED:
		return "NO_ASYM_NEEDED";
	case SMC_LLC_DEL_NOLNK:
		return "NOLNK";
	case SMC_LLC_DEL_NOLGR:
		return "NOLGR";
	default:
		return "UNKNOWN";
	}
}

int usmc_rx_msg_classify(const uint8_t *buf, size_t len)
{
	if (!buf || !len)
		return USMC_ERR_TRUNCATED;
	if (buf[0] == 0xFE)
		return USMC_RX_MSG_CDC;
	if (buf[0] >= SMC_LLC_CONFIRM_LINK && buf[0] <= SMC_LLC_DELETE_RKEY)
		return USMC_RX_MSG_LLC_V1;
	if (buf[0] >= SMC_LLC_CONFIRM_LINK_V2 &&
	    buf[0] <= SMC_LLC_DELETE_RKEY_V2)
		return USMC_RX_MSG_LLC_V2;
	return USMC_ERR_BAD_TYPE;
}
