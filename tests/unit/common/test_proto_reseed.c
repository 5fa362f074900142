/* RESEED and RESEED_REPLY (protocol version 9): a clone's fresh entropy and
 * wall clock, and the CID the guest sees. The seed is the protocol's only
 * bytes field: any byte value, and exactly PROTO_RESEED_SEED_BYTES of them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

#define REALTIME_NS 1767225600123456789ull   /* 2026-01-01T00:00:00.123456789Z */

/* Every kind of byte a string field would refuse or mangle: NUL, 0xff. */
static void fill_seed(uint8_t seed[PROTO_RESEED_SEED_BYTES])
{
	for (unsigned i = 0; i < PROTO_RESEED_SEED_BYTES; i++)
		seed[i] = (uint8_t)(i * 37 + (i & 1 ? 0xff : 0));
	seed[5] = 0;
}

/* A RESEED by hand: a seed of seed_len bytes (its length field says so),
 * then the clock, the payload cut to keep bytes (all: SIZE_MAX). */
static void wreseed(struct wire *w, uint32_t seed_len, uint64_t realtime_ns, size_t keep)
{
	uint8_t seed[PROTO_RESEED_SEED_BYTES + 8] = { 0 };

	fill_seed(seed);
	whdr(w, PROTO_RESEED, 0, 13);
	w32(w, seed_len);
	memcpy(w->b + w->n, seed, seed_len);
	w->n += seed_len;
	w64(w, realtime_ns);
	if (keep < w->n - PROTO_HDR_BYTES)
		w->n = PROTO_HDR_BYTES + keep;
	wseal(w);
}

Test(proto_reseed, version_and_names)
{
	cr_assert_eq(PROTO_VERSION, 9, "RESEED: a new version");
	cr_assert_str_eq(proto_type_name(PROTO_RESEED), "RESEED");
	cr_assert_str_eq(proto_type_name(PROTO_RESEED_REPLY), "RESEED_REPLY");
	cr_assert_eq(PROTO_TYPE_MAX, PROTO_RESEED_REPLY, "RESEED_REPLY (version 9) is the last type");
}

Test(proto_reseed, frame_check_knows_both_and_nothing_after_them)
{
	struct rv_err err;
	struct wire w;

	wreseed(&w, PROTO_RESEED_SEED_BYTES, REALTIME_NS, SIZE_MAX);
	cr_assert_eq(proto_frame_check(w.b, w.n, &err), (long)w.n);
	whdr(&w, PROTO_RESEED_REPLY, 0, 13);
	cr_assert_eq(proto_frame_check(w.b, w.n, &err), (long)w.n);
	whdr(&w, PROTO_RESEED_REPLY + 1, 0, 13);
	cr_assert_eq(proto_frame_check(w.b, w.n, &err), -1);
	cr_assert(strstr(err.msg, "unknown message type 22"), "%s", err.msg);
}

Test(proto_reseed, round_trips_every_byte_of_the_seed_and_the_clock)
{
	const uint64_t clocks[] = { 0, 1, REALTIME_NS, UINT64_MAX };

	for (size_t i = 0; i < sizeof(clocks) / sizeof(clocks[0]); i++) {
		struct proto_msg m = { .type = PROTO_RESEED, .id = 13 }, d;
		fill_seed(m.reseed.seed);
		m.reseed.realtime_ns = clocks[i];
		round_trip(&m, &d);
		cr_assert_eq(memcmp(d.reseed.seed, m.reseed.seed, PROTO_RESEED_SEED_BYTES), 0,
			     "clock %zu: the seed changed on the way", i);
		cr_assert_eq(d.reseed.realtime_ns, clocks[i]);
		cr_assert_null(d.arena, "a fixed-size message needs no arena");
		proto_msg_free(&d);
	}
}

