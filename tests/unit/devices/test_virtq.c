/* The split-virtqueue walker (devices/virtio/queue.c) against rings that the
 * test driver lays out in a memfd guest memory, well-formed and hostile. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "devices/virtio/queue.h"
#include "devices/virtio/virtio.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (16ull << 20)

static struct guest_mem mem;
static struct vdriver drv;
static struct virtq q;

static struct virtq queue_at(uint16_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	return (struct virtq){ .size = size, .ready = true, .desc_gpa = desc, .avail_gpa = avail,
			       .used_gpa = used };
}

/* Rings for one queue of `size` in fresh guest memory, activated. */
static void setup(uint16_t size, bool event_idx)
{
	struct rv_err err;

	cr_assert_eq(guest_mem_create(&mem, MEM_BYTES, &err), 0, "%s", err.msg);
	vdriver_init(&drv, &mem, NULL);
	cr_assert_eq(vdriver_queue_alloc(&drv, 0, size), 0);
	drv.features = event_idx ? VIRTIO_F_RING_EVENT_IDX : 0;
	q = queue_at(size, drv.q[0].desc_gpa, drv.q[0].avail_gpa, drv.q[0].used_gpa);
	q.event_idx = event_idx;
	cr_assert_eq(virtq_activate(&q, &mem, VIRTQ_MAX_SIZE, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	guest_mem_destroy(&mem);
}

static uint64_t buf(uint32_t len)
{
	uint64_t gpa = vdriver_alloc(&drv, len ? len : 1, 16);
	cr_assert_neq(gpa, 0);
	return gpa;
}

static int pop(struct virtq_chain *c, struct rv_err *err)
{
	memset(c, 0xa5, sizeof(*c));
	return virtq_pop(&q, c, err);
}

/* Pops expecting a bad chain (not a broken ring) and returns it to the driver. */
static int pop_bad(int want_code)
{
	struct virtq_chain c;
	struct rv_err err = { 0 };

	cr_assert_eq(pop(&c, &err), -1, "a malformed chain was accepted");
	cr_assert_eq(err.code, want_code, "code %d: %s", err.code, err.msg);
	cr_assert(!q.broken, "one bad chain must not break the ring: %s", err.msg);
	virtq_push(&q, c.head, 0);
	return c.head;
}

/* After a bad chain the ring goes on: a good chain still pops. */
static void assert_ring_still_works(void)
{
	struct virtq_chain c;
	struct rv_err err;
	uint64_t gpa = buf(8);
	struct vdriver_buf b = { gpa, 8, true };

	int head = vdriver_add(&drv, 0, &b, 1, false);
	cr_assert_geq(head, 0, "no descriptors left");
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.head, head);
	cr_assert_eq(c.nwrite, 1);
	cr_assert_eq(c.iov[0].iov_base, vdriver_host(&drv, gpa, 8));
}

/* --- well-formed chains ------------------------------------------------------- */

Test(virtq, pops_direct_chain_readable_then_writable, .fini = teardown)
{
	setup(16, false);
	uint64_t r0 = buf(100), r1 = buf(50), w0 = buf(200), w1 = buf(10);
	struct vdriver_buf bufs[] = { { r0, 100, false }, { r1, 50, false }, { w0, 200, true },
				      { w1, 10, true } };
	memcpy(vdriver_host(&drv, r0 + 98, 2), "ab", 2);
	memcpy(vdriver_host(&drv, r1, 2), "cd", 2);
	int head = vdriver_add(&drv, 0, bufs, 4, false);

	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.head, head);
	cr_assert_eq(c.nread, 2);
	cr_assert_eq(c.nwrite, 2);
	cr_assert_eq(c.read_bytes, 150);
	cr_assert_eq(c.write_bytes, 210);
	cr_assert_eq(c.iov[0].iov_base, vdriver_host(&drv, r0, 100));
	cr_assert_eq(c.iov[0].iov_len, 100);
	cr_assert_eq(c.iov[1].iov_base, vdriver_host(&drv, r1, 50));
	cr_assert_eq(c.iov[2].iov_base, vdriver_host(&drv, w0, 200));
	cr_assert_eq(c.iov[3].iov_base, vdriver_host(&drv, w1, 10));

	char got[4];
	cr_assert_eq(virtq_chain_read(&c, 98, got, 4), 4, "a read spans segments");
	cr_assert_arr_eq(got, "abcd", 4);
	cr_assert_eq(virtq_chain_read(&c, 148, got, 4), 2, "a read stops at the readable end");
	cr_assert_eq(virtq_chain_write(&c, 195, "0123456789", 10), 10);
	cr_assert_arr_eq(vdriver_host(&drv, w0 + 195, 5), "01234", 5);
	cr_assert_arr_eq(vdriver_host(&drv, w1, 5), "56789", 5);
	cr_assert_eq(virtq_chain_write(&c, 205, "0123456789", 10), 5, "a write stops at the chain end");

	virtq_push(&q, c.head, 210);
	uint16_t uh;
	uint32_t ulen;
	cr_assert_eq(vdriver_get_used(&drv, 0, &uh, &ulen), 1);
	cr_assert_eq(uh, head);
	cr_assert_eq(ulen, 210);
	cr_assert_eq(pop(&c, &err), 0, "one chain was made available, one was popped");
}

