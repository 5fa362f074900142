/* virtio-net through the test driver, its tap a SOCK_SEQPACKET socket (one
 * frame with its header per call, as a tap): frames both ways intact,
 * mergeable receive buffers, a guest with no buffers, and what a hostile
 * driver may put in a header or a ring. */
#include <criterion/criterion.h>
#include <endian.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "devices/net/net.h"
#include "devices/virtio/mmio.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (16u << 20)
#define QSIZE 64u
#define BASE_FEATURES (VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX)

static struct guest_mem mem;
static struct evloop loop;
static struct vnet net;
static struct virtio_mmio mmio;
static struct vdriver drv;
static int wire = -1;          /* the host's end of the "tap" */
static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 };

static void start(uint64_t features)
{
	struct rv_err err;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv), 0);
	wire = sv[1];
	cr_assert_eq(guest_mem_create(&mem, MEM_BYTES, &err), 0, "%s", err.msg);
	cr_assert_eq(evloop_init(&loop, &err), 0, "%s", err.msg);
	cr_assert_eq(vnet_init(&net, sv[0], mac, 1500, &mem, &loop, NULL, &err), 0, "%s", err.msg);
	cr_assert_eq(virtio_mmio_init(&mmio, &net.dev, 0xd0000000ull, 5, -1, &loop, &err), 0,
		     "%s", err.msg);
	vdriver_init(&drv, &mem, &mmio);
	cr_assert_eq(vdriver_read32(&drv, VD_DEVICE_ID), VIRTIO_ID_NET);
	cr_assert_eq(vdriver_start(&drv, features, 2, QSIZE), 0);
}

static void stop(void)
{
	virtio_mmio_destroy(&mmio);
	vnet_destroy(&net);
	evloop_destroy(&loop);
	guest_mem_destroy(&mem);
	close(wire);
}

static void pump(void)
{
	struct rv_err err;

	for (int i = 0; i < 10000; i++) {
		int n = evloop_run_once(&loop, 0, &err);
		cr_assert_geq(n, 0, "%s", err.msg);
		if (n == 0)
			return;
	}
	cr_assert_fail("the event loop never went idle");
}

/* A frame: header, then len bytes of a pattern seeded by seed. */
static size_t make_frame(uint8_t *buf, const struct virtio_net_hdr *h, size_t len, uint8_t seed)
{
	memcpy(buf, h, NET_HDR_BYTES);
	for (size_t i = 0; i < len; i++)
		buf[NET_HDR_BYTES + i] = (uint8_t)(seed + i * 7);
	return NET_HDR_BYTES + len;
}

/* The guest sends buf (one readable chain) and takes the buffer back. */
static void guest_send(const uint8_t *buf, size_t len)
{
	uint64_t gpa = vdriver_alloc(&drv, len, 16);
	memcpy(vdriver_host(&drv, gpa, len), buf, len);
	struct vdriver_buf b = { gpa, (uint32_t)len, false };
	cr_assert_geq(vdriver_add(&drv, NET_TXQ, &b, 1, false), 0);
	vdriver_kick(&drv, NET_TXQ);
	pump();
	uint16_t head;
	uint32_t used;
	cr_assert_eq(vdriver_get_used(&drv, NET_TXQ, &head, &used), 1, "tx buffer not returned");
}

static uint64_t rx_gpa[VIRTQ_MAX_SIZE];

static void post_rx(unsigned n, uint32_t size)
{
	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdriver_alloc(&drv, size, 16);
		struct vdriver_buf b = { gpa, size, true };
		int head = vdriver_add(&drv, NET_RXQ, &b, 1, false);
		cr_assert_geq(head, 0);
		rx_gpa[head] = gpa;
	}
	vdriver_kick(&drv, NET_RXQ);
}

/* What the guest received as one frame: its chains' bytes concatenated;
 * returns the length, 0 when nothing is there. */
static size_t guest_receive(uint8_t *out, size_t cap, unsigned *nbufs)
{
	uint16_t head;
	uint32_t len;

	if (vdriver_get_used(&drv, NET_RXQ, &head, &len) != 1)
		return 0;
	cr_assert_leq(len, cap);
	memcpy(out, vdriver_host(&drv, rx_gpa[head], len), len);
	struct virtio_net_hdr h;
	memcpy(&h, out, sizeof(h));
	*nbufs = le16toh(h.num_buffers);
	size_t total = len;
	for (unsigned i = 1; i < *nbufs; i++) {
		cr_assert_eq(vdriver_get_used(&drv, NET_RXQ, &head, &len), 1, "chain %u of %u", i, *nbufs);
		cr_assert_leq(total + len, cap);
		memcpy(out + total, vdriver_host(&drv, rx_gpa[head], len), len);
		total += len;
	}
	return total;
}

