/* The vsock device tests' harness: state, the guest's side of the protocol
 * through the test driver, and host socket helpers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/devices/vsock_harness.h"

struct guest_mem mem;
struct evloop loop;
struct vsock vs;
struct virtio_mmio mmio;
struct vdriver drv;
uint64_t tx_gpa;
uint64_t rx_gpa_of_head[VIRTQ_MAX_SIZE];
bool rx_split;          /* post rx buffers as [header][payload] chains */
bool rx_repost = true;  /* give each rx buffer back once read */


struct gconn gconns[MAX_GCONNS];
unsigned ngconns;

/* Host ends accepted from the guest, in order. */
int accepted[MAX_GCONNS];
unsigned naccepted;

struct pkt pk;

void on_accept(void *ctx, int fd)
{
	(void)ctx;
	cr_assert_lt(naccepted, MAX_GCONNS);
	accepted[naccepted++] = fd;
}

/* --- the guest --------------------------------------------------------------------- */

void post_rx(uint64_t gpa)
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

void post_rx_buffers(unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdriver_alloc(&drv, VSOCK_HDR_BYTES + RX_PAYLOAD_BYTES, 16);
		cr_assert_neq(gpa, 0, "guest memory exhausted");
		post_rx(gpa);
	}
	vdriver_kick(&drv, RXQ);
}

void start_with(uint64_t features, unsigned rx_buffers)
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
void start(void)
{
	start_with(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, QSIZE / 2);
}

void stop(void)
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
void pump(void)
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

struct gconn *gconn_find(uint32_t host_port, uint32_t guest_port)
{
	for (unsigned i = 0; i < ngconns; i++)
		if (gconns[i].host_port == host_port && gconns[i].guest_port == guest_port)
			return &gconns[i];
	return NULL;
}

struct gconn *gconn_new(uint32_t host_port, uint32_t guest_port)
{
	cr_assert_lt(ngconns, MAX_GCONNS);
	struct gconn *c = &gconns[ngconns++];
	*c = (struct gconn){ .host_port = host_port, .guest_port = guest_port,
			     .buf_alloc = GUEST_BUF_ALLOC };
	return c;
}

/* Puts one packet on the tx queue: header and payload contiguous, or split
 * into [header][payload] (split_at = 44) or anywhere else. */
void send_raw_split(const struct vsock_hdr *h, const void *payload, uint32_t plen,
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

void send_raw(const struct vsock_hdr *h, const void *payload, uint32_t plen)
{
	send_raw_split(h, payload, plen, plen ? VSOCK_HDR_BYTES : 0);
}

struct vsock_hdr ghdr(const struct gconn *c, uint16_t op, uint32_t flags, uint32_t len)
{
	return (struct vsock_hdr){ .src_cid = VSOCK_GUEST_CID, .dst_cid = VSOCK_HOST_CID,
				   .src_port = c->guest_port, .dst_port = c->host_port, .len = len,
				   .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
				   .buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt };
}

void gsend(struct gconn *c, uint16_t op, uint32_t flags, const void *data, uint32_t len)
{
	struct vsock_hdr h = ghdr(c, op, flags, len);
	send_raw(&h, data, len);
	if (op == VSOCK_OP_RW)
		c->tx_cnt += len;
}

uint32_t gcredit(const struct gconn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

/* One packet from the rx queue into pk (and into its gconn's books): 1, or 0
 * when the device has put nothing there. */
int guest_rx(void)
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

void expect_rx(uint16_t op)
{
	cr_assert_eq(guest_rx(), 1, "no packet; wanted %s", vsock_op_name(op));
	cr_assert_eq(pk.h.op, op, "got %s, wanted %s", vsock_op_name(pk.h.op), vsock_op_name(op));
}

void expect_no_rx(void)
{
	cr_assert_eq(guest_rx(), 0, "unexpected %s (ports %u -> %u)", vsock_op_name(pk.h.op),
		     pk.h.src_port, pk.h.dst_port);
}

/* A connection the guest opened to LISTEN_PORT: the host end in *fd. */
struct gconn *guest_connect(uint32_t guest_port, int *fd)
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
struct gconn *host_connect(uint32_t guest_port, int *fd)
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

uint8_t pattern(uint32_t seed, uint32_t off)
{
	return (uint8_t)(off * 7u + seed * 131u + (off >> 9) + (off >> 17));
}

void fill_pattern(uint8_t *b, uint32_t seed, uint32_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		b[i] = pattern(seed, off + i);
}

void check_pattern(const uint8_t *b, uint32_t seed, uint32_t off, uint32_t len)
{
	for (uint32_t i = 0; i < len; i++)
		if (b[i] != pattern(seed, off + i))
			cr_assert_fail("stream %u: byte %u is 0x%02x, not 0x%02x", seed, off + i, b[i],
				       pattern(seed, off + i));
}

/* Nonblocking read: bytes read, 0 at EOF, -1 when nothing is there (EAGAIN). */
ssize_t host_read(int fd, void *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
	if (n < 0) {
		cr_assert_eq(errno, EAGAIN, "recv: %s", strerror(errno));
		return -1;
	}
	return n;
}

void host_write(int fd, const void *buf, size_t len)
{
	cr_assert_eq(send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT), (ssize_t)len, "send: %s",
		     strerror(errno));
}

/* Reads everything up to EOF (which must come), checking nothing else. */
size_t host_drain_to_eof(int fd)
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

int host_queued(int fd)
{
	int n = 0;
	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

