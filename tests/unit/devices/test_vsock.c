/* virtio-vsock and its connection muxer, with the test driver playing the
 * guest (CID 3; rx queue 0, tx queue 1, event queue 2) and real host sockets
 * on the other side. Host events run through the real event loop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/evloop.h"
#include "devices/virtio/mmio.h"
#include "devices/vsock/packet.h"
#include "devices/vsock/vsock.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (64ull << 20)
#define RXQ 0u
#define TXQ 1u
#define EVQ 2u
#define QSIZE 256u
#define RX_PAYLOAD_BYTES 4096u
#define TX_SCRATCH_BYTES (VSOCK_HDR_BYTES + 2 * VSOCK_MAX_PKT_BYTES)
#define LISTEN_PORT 1024u
#define GUEST_BUF_ALLOC (256u * 1024)

static struct guest_mem mem;
static struct evloop loop;
static struct vsock vs;
static struct virtio_mmio mmio;
static struct vdriver drv;
static uint64_t tx_gpa;
static uint64_t rx_gpa_of_head[VIRTQ_MAX_SIZE];
static bool rx_split;          /* post rx buffers as [header][payload] chains */
static bool rx_repost = true;  /* give each rx buffer back once read */

/* What the test's guest knows of each of its connections. */
struct gconn {
	uint32_t host_port, guest_port;
	uint32_t buf_alloc, fwd_cnt;          /* our receive side */
	uint32_t tx_cnt;                      /* bytes we sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool manual_fwd;                      /* the test decides when bytes are consumed */
	uint32_t rx_cnt;
	uint8_t *rx_data;                     /* optional: where RW payload is collected */
	uint32_t rx_cap;
	bool got_shutdown, got_rst;
	uint32_t shutdown_flags;
};

#define MAX_GCONNS 1100
static struct gconn gconns[MAX_GCONNS];
static unsigned ngconns;

/* Host ends accepted from the guest, in order. */
static int accepted[MAX_GCONNS];
static unsigned naccepted;

struct pkt {
	struct vsock_hdr h;
	uint32_t used_len;
	uint8_t data[VSOCK_MAX_PKT_BYTES];
};
static struct pkt pk;

static void on_accept(void *ctx, int fd)
{
	(void)ctx;
	cr_assert_lt(naccepted, MAX_GCONNS);
	accepted[naccepted++] = fd;
}

/* --- the guest --------------------------------------------------------------------- */

static void post_rx(uint64_t gpa)
{
	int head;
	if (rx_split) {
		struct vdriver_buf b[] = { { gpa, VSOCK_HDR_BYTES, true },
					   { gpa + VSOCK_HDR_BYTES, RX_PAYLOAD_BYTES, true } };
		head = vdriver_add(&drv, RXQ, b, 2, false);
	} else {
		struct vdriver_buf b = { gpa, VSOCK_HDR_BYTES + RX_PAYLOAD_BYTES, true };
		head = vdriver_add(&drv, RXQ, &b, 1, false);
	}
	cr_assert_geq(head, 0, "rx queue full");
	rx_gpa_of_head[head] = gpa;
}

static void post_rx_buffers(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdriver_alloc(&drv, VSOCK_HDR_BYTES + RX_PAYLOAD_BYTES, 16);
		cr_assert_neq(gpa, 0, "guest memory exhausted");
		post_rx(gpa);
	}
	vdriver_kick(&drv, RXQ);
}

static void start_with(uint64_t features, unsigned rx_buffers)
{
	struct rv_err err;

	cr_assert_eq(guest_mem_create(&mem, MEM_BYTES, &err), 0, "%s", err.msg);
	cr_assert_eq(evloop_init(&loop, &err), 0, "%s", err.msg);
	vsock_init(&vs, VSOCK_GUEST_CID, &mem, &loop, NULL);
	cr_assert_eq(virtio_mmio_init(&mmio, &vs.dev, 0xd0000000ull, 5, -1, &loop, &err), 0, "%s", err.msg);
	cr_assert_eq(vsock_listen(&vs, LISTEN_PORT, on_accept, NULL, &err), 0, "%s", err.msg);
	vdriver_init(&drv, &mem, &mmio);
	cr_assert_eq(vdriver_read32(&drv, VD_DEVICE_ID), VIRTIO_ID_VSOCK);
	cr_assert_eq(vdriver_start(&drv, features, 3, QSIZE), 0);
	tx_gpa = vdriver_alloc(&drv, TX_SCRATCH_BYTES, 16);
	post_rx_buffers(rx_buffers);
}

/* Half a ring of rx buffers: room for them all to become [header][payload] chains. */
static void start(void)
{
	start_with(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, QSIZE / 2);
}

static void stop(void)
{
	for (unsigned i = 0; i < naccepted; i++)
		if (accepted[i] >= 0)
			close(accepted[i]);
	virtio_mmio_destroy(&mmio);
	vsock_destroy(&vs);
	evloop_destroy(&loop);
	guest_mem_destroy(&mem);
}

/* Runs host-side events until there are none left. */
static void pump(void)
{
	struct rv_err err;

	for (int i = 0; i < 100000; i++) {
		int n = evloop_run_once(&loop, 0, &err);
		cr_assert_geq(n, 0, "%s", err.msg);
		if (n == 0)
			return;
	}
	cr_assert_fail("the event loop never went idle");
}

