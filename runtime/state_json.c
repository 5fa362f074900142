/* state.json and the OCI state JSON: writing them as runc prints them, and
 * reading our own state.json back with a small strict parser (it is our
 * file, but a crash may leave it short, and it must never crash us). */
#include "runtime/state_json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "common/jsonw.h"

/* ---- JSON output ---------------------------------------------------------- */

/* Go's encoder: MarshalIndent puts "\n" + indent before each member and ": "
 * after a key; the compact form has neither. A failed allocation sticks. */
struct jout {
	FILE *f;
	bool pretty, failed;
};

static void put_quoted(struct jout *o, const char *s)
{
	char small[256];
	size_t need = jsonw_quote(small, sizeof(small), s ? s : "");
	if (need < sizeof(small)) {
		fputs(small, o->f);
		return;
	}
	_cleanup_free_ char *big = malloc(need + 1);
	if (!big) {
		o->failed = true;
		return;
	}
	jsonw_quote(big, need + 1, s);
	fputs(big, o->f);
}

static void put_key(struct jout *o, int depth, bool first, const char *key)
{
	fprintf(o->f, "%s%s%*s", first ? "" : ",", o->pretty ? "\n" : "",
		o->pretty ? 2 * depth : 0, "");
	put_quoted(o, key);
	fputs(o->pretty ? ": " : ":", o->f);
}

static void put_str(struct jout *o, const char *key, const char *v)
{
	put_key(o, 1, false, key);
	put_quoted(o, v);
}

static int cmp_annotation(const void *a, const void *b)
{
	return strcmp((*(const struct ct_annotation *const *)a)->key,
		      (*(const struct ct_annotation *const *)b)->key);
}

/* Go prints a map with its keys sorted. */
static void put_annotations(struct jout *o, const struct ct_state *s)
{
	_cleanup_free_ const struct ct_annotation **sorted = calloc(s->nannotations,
								     sizeof(*sorted));
	if (!sorted) {
		o->failed = true;
		return;
	}
	for (size_t i = 0; i < s->nannotations; i++)
		sorted[i] = &s->annotations[i];
	qsort(sorted, s->nannotations, sizeof(*sorted), cmp_annotation);
	put_key(o, 1, false, "annotations");
	fputc('{', o->f);
	for (size_t i = 0; i < s->nannotations; i++) {
		put_key(o, 2, i == 0, sorted[i]->key);
		put_quoted(o, sorted[i]->value);
	}
	fputs(o->pretty ? "\n  }" : "}", o->f);
}