Test(virtq, pops_indirect_chain, .fini = teardown)
{
	setup(8, false);
	uint64_t r = buf(44), w = buf(4096);
	struct vdriver_buf bufs[] = { { r, 44, false }, { w, 4096, true } };
	int head = vdriver_add(&drv, 0, bufs, 2, true);
	cr_assert_eq(drv.q[0].num_free, 7, "an indirect chain takes one ring descriptor");

	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.head, head);
	cr_assert_eq(c.nread, 1);
	cr_assert_eq(c.nwrite, 1);
	cr_assert_eq(c.iov[0].iov_base, vdriver_host(&drv, r, 44));
	cr_assert_eq(c.iov[1].iov_base, vdriver_host(&drv, w, 4096));
	cr_assert_eq(c.write_bytes, 4096);
}

Test(virtq, pops_direct_descriptors_followed_by_an_indirect_one, .fini = teardown)
{
	/* virtio 1.x §2.7.5.3.2: zero or more chained descriptors, then one indirect. */
	setup(8, false);
	uint64_t r = buf(16), w = buf(32), table = buf(16);
	uint8_t *t = vdriver_host(&drv, table, 16);
	uint32_t wlen = 32;
	uint16_t wflags = VIRTQ_DESC_F_WRITE;
	memcpy(t, &w, 8);
	memcpy(t + 8, &wlen, 4);
	memcpy(t + 12, &wflags, 2);
	vdriver_set_desc(&drv, 0, 0, r, 16, VIRTQ_DESC_F_NEXT, 1);
	vdriver_set_desc(&drv, 0, 1, table, 16, VIRTQ_DESC_F_INDIRECT, 0);
	vdriver_publish(&drv, 0, 0);

	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.nread, 1);
	cr_assert_eq(c.nwrite, 1);
	cr_assert_eq(c.iov[1].iov_base, vdriver_host(&drv, w, 32));
}

Test(virtq, returns_nothing_when_ring_is_empty, .fini = teardown)
{
	setup(4, false);
	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 0);
	struct virtq idle = { 0 };
	cr_assert_eq(virtq_pop(&idle, &c, &err), 0, "a queue never activated has nothing");
}

Test(virtq, skips_zero_length_descriptors, .fini = teardown)
{
	setup(4, false);
	uint64_t r = buf(10);
	vdriver_set_desc(&drv, 0, 0, 0xdeadbeef00ull, 0, VIRTQ_DESC_F_NEXT, 1);
	vdriver_set_desc(&drv, 0, 1, r, 10, 0, 0);
	vdriver_publish(&drv, 0, 0);

	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.nread, 1);
	cr_assert_eq(c.iov[0].iov_base, vdriver_host(&drv, r, 10));
}

Test(virtq, takes_chains_across_the_16_bit_index_wrap, .fini = teardown)
{
	setup(4, false);
	uint64_t gpa = buf(8);
	struct vdriver_buf b = { gpa, 8, true };

	for (unsigned i = 0; i < 70000; i++) {
		struct virtq_chain c;
		struct rv_err err;
		uint16_t head;
		uint32_t len;
		int h = vdriver_add(&drv, 0, &b, 1, false);
		cr_assert_geq(h, 0);
		cr_assert_eq(pop(&c, &err), 1, "round %u: %s", i, err.msg);
		cr_assert_eq(c.head, h);
		virtq_push(&q, c.head, i & 7);
		cr_assert_eq(vdriver_get_used(&drv, 0, &head, &len), 1);
		cr_assert_eq(head, h);
		cr_assert_eq(len, i & 7);
	}
	cr_assert_eq(q.last_avail, (uint16_t)70000);
}