static struct gconn *gconn_find(uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < ngconns; i++)
		if (gconns[i].host_port == host_port && gconns[i].guest_port == guest_port)
			return &gconns[i];
	return NULL;
}

static struct gconn *gconn_new(uint32_t host_port, uint32_t guest_port)
{
	cr_assert_lt(ngconns, MAX_GCONNS);
	struct gconn *c = &gconns[ngconns++];
	*c = (struct gconn){ .host_port = host_port, .guest_port = guest_port,
			     .buf_alloc = GUEST_BUF_ALLOC };
	return c;
}

/* Puts one packet on the tx queue: header and payload contiguous, or split
 * into [header][payload] (split_at = 44) or anywhere else. */
static void send_raw_split(const struct vsock_hdr *h, const void *payload, uint32_t plen,
			   uint32_t split_at)
{
	uint8_t *tx = vdriver_host(&drv, tx_gpa, TX_SCRATCH_BYTES);
	uint32_t total = VSOCK_HDR_BYTES + plen;
	uint16_t head;
	uint32_t len;

	cr_assert_leq(total, TX_SCRATCH_BYTES);
	vsock_hdr_encode(h, tx);
	if (plen)
		memcpy(tx + VSOCK_HDR_BYTES, payload, plen);
	if (split_at && split_at < total) {
		struct vdriver_buf b[] = { { tx_gpa, split_at, false },
					   { tx_gpa + split_at, total - split_at, false } };
		cr_assert_geq(vdriver_add(&drv, TXQ, b, 2, false), 0);
	} else {
		struct vdriver_buf b = { tx_gpa, total, false };
		cr_assert_geq(vdriver_add(&drv, TXQ, &b, 1, false), 0);
	}
	cr_assert(vdriver_kick(&drv, TXQ), "the device asked for no kick on its tx queue");
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 1, "tx buffer not returned");
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 0);
}

static void send_raw(const struct vsock_hdr *h, const void *payload, uint32_t plen)
{
	send_raw_split(h, payload, plen, plen ? VSOCK_HDR_BYTES : 0);
}

static struct vsock_hdr ghdr(const struct gconn *c, uint16_t op, uint32_t flags, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = VSOCK_GUEST_CID, .dst_cid = VSOCK_HOST_CID,
				   .src_port = c->guest_port, .dst_port = c->host_port, .len = len,
				   .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
				   .buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt };
}

static void gsend(struct gconn *c, uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
	struct vsock_hdr h = ghdr(c, op, flags, len);
	send_raw(&h, data, len);
	if (op == VSOCK_OP_RW)
		c->tx_cnt += len;
}

