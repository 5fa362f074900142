/* libFuzzer target for the vsock device and its connection muxer
 * (devices/vsock/): the input is a script of what a hostile guest sends on
 * its tx queue, interleaved with what the host side does on its sockets, run
 * against a real device behind the virtio-mmio registers (the test driver of
 * tests/unit/devices sets the rings up), with a listener and host-initiated
 * connections. Host events are processed between steps.
 *
 * Input: u8 features (1: EVENT_IDX), then records, each a u8 command:
 *   0 tx packet   u8 conn, u8 op, u8 flags, u16 split, [u32 src, u32 dst if
 *                 conn % 8 == 7], u32 len, u32 buf_alloc, u32 fwd_cnt, then
 *                 min(len, what is left) payload bytes. conn % 8 picks the
 *                 ports: 0-3 guest ports 40000+ to listening ports 1024/1025,
 *                 4-5 the two host-initiated connections, 6 an unbound port.
 *   1 raw tx      u8 fix_cids, u16 len, u16 split, then len bytes of chain
 *   2 host write  u8 slot, u16 len (bytes from the input, or a pattern)
 *   3 host read   u8 slot, u16 len
 *   4 host close  u8 slot
 *   5 host shutdown u8 slot, u8 how
 *   6 guest rx    u8 n: take up to n rx packets (bit 7: do not give them back)
 *   7 host connect u8 port
 *   8 device reset u8 restart
 *   9 odd rx chain u8 len (bit 7: device-readable)
 *
 * Beyond "no crash, no leak, no UB": every rx packet has the host's CIDs, a
 * known op and a length that matches what was used; no connection parks more
 * than its buf_alloc; the connection table agrees with its count. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/evloop.h"
#include "devices/virtio/mmio.h"
#include "devices/vsock/vsock_priv.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/unit/devices/vdriver.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_BYTES (4u << 20)
#define QSIZE 32u
#define RX_BYTES (VSOCK_HDR_BYTES + 1024u)
#define NRX 16u
#define TX_BYTES (VSOCK_HDR_BYTES + VSOCK_MAX_PKT_BYTES + 64u)
#define MAX_FDS 64u
#define MAX_STEPS 256u
#define RXQ 0u
#define TXQ 1u

static struct guest_mem mem;
static struct evloop loop;
static struct vsock vs;
static struct virtio_mmio mmio;
static struct vdriver drv;
static uint64_t features, tx_gpa;
static uint64_t rx_gpa_of_head[QSIZE];
static uint32_t rx_room_of_head[QSIZE];  /* writable bytes of the chain */
static bool rx_odd_head[QSIZE];          /* posted by command 9: not given back */
static int fds[MAX_FDS];
static unsigned nfds;
static uint32_t host_ports[2];
static uint8_t scratch[VSOCK_MAX_PKT_BYTES + 64];

static void add_fd(int fd)
{
	if (nfds < MAX_FDS)
		fds[nfds++] = fd;
	else
		close(fd);
}

static void on_accept(void *ctx, int fd)
{
	(void)ctx;
	add_fd(fd);
}

static int *slot(uint8_t s)
{
	return nfds ? &fds[s % nfds] : NULL;
}

/* --- invariants ------------------------------------------------------------------ */

static void check_device(void)
{
	unsigned n = 0;

	CHECK(vs.nconns <= VSOCK_MAX_CONNS);
	CHECK(vs.ctl_len <= VSOCK_CTL_QUEUE && vs.ctl_head < VSOCK_CTL_QUEUE);
	for (unsigned b = 0; b < VSOCK_HASH_BUCKETS; b++) {
		for (struct vsock_conn *c = vs.buckets[b]; c; c = c->hash_next) {
			CHECK(c->fd >= 0);
			CHECK(c->pend_len <= VSOCK_CONN_BUF_BYTES);
			CHECK(c->pend_off + c->pend_len <= VSOCK_CONN_BUF_BYTES);
			CHECK(c->rx_cnt - c->fwd_cnt == c->pend_len);
			CHECK(vsock_conn_find(&vs, c->host_port, c->guest_port) == c);
			n++;
		}
	}
	CHECK(n == vs.nconns);
	for (struct vsock_conn *c = vs.ready_head; c; c = c->ready_next) {
		CHECK(c->on_ready_list);
		CHECK(c->ready_next || vs.ready_tail == c);
	}
}

static void pump(void)
{
	struct rv_err err;
	for (unsigned i = 0; i < 64; i++)
		if (evloop_run_once(&loop, 0, &err) <= 0)
			break;
}

/* --- the guest ----------------------------------------------------------------------- */