/* The fields of runc's containerState in its order; state.json adds pidStart. */
static char *emit_state(const struct ct_state *s, const char *status, pid_t pid,
			bool pretty, bool with_private)
{
	char *buf = NULL;
	size_t size;
	struct jout o = { .f = open_memstream(&buf, &size), .pretty = pretty };

	if (!o.f)
		return NULL;
	fputc('{', o.f);
	put_key(&o, 1, true, "ociVersion");
	put_quoted(&o, STATE_OCI_VERSION);
	put_str(&o, "id", s->id);
	put_key(&o, 1, false, "pid");
	fprintf(o.f, "%d", (int)pid);
	if (with_private) {
		put_key(&o, 1, false, "pidStart");
		fprintf(o.f, "%" PRIu64, s->pid_start);
		if (s->cgroup)
			put_str(&o, "cgroupPath", s->cgroup);
	}
	put_str(&o, "status", status);
	put_str(&o, "bundle", s->bundle);
	put_str(&o, "rootfs", s->rootfs);
	put_str(&o, "created", s->created);
	if (s->nannotations)
		put_annotations(&o, s);
	put_str(&o, "owner", s->owner);
	fputs(pretty ? "\n}" : "}", o.f);
	bool bad = ferror(o.f) || o.failed;
	if (fclose(o.f) != 0 || bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

static pid_t shown_pid(const struct ct_state *s, const char *status)
{
	return status && strcmp(status, "stopped") == 0 ? 0 : s->pid;
}

char *state_oci_json(const struct ct_state *s, const char *status)
{
	return emit_state(s, status, shown_pid(s, status), true, false);
}

char *state_list_json_entry(const struct ct_state *s, const char *status)
{
	return emit_state(s, status, shown_pid(s, status), false, false);
}

/* ---- state.json parser ---------------------------------------------------- */

struct jp {
	const char *p, *start, *end;
	const char *file;           /* for messages */
	struct rv_err *err;
};

static int jp_fail(struct jp *j, const char *what)
{
	if (j->p >= j->end)
		return rv_failx(j->err, EINVAL, "corrupt state file %s: %s at its end (truncated?)",
				j->file, what);
	return rv_failx(j->err, EINVAL, "corrupt state file %s: %s at byte %zu",
			j->file, what, (size_t)(j->p - j->start));
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Skips whitespace, then consumes C if it is next. */
static bool jp_eat(struct jp *j, char c)
{
	jp_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

static int jp_hex4(struct jp *j, unsigned *out)
{
	static const char hex[] = "0123456789abcdef";

	*out = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		const char *h = j->p < j->end && *j->p ? strchr(hex, tolower((unsigned char)*j->p)) : NULL;
		if (!h)
			return jp_fail(j, "bad \\u escape");
		*out = *out << 4 | (unsigned)(h - hex);
	}
	return 0;
}

/* \uXXXX, or a surrogate pair of them, as UTF-8 (never longer than its escape). */
static int jp_unicode(struct jp *j, char **o)
{
	unsigned cp, lo;

	if (jp_hex4(j, &cp) < 0)
		return -1;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jp_fail(j, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
			return jp_fail(j, "lone high surrogate");
		j->p += 2;
		if (jp_hex4(j, &lo) < 0)
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(j, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return jp_fail(j, "NUL in a string");
	static const unsigned char lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };
	int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	unsigned char *u = (unsigned char *)*o;
	for (int i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (unsigned char)(0x80 | (cp & 0x3f));
	u[0] = (unsigned char)(lead[n] | cp);
	*o += n;
	return 0;
}

static int jp_escape(struct jp *j, char **o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

	if (j->p >= j->end)
		return jp_fail(j, "unterminated string");
	char c = *j->p++;
	if (c == 'u')
		return jp_unicode(j, o);
	const char *hit = strchr(from, c);
	if (!hit || !c)
		return jp_fail(j, "bad escape");
	*(*o)++ = to[hit - from];
	return 0;
}

/* Bytes up to the closing quote: the decoded string is never longer. */
static size_t jp_string_span(const struct jp *j)
{
	const char *p = j->p;

	while (p < j->end && *p != '"')
		p += *p == '\\' && p + 1 < j->end ? 2 : 1;
	return p < j->end ? (size_t)(p - j->p) : (size_t)(j->end - j->p);
}

static int jp_string(struct jp *j, char **out)
{
	if (!jp_eat(j, '"'))
		return jp_fail(j, "expected a string");
	_cleanup_free_ char *s = malloc(jp_string_span(j) + 1);
	if (!s)
		return rv_fail(j->err, ENOMEM, "parse %s", j->file);
	char *o = s;
	for (;;) {
		if (j->p >= j->end)
			return jp_fail(j, "unterminated string");
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return jp_fail(j, "control byte in a string");
		if (c != '\\')
			*o++ = (char)c;
		else if (jp_escape(j, &o) < 0)
			return -1;
	}
	*o = '\0';
	*out = s;
	s = NULL;
	return 0;
}

static int jp_uint(struct jp *j, uint64_t max, uint64_t *out)
{
	jp_ws(j);
	const char *digits = j->p;
	uint64_t v = 0;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		unsigned d = (unsigned)(*j->p - '0');
		if (v > (max - d) / 10)
			return jp_fail(j, "number out of range");
		v = v * 10 + d;
		j->p++;
	}
	if (j->p == digits || (*digits == '0' && j->p - digits > 1))
		return jp_fail(j, "expected a non-negative integer");
	*out = v;
	return 0;
}

static int jp_annotations(struct jp *j, struct ct_state *s)
{
	size_t cap = 0;

	if (!jp_eat(j, '{'))
		return jp_fail(j, "expected an object");
	if (jp_eat(j, '}'))
		return 0;
	do {
		if (s->nannotations == cap) {
			cap = cap ? cap * 2 : 8;
			void *p = reallocarray(s->annotations, cap, sizeof(*s->annotations));
			if (!p)
				return rv_fail(j->err, ENOMEM, "parse %s", j->file);
			s->annotations = p;
		}
		struct ct_annotation *a = &s->annotations[s->nannotations];
		*a = (struct ct_annotation){ 0 };
		s->nannotations++;   /* counted now so ct_state_free sees a half-parsed one */
		if (jp_string(j, &a->key) < 0)
			return -1;
		if (!jp_eat(j, ':'))
			return jp_fail(j, "expected ':'");
		if (jp_string(j, &a->value) < 0)
			return -1;
	} while (jp_eat(j, ','));
	return jp_eat(j, '}') ? 0 : jp_fail(j, "expected ',' or '}'");
}

/* A member this version does not know (a newer runvm wrote it): a string or
 * a number, the only kinds we ever add. */
static int jp_skip(struct jp *j)
{
	_cleanup_free_ char *str = NULL;
	uint64_t num;

	jp_ws(j);
	if (j->p < j->end && *j->p == '"')
		return jp_string(j, &str);
	return jp_uint(j, UINT64_MAX, &num);
}

enum { F_ID, F_PID, F_PIDSTART, F_STATUS, F_BUNDLE, F_ROOTFS, F_CREATED, F_OWNER, F_ANN,
       F_CGROUP };
#define REQUIRED_FIELDS ((1u << F_OWNER) - 1)

static int jp_member(struct jp *j, struct ct_state *s, unsigned *seen)
{
	static const char *const names[] = {
		[F_ID] = "id", [F_PID] = "pid", [F_PIDSTART] = "pidStart", [F_STATUS] = "status",
		[F_BUNDLE] = "bundle", [F_ROOTFS] = "rootfs", [F_CREATED] = "created",
		[F_OWNER] = "owner", [F_ANN] = "annotations", [F_CGROUP] = "cgroupPath",
	};
	char **strs[] = {
		[F_ID] = &s->id, [F_STATUS] = &s->status, [F_BUNDLE] = &s->bundle,
		[F_ROOTFS] = &s->rootfs, [F_CREATED] = &s->created, [F_OWNER] = &s->owner,
		[F_CGROUP] = &s->cgroup,
	};
	_cleanup_free_ char *key = NULL;
	uint64_t v;

	if (jp_string(j, &key) < 0)
		return -1;
	if (!jp_eat(j, ':'))
		return jp_fail(j, "expected ':'");
	unsigned f = 0;
	while (f < sizeof(names) / sizeof(names[0]) && strcmp(key, names[f]) != 0)
		f++;
	if (f == sizeof(names) / sizeof(names[0]))
		return jp_skip(j);
	if (*seen & (1u << f))
		return jp_fail(j, "duplicate member");
	*seen |= 1u << f;
	switch (f) {
	case F_PID:
		if (jp_uint(j, INT_MAX, &v) < 0)
			return -1;
		s->pid = (pid_t)v;
		return 0;
	case F_PIDSTART:
		return jp_uint(j, UINT64_MAX, &s->pid_start);
	case F_ANN:
		return jp_annotations(j, s);
	default:
		return jp_string(j, strs[f]);
	}
}

static int jp_state(struct jp *j, struct ct_state *s)
{
	unsigned seen = 0;

	jp_ws(j);
	if (j->p == j->end)
		return rv_failx(j->err, EINVAL, "corrupt state file %s: it is empty", j->file);
	if (!jp_eat(j, '{'))
		return jp_fail(j, "expected '{'");
	if (!jp_eat(j, '}')) {
		do {
			if (jp_member(j, s, &seen) < 0)
				return -1;
		} while (jp_eat(j, ','));
		if (!jp_eat(j, '}'))
			return jp_fail(j, "expected ',' or '}'");
	}
	jp_ws(j);
	if (j->p != j->end)
		return jp_fail(j, "junk after the object");
	if ((seen & REQUIRED_FIELDS) != REQUIRED_FIELDS)
		return jp_fail(j, "a required member is missing");
	if (!s->owner && !(s->owner = strdup("")))
		return rv_fail(j->err, ENOMEM, "parse %s", j->file);
	return 0;
}

void ct_state_free(struct ct_state *s)
{
	free(s->id);
	free(s->bundle);
	free(s->rootfs);
	free(s->created);
	free(s->status);
	free(s->owner);
	free(s->cgroup);
	for (size_t i = 0; i < s->nannotations; i++) {
		free(s->annotations[i].key);
		free(s->annotations[i].value);
	}
	free(s->annotations);
	*s = (struct ct_state){ 0 };
}

char *state_json_private(const struct ct_state *s)
{
	return emit_state(s, s->status, s->pid, true, true);
}

int state_json_parse(const char *buf, size_t len, const char *file, struct ct_state *s,
		     struct rv_err *err)
{
	struct jp j = { .p = buf, .start = buf, .end = buf + len, .file = file, .err = err };

	if (jp_state(&j, s) < 0) {
		ct_state_free(s);
		return -1;
	}
	return 0;
}