static uint32_t gcredit(const struct gconn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* One packet from the rx queue into pk (and into its gconn's books): 1, or 0
 * when the device has put nothing there. */
static int guest_rx(void)
{
	uint16_t head;
	uint32_t len;

	pump();
	int rc = vdriver_get_used(&drv, RXQ, &head, &len);
	cr_assert_geq(rc, 0, "the device used an rx descriptor it was never given");
	if (rc == 0)
		return 0;
	uint64_t gpa = rx_gpa_of_head[head];
	uint8_t *b = vdriver_host(&drv, gpa, VSOCK_HDR_BYTES + RX_PAYLOAD_BYTES);
	cr_assert_geq(len, VSOCK_HDR_BYTES, "rx packet of %u bytes", len);
	vsock_hdr_decode(b, &pk.h);
	pk.used_len = len;
	cr_assert_eq(len, VSOCK_HDR_BYTES + pk.h.len, "used length %u, header says %u + 44", len, pk.h.len);
	cr_assert_leq(pk.h.len, RX_PAYLOAD_BYTES);
	memcpy(pk.data, b + VSOCK_HDR_BYTES, pk.h.len);
	cr_assert_eq(pk.h.src_cid, VSOCK_HOST_CID);
	cr_assert_eq(pk.h.dst_cid, VSOCK_GUEST_CID);
	cr_assert_eq(pk.h.type, VSOCK_TYPE_STREAM);
	if (pk.h.op != VSOCK_OP_RST)     /* an RST may answer a packet of no connection */
		cr_assert_eq(pk.h.buf_alloc, VSOCK_CONN_BUF_BYTES);
	if (pk.h.op != VSOCK_OP_RW)
		cr_assert_eq(pk.h.len, 0, "%s with a payload", vsock_op_name(pk.h.op));

	struct gconn *c = gconn_find(pk.h.src_port, pk.h.dst_port);
	if (c) {
		c->peer_buf_alloc = pk.h.buf_alloc;
		c->peer_fwd_cnt = pk.h.fwd_cnt;
		if (pk.h.op == VSOCK_OP_RW) {
			if (c->rx_data) {
				cr_assert_leq(c->rx_cnt + pk.h.len, c->rx_cap, "more data than was sent");
				memcpy(c->rx_data + c->rx_cnt, pk.data, pk.h.len);
			}
			c->rx_cnt += pk.h.len;
			cr_assert_leq(c->rx_cnt - c->fwd_cnt, c->buf_alloc, "the device overran our credit");
			if (!c->manual_fwd)
				c->fwd_cnt += pk.h.len;
		}
		if (pk.h.op == VSOCK_OP_SHUTDOWN) {
			c->got_shutdown = true;
			c->shutdown_flags |= pk.h.flags;
		}
		if (pk.h.op == VSOCK_OP_RST)
			c->got_rst = true;
	}
	if (rx_repost) {
		post_rx(gpa);
		vdriver_kick(&drv, RXQ);
	}
	return 1;
}

static void expect_rx(uint16_t op)
{
	cr_assert_eq(guest_rx(), 1, "no packet; wanted %s", vsock_op_name(op));
	cr_assert_eq(pk.h.op, op, "got %s, wanted %s", vsock_op_name(pk.h.op), vsock_op_name(op));
}

static void expect_no_rx(void)
{
	cr_assert_eq(guest_rx(), 0, "unexpected %s (ports %u -> %u)", vsock_op_name(pk.h.op),
		     pk.h.src_port, pk.h.dst_port);
}

/* A connection the guest opened to LISTEN_PORT: the host end in *fd. */
static struct gconn *guest_connect(uint32_t guest_port, int *fd)
{
	struct gconn *c = gconn_new(LISTEN_PORT, guest_port);
	unsigned before = naccepted;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	cr_assert_eq(naccepted, before + 1, "the listener was not called");
	*fd = accepted[before];
	expect_rx(VSOCK_OP_RESPONSE);
	cr_assert_eq(pk.h.src_port, LISTEN_PORT);
	cr_assert_eq(pk.h.dst_port, guest_port);
	return c;
}

/* A connection the host opened to guest_port, answered by the guest. */
static struct gconn *host_connect(uint32_t guest_port, int *fd)
{
	struct rv_err err;
	*fd = vsock_connect(&vs, guest_port, &err);
	cr_assert_geq(*fd, 0, "%s", err.msg);
	expect_rx(VSOCK_OP_REQUEST);
	cr_assert_eq(pk.h.dst_port, guest_port);
	cr_assert_geq(pk.h.src_port, 1024u);
	struct gconn *c = gconn_new(pk.h.src_port, guest_port);
	c->peer_buf_alloc = pk.h.buf_alloc;
	gsend(c, VSOCK_OP_RESPONSE, 0, NULL, 0);
	return c;
}

/* --- host side ----------------------------------------------------------------------- */

static uint8_t pattern(uint32_t seed, uint32_t off)
{
	return (uint8_t)(off * 7u + seed * 131u + (off >> 9) + (off >> 17));
}

static void fill_pattern(uint8_t *b, uint32_t seed, uint32_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = pattern(seed, off + i);
}

static void check_pattern(const uint8_t *b, uint32_t seed, uint32_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (b[i] != pattern(seed, off + i))
			cr_assert_fail("stream %u: byte %u is 0x%02x, not 0x%02x", seed, off + i, b[i],
				       pattern(seed, off + i));
}

/* Nonblocking read: bytes read, 0 at EOF, -1 when nothing is there (EAGAIN). */
static ssize_t host_read(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
	if (n < 0) {
		cr_assert_eq(errno, EAGAIN, "recv: %s", strerror(errno));
		return -1;
	}
	return n;
}

static void host_write(int fd, const void *buf, size_t len)
{
	cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT), (ssize_t)len, "send: %s",
		     strerror(errno));
}

/* Reads everything up to EOF (which must come), checking nothing else. */
static size_t host_drain_to_eof(int fd)
{
	static uint8_t buf[1 << 16];
	size_t total = 0;
	for (;;) {
		pump();
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "no EOF on the host end after %zu bytes", total);
		if (n == 0)
			return total;
		total += (size_t)n;
	}
}

static int host_queued(int fd)
{
	int n = 0;
	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* --- connections both ways ----------------------------------------------------------- */

Test(vsock, host_connect_sends_request_and_then_carries_data_both_ways, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = host_connect(5000, &fd);
	cr_assert_eq(vs.nconns, 1);
	vdriver_irqs(&drv);
	vdriver_isr_ack(&drv);

	host_write(fd, "hello", 5);
	expect_rx(VSOCK_OP_RW);
	cr_assert_geq(vdriver_irqs(&drv), 1, "data for the guest raises its interrupt");
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_USED);
	cr_assert_eq(pk.h.len, 5);
	cr_assert_arr_eq(pk.data, "hello", 5);
	cr_assert_eq(pk.h.src_port, c->host_port);
	cr_assert_eq(pk.h.dst_port, 5000);

	gsend(c, VSOCK_OP_RW, 0, "world!", 6);
	char buf[16];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 6);
	cr_assert_arr_eq(buf, "world!", 6);
	expect_no_rx();
	close(fd);
}

Test(vsock, host_connect_before_driver_ok_fails)
{
	struct rv_err err;
	cr_assert_eq(guest_mem_create(&mem, 1 << 20, &err), 0);
	cr_assert_eq(evloop_init(&loop, &err), 0);
	vsock_init(&vs, VSOCK_GUEST_CID, &mem, &loop, NULL);
	cr_assert_eq(vsock_connect(&vs, 5000, &err), -1);
	cr_assert_eq(err.code, ENOTCONN);
	vsock_destroy(&vs);
	evloop_destroy(&loop);
	guest_mem_destroy(&mem);
}

Test(vsock, host_data_waits_for_the_guest_response, .init = start, .fini = stop)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000, &err);
	cr_assert_geq(fd, 0);
	host_write(fd, "early", 5);
	expect_rx(VSOCK_OP_REQUEST);
	expect_no_rx();
	struct gconn *c = gconn_new(pk.h.src_port, 5000);
	gsend(c, VSOCK_OP_RESPONSE, 0, NULL, 0);
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "early", 5);
	close(fd);
}