static void post_rx(uint64_t gpa)
{
	struct vdriver_buf b = { gpa, RX_BYTES, true };
	int head = vdriver_add(&drv, RXQ, &b, 1, false);
	if (head >= 0) {
		rx_gpa_of_head[head] = gpa;
		rx_room_of_head[head] = RX_BYTES;
		rx_odd_head[head] = false;
	}
}

static void start_device(void)
{
	vdriver_init(&drv, &mem, &mmio);
	if (vdriver_start(&drv, features, 3, QSIZE) < 0)
		return;
	tx_gpa = vdriver_alloc(&drv, TX_BYTES, 16);
	for (unsigned i = 0; i < NRX; i++)
		post_rx(vdriver_alloc(&drv, RX_BYTES, 16));
	vdriver_kick(&drv, RXQ);
}

static bool device_up(void)
{
	return drv.q[TXQ].size && (vdriver_status(&drv) & VIRTIO_STATUS_DRIVER_OK);
}

static void reap_tx(void)
{
	uint16_t head;
	uint32_t len;
	int rc;
	while ((rc = vdriver_get_used(&drv, TXQ, &head, &len)) != 0)
		CHECK(rc == 1 && len == 0);
}

/* One chain of `len` bytes already in the tx scratch, split in two at `split`. */
static void send_chain(uint32_t len, uint32_t split)
{
	int head;

	if (!device_up())
		return;
	if (split && split < len) {
		struct vdriver_buf b[] = { { tx_gpa, split, false }, { tx_gpa + split, len - split, false } };
		head = vdriver_add(&drv, TXQ, b, 2, false);
	} else {
		struct vdriver_buf b = { tx_gpa, len ? len : 1, false };
		head = vdriver_add(&drv, TXQ, &b, 1, false);
	}
	if (head >= 0)
		vdriver_kick(&drv, TXQ);
	reap_tx();
}

static void tx_packet(struct input *in)
{
	uint8_t sel = take8(in) % 8, op = take8(in), flags = take8(in);
	uint16_t split = take16(in);
	struct vsock_hdr h = { .src_cid = VSOCK_GUEST_CID, .dst_cid = VSOCK_HOST_CID,
			       .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags };

	if (sel < 4) {
		h.src_port = 40000 + sel;
		h.dst_port = sel < 2 ? 1024 : 1025;
	} else if (sel < 6) {
		h.src_port = 5000 + (sel - 4u);
		h.dst_port = host_ports[sel - 4];
	} else if (sel == 6) {
		h.src_port = 40000;
		h.dst_port = 9999;
	} else {
		h.src_port = take32(in);
		h.dst_port = take32(in);
	}
	h.len = take32(in);
	h.buf_alloc = take32(in);
	h.fwd_cnt = take32(in);
	size_t plen = h.len < VSOCK_MAX_PKT_BYTES + 16 ? h.len : VSOCK_MAX_PKT_BYTES + 16;
	const uint8_t *payload = take_bytes(in, &plen);
	if (!device_up())
		return;
	uint8_t *tx = vdriver_host(&drv, tx_gpa, TX_BYTES);
	vsock_hdr_encode(&h, tx);
	memcpy(tx + VSOCK_HDR_BYTES, payload, plen);
	send_chain(VSOCK_HDR_BYTES + (uint32_t)plen, split);
}

static void tx_raw(struct input *in)
{
	uint8_t fix = take8(in);
	size_t len = take16(in) % TX_BYTES;
	uint16_t split = take16(in);
	const uint8_t *p = take_bytes(in, &len);
	if (!device_up())
		return;
	uint8_t *tx = vdriver_host(&drv, tx_gpa, TX_BYTES);
	memcpy(tx, p, len);
	if ((fix & 1) && len >= 16) {
		uint64_t src = VSOCK_GUEST_CID, dst = VSOCK_HOST_CID;
		memcpy(tx, &src, 8);
		memcpy(tx + 8, &dst, 8);
	}
	send_chain((uint32_t)len, split);
}

static void guest_rx(uint8_t arg)
{
	unsigned n = arg & 0x7f;
	uint16_t head;
	uint32_t len;

	if (!device_up())
		return;
	for (unsigned i = 0; i < n; i++) {
		int rc = vdriver_get_used(&drv, RXQ, &head, &len);
		CHECK(rc >= 0);
		if (rc == 0)
			break;
		uint64_t gpa = rx_gpa_of_head[head];
		uint32_t room = rx_room_of_head[head];
		if (room < VSOCK_HDR_BYTES) {
			CHECK(len == 0);     /* too small for a header: back unused */
			continue;
		}
		CHECK(len >= VSOCK_HDR_BYTES && len <= room);
		struct vsock_hdr h;
		vsock_hdr_decode(vdriver_host(&drv, gpa, VSOCK_HDR_BYTES), &h);
		CHECK(h.src_cid == VSOCK_HOST_CID && h.dst_cid == VSOCK_GUEST_CID);
		CHECK(h.type == VSOCK_TYPE_STREAM);
		CHECK(h.op >= VSOCK_OP_REQUEST && h.op <= VSOCK_OP_CREDIT_REQUEST);
		CHECK(len == VSOCK_HDR_BYTES + h.len);
		CHECK(h.op == VSOCK_OP_RW ? h.len > 0 : h.len == 0);
		if (!(arg & 0x80) && !rx_odd_head[head])
			post_rx(gpa);
	}
	vdriver_kick(&drv, RXQ);
}

