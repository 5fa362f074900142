/* Wire helpers shared by the protocol's unit tests (test_proto*.c): frames
 * made by hand, for bytes the encoder would never produce, and the checks
 * every test makes of an encode or a decode. Inline, so that a test file
 * may use only some of them. */
#ifndef RV_TEST_PROTO_WIRE_H
#define RV_TEST_PROTO_WIRE_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"

struct wire {
	uint8_t b[8192];
	size_t n;
};

static inline void w16(struct wire *w, uint16_t v)
{
	w->b[w->n++] = (uint8_t)v;
	w->b[w->n++] = (uint8_t)(v >> 8);
}

static inline void w32(struct wire *w, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		w->b[w->n++] = (uint8_t)(v >> (8 * i));
}

static inline void w64(struct wire *w, uint64_t v)
{
	w32(w, (uint32_t)v);
	w32(w, (uint32_t)(v >> 32));
}

static inline void wstr(struct wire *w, const char *s, size_t len)
{
	w32(w, (uint32_t)len);
	memcpy(w->b + w->n, s, len);
	w->n += len;
}

/* EXEC's fields after its groups: flags and the terminal size (version 4),
 * then umask 022 and no other process attribute (version 5: 36 bytes), no
 * user namespace maps (version 6: 8 bytes), and no path (version 8: 4
 * bytes, argv[0] is what runs). */
static inline void wexec_tail(struct wire *w, uint32_t flags, uint16_t rows, uint16_t cols)
{
	w32(w, flags);
	w16(w, rows);
	w16(w, cols);
	w32(w, 022);     /* umask */
	w32(w, 0);       /* oom_score_adj */
	w32(w, 0);       /* caps */
	w32(w, 0);       /* rlimits */
	w32(w, 0);       /* hostname "" */
	w32(w, 0);       /* domainname "" */
	w32(w, 0);       /* sysctls */
	w32(w, 0);       /* seccomp_flags */
	w32(w, 0);       /* seccomp */
	w32(w, 0);       /* uid_map */
	w32(w, 0);       /* gid_map */
	w32(w, 0);       /* path "" */
}

/* A header whose payload_len covers everything appended after it. */
static inline void whdr(struct wire *w, uint16_t type, uint16_t reserved, uint32_t id)
{
	w->n = 0;
	w32(w, 0);
	w16(w, type);
	w16(w, reserved);
	w32(w, id);
}

static inline void wseal(struct wire *w)
{
	uint32_t plen = (uint32_t)(w->n - PROTO_HDR_BYTES);
	for (int i = 0; i < 4; i++)
		w->b[i] = (uint8_t)(plen >> (8 * i));
}

static inline void encode_ok(const struct proto_msg *m, uint8_t **buf, size_t *len)
{
	struct rv_err err = { 0 };
	size_t cap = 0;

	*buf = NULL;
	*len = 0;
	cr_assert_eq(proto_encode(m, buf, len, &cap, &err), 0, "encode: %s", err.msg);
	cr_assert_geq(cap, *len);
}

/* Encodes m, checks the frame measures whole, decodes it into out. */
static inline void round_trip(const struct proto_msg *m, struct proto_msg *out)
{
	struct rv_err err = { 0 };
	uint8_t *buf;
	size_t len;

	encode_ok(m, &buf, &len);
	cr_assert_eq(proto_frame_check(buf, len, &err), (long)len);
	cr_assert_eq(proto_decode(buf, len, out, &err), 0, "decode: %s", err.msg);
	cr_assert_eq(out->type, m->type);
	cr_assert_eq(out->id, m->id);
	free(buf);
}

static inline void decode_fails(const struct wire *w, int code, const char *needle)
{
	struct rv_err err = { 0 };
	struct proto_msg m;

	cr_assert_eq(proto_decode(w->b, w->n, &m, &err), -1, "decoded a bad frame");
	cr_assert_eq(err.code, code, "errno %d, expected %d (%s)", err.code, code, err.msg);
	cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
	cr_assert_null(m.arena, "a failed decode must leave nothing to free");
}

static inline void encode_fails(const struct proto_msg *m, int code, const char *needle)
{
	struct rv_err err = { 0 };
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	cr_assert_eq(proto_encode(m, &buf, &len, &cap, &err), -1, "encoded a bad message");
	cr_assert_eq(err.code, code, "errno %d, expected %d (%s)", err.code, code, err.msg);
	cr_assert(strstr(err.msg, needle), "message '%s' lacks '%s'", err.msg, needle);
	cr_assert_eq(len, 0, "a refused message must not be appended");
	free(buf);
}

#endif