Test(vsock, refused_host_connect_reads_as_eof, .init = start, .fini = stop)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000, &err);
	expect_rx(VSOCK_OP_REQUEST);
	struct gconn *c = gconn_new(pk.h.src_port, 5000);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	cr_assert_eq(host_drain_to_eof(fd), 0);
	cr_assert_eq(vs.nconns, 0);
	expect_no_rx();
	close(fd);
}

Test(vsock, host_connections_get_distinct_host_ports, .init = start, .fini = stop)
{
	int a, b;
	struct gconn *ca = host_connect(5000, &a);
	struct gconn *cb = host_connect(5000, &b);
	cr_assert_neq(ca->host_port, cb->host_port);
	close(a);
	close(b);
}

Test(vsock, guest_connect_to_listening_port_is_accepted, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	cr_assert_eq(vs.nconns, 1);
	cr_assert_eq(pk.h.fwd_cnt, 0);

	gsend(c, VSOCK_OP_RW, 0, "ping", 4);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "ping", 4);
	host_write(fd, "pong", 4);
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "pong", 4);
	cr_assert_eq(pk.h.fwd_cnt, 4, "the header reports what reached the host");
}

Test(vsock, guest_connect_to_unbound_port_gets_rst, .init = start, .fini = stop)
{
	struct gconn *c = gconn_new(9999, 40000);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(pk.h.src_port, 9999);
	cr_assert_eq(pk.h.dst_port, 40000);
	cr_assert_eq(naccepted, 0);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, packet_for_no_connection_gets_rst_but_rst_gets_nothing, .init = start, .fini = stop)
{
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	gsend(c, VSOCK_OP_RW, 0, "x", 1);
	expect_rx(VSOCK_OP_RST);
	gsend(c, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	expect_no_rx();
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, second_request_on_a_live_connection_resets_it, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(host_drain_to_eof(fd), 0);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, rx_and_tx_chains_split_anywhere_work, .init = start, .fini = stop)
{
	int fd;
	rx_split = true;
	struct gconn *c = guest_connect(40000, &fd);
	uint8_t data[300];
	fill_pattern(data, 1, 0, sizeof(data));

	/* Split inside the header, and inside the payload. */
	struct vsock_hdr h = ghdr(c, VSOCK_OP_RW, 0, 300);
	send_raw_split(&h, data, 300, 10);
	send_raw_split(&h, data, 300, VSOCK_HDR_BYTES + 123);
	uint8_t buf[600];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 600);
	check_pattern(buf, 1, 0, 300);
	check_pattern(buf + 300, 1, 0, 300);

	/* The rx pass posts [header][payload] chains: both get filled. */
	post_rx_buffers(4);
	host_write(fd, data, 300);
	expect_rx(VSOCK_OP_RW);
	cr_assert_eq(pk.h.len, 300);
	check_pattern(pk.data, 1, 0, 300);
}

/* --- malformed packets are dropped ---------------------------------------------------- */

Test(vsock, drops_malformed_packets_and_keeps_the_connection, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t big[VSOCK_MAX_PKT_BYTES + 16];
	struct vsock_hdr h;

	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.src_cid = 4;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.src_cid = VSOCK_HOST_CID;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.dst_cid = 1;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.dst_cid = VSOCK_GUEST_CID;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.src_cid |= 1ull << 32;        /* CIDs are 64 bits on the wire */
	send_raw(&h, "evil", 4);

	h = ghdr(c, VSOCK_OP_INVALID, 0, 0);
	send_raw(&h, NULL, 0);
	h = ghdr(c, VSOCK_OP_CREDIT_REQUEST + 1, 0, 0);
	send_raw(&h, NULL, 0);
	h = ghdr(c, 0xffff, 0, 0);
	send_raw(&h, NULL, 0);

	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.type = 2;                     /* SOCK_SEQPACKET */
	send_raw(&h, "evil", 4);

	h = ghdr(c, VSOCK_OP_RW, 0, 100);   /* only 10 bytes follow */
	send_raw_split(&h, "0123456789", 10, VSOCK_HDR_BYTES);
	h = ghdr(c, VSOCK_OP_RW, 0, UINT32_MAX);
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, VSOCK_MAX_PKT_BYTES + 1);
	send_raw(&h, big, VSOCK_MAX_PKT_BYTES + 1);

	h = ghdr(c, VSOCK_OP_CREDIT_UPDATE, 0, 4);
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, 4);
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RST, 0, 4);
	send_raw(&h, "evil", 4);

	/* A chain shorter than a header, and a header whose tail is writable. */
	uint8_t *tx = vdriver_host(&drv, tx_gpa, VSOCK_HDR_BYTES);
	h = ghdr(c, VSOCK_OP_RST, 0, 0);
	vsock_hdr_encode(&h, tx);
	struct vdriver_buf shortb = { tx_gpa, VSOCK_HDR_BYTES - 1, false };
	vdriver_add(&drv, TXQ, &shortb, 1, false);
	struct vdriver_buf halfw[] = { { tx_gpa, 20, false }, { tx_gpa + 20, VSOCK_HDR_BYTES - 20, true } };
	vdriver_add(&drv, TXQ, halfw, 2, false);
	vdriver_kick(&drv, TXQ);
	uint16_t head;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 1);
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 1);

	expect_no_rx();
	char buf[8];
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), -1, "nothing reached the host, not even EOF");
	cr_assert_eq(vs.nconns, 1);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, 0);

	/* The connection works as before. */
	gsend(c, VSOCK_OP_RW, 0, "fine", 4);
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "fine", 4);
}

