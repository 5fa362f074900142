/* libFuzzer target for virtio-net (devices/net/): the input is a script of
 * what a hostile guest does on its rings, interleaved with frames arriving
 * from the tap, run against a real device behind the virtio-mmio registers
 * (the test driver of tests/unit/devices sets the rings up; the tap is a
 * SOCK_SEQPACKET socket). Host events are processed between steps.
 *
 * Input: u8 features (bit 0 EVENT_IDX, 1 MRG_RXBUF, 2 CSUM, 3 HOST_TSO4,
 * 4 HOST_TSO6, 5 GUEST_CSUM), then records, each a u8 command:
 *   0 tx        u16 len, u8 segs (bit 7: add a writable one), then len bytes
 *   1 tap frame u16 len, then len bytes (written to the tap's host end)
 *   2 rx post   u8 n, u16 size, u8 flags (bit 0: readable, bit 1: indirect)
 *   3 rx take   drain the used ring
 *   4 reset     and start again with the same features
 *   5 raw desc  u8 queue, u8 index, u64 addr, u32 len, u16 flags, u16 next, then publish:
 *               the test driver's own bookkeeping is then void, so until the
 *               next reset commands 0, 2 and 3 do nothing
 *
 * Beyond "no crash, no leak, no UB": every used rx length fits the buffer it
 * names; a frame the tap gets is never shorter than a header and never
 * longer than the largest frame. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/evloop.h"
#include "devices/net/net.h"
#include "devices/virtio/mmio.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/unit/devices/vdriver.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MEM_BYTES (4u << 20)
#define QSIZE 32u
#define MAX_STEPS 256u

static struct guest_mem mem;
static struct evloop loop;
static struct vnet net;
static struct virtio_mmio mmio;
static struct vdriver drv;
static int wire = -1;
static uint64_t features;
static uint32_t rx_room[QSIZE];
static bool tainted;                  /* raw descriptors written: the driver's lists are void */
static uint8_t scratch[NET_HDR_BYTES + NET_MAX_FRAME_BYTES + 64];

static void pump(void)
{
	struct rv_err err;

	for (int i = 0; i < 64 && evloop_run_once(&loop, 0, &err) > 0; i++)
		;
	ssize_t n;
	while ((n = read(wire, scratch, sizeof(scratch))) >= 0)
		CHECK(n >= (ssize_t)NET_HDR_BYTES && n <= (ssize_t)(NET_HDR_BYTES + NET_MAX_FRAME_BYTES));
}

static void start(void)
{
	struct rv_err err;
	static const uint8_t mac[6] = { 0x52, 0x54, 0, 0, 0, 1 };
	int sv[2];

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	int big = 1 << 20;
	setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
	wire = sv[1];
	CHECK(vnet_init(&net, sv[0], mac, 1500, &mem, &loop, NULL, &err) == 0);
	CHECK(virtio_mmio_init(&mmio, &net.dev, 0xd0000000ull, 5, -1, &loop, &err) == 0);
	vdriver_init(&drv, &mem, &mmio);
	vdriver_start(&drv, features, 2, QSIZE);
	memset(rx_room, 0, sizeof(rx_room));
	tainted = false;
}

static void stop(void)
{
	virtio_mmio_destroy(&mmio);
	vnet_destroy(&net);
	close(wire);
}

static void tx(struct input *in)
{
	size_t len = take16(in);
	uint8_t segs = take8(in);
	const uint8_t *bytes = take_bytes(in, &len);
	unsigned n = (segs & 0x7f) % 8 + 1;
	struct vdriver_buf b[9];
	uint64_t gpa = vdriver_alloc(&drv, len + 1, 16);

	if (!gpa)
		return;
	memcpy(vdriver_host(&drv, gpa, len + 1), bytes, len);
	size_t off = 0;
	for (unsigned i = 0; i < n; i++) {
		size_t part = i + 1 == n ? len - off : len / n;
		b[i] = (struct vdriver_buf){ gpa + off, (uint32_t)part, false };
		off += part;
	}
	if (segs & 0x80)
		b[n++] = (struct vdriver_buf){ gpa, 1, true };
	if (vdriver_add(&drv, NET_TXQ, b, n, false) >= 0)
		vdriver_kick(&drv, NET_TXQ);
}

static void rx_post(struct input *in)
{
	unsigned n = take8(in) % 8 + 1;
	uint32_t size = take16(in) % 4096 + 1;
	uint8_t flags = take8(in);

	for (unsigned i = 0; i < n; i++) {
		uint64_t gpa = vdriver_alloc(&drv, size, 16);
		if (!gpa)
			return;
		struct vdriver_buf b = { gpa, size, !(flags & 1) };
		int head = vdriver_add(&drv, NET_RXQ, &b, 1, flags & 2);
		if (head < 0)
			break;
		rx_room[head] = flags & 1 ? 0 : size;
	}
	vdriver_kick(&drv, NET_RXQ);
}

static void rx_take(void)
{
	uint16_t head;
	uint32_t len;

	while (vdriver_get_used(&drv, NET_RXQ, &head, &len) == 1)
		if (head < QSIZE)
			CHECK(len <= rx_room[head]);
}

static void raw_desc(struct input *in)
{
	unsigned q = take8(in) % 2;
	uint16_t i = take8(in) % QSIZE;
	uint64_t addr = (uint64_t)take32(in) | (uint64_t)take32(in) << 32;
	uint32_t len = take32(in);
	uint16_t flags = take16(in), next = take16(in);

	tainted = true;
	vdriver_set_desc(&drv, q, i, addr, len, flags, next);
	vdriver_publish(&drv, q, i);
	if (q == NET_RXQ)
		rx_room[i] = 0;     /* whatever the device makes of it, 0 fits nothing */
	vdriver_notify(&drv, q);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool once;
	struct rv_err err;
	struct input in = { data, size };
	uint8_t f = take8(&in);

	if (!once) {
		CHECK(guest_mem_create(&mem, MEM_BYTES, &err) == 0);
		CHECK(evloop_init(&loop, &err) == 0);
		once = true;
	}
	memset(mem.base, 0, mem.size);
	features = VIRTIO_F_VERSION_1 | (f & 1 ? VIRTIO_F_RING_EVENT_IDX : 0) |
		   (f & 2 ? VIRTIO_NET_F_MRG_RXBUF : 0) | (f & 4 ? VIRTIO_NET_F_CSUM : 0) |
		   (f & 8 ? VIRTIO_NET_F_HOST_TSO4 : 0) | (f & 16 ? VIRTIO_NET_F_HOST_TSO6 : 0) |
		   (f & 32 ? VIRTIO_NET_F_GUEST_CSUM : 0);
	start();
	for (unsigned step = 0; step < MAX_STEPS && in.n; step++) {
		switch (take8(&in) % 6) {
		case 0: if (!tainted) tx(&in); break;
		case 1: {
			size_t len = take16(&in);
			const uint8_t *bytes = take_bytes(&in, &len);
			if (write(wire, bytes, len) < 0) {
				/* a full socket: the tap would drop it too */
			}
			break;
		}
		case 2: if (!tainted) rx_post(&in); break;
		case 3: if (!tainted) rx_take(); break;
		case 4: stop(); start(); break;
		case 5: raw_desc(&in); break;
		}
		pump();
		if ((vdriver_read32(&drv, VD_INTERRUPT_STATUS)))
			vdriver_isr_ack(&drv);
	}
	if (!tainted)
		rx_take();
	stop();
	return 0;
}
