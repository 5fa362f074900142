#include "devices/vsock/packet.h"

#include <errno.h>
#include <string.h>

static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }

/* x86 is little-endian like the wire; memcpy keeps unaligned access legal. */
void vsock_hdr_decode(const uint8_t in[VSOCK_HDR_BYTES], struct vsock_hdr *h)
{
	h->src_cid = get64(in);
	h->dst_cid = get64(in + 8);
	h->src_port = get32(in + 16);
	h->dst_port = get32(in + 20);
	h->len = get32(in + 24);
	h->type = get16(in + 28);
	h->op = get16(in + 30);
	h->flags = get32(in + 32);
	h->buf_alloc = get32(in + 36);
	h->fwd_cnt = get32(in + 40);
}

void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_BYTES])
{
	memcpy(out, &h->src_cid, 8);
	memcpy(out + 8, &h->dst_cid, 8);
	memcpy(out + 16, &h->src_port, 4);
	memcpy(out + 20, &h->dst_port, 4);
	memcpy(out + 24, &h->len, 4);
	memcpy(out + 28, &h->type, 2);
	memcpy(out + 30, &h->op, 2);
	memcpy(out + 32, &h->flags, 4);
	memcpy(out + 36, &h->buf_alloc, 4);
	memcpy(out + 40, &h->fwd_cnt, 4);
}

const char *vsock_op_name(uint16_t op)
{
	static const char *const names[] = { "INVALID", "REQUEST", "RESPONSE", "RST", "SHUTDOWN",
					     "RW", "CREDIT_UPDATE", "CREDIT_REQUEST" };
	return op < sizeof(names) / sizeof(names[0]) ? names[op] : "unknown";
}

int vsock_pkt_parse(const struct virtq_chain *c, uint64_t guest_cid, struct vsock_hdr *h,
		    struct rv_err *err)
{
	uint8_t raw[VSOCK_HDR_BYTES];

	if (virtq_chain_read(c, 0, raw, sizeof(raw)) != sizeof(raw))
		return rv_failx(err, EPROTO, "packet of %llu bytes is shorter than a header",
				(unsigned long long)c->read_bytes);
	vsock_hdr_decode(raw, h);
	if (h->op == VSOCK_OP_INVALID || h->op > VSOCK_OP_CREDIT_REQUEST)
		return rv_failx(err, EPROTO, "unknown op %u", h->op);
	if (h->type != VSOCK_TYPE_STREAM)
		return rv_failx(err, EPROTO, "%s: socket type %u (only stream is supported)",
				vsock_op_name(h->op), h->type);
	if (h->src_cid != guest_cid || h->dst_cid != VSOCK_HOST_CID)
		return rv_failx(err, EPROTO, "%s from CID %llu to CID %llu (the guest is %llu, the host %u)",
				vsock_op_name(h->op), (unsigned long long)h->src_cid,
				(unsigned long long)h->dst_cid, (unsigned long long)guest_cid, VSOCK_HOST_CID);
	if (h->len > VSOCK_MAX_PKT_BYTES)
		return rv_failx(err, EPROTO, "%s: length %u exceeds %u", vsock_op_name(h->op), h->len,
				VSOCK_MAX_PKT_BYTES);
	if (h->op != VSOCK_OP_RW && h->len)
		return rv_failx(err, EPROTO, "%s carries %u payload bytes", vsock_op_name(h->op), h->len);
	if (h->len > c->read_bytes - VSOCK_HDR_BYTES)
		return rv_failx(err, EPROTO, "%s: length %u but only %llu bytes follow the header",
				vsock_op_name(h->op), h->len,
				(unsigned long long)(c->read_bytes - VSOCK_HDR_BYTES));
	return 0;
}