Test(vsock, accepts_a_packet_of_exactly_the_maximum_length, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t data[VSOCK_MAX_PKT_BYTES], got[VSOCK_MAX_PKT_BYTES];
	fill_pattern(data, 7, 0, sizeof(data));
	gsend(c, VSOCK_OP_RW, 0, data, VSOCK_MAX_PKT_BYTES);
	pump();
	size_t n = 0;
	while (n < sizeof(got)) {
		ssize_t r = host_read(fd, got + n, sizeof(got) - n);
		cr_assert_gt(r, 0);
		n += (size_t)r;
	}
	check_pattern(got, 7, 0, sizeof(got));
}

Test(vsock, broken_tx_ring_sets_needs_reset, .init = start, .fini = stop)
{
	int fd;
	guest_connect(40000, &fd);
	vdriver_set_avail_idx(&drv, TXQ, (uint16_t)(drv.q[TXQ].avail_idx + QSIZE + 1));
	vdriver_notify(&drv, TXQ);
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_CONFIG);
	/* The host can no longer reach the guest, but nothing crashes either. */
	host_write(fd, "lost", 4);
	pump();
}

/* Linux never posts an rx buffer without room for a header: a driver that
 * does is not trusted any further (and cannot make the rx pass spin on it). */
Test(vsock, rx_chain_too_small_for_a_header_breaks_the_device, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1, 0);
	uint64_t small = vdriver_alloc(&drv, 16, 16);
	struct vdriver_buf b = { small, 16, true };
	cr_assert_geq(vdriver_add(&drv, RXQ, &b, 1, false), 0);
	post_rx_buffers(4);

	struct gconn *c = gconn_new(9999, 40000);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);   /* owes an RST */
	pump();
	uint16_t head;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, RXQ, &head, &len), 0, "nothing is delivered");
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, "status 0x%x", vdriver_status(&drv));
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_CONFIG, "the guest is told by a config interrupt");
}

/* --- flow control ---------------------------------------------------------------------- */

Test(vsock, guest_exceeding_its_credit_is_reset, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES];
	uint32_t sent = 0;

	/* The host reads nothing. The guest ignores the credit it is given. */
	for (unsigned i = 0; i < 64; i++) {
		fill_pattern(chunk, 3, sent, sizeof(chunk));
		uint32_t queued_before = (uint32_t)host_queued(fd);
		gsend(c, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		pump();
		uint32_t pending = sent + (uint32_t)sizeof(chunk) - (uint32_t)host_queued(fd);
		while (guest_rx()) {
			if (pk.h.op == VSOCK_OP_RST)
				break;
			cr_assert_eq(pk.h.op, VSOCK_OP_CREDIT_UPDATE);
		}
		if (c->got_rst) {
			cr_assert_gt(sent + sizeof(chunk) - queued_before, VSOCK_CONN_BUF_BYTES,
				     "reset while within credit: %u bytes pending", pending);
			break;
		}
		cr_assert_leq(pending, VSOCK_CONN_BUF_BYTES);
		sent += sizeof(chunk);
	}
	cr_assert(c->got_rst, "the device took %u bytes without complaint", sent);
	cr_assert_eq(vs.nconns, 0);

	/* What reached the socket is intact, then EOF. */
	static uint8_t buf[1 << 16];
	uint32_t got = 0;
	for (;;) {
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "no EOF after the reset");
		if (n == 0)
			break;
		check_pattern(buf, 3, got, (uint32_t)n);
		got += (uint32_t)n;
	}
	cr_assert_leq(got, sent);
}

/* The host writes `total` bytes of stream `seed` (it fits in the socket). */
static void host_write_pattern(int fd, uint32_t seed, uint32_t total)
{
	uint8_t *data = malloc(total);
	fill_pattern(data, seed, 0, total);
	host_write(fd, data, total);
	free(data);
}

static uint32_t rx_all(struct gconn *c)
{
	uint32_t before = c->rx_cnt;
	while (guest_rx())
		;
	return c->rx_cnt - before;
}

Test(vsock, host_data_stops_at_guest_credit_and_resumes_after_credit_update, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 10000;
	c->manual_fwd = true;
	c->rx_data = malloc(30000);
	c->rx_cap = 30000;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);

	host_write_pattern(fd, 11, 30000);
	cr_assert_eq(rx_all(c), 10000, "exactly the credit was sent");
	cr_assert(c->got_rst == false);

	/* The device asked for credit once it ran out, and waits. */
	c->fwd_cnt = 10000;
	gsend(c, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	cr_assert_eq(rx_all(c), 10000);
	c->fwd_cnt = 20000;
	gsend(c, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	cr_assert_eq(rx_all(c), 10000);
	check_pattern(c->rx_data, 11, 0, 30000);
	free(c->rx_data);
}

Test(vsock, host_data_asks_for_credit_when_it_runs_out, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 5000;
	c->manual_fwd = true;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);
	host_write_pattern(fd, 1, 8000);
	unsigned credit_requests = 0;
	while (guest_rx())
		credit_requests += pk.h.op == VSOCK_OP_CREDIT_REQUEST;
	cr_assert_eq(c->rx_cnt, 5000);
	cr_assert_eq(credit_requests, 1);

	/* A CREDIT_REQUEST from the guest is answered with our numbers. */
	gsend(c, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_CREDIT_UPDATE);
	cr_assert_eq(pk.h.buf_alloc, VSOCK_CONN_BUF_BYTES);
	expect_no_rx();
}

