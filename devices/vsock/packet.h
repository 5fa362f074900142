/* virtio-vsock packets (virtio 1.x §5.10.6): the 44-byte header every packet
 * starts with, and the checks a packet from the guest must pass before the
 * muxer looks at it. Pure: the fuzz target drives vsock_pkt_parse directly. */
#ifndef RV_VSOCK_PACKET_H
#define RV_VSOCK_PACKET_H

#include <stdint.h>

#include "common/err.h"
#include "devices/virtio/queue.h"

#define VSOCK_HDR_BYTES 44u
#define VSOCK_MAX_PKT_BYTES (64u * 1024)   /* payload, as Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE */
#define VSOCK_HOST_CID 2u
#define VSOCK_TYPE_STREAM 1u

enum vsock_op {
	VSOCK_OP_INVALID = 0,
	VSOCK_OP_REQUEST = 1,
	VSOCK_OP_RESPONSE = 2,
	VSOCK_OP_RST = 3,
	VSOCK_OP_SHUTDOWN = 4,
	VSOCK_OP_RW = 5,
	VSOCK_OP_CREDIT_UPDATE = 6,
	VSOCK_OP_CREDIT_REQUEST = 7,
};

#define VSOCK_SHUTDOWN_RCV 1u
#define VSOCK_SHUTDOWN_SEND 2u

struct vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags;
	uint32_t buf_alloc, fwd_cnt;
};

/* Reads the header from the readable part of a tx chain and checks it: the
 * chain holds the header and `len` payload bytes (at most VSOCK_MAX_PKT_BYTES),
 * src is the guest's CID, dst the host's, the type is stream and the op known,
 * and only RW carries a payload. -1 with a reason otherwise. */
int vsock_pkt_parse(const struct virtq_chain *c, uint64_t guest_cid, struct vsock_hdr *h,
		    struct rv_err *err);

/* Little-endian wire form. */
void vsock_hdr_encode(const struct vsock_hdr *h, uint8_t out[VSOCK_HDR_BYTES]);
void vsock_hdr_decode(const uint8_t in[VSOCK_HDR_BYTES], struct vsock_hdr *h);

const char *vsock_op_name(uint16_t op);

#endif
