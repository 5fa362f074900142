/* hostile's vsock mode: raw packets on virtio-vsock's transmit queue, written
 * by a guest that ignores every rule of the protocol (virtio 1.2 §5.10). The
 * receive queue gets buffers so that the device's answers (resets, mostly)
 * have somewhere to go, and a few that lie outside RAM. */
#include <stdbool.h>
#include <stdatomic.h>
#include <string.h>

#include "hostile.h"

#define HOST_CID 2u
#define VSOCK_HDR_BYTES 44u
#define PKT_STRIDE 256u
#define FLOOD_PACKETS 3000u

struct __attribute__((packed)) vsock_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port, len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
};
_Static_assert(sizeof(struct vsock_hdr) == VSOCK_HDR_BYTES, "virtio-vsock header");

enum { OP_REQUEST = 1, OP_RST = 3, OP_SHUTDOWN = 4, OP_RW = 5, OP_CREDIT_UPDATE = 6,
       OP_CREDIT_REQUEST = 7 };
enum { TYPE_STREAM = 1 };

/* One queue's rings and buffers inside the reserved RAM. */
struct ring {
	struct desc *desc;
	struct avail *avail;
	struct used *used;
	uint8_t *buf;
	uint64_t gpa, buf_gpa;
};

struct vsock_ctx {
	const struct dev *d;
	struct ring rx, tx;
	uint64_t guest_cid;
	uint16_t rx_seen;            /* receive buffers given back so far */
	unsigned stalls;
};

static uint64_t guest_cid(const struct dev *d)
{
	return d->regs[0x100 / 4] | (uint64_t)d->regs[0x104 / 4] << 32;
}

void vsock_owe_packet(const struct dev *d, uint8_t *ring_va, uint64_t ring_gpa, uint8_t *buf_va,
		      uint64_t buf_gpa)
{
	struct desc *desc = (struct desc *)ring_va;
	struct avail *avail = (struct avail *)(ring_va + 4096);
	struct vsock_hdr h = { .src_cid = guest_cid(d), .dst_cid = HOST_CID, .src_port = 4242,
			       .dst_port = 4242, .type = TYPE_STREAM, .op = OP_REQUEST,
			       .buf_alloc = 65536 };
	uint16_t slot = avail->idx % QSIZE;

	(void)ring_gpa;
	memcpy(buf_va, &h, sizeof(h));
	desc[slot] = (struct desc){ buf_gpa, sizeof(h), 0, 0 };
	avail->ring[slot] = slot;
	atomic_thread_fence(memory_order_release);
	avail->idx++;
	atomic_thread_fence(memory_order_seq_cst);
	wr(d, R_QUEUE_NOTIFY, 1);
}

static void ring_at(struct ring *r, uint8_t *va, uint64_t gpa)
{
	memset(va, 0, 3 * 4096 + QSIZE * PKT_STRIDE);
	r->desc = (struct desc *)va;
	r->avail = (struct avail *)(va + 4096);
	r->used = (struct used *)(va + 8192);
	r->buf = va + 3 * 4096;
	r->gpa = gpa;
	r->buf_gpa = gpa + 3 * 4096;
}

static void post(struct vsock_ctx *c, struct ring *r, unsigned q, uint16_t head)
{
	r->avail->ring[r->avail->idx % QSIZE] = head;
	atomic_thread_fence(memory_order_release);
	r->avail->idx++;
	atomic_thread_fence(memory_order_seq_cst);
	wr(c->d, R_QUEUE_NOTIFY, q);
}

/* Gives back to the device every receive buffer it has filled. */
static void refill_rx(struct vsock_ctx *c)
{
	while (c->rx_seen != c->rx.used->idx) {
		uint32_t id = c->rx.used->ring[c->rx_seen % QSIZE].id;
		c->rx_seen++;
		if (id < QSIZE)
			post(c, &c->rx, 0, (uint16_t)id);
	}
}

/* Waits until the transmit ring has room; false when the device stopped
 * taking packets (it may have declared the queue broken: that is allowed). */
static bool tx_room(struct vsock_ctx *c)
{
	for (unsigned i = 0; i < 200; i++) {
		if (rd(c->d, R_STATUS) & S_NEEDS_RESET)
			break;
		refill_rx(c);
		if ((uint16_t)(c->tx.avail->idx - c->tx.used->idx) < QSIZE)
			return true;
		ms_sleep(5);
	}
	c->stalls++;
	return false;
}

/* Sends one packet of hdr plus payload bytes, its descriptor saying len. */
static bool send_pkt(struct vsock_ctx *c, const struct vsock_hdr *hdr, uint32_t desc_len,
		     uint16_t flags)
{
	if (!tx_room(c))
		return false;
	uint16_t slot = (uint16_t)(c->tx.avail->idx % QSIZE);
	memcpy(c->tx.buf + slot * PKT_STRIDE, hdr, sizeof(*hdr));
	c->tx.desc[slot] = (struct desc){ c->tx.buf_gpa + slot * PKT_STRIDE, desc_len, flags, 0 };
	post(c, &c->tx, 1, slot);
	return true;
}

static struct vsock_hdr pkt(const struct vsock_ctx *c, uint16_t op, uint32_t port)
{
	return (struct vsock_hdr){ .src_cid = c->guest_cid, .dst_cid = HOST_CID, .src_port = port,
				   .dst_port = port, .type = TYPE_STREAM, .op = op,
				   .buf_alloc = 65536 };
}

