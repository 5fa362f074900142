/* A VM's saved state as a run of tagged records (vmm/template.h): a writer
 * that appends (tag, length, bytes) and a reader that takes them back in the
 * same order, each one of the exact length asked for. The reader treats its
 * bytes as untrusted (a state file can be cut short or edited): every length
 * is checked against what is left, and an error names the record. Records are
 * in host byte order: a state file is only ever read on the host that wrote
 * it (its key names the host's kernel and binaries). */
#ifndef RV_SNAPBUF_H
#define RV_SNAPBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define SNAP_TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | \
			      (uint32_t)(d) << 24)
#define SNAP_RECORD_HDR_BYTES 8u
#define SNAP_MAX_RECORD_BYTES (1u << 20)

struct snapbuf {
	uint8_t *data;
	size_t len, cap;
	bool failed;                 /* an allocation failed: snapbuf_check says so */
};

/* Appends one record; a failed allocation is remembered, not returned, so
 * that a save is a plain list of puts and one check at the end. */
void snapbuf_put(struct snapbuf *b, uint32_t tag, const void *p, size_t len);
int snapbuf_check(const struct snapbuf *b, struct rv_err *err);
void snapbuf_free(struct snapbuf *b);

struct snapreader {
	const uint8_t *data;
	size_t len, off;
};

/* The next record must be `tag` with exactly `len` bytes: copied into p. */
int snapreader_get(struct snapreader *r, uint32_t tag, void *p, size_t len, struct rv_err *err);
/* The next record must be `tag` with at most `max` bytes: *p points into the
 * reader's data, *len is its length. */
int snapreader_get_var(struct snapreader *r, uint32_t tag, const void **p, size_t *len, size_t max,
		       struct rv_err *err);
/* Is the next record `tag`? (Optional records.) */
bool snapreader_next_is(const struct snapreader *r, uint32_t tag);
/* Every record was taken: trailing bytes are an error. */
int snapreader_end(const struct snapreader *r, struct rv_err *err);

/* "vcpu" for SNAP_TAG('v','c','p','u'), for errors. */
void snap_tag_name(uint32_t tag, char out[5]);

#endif
