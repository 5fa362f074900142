#include "common/snapbuf.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void snapbuf_put(struct snapbuf *b, uint32_t tag, const void *p, size_t len)
{
	uint32_t hdr[2] = { tag, (uint32_t)len };

	if (b->failed)
		return;
	if (len > SNAP_MAX_RECORD_BYTES) {
		b->failed = true;
		return;
	}
	size_t need = b->len + SNAP_RECORD_HDR_BYTES + len;
	if (need > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		while (cap < need)
			cap *= 2;
		uint8_t *data = realloc(b->data, cap);
		if (!data) {
			b->failed = true;
			return;
		}
		b->data = data;
		b->cap = cap;
	}
	memcpy(b->data + b->len, hdr, sizeof(hdr));
	if (len)
		memcpy(b->data + b->len + SNAP_RECORD_HDR_BYTES, p, len);
	b->len = need;
}

int snapbuf_check(const struct snapbuf *b, struct rv_err *err)
{
	return b->failed ? rv_fail(err, ENOMEM, "build the saved state") : 0;
}

void snapbuf_free(struct snapbuf *b)
{
	free(b->data);
	*b = (struct snapbuf){ 0 };
}

void snap_tag_name(uint32_t tag, char out[5])
{
	for (int i = 0; i < 4; i++) {
		char c = (char)(tag >> (8 * i));
		out[i] = c >= 0x20 && c < 0x7f ? c : '?';
	}
	out[4] = '\0';
}

/* The next record's tag and length, checked against what is left. */
static int next_record(const struct snapreader *r, uint32_t want, uint32_t *len, struct rv_err *err)
{
	uint32_t hdr[2];
	char name[5], got[5];

	snap_tag_name(want, name);
	if (r->off > r->len || r->len - r->off < SNAP_RECORD_HDR_BYTES)
		return rv_failx(err, EPROTO, "saved state ends before its '%s' record", name);
	memcpy(hdr, r->data + r->off, sizeof(hdr));
	if (hdr[0] != want) {
		snap_tag_name(hdr[0], got);
		return rv_failx(err, EPROTO, "saved state has a '%s' record where '%s' belongs", got,
				name);
	}
	if (hdr[1] > r->len - r->off - SNAP_RECORD_HDR_BYTES)
		return rv_failx(err, EPROTO, "saved state's '%s' record says %u bytes, %zu are left",
				name, hdr[1], r->len - r->off - SNAP_RECORD_HDR_BYTES);
	*len = hdr[1];
	return 0;
}

int snapreader_get_var(struct snapreader *r, uint32_t tag, const void **p, size_t *len, size_t max,
		       struct rv_err *err)
{
	uint32_t n = 0;
	char name[5];

	if (next_record(r, tag, &n, err) < 0)
		return -1;
	if (n > max) {
		snap_tag_name(tag, name);
		return rv_failx(err, EPROTO, "saved state's '%s' record has %u bytes, at most %zu fit",
				name, n, max);
	}
	*p = r->data + r->off + SNAP_RECORD_HDR_BYTES;
	*len = n;
	r->off += SNAP_RECORD_HDR_BYTES + n;
	return 0;
}

int snapreader_get(struct snapreader *r, uint32_t tag, void *p, size_t len, struct rv_err *err)
{
	const void *src;
	size_t n;
	char name[5];

	size_t off = r->off;
	if (snapreader_get_var(r, tag, &src, &n, len, err) < 0)
		return -1;
	if (n != len) {
		r->off = off;
		snap_tag_name(tag, name);
		return rv_failx(err, EPROTO, "saved state's '%s' record has %zu bytes, not %zu", name,
				n, len);
	}
	if (len)
		memcpy(p, src, len);
	return 0;
}

bool snapreader_next_is(const struct snapreader *r, uint32_t tag)
{
	uint32_t t;

	if (r->off > r->len || r->len - r->off < SNAP_RECORD_HDR_BYTES)
		return false;
	memcpy(&t, r->data + r->off, sizeof(t));
	return t == tag;
}

int snapreader_end(const struct snapreader *r, struct rv_err *err)
{
	if (r->off != r->len)
		return rv_failx(err, EPROTO, "saved state has %zu bytes after its last record",
				r->len - r->off);
	return 0;
}