static void flood(struct vsock_ctx *c)
{
	unsigned sent = 0;

	for (unsigned i = 0; i < FLOOD_PACKETS; i++) {
		struct vsock_hdr h = pkt(c, i % 3 ? OP_REQUEST : OP_CREDIT_REQUEST, 1024 + i);
		if (!send_pkt(c, &h, VSOCK_HDR_BYTES, 0))
			break;          /* the device gave up on us: allowed, and said */
		sent++;
	}
	say("vsock: %u connection and credit requests sent of %u, status 0x%x", sent,
	    FLOOD_PACKETS, rd(c->d, R_STATUS));
}

static void malformed(struct vsock_ctx *c)
{
	struct { const char *name; struct vsock_hdr h; uint32_t desc_len; uint16_t flags; } bad[] = {
		{ "data with no connection", pkt(c, OP_RW, 7), VSOCK_HDR_BYTES + 64, 0 },
		{ "a length past the buffer", pkt(c, OP_RW, 7), VSOCK_HDR_BYTES + 16, 0 },
		{ "a 4 GiB length", pkt(c, OP_RW, 7), VSOCK_HDR_BYTES + 16, 0 },
		{ "a short header", pkt(c, OP_REQUEST, 8), 12, 0 },
		{ "a write-only buffer", pkt(c, OP_REQUEST, 9), VSOCK_HDR_BYTES, D_WRITE },
		{ "the host's CID as source", pkt(c, OP_REQUEST, 10), VSOCK_HDR_BYTES, 0 },
		{ "a CID that is no one's", pkt(c, OP_REQUEST, 11), VSOCK_HDR_BYTES, 0 },
		{ "an unknown type", pkt(c, OP_REQUEST, 12), VSOCK_HDR_BYTES, 0 },
		{ "an unknown op", pkt(c, 99, 13), VSOCK_HDR_BYTES, 0 },
		{ "credit that cannot be", pkt(c, OP_CREDIT_UPDATE, 14), VSOCK_HDR_BYTES, 0 },
		{ "a reset for no one", pkt(c, OP_RST, 15), VSOCK_HDR_BYTES, 0 },
		{ "a shutdown for no one", pkt(c, OP_SHUTDOWN, 16), VSOCK_HDR_BYTES, 0 },
	};

	bad[0].h.len = 64;
	bad[1].h.len = 4096;
	bad[2].h.len = 0xffffffffu;
	bad[5].h.src_cid = HOST_CID;
	bad[6].h.dst_cid = 0xffffffffffffull;
	bad[7].h.type = 99;
	bad[9].h.buf_alloc = 0xffffffffu;
	bad[9].h.fwd_cnt = 0xffffffffu;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		bool sent = send_pkt(c, &bad[i].h, bad[i].desc_len, bad[i].flags);
		ms_sleep(10);
		say("vsock: %s: %s, status 0x%x", bad[i].name, sent ? "sent" : "no room",
		    rd(c->d, R_STATUS));
	}
}

/* Takes the device over with fresh rings; bad_rx receive buffers (the
 * first ones) lie outside RAM. */
static void start(struct vsock_ctx *c, uint8_t *va, uint64_t gpa, unsigned bad_rx)
{
	const struct dev *d = c->d;

	negotiate(d);
	c->guest_cid = guest_cid(d);
	c->rx_seen = 0;
	ring_at(&c->rx, va + (64u << 10), gpa + (64u << 10));
	ring_at(&c->tx, va + (128u << 10), gpa + (128u << 10));
	queue_rings(d, 0, c->rx.gpa);
	queue_rings(d, 1, c->tx.gpa);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	for (uint16_t i = 0; i < QSIZE; i++) {
		uint64_t addr = i < bad_rx ? 0xfffffffff000ull : c->rx.buf_gpa + i * PKT_STRIDE;
		c->rx.desc[i] = (struct desc){ addr, PKT_STRIDE, D_WRITE, 0 };
		post(c, &c->rx, 0, i);
	}
}

int vsock_abuse(const struct dev *devs, unsigned n)
{
	struct vsock_ctx c = { 0 };
	uint64_t gpa;
	uint8_t *va = hostile_ram(&gpa);

	for (unsigned i = 0; i < n && !c.d; i++)
		if (devs[i].id == VIRTIO_ID_VSOCK)
			c.d = &devs[i];
	if (!c.d) {
		say("vsock: no virtio-vsock device announced");
		return -1;
	}
	start(&c, va, gpa, 0);
	say("vsock: guest CID %llu", (unsigned long long)c.guest_cid);
	malformed(&c);
	flood(&c);
	say("vsock: the transmit queue stalled %u times", c.stalls);
	/* Last, as it breaks the device: the answer to a request must go into
	 * a receive buffer outside RAM. */
	start(&c, va, gpa, 2);
	struct vsock_hdr h = pkt(&c, OP_REQUEST, 4242);
	send_pkt(&c, &h, VSOCK_HDR_BYTES, 0);
	ms_sleep(50);
	say("vsock: a receive buffer outside RAM: status 0x%x", rd(c.d, R_STATUS));
	wr(c.d, R_STATUS, 0);
	return 0;
}
