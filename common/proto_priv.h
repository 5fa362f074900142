/* Inside common/proto: the codec state that proto.c walks frames with, and
 * the value checks (proto_check.c) both directions apply. Not for other
 * modules. */
#ifndef RV_PROTO_PRIV_H
#define RV_PROTO_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/proto.h"

struct codec {
	bool decode;
	uint8_t *out;            /* encode: payload destination; NULL = measure */
	const uint8_t *in;       /* decode: payload bytes not read yet */
	size_t left;             /* decode: how many */
	char *arena;             /* decode: NULL = measure */
	size_t used;             /* encode: payload bytes; decode: arena bytes */
	const char *type;        /* "EXEC" */
	struct rv_err *err;
};

/* Fails with "EXEC frame: ..." (decoding) or "EXEC message: ..." (encoding). */
__attribute__((format(printf, 3, 4)))
int codec_fail(const struct codec *c, int code, const char *fmt, ...);

/* Values a receiver would otherwise have to check before using them as
 * indexes, masks or sizes. Before the walk (encoding) or after the first
 * (decoding). */
int proto_check_values(const struct codec *c, const struct proto_msg *m);
/* Paths and the arrays and strings of EXEC's attributes: decoding, once the
 * second walk has put them in the arena. */
int proto_check_paths(const struct codec *c, const struct proto_msg *m);

#endif
