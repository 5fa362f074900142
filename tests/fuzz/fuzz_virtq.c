/* libFuzzer target for the split-virtqueue walker (devices/virtio/queue.c):
 * the guest controls the ring addresses and every byte of guest memory.
 *
 * Input: a 32-byte header, then guest RAM contents.
 *   u8  size      < 11: queue size 1 << size; else the size as is (bad ones too)
 *   u8  flags     1: EVENT_IDX; 2: re-arm with virtq_enable_notify when empty;
 *                 4: write into every writable buffer
 *   u16 max_size  the device's QueueNumMax (0: 1024)
 *   u32 written   added to the used length of each chain
 *   u64 desc, avail, used   ring addresses
 *
 * Guest RAM is two regions cut out of one memfd mapping (gpa 0 and 4 GiB,
 * 32 KiB each), with ASan-poisoned guard pages before, between and after: any
 * access the walker makes outside RAM is reported, not just ones that fault.
 * Beyond "no crash, no UB", every chain popped must lie inside RAM, have at
 * most VIRTQ_MAX_CHAIN_SEGS segments and byte counts that add up. */
#include <sanitizer/asan_interface.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/virtio/queue.h"
#include "vmm/guest_mem.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define GUARD_BYTES 4096u
#define REGION_BYTES (32u * 1024)
#define HIGH_GPA 0x100000000ull
#define HDR_BYTES 32u
#define MAX_ROUNDS 4096u

static struct guest_mem mem;

static void setup_once(void)
{
	struct rv_err err;
	uint64_t map = 3 * GUARD_BYTES + 2 * REGION_BYTES;

	if (mem.base)
		return;
	CHECK(guest_mem_create(&mem, map, &err) == 0);
	/* [guard][region 0][guard][region 1][guard] */
	mem.nregions = 2;
	mem.regions[0] = (struct guest_region){ .gpa = 0, .size = REGION_BYTES,
						.host = mem.base + GUARD_BYTES };
	mem.regions[1] = (struct guest_region){ .gpa = HIGH_GPA, .size = REGION_BYTES,
						.host = mem.base + 2 * GUARD_BYTES + REGION_BYTES };
	ASAN_POISON_MEMORY_REGION(mem.base, GUARD_BYTES);
	ASAN_POISON_MEMORY_REGION(mem.base + GUARD_BYTES + REGION_BYTES, GUARD_BYTES);
	ASAN_POISON_MEMORY_REGION(mem.base + 2 * GUARD_BYTES + 2 * REGION_BYTES, GUARD_BYTES);
}

static bool inside_ram(const void *p, size_t len)
{
	for (unsigned i = 0; i < mem.nregions; i++) {
		const uint8_t *b = mem.regions[i].host;
		if ((const uint8_t *)p >= b && len <= mem.regions[i].size &&
		    (size_t)((const uint8_t *)p - b) <= mem.regions[i].size - len)
			return true;
	}
	return false;
}

static void check_chain(const struct virtq_chain *c, uint16_t qsize, bool write_all, uint8_t fill)
{
	uint64_t rd = 0, wr = 0;
	static uint8_t scratch[4096];

	CHECK(c->head < qsize);
	CHECK(c->nread + c->nwrite <= VIRTQ_MAX_CHAIN_SEGS);
	for (unsigned i = 0; i < c->nread + c->nwrite; i++) {
		const struct iovec *v = &c->iov[i];
		CHECK(v->iov_len > 0);
		CHECK(inside_ram(v->iov_base, v->iov_len));
		if (i < c->nread)
			rd += v->iov_len;
		else
			wr += v->iov_len;
		/* Touch both ends: ASan checks what the device would read or write. */
		volatile const uint8_t *p = v->iov_base;
		(void)p[0];
		(void)p[v->iov_len - 1];
		if (write_all && i >= c->nread) {
			((uint8_t *)v->iov_base)[0] = fill;
			((uint8_t *)v->iov_base)[v->iov_len - 1] = fill;
		}
	}
	CHECK(rd == c->read_bytes && wr == c->write_bytes);
	CHECK(rd <= VIRTQ_MAX_CHAIN_BYTES && wr <= VIRTQ_MAX_CHAIN_BYTES);
	size_t n = virtq_chain_read(c, 0, scratch, sizeof(scratch));
	CHECK(n == (rd < sizeof(scratch) ? rd : sizeof(scratch)));
	if (rd > 7)
		CHECK(virtq_chain_read(c, rd - 7, scratch, 100) == 7);
	CHECK(virtq_chain_read(c, rd, scratch, 1) == 0);
	if (write_all) {
		memset(scratch, fill, sizeof(scratch));
		n = virtq_chain_write(c, 0, scratch, sizeof(scratch));
		CHECK(n == (wr < sizeof(scratch) ? wr : sizeof(scratch)));
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rv_err err;
	struct virtq q;
	struct virtq_chain c;

	setup_once();
	if (size < HDR_BYTES)
		return 0;
	uint8_t size_sel = data[0], flags = data[1];
	uint16_t max_size;
	uint32_t written;
	uint64_t desc, avail, used;
	memcpy(&max_size, data + 2, 2);
	memcpy(&written, data + 4, 4);
	memcpy(&desc, data + 8, 8);
	memcpy(&avail, data + 16, 8);
	memcpy(&used, data + 24, 8);
	data += HDR_BYTES;
	size -= HDR_BYTES;

	/* Guest RAM: the rest of the input, region 0 first, zeros after. */
	for (unsigned i = 0; i < 2; i++) {
		size_t n = size < REGION_BYTES ? size : REGION_BYTES;
		memcpy(mem.regions[i].host, data, n);
		memset(mem.regions[i].host + n, 0, REGION_BYTES - n);
		data += n;
		size -= n;
	}

	q = (struct virtq){ .size = size_sel < 11 ? (uint16_t)(1u << size_sel) : size_sel,
			    .ready = true, .desc_gpa = desc, .avail_gpa = avail, .used_gpa = used,
			    .event_idx = flags & 1 };
	if (virtq_activate(&q, &mem, max_size ? max_size : VIRTQ_MAX_SIZE, &err) < 0) {
		CHECK(q.desc == NULL && q.avail == NULL && q.used == NULL);
		CHECK(virtq_pop(&q, &c, &err) == 0);
		return 0;
	}
	CHECK(inside_ram(q.desc, 16u * q.size));
	CHECK(inside_ram(q.used, 6u + 8u * q.size));

	for (unsigned round = 0; round < MAX_ROUNDS; round++) {
		int rc = virtq_pop(&q, &c, &err);
		if (rc == 0) {
			/* The pushes below may have rewritten the avail ring (the rings
			 * may overlap): the re-check must see that, not crash. */
			if ((flags & 2) && virtq_enable_notify(&q))
				continue;
			break;
		}
		if (rc < 0) {
			CHECK(err.msg[0] != '\0');
			if (q.broken) {
				CHECK(virtq_pop(&q, &c, &err) == 0);
				CHECK(!virtq_enable_notify(&q));
				break;
			}
			CHECK(c.head < q.size);
			virtq_push(&q, c.head, 0);
		} else {
			check_chain(&c, q.size, flags & 4, (uint8_t)round);
			virtq_push(&q, c.head, (uint32_t)c.write_bytes + written);
		}
		virtq_should_interrupt(&q);
	}
	return 0;
}