Test(vsock, credit_carried_by_a_data_packet_resumes_host_data, .init = start, .fini = stop)
{
	/* Linux learns credit from every header and sends no CREDIT_UPDATE when
	 * its own data packets already carried the new fwd_cnt. */
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 10000;
	c->manual_fwd = true;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);
	host_write_pattern(fd, 5, 20000);
	cr_assert_eq(rx_all(c), 10000);

	c->fwd_cnt = 10000;
	gsend(c, VSOCK_OP_RW, 0, "reply", 5);
	cr_assert_eq(rx_all(c), 10000, "the credit in the RW header was not used");
}

Test(vsock, credit_carried_by_a_shutdown_resumes_host_data, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 10000;
	c->manual_fwd = true;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);
	host_write_pattern(fd, 5, 20000);
	cr_assert_eq(rx_all(c), 10000);

	c->fwd_cnt = 10000;
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	cr_assert_eq(rx_all(c), 10000);
}

Test(vsock, host_data_waits_for_rx_buffers_then_flows, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, 2);
	rx_repost = false;
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	c->rx_data = malloc(20000);
	c->rx_cap = 20000;
	host_write_pattern(fd, 4, 20000);
	cr_assert_eq(rx_all(c), RX_PAYLOAD_BYTES, "one buffer was left after the RESPONSE");
	post_rx_buffers(2);
	cr_assert_eq(rx_all(c), 2 * RX_PAYLOAD_BYTES);
	post_rx_buffers(10);
	cr_assert_eq(rx_all(c), 20000 - 3 * RX_PAYLOAD_BYTES);
	check_pattern(c->rx_data, 4, 0, 20000);
	free(c->rx_data);
}

Test(vsock, backpressure_bounds_pending_bytes_then_flushes_when_the_host_reads, .init = start, .fini = stop, .timeout = 60)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	const uint32_t total = 4u << 20;
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES], buf[100000];
	uint32_t got = 0;
	unsigned stalls = 0;

	c->peer_buf_alloc = pk.h.buf_alloc;
	c->peer_fwd_cnt = pk.h.fwd_cnt;
	for (unsigned round = 0; got < total; round++) {
		cr_assert_lt(round, 100000, "no progress: sent %u, host got %u", c->tx_cnt, got);
		/* The guest sends while it has credit, as Linux does. */
		while (c->tx_cnt < total && gcredit(c) > 0) {
			uint32_t n = gcredit(c);
			if (n > sizeof(chunk))
				n = sizeof(chunk);
			if (n > total - c->tx_cnt)
				n = total - c->tx_cnt;
			fill_pattern(chunk, 8, c->tx_cnt, n);
			gsend(c, VSOCK_OP_RW, 0, chunk, n);
			while (guest_rx())
				cr_assert_eq(pk.h.op, VSOCK_OP_CREDIT_UPDATE, "got %s", vsock_op_name(pk.h.op));
		}
		/* What the device holds for the unread host socket stays bounded. */
		uint32_t parked = c->tx_cnt - got - (uint32_t)host_queued(fd);
		cr_assert_leq(parked, VSOCK_CONN_BUF_BYTES, "the device parked %u bytes", parked);
		if (gcredit(c) == 0)
			stalls++;
		/* Only now does the host read, a little at a time. */
		ssize_t n = host_read(fd, buf, sizeof(buf));
		if (n > 0) {
			check_pattern(buf, 8, got, (uint32_t)n);
			got += (uint32_t)n;
		}
		pump();
		while (guest_rx())
			cr_assert_eq(pk.h.op, VSOCK_OP_CREDIT_UPDATE, "got %s", vsock_op_name(pk.h.op));
	}
	cr_assert_gt(stalls, 0, "the guest never ran out of credit: the test tested nothing");
	cr_assert_eq(vs.nconns, 1);
}

/* --- shutdown and reset -------------------------------------------------------------------- */

Test(vsock, guest_shutdown_send_gives_the_host_eof, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RW, 0, "last", 4);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	pump();
	char buf[8];
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 4);
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 0, "EOF after the data");

	/* The other direction still works. */
	host_write(fd, "more", 4);
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "more", 4);

	/* Data after SHUTDOWN(SEND) is a protocol error. */
	gsend(c, VSOCK_OP_RW, 0, "late", 4);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, guest_shutdown_send_waits_for_parked_bytes, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES];
	uint32_t sent = 0;

	/* Fill the socket and park some bytes in the device, then shut down. */
	while (sent < 128u * 1024 || (uint32_t)host_queued(fd) == sent) {
		fill_pattern(chunk, 2, sent, sizeof(chunk));
		gsend(c, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		pump();
		while (guest_rx())
			;
		cr_assert_lt(sent, 2u << 20, "the host socket never filled up");
	}
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);

	static uint8_t buf[1 << 16];
	uint32_t got = 0;
	for (;;) {
		pump();
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "stalled after %u of %u bytes", got, sent);
		if (n == 0)
			break;
		check_pattern(buf, 2, got, (uint32_t)n);
		got += (uint32_t)n;
	}
	cr_assert_eq(got, sent, "EOF only after every byte");
}