Test(virtq, avail_index_may_run_exactly_one_queue_ahead, .fini = teardown)
{
	setup(8, false);
	uint64_t gpa = buf(8);
	struct vdriver_buf b = { gpa, 8, false };
	for (unsigned i = 0; i < 8; i++)
		cr_assert_geq(vdriver_add(&drv, 0, &b, 1, false), 0);

	struct virtq_chain c;
	struct rv_err err;
	for (unsigned i = 0; i < 8; i++)
		cr_assert_eq(pop(&c, &err), 1, "chain %u: %s", i, err.msg);
	cr_assert_eq(pop(&c, &err), 0);
	cr_assert(!q.broken);
}

/* --- malformed chains: rejected, the ring goes on --------------------------- */

Test(virtq, rejects_readable_descriptor_after_writable_one, .fini = teardown)
{
	setup(8, false);
	uint64_t w = buf(8), r = buf(8);
	struct vdriver_buf bufs[] = { { w, 8, true }, { r, 8, false } };
	int head = vdriver_add(&drv, 0, bufs, 2, false);
	cr_assert_eq(pop_bad(EPROTO), head, "the bad chain's head is reported for the push");
	assert_ring_still_works();
}

Test(virtq, rejects_readable_after_writable_inside_indirect_table, .fini = teardown)
{
	setup(8, false);
	uint64_t w = buf(8), r = buf(8);
	struct vdriver_buf bufs[] = { { r, 8, false }, { w, 8, true }, { r, 8, false } };
	vdriver_add(&drv, 0, bufs, 3, true);
	pop_bad(EPROTO);
	assert_ring_still_works();
}

Test(virtq, rejects_descriptors_outside_guest_ram, .fini = teardown)
{
	setup(8, false);
	struct vdriver_buf past_end = { MEM_BYTES - 8, 16, false };
	struct vdriver_buf wraps = { UINT64_MAX - 4, 16, true };
	struct vdriver_buf in_hole = { 0xc0000000ull, 16, false };
	struct vdriver_buf starts_at_end = { MEM_BYTES, 1, false };

	vdriver_add(&drv, 0, &past_end, 1, false);
	vdriver_add(&drv, 0, &wraps, 1, false);
	vdriver_add(&drv, 0, &in_hole, 1, false);
	vdriver_add(&drv, 0, &starts_at_end, 1, false);
	for (int i = 0; i < 4; i++)
		pop_bad(EFAULT);
	assert_ring_still_works();
}

Test(virtq, accepts_descriptor_ending_exactly_at_end_of_ram, .fini = teardown)
{
	setup(4, false);
	struct vdriver_buf last = { MEM_BYTES - 16, 16, true };
	vdriver_add(&drv, 0, &last, 1, false);
	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.write_bytes, 16);
}

Test(virtq, rejects_descriptor_loop, .fini = teardown)
{
	setup(8, false);
	uint64_t r = buf(8);
	vdriver_set_desc(&drv, 0, 0, r, 8, VIRTQ_DESC_F_NEXT, 1);
	vdriver_set_desc(&drv, 0, 1, r, 8, VIRTQ_DESC_F_NEXT, 2);
	vdriver_set_desc(&drv, 0, 2, r, 8, VIRTQ_DESC_F_NEXT, 0);
	vdriver_publish(&drv, 0, 0);
	pop_bad(ELOOP);
}

Test(virtq, rejects_descriptor_pointing_at_itself, .fini = teardown)
{
	setup(4, false);
	vdriver_set_desc(&drv, 0, 3, buf(8), 8, VIRTQ_DESC_F_NEXT, 3);
	vdriver_publish(&drv, 0, 3);
	pop_bad(ELOOP);
}

