#include <criterion/criterion.h>
#include <string.h>

#include "vmm/bus.h"

struct probe { uint64_t off; uint8_t last; int reads; };

static void rd(void *o, uint64_t off, uint8_t *d, uint32_t len)
{
	struct probe *p = o;
	p->off = off;
	p->reads++;
	memset(d, 0x5a, len);
}

static void wr(void *o, uint64_t off, const uint8_t *d, uint32_t len)
{
	struct probe *p = o;
	p->off = off;
	p->last = d[len - 1];
}

Test(bus, dispatches_by_range_with_offsets)
{
	struct bus b = { 0 };
	struct probe p = { 0 };
	struct rv_err err;
	uint8_t v = 7;

	cr_assert_eq(bus_add(&b, &(struct bus_device){ "uart", 0x3f8, 8, &p, rd, wr }, &err), 0);
	cr_assert_eq(bus_write(&b, 0x3fb, &v, 1), 0);
	cr_assert_eq(p.off, 3);
	cr_assert_eq(p.last, 7);
	cr_assert_eq(bus_read(&b, 0x3f8, &v, 1), 0);
	cr_assert_eq(v, 0x5a);
}

Test(bus, open_bus_reads_all_ones_and_drops_writes)
{
	struct bus b = { 0 };
	uint8_t v[4] = { 0 };

	cr_assert_eq(bus_read(&b, 0x80, v, 4), -1);
	cr_assert_eq(v[0] & v[1] & v[2] & v[3], 0xff);
	cr_assert_eq(bus_write(&b, 0x80, v, 1), -1);
}

Test(bus, access_straddling_a_device_end_is_not_dispatched)
{
	struct bus b = { 0 };
	struct probe p = { 0 };
	struct rv_err err;
	uint8_t v[4];

	bus_add(&b, &(struct bus_device){ "dev", 0x100, 4, &p, rd, wr }, &err);
	cr_assert_eq(bus_read(&b, 0x102, v, 4), -1);
	cr_assert_eq(p.reads, 0);
	cr_assert_eq(bus_read(&b, UINT64_MAX, v, 4), -1);
}

Test(bus, rejects_overlaps_and_names_both)
{
	struct bus b = { 0 };
	struct rv_err err;

	bus_add(&b, &(struct bus_device){ "a", 0x60, 5, NULL, rd, wr }, &err);
	cr_assert_eq(bus_add(&b, &(struct bus_device){ "b", 0x64, 1, NULL, rd, wr }, &err), -1);
	cr_assert_not_null(strstr(err.msg, "device b at 0x64 overlaps a at 0x60"), "got: %s", err.msg);
	cr_assert_eq(bus_add(&b, &(struct bus_device){ "c", UINT64_MAX, 2, NULL, rd, wr }, &err), -1);
}