static void odd_rx(uint8_t arg)
{
	if (!device_up())
		return;
	uint32_t len = arg & 0x7f;
	uint64_t gpa = vdriver_alloc(&drv, len ? len : 1, 16);
	if (!gpa)
		return;
	struct vdriver_buf b = { gpa, len, !(arg & 0x80) };
	int head = vdriver_add(&drv, RXQ, &b, 1, false);
	if (head >= 0) {
		rx_gpa_of_head[head] = gpa;
		rx_room_of_head[head] = b.writable ? len : 0;
		rx_odd_head[head] = true;
	}
	vdriver_kick(&drv, RXQ);
}

/* --- the host ---------------------------------------------------------------------------- */

static void host_connect(uint8_t port)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000 + port % 4u, &err);
	if (fd >= 0)
		add_fd(fd);
}

static void host_write(struct input *in)
{
	int *fd = slot(take8(in));
	size_t len = take16(in);
	size_t have = len;
	const uint8_t *p = take_bytes(in, &have);
	if (have < len) {
		memset(scratch, 0x5a, len);
		memcpy(scratch, p, have);
		p = scratch;
	}
	if (fd && *fd >= 0)
		(void)!send(*fd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
}

static void host_read(struct input *in)
{
	int *fd = slot(take8(in));
	size_t len = take16(in);
	if (fd && *fd >= 0)
		(void)!recv(*fd, scratch, len, MSG_DONTWAIT);
}

static void run(struct input *in)
{
	for (unsigned step = 0; step < MAX_STEPS && in->n; step++) {
		int *fd;
		switch (take8(in) % 10) {
		case 0: tx_packet(in); break;
		case 1: tx_raw(in); break;
		case 2: host_write(in); break;
		case 3: host_read(in); break;
		case 4:
			fd = slot(take8(in));
			if (fd && *fd >= 0) {
				close(*fd);
				*fd = -1;
			}
			break;
		case 5:
			fd = slot(take8(in));
			uint8_t how = take8(in) % 3;
			if (fd && *fd >= 0)
				shutdown(*fd, how == 0 ? SHUT_RD : how == 1 ? SHUT_WR : SHUT_RDWR);
			break;
		case 6: guest_rx(take8(in)); break;
		case 7: host_connect(take8(in)); break;
		case 8:
			vdriver_reset(&drv);
			if (take8(in) & 1)
				start_device();
			break;
		case 9: odd_rx(take8(in)); break;
		}
		pump();
		check_device();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool mapped;
	struct rv_err err;
	struct input in = { data, size };

	if (!mapped) {
		CHECK(guest_mem_create(&mem, MEM_BYTES, &err) == 0);
		mapped = true;
	}
	features = VIRTIO_F_VERSION_1 | (take8(&in) & 1 ? VIRTIO_F_RING_EVENT_IDX : 0);
	nfds = 0;
	memset(rx_gpa_of_head, 0, sizeof(rx_gpa_of_head));
	memset(rx_room_of_head, 0, sizeof(rx_room_of_head));
	memset(rx_odd_head, 0, sizeof(rx_odd_head));
	CHECK(evloop_init(&loop, &err) == 0);
	vsock_init(&vs, VSOCK_GUEST_CID, &mem, &loop, NULL);
	CHECK(virtio_mmio_init(&mmio, &vs.dev, 0xd0000000ull, 5, -1, &loop, &err) == 0);
	CHECK(vsock_listen(&vs, 1024, on_accept, NULL, &err) == 0);
	CHECK(vsock_listen(&vs, 1025, on_accept, NULL, &err) == 0);
	start_device();
	for (unsigned i = 0; i < 2; i++) {
		host_ports[i] = vs.next_host_port;
		host_connect((uint8_t)i);
	}
	pump();

	run(&in);

	for (unsigned i = 0; i < nfds; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	virtio_mmio_destroy(&mmio);
	vsock_destroy(&vs);
	CHECK(vs.nconns == 0);
	evloop_destroy(&loop);
	return 0;
}