Test(virtq, rejects_zero_length_descriptor_loop, .fini = teardown)
{
	/* Zero-length descriptors add no segment: only the step count stops this. */
	setup(4, false);
	vdriver_set_desc(&drv, 0, 0, 0, 0, VIRTQ_DESC_F_NEXT, 1);
	vdriver_set_desc(&drv, 0, 1, 0, 0, VIRTQ_DESC_F_NEXT, 0);
	vdriver_publish(&drv, 0, 0);
	pop_bad(ELOOP);
}

Test(virtq, rejects_chain_longer_than_its_indirect_table, .fini = teardown)
{
	setup(4, false);
	uint64_t r = buf(8), table = buf(4 * 16);
	uint8_t *t = vdriver_host(&drv, table, 64);
	for (uint16_t i = 0; i < 4; i++) {
		uint32_t len = 8;
		uint16_t flags = VIRTQ_DESC_F_NEXT, next = (uint16_t)((i + 1) % 4);
		memcpy(t + 16 * i, &r, 8);
		memcpy(t + 16 * i + 8, &len, 4);
		memcpy(t + 16 * i + 12, &flags, 2);
		memcpy(t + 16 * i + 14, &next, 2);
	}
	vdriver_set_desc(&drv, 0, 0, table, 64, VIRTQ_DESC_F_INDIRECT, 0);
	vdriver_publish(&drv, 0, 0);
	pop_bad(ELOOP);
}

Test(virtq, rejects_chain_with_more_segments_than_the_limit, .fini = teardown)
{
	setup(512, false);
	uint64_t r = buf(1);
	unsigned n = VIRTQ_MAX_CHAIN_SEGS + 1;
	for (uint16_t i = 0; i < n; i++)
		vdriver_set_desc(&drv, 0, i, r, 1, i + 1u < n ? VIRTQ_DESC_F_NEXT : 0, (uint16_t)(i + 1));
	vdriver_publish(&drv, 0, 0);
	pop_bad(EPROTO);

	/* Exactly the limit is fine. */
	for (uint16_t i = 0; i < VIRTQ_MAX_CHAIN_SEGS; i++)
		vdriver_set_desc(&drv, 0, i, r, 1, i + 1u < VIRTQ_MAX_CHAIN_SEGS ? VIRTQ_DESC_F_NEXT : 0,
				 (uint16_t)(i + 1));
	vdriver_publish(&drv, 0, 0);
	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	cr_assert_eq(c.nread, VIRTQ_MAX_CHAIN_SEGS);
}

Test(virtq, rejects_chain_larger_than_the_byte_limit, .fini = teardown)
{
	/* Descriptors may overlap: 129 views of the same 16 MiB add up past 2 GiB. */
	setup(256, false);
	unsigned n = (unsigned)(VIRTQ_MAX_CHAIN_BYTES / MEM_BYTES) + 1;
	for (uint16_t i = 0; i < n; i++)
		vdriver_set_desc(&drv, 0, i, 0, (uint32_t)MEM_BYTES, i + 1u < n ? VIRTQ_DESC_F_NEXT : 0,
				 (uint16_t)(i + 1));
	vdriver_publish(&drv, 0, 0);
	pop_bad(EPROTO);
}

Test(virtq, rejects_next_index_outside_the_table, .fini = teardown)
{
	setup(8, false);
	uint64_t r = buf(8);
	/* Descriptor 7 is last on the driver's free list: its link is already 8. */
	vdriver_set_desc(&drv, 0, 7, r, 8, VIRTQ_DESC_F_NEXT, 8);
	vdriver_publish(&drv, 0, 7);
	pop_bad(EPROTO);

	/* Inside an indirect table, its own length is the bound. */
	struct vdriver_buf two[] = { { r, 8, false }, { r, 8, false } };
	int head = vdriver_add(&drv, 0, two, 2, true);
	uint64_t table = drv.q[0].indirect_gpa + (uint64_t)head * VDRIVER_MAX_INDIRECT * 16;
	uint16_t next = 2;
	memcpy(vdriver_host(&drv, table + 14, 2), &next, 2);
	pop_bad(EPROTO);
	assert_ring_still_works();
}