TestSuite(net, .fini = stop);

Test(net, offers_its_features_and_config)
{
	start(BASE_FEATURES);
	uint64_t f = vdriver_device_features(&drv);
	cr_expect(f & VIRTIO_NET_F_MRG_RXBUF);
	cr_expect(f & VIRTIO_NET_F_CSUM);
	cr_expect(f & VIRTIO_NET_F_HOST_TSO4);
	cr_expect(f & VIRTIO_NET_F_MAC);
	uint8_t got[6];
	for (unsigned i = 0; i < 6; i++)
		got[i] = (uint8_t)vdriver_read32(&drv, VD_CONFIG + i);
	cr_expect_eq(memcmp(got, mac, 6), 0);
	uint32_t status_pairs = vdriver_read32(&drv, VD_CONFIG + 6);
	cr_expect_eq(status_pairs & 0xffff, 1, "link up");
	cr_expect_eq(vdriver_read32(&drv, VD_CONFIG + 8) >> 16, 1500, "mtu");
}

Test(net, a_frame_from_the_guest_reaches_the_tap_intact)
{
	uint8_t buf[NET_HDR_BYTES + 1500], got[sizeof(buf) + 16];
	struct virtio_net_hdr h = { 0 };

	start(BASE_FEATURES);
	size_t len = make_frame(buf, &h, 1000, 3);
	guest_send(buf, len);
	ssize_t n = read(wire, got, sizeof(got));
	cr_assert_eq(n, (ssize_t)len);
	cr_expect_eq(memcmp(got, buf, len), 0);
	struct net_stats st;
	vnet_stats(&net, &st);
	cr_expect_eq(st.tx_frames, 1);
	cr_expect_eq(st.tx_bytes, 1000);
}

Test(net, offloads_not_negotiated_or_out_of_the_frame_are_dropped)
{
	uint8_t buf[NET_HDR_BYTES + 200], got[sizeof(buf)];
	struct virtio_net_hdr csum = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = htole16(34),
				       .csum_offset = htole16(16) };
	struct virtio_net_hdr tso = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = htole16(1448) };
	struct virtio_net_hdr junk = { .gso_type = 0x33 };

	start(BASE_FEATURES);                  /* no CSUM, no HOST_TSO4 */
	guest_send(buf, make_frame(buf, &csum, 100, 1));
	guest_send(buf, make_frame(buf, &tso, 100, 1));
	guest_send(buf, make_frame(buf, &junk, 100, 1));
	guest_send(buf, 10);                   /* shorter than a header */
	cr_expect_eq(read(wire, got, sizeof(got)), -1, "nothing reached the tap");
	struct net_stats st;
	vnet_stats(&net, &st);
	cr_expect_eq(st.tx_dropped, 4);
}

Test(net, checksum_offload_inside_the_frame_passes_once_negotiated)
{
	uint8_t buf[NET_HDR_BYTES + 200], got[sizeof(buf)];
	struct virtio_net_hdr in = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = htole16(34),
				     .csum_offset = htole16(16) };
	struct virtio_net_hdr out = { .flags = VIRTIO_NET_HDR_F_NEEDS_CSUM, .csum_start = htole16(190),
				      .csum_offset = htole16(16) };

	start(BASE_FEATURES | VIRTIO_NET_F_CSUM);
	guest_send(buf, make_frame(buf, &out, 100, 1));
	cr_expect_eq(read(wire, got, sizeof(got)), -1, "a checksum past the frame is dropped");
	size_t len = make_frame(buf, &in, 100, 1);
	guest_send(buf, len);
	cr_expect_eq(read(wire, got, sizeof(got)), (ssize_t)len);
}

Test(net, a_frame_from_the_tap_reaches_the_guest)
{
	uint8_t buf[NET_HDR_BYTES + 1500], got[4096];
	struct virtio_net_hdr h = { 0 };
	unsigned nbufs;

	start(BASE_FEATURES);
	post_rx(4, NET_HDR_BYTES + 1514);
	size_t len = make_frame(buf, &h, 600, 9);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
	cr_expect_eq(nbufs, 1);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 600), 0);
}