/* Parks bytes in the device behind a full host socket; returns how many were sent. */
static uint32_t park_bytes(struct gconn *c, int fd, uint32_t seed)
{
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES];
	uint32_t sent = 0;

	while (sent < 128u * 1024 || (uint32_t)host_queued(fd) == sent) {
		fill_pattern(chunk, seed, sent, sizeof(chunk));
		gsend(c, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		pump();
		while (guest_rx())
			;
		cr_assert_lt(sent, 2u << 20, "the host socket never filled up");
	}
	return sent;
}

static void expect_all_then_eof(int fd, uint32_t seed, uint32_t sent)
{
	static uint8_t buf[1 << 16];
	uint32_t got = 0;

	for (;;) {
		pump();
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "stalled after %u of %u bytes", got, sent);
		if (n == 0)
			break;
		check_pattern(buf, seed, got, (uint32_t)n);
		got += (uint32_t)n;
	}
	cr_assert_eq(got, sent, "EOF only after every byte");
}

/* Linux waits 8 s for our RST after closing, then resets and forgets: the RST
 * goes out at once, and what the guest sent still reaches a slow host reader. */
Test(vsock, guest_close_is_answered_at_once_and_parked_bytes_still_arrive, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	uint32_t sent = park_bytes(c, fd, 3);

	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);   /* the port pair is free again at once */
	expect_rx(VSOCK_OP_RESPONSE);
	expect_all_then_eof(fd, 3, sent);
}

Test(vsock, guest_rst_keeps_parked_bytes_for_the_host, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	uint32_t sent = park_bytes(c, fd, 4);

	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	expect_no_rx();
	expect_all_then_eof(fd, 4, sent);
	cr_assert_eq(vs.nconns, 0, "freed once flushed");
}

Test(vsock, guest_shutdown_both_ways_resets_and_closes, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(host_drain_to_eof(fd), 0);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, guest_shutdown_rcv_stops_host_data, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV, NULL, 0);
	host_write(fd, "unwanted", 8);
	expect_no_rx();
	gsend(c, VSOCK_OP_RW, 0, "still", 5);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 5);
}

Test(vsock, host_close_sends_data_then_shutdown_to_the_guest, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	host_write(fd, "bye", 3);
	close(fd);
	accepted[0] = -1;
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "bye", 3);
	expect_rx(VSOCK_OP_SHUTDOWN);
	cr_assert_eq(pk.h.flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	cr_assert_eq(vs.nconns, 0, "a closed host end frees the connection");

	/* Linux answers a full shutdown with an RST: nothing comes back. */
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	expect_no_rx();
}

Test(vsock, host_half_close_sends_shutdown_send_only, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	host_write(fd, "x", 1);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	expect_rx(VSOCK_OP_RW);
	expect_rx(VSOCK_OP_SHUTDOWN);
	cr_assert_eq(pk.h.flags, VSOCK_SHUTDOWN_SEND);
	gsend(c, VSOCK_OP_RW, 0, "reply", 5);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 5);
	cr_assert_eq(vs.nconns, 1);
}

Test(vsock, host_close_with_guest_receive_shut_frees_the_connection, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV, NULL, 0);
	close(fd);
	accepted[0] = -1;
	pump();
	while (guest_rx())
		;
	cr_assert_eq(vs.nconns, 0, "the connection outlived both of its ends");
}

Test(vsock, host_close_before_response_resets, .init = start, .fini = stop)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000, &err);
	expect_rx(VSOCK_OP_REQUEST);
	close(fd);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, guest_rst_gives_the_host_eof, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RW, 0, "abc", 3);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	cr_assert_eq(host_drain_to_eof(fd), 3);
	cr_assert_eq(vs.nconns, 0);
	expect_no_rx();
}

Test(vsock, device_reset_closes_every_host_end, .init = start, .fini = stop)
{
	int fds[6];
	for (unsigned i = 0; i < 3; i++)
		guest_connect(40000 + i, &fds[i]);
	for (unsigned i = 3; i < 6; i++)
		host_connect(5000 + i, &fds[i]);
	cr_assert_eq(vs.nconns, 6);

	vdriver_reset(&drv);
	cr_assert_eq(vs.nconns, 0);
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(host_drain_to_eof(fds[i]), 0, "connection %u", i);
	for (unsigned i = 3; i < 6; i++)
		close(fds[i]);

	struct rv_err err;
	cr_assert_eq(vsock_connect(&vs, 5000, &err), -1, "no connections while the device is down");
}

Test(vsock, works_again_after_a_device_reset, .init = start, .fini = stop)
{
	int fd;
	guest_connect(40000, &fd);
	vdriver_reset(&drv);
	pump();
	ngconns = 0;
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 3, 64), 0);
	post_rx_buffers(8);
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RW, 0, "again", 5);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 5);
}

/* --- many connections --------------------------------------------------------------- */