Test(virtq, rejects_nested_indirect_table, .fini = teardown)
{
	setup(8, false);
	uint64_t r = buf(8);
	struct vdriver_buf two[] = { { r, 8, false }, { r, 8, false } };
	int head = vdriver_add(&drv, 0, two, 2, true);
	uint64_t table = drv.q[0].indirect_gpa + (uint64_t)head * VDRIVER_MAX_INDIRECT * 16;
	uint16_t flags = VIRTQ_DESC_F_INDIRECT;
	uint32_t len = 32;
	memcpy(vdriver_host(&drv, table + 16, 8), &table, 8);
	memcpy(vdriver_host(&drv, table + 16 + 8, 4), &len, 4);
	memcpy(vdriver_host(&drv, table + 16 + 12, 2), &flags, 2);
	pop_bad(EPROTO);
	assert_ring_still_works();
}

Test(virtq, rejects_indirect_table_that_is_the_descriptor_table, .fini = teardown, .timeout = 10)
{
	/* The descriptor table named as its own indirect table: an indirect
	 * descriptor inside it is nested, whatever address the table has. */
	setup(4, false);
	vdriver_set_desc(&drv, 0, 0, drv.q[0].desc_gpa, 4 * 16, VIRTQ_DESC_F_INDIRECT, 0);
	vdriver_publish(&drv, 0, 0);
	pop_bad(EPROTO);
}

Test(virtq, rejects_indirect_descriptor_with_next, .fini = teardown)
{
	setup(8, false);
	uint64_t r = buf(8);
	struct vdriver_buf one = { r, 8, false };
	int head = vdriver_add(&drv, 0, &one, 1, true);
	vdriver_set_desc(&drv, 0, (uint16_t)head, drv.q[0].indirect_gpa + (uint64_t)head * VDRIVER_MAX_INDIRECT * 16,
			 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, (uint16_t)(head + 1));
	pop_bad(EPROTO);
}

Test(virtq, rejects_indirect_table_of_bad_length, .fini = teardown)
{
	setup(8, false);
	uint64_t table = buf(16 * 1025);
	uint32_t lens[] = { 24, 8, 0, 16 * (VIRTQ_MAX_SIZE + 1) };
	for (unsigned i = 0; i < 4; i++) {
		vdriver_set_desc(&drv, 0, (uint16_t)i, table, lens[i], VIRTQ_DESC_F_INDIRECT, 0);
		vdriver_publish(&drv, 0, (uint16_t)i);
		pop_bad(EPROTO);
	}
}