Test(net, mergeable_buffers_take_a_large_frame_in_pieces)
{
	static uint8_t buf[NET_HDR_BYTES + 9000], got[sizeof(buf)];
	struct virtio_net_hdr h = { 0 };
	unsigned nbufs;

	start(BASE_FEATURES | VIRTIO_NET_F_MRG_RXBUF);
	post_rx(16, 1536);
	size_t len = make_frame(buf, &h, 9000, 5);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
	cr_expect_eq(nbufs, (len + 1535) / 1536);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 9000), 0);
	struct net_stats st;
	vnet_stats(&net, &st);
	cr_expect_eq(st.rx_direct, 0, "24 KiB of buffers cannot hold the largest frame: read aside");
}

/* 64 buffers of 4 KiB hold the largest frame (64 KiB and headers) twice over. */
Test(net, with_room_for_the_largest_frame_the_tap_reads_into_the_guests_buffers)
{
	static uint8_t buf[NET_HDR_BYTES + 60000], got[sizeof(buf)];
	struct virtio_net_hdr h = { 0 };
	unsigned nbufs;

	start(BASE_FEATURES | VIRTIO_NET_F_MRG_RXBUF);
	post_rx(QSIZE, 4096);
	size_t small = make_frame(buf, &h, 9000, 3);
	cr_assert_eq(write(wire, buf, small), (ssize_t)small);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), small);
	cr_expect_eq(nbufs, 3);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 9000), 0);
	post_rx(3, 4096);                      /* as Linux refills */
	size_t big = make_frame(buf, &h, 60000, 8);
	cr_assert_eq(write(wire, buf, big), (ssize_t)big);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), big);
	cr_expect_eq(nbufs, (big + 4095) / 4096);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 60000), 0);
	struct net_stats st;
	vnet_stats(&net, &st);
	cr_expect_eq(st.rx_direct, 2);
	cr_expect_eq(st.rx_frames, 2);
}

/* A frame read into the guest's buffers and then refused leaves them the
 * driver's: the next frame lands in the first of them. */
Test(net, a_refused_frame_read_into_the_guests_buffers_leaves_them_to_the_next)
{
	uint8_t buf[NET_HDR_BYTES + 5000], got[sizeof(buf)];
	struct virtio_net_hdr tso = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = htole16(1448) };
	struct virtio_net_hdr plain = { .flags = 2 /* DATA_VALID */ };
	unsigned nbufs;

	start(BASE_FEATURES | VIRTIO_NET_F_MRG_RXBUF);   /* no GUEST_TSO4, no GUEST_CSUM */
	post_rx(QSIZE, 4096);
	size_t len = make_frame(buf, &tso, 5000, 1);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	len = make_frame(buf, &plain, 5000, 2);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
	struct virtio_net_hdr seen;
	memcpy(&seen, got, sizeof(seen));
	cr_expect_eq(seen.flags, 0, "the tap's DATA_VALID is not passed on without GUEST_CSUM");
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 5000), 0);
	uint16_t head;
	uint32_t used;
	cr_expect_eq(vdriver_get_used(&drv, NET_RXQ, &head, &used), 0, "one frame, one buffer used");
	struct net_stats st;
	vnet_stats(&net, &st);
	cr_expect_eq(st.rx_dropped, 1);
	cr_expect_eq(st.rx_direct, 1);
}

Test(net, a_guest_without_buffers_gets_the_frame_once_it_posts_some)
{
	static uint8_t buf[NET_HDR_BYTES + 5000], got[sizeof(buf)];
	struct virtio_net_hdr h = { 0 };
	unsigned nbufs;

	start(BASE_FEATURES | VIRTIO_NET_F_MRG_RXBUF);
	size_t len = make_frame(buf, &h, 5000, 11);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	post_rx(2, 1536);                      /* 3072: not enough yet */
	pump();
	cr_expect_eq(guest_receive(got, sizeof(got), &nbufs), 0, "nothing until it fits");
	post_rx(2, 1536);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
	cr_expect_eq(nbufs, 4);
	cr_expect_eq(memcmp(got, buf + 0, NET_HDR_BYTES - 2), 0);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 5000), 0);
}