Test(vsock, two_hundred_concurrent_connections_carry_distinct_data, .init = start, .fini = stop, .timeout = 60)
{
	enum { N = 200, BYTES = 20000 };
	int fds[N];
	struct gconn *cs[N];
	uint8_t *data = malloc(BYTES);

	rx_split = true;
	for (unsigned i = 0; i < N; i++) {
		if (i % 2)
			cs[i] = guest_connect(50000 + i, &fds[i]);
		else
			cs[i] = host_connect(6000 + i, &fds[i]);
		cs[i]->rx_data = malloc(BYTES);
		cs[i]->rx_cap = BYTES;
	}
	cr_assert_eq(vs.nconns, N);

	/* Every host end writes its own stream; every guest end sends its own. */
	for (unsigned i = 0; i < N; i++) {
		fill_pattern(data, 1000 + i, 0, BYTES);
		host_write(fds[i], data, BYTES);
	}
	for (unsigned i = 0; i < N; i++) {
		for (uint32_t off = 0; off < BYTES; off += 5000) {
			fill_pattern(data, 2000 + i, off, 5000);
			gsend(cs[i], VSOCK_OP_RW, 0, data, 5000);
		}
	}
	while (guest_rx())
		;
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(cs[i]->rx_cnt, BYTES, "connection %u got %u bytes", i, cs[i]->rx_cnt);
		check_pattern(cs[i]->rx_data, 1000 + i, 0, BYTES);
		ssize_t n = recv(fds[i], data, BYTES, MSG_DONTWAIT | MSG_WAITALL);
		cr_assert_eq(n, BYTES, "host end %u read %zd", i, n);
		check_pattern(data, 2000 + i, 0, BYTES);
	}

	/* Closing every host end tells the guest, and frees every connection. */
	for (unsigned i = 0; i < N; i++)
		close(fds[i]);
	naccepted = 0;
	unsigned shutdowns = 0;
	while (guest_rx())
		shutdowns += pk.h.op == VSOCK_OP_SHUTDOWN;
	cr_assert_eq(shutdowns, N);
	cr_assert_eq(vs.nconns, 0);
	for (unsigned i = 0; i < N; i++)
		free(cs[i]->rx_data);
	free(data);
}

Test(vsock, refuses_connections_beyond_the_limit, .init = start, .fini = stop, .timeout = 60)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct gconn *c = gconn_new(LISTEN_PORT, 10000 + i);
		gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
		expect_rx(VSOCK_OP_RESPONSE);
	}
	cr_assert_eq(naccepted, VSOCK_MAX_CONNS);
	struct gconn *c = gconn_new(LISTEN_PORT, 9);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(naccepted, VSOCK_MAX_CONNS);

	/* One goes, another may come. */
	close(accepted[0]);
	accepted[0] = -1;
	while (guest_rx())
		;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RESPONSE);
}

Test(vsock, many_resets_without_rx_buffers_stay_bounded, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1, 0);
	/* Requests to a closed port, and nowhere to put the answers. */
	for (unsigned i = 0; i < 1000; i++) {
		struct gconn c = { .host_port = 9999, .guest_port = 20000 + i, .buf_alloc = 4096 };
		gsend(&c, VSOCK_OP_REQUEST, 0, NULL, 0);
	}
	post_rx_buffers(QSIZE);
	unsigned rsts = 0;
	while (guest_rx()) {
		cr_assert_eq(pk.h.op, VSOCK_OP_RST);
		rsts++;
	}
	cr_assert_eq(rsts, VSOCK_CTL_QUEUE, "what did not fit was dropped, the rest delivered");
}

/* A guest that keeps its tx ring full must not keep the main loop to itself:
 * after VIRTIO_NOTIFY_BUDGET packets the device says there is more, and the
 * transport comes back after the loop's other events. */
Test(vsock, tx_stops_at_the_budget_and_says_there_is_more, .init = start, .fini = stop)
{
	struct gconn *c = gconn_new(9999, 40000);
	struct vsock_hdr h = ghdr(c, VSOCK_OP_RST, 0, 0);
	uint8_t *tx = vdriver_host(&drv, tx_gpa, VSOCK_HDR_BYTES);
	struct vdriver_buf b = { tx_gpa, VSOCK_HDR_BYTES, false };

	vsock_hdr_encode(&h, tx);
	for (unsigned i = 0; i < VIRTIO_NOTIFY_BUDGET; i++)
		cr_assert_geq(vdriver_add(&drv, TXQ, &b, 1, false), 0);
	cr_assert_eq(VIRTIO_NOTIFY_BUDGET, QSIZE, "the test fills exactly one ring");
	pthread_mutex_lock(&vs.dev.lock);
	bool more = vs.dev.ops->queue_notify(&vs.dev, TXQ);
	pthread_mutex_unlock(&vs.dev.lock);
	cr_assert(more, "a full budget of packets must report more work");
	cr_assert_eq(vdriver_used_idx(&drv, TXQ), VIRTIO_NOTIFY_BUDGET, "every packet taken was returned");
	pthread_mutex_lock(&vs.dev.lock);
	more = vs.dev.ops->queue_notify(&vs.dev, TXQ);
	pthread_mutex_unlock(&vs.dev.lock);
	cr_assert_not(more, "an empty ring has no more work");
}

Test(vsock, a_host_port_has_one_listener, .init = start, .fini = stop)
{
	struct rv_err err;

	cr_assert_eq(vsock_listen(&vs, LISTEN_PORT, on_accept, NULL, &err), -1);
	cr_assert_eq(err.code, EADDRINUSE);
	cr_assert(strstr(err.msg, "already has a listener"), "%s", err.msg);
}