Test(virtq, rejects_indirect_table_outside_guest_ram, .fini = teardown)
{
	setup(4, false);
	vdriver_set_desc(&drv, 0, 0, MEM_BYTES - 16, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vdriver_publish(&drv, 0, 0);
	vdriver_set_desc(&drv, 0, 1, UINT64_MAX - 15, 32, VIRTQ_DESC_F_INDIRECT, 0);
	vdriver_publish(&drv, 0, 1);
	pop_bad(EFAULT);
	pop_bad(EFAULT);
}

/* --- a broken ring: dead until reset ------------------------------------------ */

Test(virtq, breaks_ring_when_avail_index_jumps_past_queue_size, .fini = teardown)
{
	setup(8, false);
	vdriver_set_avail_idx(&drv, 0, 9);

	struct virtq_chain c;
	struct rv_err err = { 0 };
	cr_assert_eq(pop(&c, &err), -1);
	cr_assert(q.broken);
	cr_assert_eq(err.code, EPROTO);
	cr_assert_eq(pop(&c, &err), 0, "a broken ring yields nothing more");
	cr_assert(!virtq_enable_notify(&q));
}

Test(virtq, breaks_ring_when_avail_index_goes_backwards, .fini = teardown)
{
	setup(8, false);
	vdriver_set_avail_idx(&drv, 0, 0xffff);
	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(pop(&c, &err), -1);
	cr_assert(q.broken);
}

Test(virtq, breaks_ring_on_head_index_out_of_range, .fini = teardown)
{
	setup(8, false);
	vdriver_publish(&drv, 0, 8);

	struct virtq_chain c;
	struct rv_err err = { 0 };
	cr_assert_eq(pop(&c, &err), -1);
	cr_assert(q.broken);
	cr_assert_eq(err.code, EPROTO);
	cr_assert_eq(pop(&c, &err), 0);
}

/* --- interrupts and notifications --------------------------------------------- */

static void push_one(void)
{
	struct virtq_chain c;
	struct rv_err err;
	struct vdriver_buf b = { buf(4), 4, true };
	uint16_t head;
	uint32_t len;

	cr_assert_geq(vdriver_add(&drv, 0, &b, 1, false), 0);
	cr_assert_eq(pop(&c, &err), 1, "%s", err.msg);
	virtq_push(&q, c.head, 4);
	/* Read it back without touching used_event: the tests set that by hand. */
	drv.q[0].cb_disabled = true;
	cr_assert_eq(vdriver_get_used(&drv, 0, &head, &len), 1);
	drv.q[0].cb_disabled = false;
}

Test(virtq, interrupts_unless_driver_sets_no_interrupt, .fini = teardown)
{
	setup(8, false);
	cr_assert(!virtq_should_interrupt(&q), "nothing was used yet");
	push_one();
	cr_assert(virtq_should_interrupt(&q));
	cr_assert(!virtq_should_interrupt(&q), "nothing new since the last interrupt");

	vdriver_disable_cb(&drv, 0);
	push_one();
	cr_assert(!virtq_should_interrupt(&q), "NO_INTERRUPT is honoured");

	vdriver_enable_cb(&drv, 0);
	push_one();
	cr_assert(virtq_should_interrupt(&q));
}

Test(virtq, event_idx_interrupts_only_when_used_event_is_passed, .fini = teardown)
{
	setup(16, true);
	vdriver_set_used_event(&drv, 0, 2);
	push_one();                      /* used 1 */
	cr_assert(!virtq_should_interrupt(&q));
	push_one();                      /* used 2 */
	cr_assert(!virtq_should_interrupt(&q));
	push_one();                      /* used 3: entry 2 was written */
	cr_assert(virtq_should_interrupt(&q));

	/* A batch that passes used_event somewhere inside it interrupts once. */
	vdriver_set_used_event(&drv, 0, 4);
	push_one();
	push_one();
	push_one();                      /* 3 -> 6 */
	cr_assert(virtq_should_interrupt(&q));

	vdriver_set_used_event(&drv, 0, 10);
	push_one();
	push_one();                      /* 6 -> 8 */
	cr_assert(!virtq_should_interrupt(&q));
}

Test(virtq, event_idx_ignores_no_interrupt_flag, .fini = teardown)
{
	setup(8, true);
	vdriver_set_used_event(&drv, 0, 0);
	vdriver_disable_cb(&drv, 0);     /* flags NO_INTERRUPT, which EVENT_IDX ignores */
	push_one();
	cr_assert(virtq_should_interrupt(&q));
}

Test(virtq, event_idx_works_across_the_index_wrap, .fini = teardown)
{
	setup(8, true);
	q.used_idx = q.signalled_used = 0xfffe;
	drv.q[0].last_used = 0xfffe;
	vdriver_set_used_event(&drv, 0, 0xffff);
	push_one();                      /* 0xfffe -> 0xffff */
	cr_assert(!virtq_should_interrupt(&q));
	push_one();                      /* 0xffff -> 0 */
	cr_assert(virtq_should_interrupt(&q));
}

Test(virtq, enable_notify_publishes_avail_event_and_rechecks, .fini = teardown)
{
	setup(8, true);
	struct vdriver_buf b = { buf(4), 4, false };
	struct virtq_chain c;
	struct rv_err err;

	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_add(&drv, 0, &b, 1, false);
	cr_assert_eq(pop(&c, &err), 1);
	cr_assert_eq(pop(&c, &err), 1);
	cr_assert(!virtq_enable_notify(&q), "nothing is pending");
	cr_assert_eq(vdriver_avail_event(&drv, 0), 2);

	/* A buffer made available before the device looks again is not lost. */
	vdriver_add(&drv, 0, &b, 1, false);
	cr_assert(virtq_enable_notify(&q), "the re-check sees the new buffer");
	cr_assert_eq(pop(&c, &err), 1);
	cr_assert(!virtq_enable_notify(&q));
	cr_assert_eq(vdriver_avail_event(&drv, 0), 3);
}

Test(virtq, enable_notify_without_event_idx_leaves_avail_event_alone, .fini = teardown)
{
	setup(8, false);
	struct vdriver_buf b = { buf(4), 4, false };
	struct virtq_chain c;
	struct rv_err err;

	vdriver_add(&drv, 0, &b, 1, false);
	cr_assert(virtq_enable_notify(&q));
	cr_assert_eq(pop(&c, &err), 1);
	cr_assert(!virtq_enable_notify(&q));
	cr_assert_eq(vdriver_avail_event(&drv, 0), 0);
}

/* --- activation ------------------------------------------------------------------ */

static int activate(struct virtq *v, uint16_t max)
{
	struct rv_err err = { 0 };
	int rc = virtq_activate(v, &mem, max, &err);
	if (rc < 0)
		cr_assert_eq(err.code, EINVAL, "%s", err.msg);
	return rc;
}

Test(virtq, activation_rejects_rings_outside_guest_ram, .fini = teardown)
{
	setup(8, false);
	uint64_t d = drv.q[0].desc_gpa, a = drv.q[0].avail_gpa, u = drv.q[0].used_gpa;
	struct virtq v;

	v = queue_at(8, MEM_BYTES - 64, a, u);
	cr_assert_eq(activate(&v, 256), -1, "descriptor table crosses the end of RAM");
	v = queue_at(8, d, MEM_BYTES - 16, u);
	cr_assert_eq(activate(&v, 256), -1, "available ring crosses the end of RAM");
	v = queue_at(8, d, a, MEM_BYTES - 64);
	cr_assert_eq(activate(&v, 256), -1, "used ring crosses the end of RAM");
	v = queue_at(8, UINT64_MAX - 15, a, u);
	cr_assert_eq(activate(&v, 256), -1, "descriptor table wraps around");
	v = queue_at(8, d, a, 0xc0000000ull);
	cr_assert_eq(activate(&v, 256), -1, "used ring in the MMIO hole");
}

Test(virtq, activation_rejects_misaligned_rings, .fini = teardown)
{
	setup(8, false);
	uint64_t d = drv.q[0].desc_gpa, a = drv.q[0].avail_gpa, u = drv.q[0].used_gpa;
	struct virtq v;

	v = queue_at(8, d + 8, a, u);
	cr_assert_eq(activate(&v, 256), -1, "descriptor table must be 16-byte aligned");
	v = queue_at(8, d, a + 1, u);
	cr_assert_eq(activate(&v, 256), -1, "available ring must be 2-byte aligned");
	v = queue_at(8, d, a, u + 2);
	cr_assert_eq(activate(&v, 256), -1, "used ring must be 4-byte aligned");
	v = queue_at(8, d + 16, a + 2, u + 4);
	cr_assert_eq(activate(&v, 256), 0, "the minimum alignments are enough");
}

Test(virtq, activation_rejects_bad_queue_sizes, .fini = teardown)
{
	setup(8, false);
	uint64_t d = drv.q[0].desc_gpa, a = drv.q[0].avail_gpa, u = drv.q[0].used_gpa;
	struct virtq v;

	v = queue_at(0, d, a, u);
	cr_assert_eq(activate(&v, 256), -1);
	v = queue_at(6, d, a, u);
	cr_assert_eq(activate(&v, 256), -1, "not a power of two");
	v = queue_at(8, d, a, u);
	cr_assert_eq(activate(&v, 4), -1, "above the device's maximum");
}

Test(virtq, failed_activation_leaves_queue_unusable, .fini = teardown)
{
	/* Rings partly checked must not be half usable: a valid descriptor table
	 * and available ring with a used ring outside RAM pop nothing. */
	setup(8, false);
	struct vdriver_buf b = { buf(4), 4, true };
	vdriver_add(&drv, 0, &b, 1, false);
	struct virtq v = queue_at(8, drv.q[0].desc_gpa, drv.q[0].avail_gpa, MEM_BYTES);
	cr_assert_eq(activate(&v, 256), -1);

	struct virtq_chain c;
	struct rv_err err;
	cr_assert_eq(virtq_pop(&v, &c, &err), 0);
	cr_assert(!virtq_should_interrupt(&v));
	cr_assert(!virtq_enable_notify(&v));
}

Test(virtq, reset_forgets_everything, .fini = teardown)
{
	setup(8, false);
	push_one();
	virtq_reset(&q);
	cr_assert_eq(q.size, 0);
	cr_assert(!q.ready);
	cr_assert_null(q.desc);
	cr_assert_eq(q.last_avail, 0);
	cr_assert_eq(q.used_idx, 0);
}