Test(net, a_frame_that_cannot_fit_is_dropped_and_the_buffer_kept)
{
	uint8_t big[NET_HDR_BYTES + 5000], small[NET_HDR_BYTES + 100], got[4096];
	struct virtio_net_hdr h = { 0 };
	unsigned nbufs;

	start(BASE_FEATURES);                  /* one buffer per frame */
	post_rx(1, 1536);
	size_t blen = make_frame(big, &h, 5000, 1), slen = make_frame(small, &h, 100, 2);
	cr_assert_eq(write(wire, big, blen), (ssize_t)blen);
	cr_assert_eq(write(wire, small, slen), (ssize_t)slen);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), slen);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, small + NET_HDR_BYTES, 100), 0);
	struct net_stats st;
	vnet_stats(&net, &st);
	cr_expect_eq(st.rx_dropped, 1);
}

Test(net, a_readable_rx_buffer_comes_back_empty_and_rx_goes_on)
{
	uint8_t buf[NET_HDR_BYTES + 100], got[4096];
	struct virtio_net_hdr h = { 0 };
	uint16_t head;
	uint32_t used;
	unsigned nbufs;

	start(BASE_FEATURES);
	uint64_t gpa = vdriver_alloc(&drv, 2048, 16);
	struct vdriver_buf bad = { gpa, 2048, false };
	cr_assert_geq(vdriver_add(&drv, NET_RXQ, &bad, 1, false), 0);
	post_rx(1, 2048);
	size_t len = make_frame(buf, &h, 100, 4);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	cr_assert_eq(vdriver_get_used(&drv, NET_RXQ, &head, &used), 1);
	cr_expect_eq(used, 0, "the readable buffer comes back with nothing in it");
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 100), 0);
}

Test(net, the_tap_header_says_only_what_the_driver_negotiated)
{
	uint8_t buf[NET_HDR_BYTES + 200], got[4096];
	struct virtio_net_hdr valid = { .flags = 2 /* DATA_VALID */ };
	struct virtio_net_hdr tso = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4, .gso_size = htole16(1448) };
	unsigned nbufs;

	start(BASE_FEATURES);                  /* no GUEST_CSUM, no GUEST_TSO4 */
	post_rx(4, 2048);
	size_t len = make_frame(buf, &tso, 100, 1);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	len = make_frame(buf, &valid, 100, 2);
	cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len, "the TSO frame is dropped");
	struct virtio_net_hdr h;
	memcpy(&h, got, sizeof(h));
	cr_expect_eq(h.flags, 0, "no checksum flags without GUEST_CSUM");
	cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 100), 0);
}

Test(net, an_ecn_gso_frame_is_dropped_without_host_ecn)
{
	uint8_t buf[NET_HDR_BYTES + 200], got[sizeof(buf)];
	struct virtio_net_hdr ecn = { .gso_type = VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN,
				      .gso_size = htole16(1448) };

	start(BASE_FEATURES | VIRTIO_NET_F_CSUM | VIRTIO_NET_F_HOST_TSO4);
	guest_send(buf, make_frame(buf, &ecn, 150, 1));
	cr_expect_eq(read(wire, got, sizeof(got)), -1);
}

/* Small frames (request/response) are read aside: gathering room for the
 * largest frame would cost more than copying them; a large one switches
 * back. */
Test(net, small_frames_are_read_aside_and_a_large_one_switches_back)
{
	static uint8_t buf[NET_HDR_BYTES + 30000], got[sizeof(buf)];
	struct virtio_net_hdr h = { 0 };
	unsigned nbufs;
	struct net_stats st;

	start(BASE_FEATURES | VIRTIO_NET_F_MRG_RXBUF);
	post_rx(QSIZE, 4096);
	size_t len = make_frame(buf, &h, 100, 1);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	for (int i = 0; i < 3; i++)
		cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
	vnet_stats(&net, &st);
	cr_expect_eq(st.rx_direct, 1, "the first, before any was small");
	len = make_frame(buf, &h, 30000, 2);
	for (int i = 0; i < 2; i++)
		cr_assert_eq(write(wire, buf, len), (ssize_t)len);
	pump();
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(guest_receive(got, sizeof(got), &nbufs), len);
		cr_expect_eq(memcmp(got + NET_HDR_BYTES, buf + NET_HDR_BYTES, 30000), 0);
	}
	vnet_stats(&net, &st);
	cr_expect_eq(st.rx_direct, 2, "the large one after small ones is read aside, the next not");
	cr_expect_eq(st.rx_frames, 5);
}