/* u32 64, the 64 bytes, u64 realtime_ns: what the encoder makes, byte for byte. */
Test(proto_reseed, the_wire_is_the_length_the_seed_and_the_clock)
{
	struct proto_msg m = { .type = PROTO_RESEED, .id = 13 };
	struct wire w;
	uint8_t *buf;
	size_t len;

	fill_seed(m.reseed.seed);
	m.reseed.realtime_ns = REALTIME_NS;
	encode_ok(&m, &buf, &len);
	wreseed(&w, PROTO_RESEED_SEED_BYTES, REALTIME_NS, SIZE_MAX);
	cr_assert_eq(len, PROTO_HDR_BYTES + 4 + PROTO_RESEED_SEED_BYTES + 8);
	cr_assert_eq(len, w.n);
	cr_assert_eq(memcmp(buf, w.b, len), 0);
	free(buf);
}

Test(proto_reseed, rejects_a_seed_of_another_length)
{
	const uint32_t lens[] = { 0, 32, PROTO_RESEED_SEED_BYTES - 1, PROTO_RESEED_SEED_BYTES + 1 };
	char want[96];
	struct wire w;

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		wreseed(&w, lens[i], REALTIME_NS, SIZE_MAX);
		snprintf(want, sizeof(want), "RESEED frame: seed is %u bytes, it must be exactly %u",
			 lens[i], PROTO_RESEED_SEED_BYTES);
		decode_fails(&w, EPROTO, want);
	}
	/* A length the frame could never hold is refused by its value, before
	 * any of its bytes are looked for. */
	wreseed(&w, 0, REALTIME_NS, SIZE_MAX);
	w.b[PROTO_HDR_BYTES] = w.b[PROTO_HDR_BYTES + 1] = 0xff;
	w.b[PROTO_HDR_BYTES + 2] = w.b[PROTO_HDR_BYTES + 3] = 0xff;
	decode_fails(&w, EPROTO, "seed is 4294967295 bytes, it must be exactly 64");
}

Test(proto_reseed, rejects_a_truncated_payload)
{
	const struct { size_t keep; const char *why; } cases[] = {
		{ 0, "RESEED frame: seed needs 4 bytes, only 0 are left" },
		{ 3, "seed needs 4 bytes, only 3 are left" },
		{ 4, "seed needs 64 bytes, only 0 are left" },
		{ 4 + 63, "seed needs 64 bytes, only 63 are left" },
		{ 4 + 64, "realtime_ns needs 8 bytes, only 0 are left" },
		{ 4 + 64 + 7, "realtime_ns needs 8 bytes, only 7 are left" },
	};
	struct wire w;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		wreseed(&w, PROTO_RESEED_SEED_BYTES, REALTIME_NS, cases[i].keep);
		decode_fails(&w, EPROTO, cases[i].why);
	}
	/* A frame shorter than its header says: cut short, whatever its type. */
	wreseed(&w, PROTO_RESEED_SEED_BYTES, REALTIME_NS, SIZE_MAX);
	w.n -= 1;
	decode_fails(&w, EPROTO, "RESEED frame is cut short");
}

Test(proto_reseed, rejects_trailing_bytes)
{
	struct wire w;

	wreseed(&w, PROTO_RESEED_SEED_BYTES, REALTIME_NS, SIZE_MAX);
	w.b[w.n++] = 0;
	wseal(&w);
	decode_fails(&w, EPROTO, "RESEED frame: 1 bytes after the last field");

	whdr(&w, PROTO_RESEED_REPLY, 0, 13);
	w32(&w, 3);
	w16(&w, 0);
	wseal(&w);
	decode_fails(&w, EPROTO, "RESEED_REPLY frame: 2 bytes after the last field");
}

Test(proto_reseed, reply_round_trips_the_cid)
{
	const uint32_t cids[] = { 0, 3, 0xfffffffeu, UINT32_MAX };

	for (size_t i = 0; i < sizeof(cids) / sizeof(cids[0]); i++) {
		struct proto_msg m = { .type = PROTO_RESEED_REPLY, .id = 13,
				       .reseed_reply.cid = cids[i] }, d;
		round_trip(&m, &d);
		cr_assert_eq(d.reseed_reply.cid, cids[i]);
		proto_msg_free(&d);
	}
}

Test(proto_reseed, reply_rejects_a_truncated_cid)
{
	struct wire w;

	whdr(&w, PROTO_RESEED_REPLY, 0, 13);
	w16(&w, 3);
	wseal(&w);
	decode_fails(&w, EPROTO, "RESEED_REPLY frame: cid needs 4 bytes, only 2 are left");
}
