#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/snapbuf.h"

#define TAG_A SNAP_TAG('a', 'a', 'a', 'a')
#define TAG_B SNAP_TAG('b', 'b', 'b', 'b')

static struct snapbuf two_records(void)
{
	struct snapbuf b = { 0 };
	uint64_t v = 0x1122334455667788ull;
	snapbuf_put(&b, TAG_A, &v, sizeof(v));
	snapbuf_put(&b, TAG_B, "hello", 5);
	return b;
}

Test(snapbuf, records_come_back_in_order_with_their_lengths)
{
	struct snapbuf b = two_records();
	struct snapreader r = { b.data, b.len, 0 };
	struct rv_err err;
	uint64_t v = 0;
	const void *p;
	size_t len;

	cr_assert_eq(snapbuf_check(&b, &err), 0);
	cr_assert(snapreader_next_is(&r, TAG_A));
	cr_assert_eq(snapreader_get(&r, TAG_A, &v, sizeof(v), &err), 0);
	cr_assert_eq(v, 0x1122334455667788ull);
	cr_assert_eq(snapreader_get_var(&r, TAG_B, &p, &len, 16, &err), 0);
	cr_assert_eq(len, 5);
	cr_assert_eq(memcmp(p, "hello", 5), 0);
	cr_assert_eq(snapreader_end(&r, &err), 0);
	snapbuf_free(&b);
}

Test(snapbuf, a_record_out_of_order_is_named)
{
	struct snapbuf b = two_records();
	struct snapreader r = { b.data, b.len, 0 };
	struct rv_err err;
	char buf[5];

	cr_assert_eq(snapreader_get(&r, TAG_B, buf, 5, &err), -1);
	cr_assert_eq(err.code, EPROTO);
	cr_assert(strstr(err.msg, "'aaaa' record where 'bbbb' belongs"), "%s", err.msg);
	snapbuf_free(&b);
}

Test(snapbuf, a_wrong_length_fails_and_takes_nothing)
{
	struct snapbuf b = two_records();
	struct snapreader r = { b.data, b.len, 0 };
	struct rv_err err;
	uint32_t small;
	uint64_t v;

	cr_assert_eq(snapreader_get(&r, TAG_A, &small, sizeof(small), &err), -1);
	cr_assert(strstr(err.msg, "has 8 bytes, at most 4"), "%s", err.msg);
	cr_assert_eq(r.off, 0);
	cr_assert_eq(snapreader_get(&r, TAG_A, &v, sizeof(v), &err), 0);
	char big[8];
	cr_assert_eq(snapreader_get(&r, TAG_B, big, sizeof(big), &err), -1);
	cr_assert(strstr(err.msg, "has 5 bytes, not 8"), "%s", err.msg);
	snapbuf_free(&b);
}

Test(snapbuf, every_cut_short_file_is_an_error_never_a_read_past_it)
{
	struct snapbuf b = two_records();
	struct rv_err err;

	for (size_t cut = 0; cut < b.len; cut++) {
		struct snapreader r = { b.data, cut, 0 };
		uint64_t v;
		const void *p;
		size_t len;
		int rc = snapreader_get(&r, TAG_A, &v, sizeof(v), &err);
		if (rc == 0)
			rc = snapreader_get_var(&r, TAG_B, &p, &len, 16, &err);
		cr_assert_eq(rc, -1, "cut at %zu read whole", cut);
		cr_assert_eq(err.code, EPROTO);
	}
	snapbuf_free(&b);
}

Test(snapbuf, a_length_beyond_the_data_is_refused)
{
	uint32_t rec[3] = { TAG_A, 0xfffffff0u, 0 };
	struct snapreader r = { (const uint8_t *)rec, sizeof(rec), 0 };
	struct rv_err err;
	const void *p;
	size_t len;

	cr_assert_eq(snapreader_get_var(&r, TAG_A, &p, &len, SIZE_MAX, &err), -1);
	cr_assert(strstr(err.msg, "says 4294967280 bytes, 4 are left"), "%s", err.msg);
}

Test(snapbuf, trailing_bytes_are_an_error)
{
	struct snapbuf b = two_records();
	struct snapreader r = { b.data, b.len, 0 };
	struct rv_err err;
	uint64_t v;

	cr_assert_eq(snapreader_get(&r, TAG_A, &v, sizeof(v), &err), 0);
	cr_assert_eq(snapreader_end(&r, &err), -1);
	cr_assert(strstr(err.msg, "13 bytes after its last record"), "%s", err.msg);
	snapbuf_free(&b);
}

Test(snapbuf, an_oversized_record_fails_the_whole_buffer)
{
	struct snapbuf b = { 0 };
	struct rv_err err;
	static uint8_t big[SNAP_MAX_RECORD_BYTES + 1];

	snapbuf_put(&b, TAG_A, big, sizeof(big));
	snapbuf_put(&b, TAG_B, "x", 1);
	cr_assert_eq(snapbuf_check(&b, &err), -1);
	snapbuf_free(&b);
}
