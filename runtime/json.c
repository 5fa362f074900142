/* A JSON tree built from yajl's event parser. Our own callbacks rather than
 * yajl_tree_parse: numbers stay text (so uint64 values above INT64_MAX read
 * exactly), strings keep their length (so \u0000 is caught, not truncated),
 * nesting is bounded, and each value gets the parent link its path needs. */
#include "runtime/json.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "common/jsonw.h"

#define JSON_PATH_BYTES 256
#define STR_(x) #x
#define STR(x) STR_(x)

struct json_val {
	enum json_type type;
	bool boolean;
	struct json_val *parent;
	size_t index;                /* position in the parent's items */
	char *text;                  /* string bytes or number text, NUL-terminated */
	size_t text_len;             /* string bytes: less than strlen when a \u0000 hid the rest */
	struct json_val **items;     /* array items, object member values */
	char **keys;                 /* object member keys, parallel to items */
	size_t n, cap;
};

struct json_doc {
	struct json_val *root;
};

/* The state of one parse: the containers still open, innermost last. */
struct builder {
	struct json_val *root;
	struct json_val *open[JSON_MAX_DEPTH];
	size_t depth;
	char *key;                   /* the member key waiting for its value */
	const char *why;             /* why a callback stopped the parse */
	int code;                    /* and its errno value */
};

static void val_free(struct json_val *v)
{
	if (!v)
		return;
	for (size_t i = 0; i < v->n; i++) {
		val_free(v->items[i]);   /* depth <= JSON_MAX_DEPTH */
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->text);
	free(v);
}

static int stop(struct builder *b, int code, const char *why)
{
	b->why = why;
	b->code = code;
	return 0;                    /* a zero return cancels yajl's parse */
}

static int grow(struct json_val *p)
{
	size_t cap = p->cap ? p->cap * 2 : 4;
	struct json_val **items = realloc(p->items, cap * sizeof(*items));
	if (!items)
		return -1;
	p->items = items;
	if (p->type == JSON_OBJECT) {
		char **keys = realloc(p->keys, cap * sizeof(*keys));
		if (!keys)
			return -1;
		p->keys = keys;
	}
	p->cap = cap;
	return 0;
}

/* Hang a new value of type T on the innermost open container (or make it the
 * root); NULL when out of memory, with the parse stopped. */
static struct json_val *add(struct builder *b, enum json_type t)
{
	struct json_val *v = calloc(1, sizeof(*v));
	if (!v) {
		stop(b, ENOMEM, "out of memory");
		return NULL;
	}
	v->type = t;
	if (b->depth == 0) {
		b->root = v;         /* yajl delivers exactly one top-level value */
		return v;
	}
	struct json_val *p = b->open[b->depth - 1];
	if (p->n == p->cap && grow(p) < 0) {
		free(v);
		stop(b, ENOMEM, "out of memory");
		return NULL;
	}
	if (p->type == JSON_OBJECT) {
		p->keys[p->n] = b->key;
		b->key = NULL;
	}
	v->parent = p;
	v->index = p->n;
	p->items[p->n++] = v;
	return v;
}

static int on_null(void *ctx)
{
	return add(ctx, JSON_NULL) != NULL;
}

static int on_bool(void *ctx, int value)
{
	struct json_val *v = add(ctx, JSON_BOOL);
	if (v)
		v->boolean = value != 0;
	return v != NULL;
}

static int set_text(struct builder *b, struct json_val *v, const void *s, size_t len)
{
	if (!v)
		return 0;
	if (!(v->text = malloc(len + 1)))
		return stop(b, ENOMEM, "out of memory");
	memcpy(v->text, s, len);
	v->text[len] = '\0';
	v->text_len = len;
	return 1;
}

static int on_number(void *ctx, const char *s, size_t len)
{
	return set_text(ctx, add(ctx, JSON_NUMBER), s, len);
}

static int on_string(void *ctx, const unsigned char *s, size_t len)
{
	return set_text(ctx, add(ctx, JSON_STRING), s, len);
}

static int on_key(void *ctx, const unsigned char *s, size_t len)
{
	struct builder *b = ctx;

	/* A key is compared as a C string: with a NUL inside, "ociVersion\u0000x"
	 * would pass for "ociVersion". Values are checked when read, keys here. */
	if (memchr(s, '\0', len))
		return stop(b, EINVAL, "object key contains a NUL character (\\u0000)");
	free(b->key);
	if (!(b->key = strndup((const char *)s, len)))
		return stop(b, ENOMEM, "out of memory");
	return 1;
}

static int open_container(struct builder *b, enum json_type t)
{
	if (b->depth == JSON_MAX_DEPTH)
		return stop(b, EINVAL, "nested deeper than " STR(JSON_MAX_DEPTH) " levels");
	struct json_val *v = add(b, t);
	if (!v)
		return 0;
	b->open[b->depth++] = v;
	return 1;
}

static int on_start_map(void *ctx)
{
	return open_container(ctx, JSON_OBJECT);
}

static int on_start_array(void *ctx)
{
	return open_container(ctx, JSON_ARRAY);
}

static int on_end(void *ctx)
{
	struct builder *b = ctx;
	b->depth--;
	return 1;
}

static const yajl_callbacks callbacks = {
	.yajl_null = on_null,
	.yajl_boolean = on_bool,
	.yajl_number = on_number,    /* set: yajl_integer/yajl_double are never called */
	.yajl_string = on_string,
	.yajl_start_map = on_start_map,
	.yajl_map_key = on_key,
	.yajl_end_map = on_end,
	.yajl_start_array = on_start_array,
	.yajl_end_array = on_end,
};

/* "line L, column C" of byte OFF; columns count UTF-8 characters, as editors do. */
static void line_col(const char *text, size_t off, unsigned long *line, unsigned long *col)
{
	*line = 1;
	*col = 1;
	for (size_t i = 0; i < off; i++) {
		if (text[i] == '\n') {
			(*line)++;
			*col = 1;
		} else if (((unsigned char)text[i] & 0xc0) != 0x80) {
			(*col)++;
		}
	}
}

/* yajl says "lexical error: invalid char in json text.\n"; keep the middle. */
static void yajl_reason(yajl_handle h, const char *text, size_t len, char *buf, size_t size)
{
	unsigned char *msg = yajl_get_error(h, 0, (const unsigned char *)text, len);
	const char *s = msg ? (const char *)msg : "malformed JSON";
	const char *colon = strstr(s, "error: ");

	if (colon)
		s = colon + strlen("error: ");
	if (strcmp(s, "premature EOF\n") == 0)
		s = "unexpected end of text (an unclosed { or [ or a missing value?)";
	snprintf(buf, size, "%s", s);
	buf[strcspn(buf, "\n")] = '\0';
	if (msg)
		yajl_free_error(h, msg);
}

static int syntax_error(yajl_handle h, const struct builder *b, const char *text, size_t len,
			size_t off, struct rv_err *err)
{
	char reason[128];
	unsigned long line, col;

	if (b->why)
		snprintf(reason, sizeof(reason), "%s", b->why);
	else
		yajl_reason(h, text, len, reason, sizeof(reason));
	line_col(text, off < len ? off : len, &line, &col);
	return rv_failx(err, b->why ? b->code : EINVAL, "line %lu, column %lu: %s", line, col,
			reason);
}

struct json_doc *json_parse(const char *text, size_t len, struct rv_err *err)
{
	struct builder b = { 0 };
	struct json_doc *doc = calloc(1, sizeof(*doc));
	yajl_handle h = yajl_alloc(&callbacks, NULL, &b);

	if (!doc || !h) {
		free(doc);
		if (h)
			yajl_free(h);
		rv_fail(err, ENOMEM, "parse JSON");
		return NULL;
	}
	int rc = 0;
	/* yajl counts the offending token as consumed: step back onto its last byte */
	if (yajl_parse(h, (const unsigned char *)text, len) != yajl_status_ok) {
		size_t off = yajl_get_bytes_consumed(h);
		rc = syntax_error(h, &b, text, len, off ? off - 1 : 0, err);
	}
	/* The end of the text completes a number or finds it cut short; yajl's
	 * offset then counts a buffer of its own, so point at the end. */
	else if (yajl_complete_parse(h) != yajl_status_ok)
		rc = syntax_error(h, &b, text, len, len, err);
	yajl_free(h);
	free(b.key);
	if (rc < 0) {
		val_free(b.root);
		free(doc);
		return NULL;
	}
	doc->root = b.root;
	return doc;
}

void json_free(struct json_doc *doc)
{
	if (doc) {
		val_free(doc->root);
		free(doc);
	}
}

const struct json_val *json_root(const struct json_doc *doc)
{
	return doc ? doc->root : NULL;
}

enum json_type json_type(const struct json_val *v)
{
	return v ? v->type : JSON_NULL;
}

const char *json_type_name(enum json_type t)
{
	switch (t) {
	case JSON_NULL: return "null";
	case JSON_BOOL: return "a boolean";
	case JSON_NUMBER: return "a number";
	case JSON_STRING: return "a string";
	case JSON_ARRAY: return "an array";
	case JSON_OBJECT: return "an object";
	}
	return "a value";
}

size_t json_len(const struct json_val *v)
{
	return v && (v->type == JSON_ARRAY || v->type == JSON_OBJECT) ? v->n : 0;
}

const struct json_val *json_item(const struct json_val *v, size_t i)
{
	return i < json_len(v) ? v->items[i] : NULL;
}

const char *json_key(const struct json_val *obj, size_t i)
{
	return obj && obj->type == JSON_OBJECT && i < obj->n ? obj->keys[i] : NULL;
}

const struct json_val *json_member(const struct json_val *obj, const char *key)
{
	if (!obj || obj->type != JSON_OBJECT)
		return NULL;
	for (size_t i = obj->n; i-- > 0;)
		if (strcmp(obj->keys[i], key) == 0)
			return obj->items[i];
	return NULL;
}

static void appendf(char *buf, size_t size, size_t *used, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void appendf(char *buf, size_t size, size_t *used, const char *fmt, ...)
{
	va_list ap;

	if (*used + 1 >= size)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *used, size - *used, fmt, ap);
	va_end(ap);
	if (n > 0)
		*used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
}

/* ".key" for identifiers, ["io.runvm.cpus"] for anything else (jq's spelling). */
static void append_key(char *buf, size_t size, size_t *used, const char *key)
{
	bool ident = isalpha((unsigned char)key[0]) || key[0] == '_';
	for (const char *p = key; ident && *p; p++)
		ident = isalnum((unsigned char)*p) || *p == '_';
	if (ident) {
		appendf(buf, size, used, "%s%s", *used ? "." : "", key);
		return;
	}
	char quoted[JSON_PATH_BYTES];
	jsonw_quote(quoted, sizeof(quoted), key);
	appendf(buf, size, used, "[%s]", quoted);
}

static void append_path(const struct json_val *v, char *buf, size_t size, size_t *used)
{
	if (!v || !v->parent)
		return;
	append_path(v->parent, buf, size, used);
	if (v->parent->type == JSON_ARRAY)
		appendf(buf, size, used, "[%zu]", v->index);
	else
		append_key(buf, size, used, v->parent->keys[v->index]);
}

const char *json_path(const struct json_val *v, char *buf, size_t size)
{
	size_t used = 0;

	if (size == 0)
		return buf;
	buf[0] = '\0';
	append_path(v, buf, size, &used);
	return buf;
}

int json_fail(const struct json_val *v, const char *key, struct rv_err *err, const char *fmt, ...)
{
	char path[JSON_PATH_BYTES], what[RV_ERR_MSG_BYTES];
	size_t used = 0;
	va_list ap;

	path[0] = '\0';
	append_path(v, path, sizeof(path), &used);
	if (key)
		append_key(path, sizeof(path), &used, key);
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return rv_failx(err, EINVAL, "%s: %s", path[0] ? path : "top level", what);
}

int json_check_type(const struct json_val *v, enum json_type t, struct rv_err *err)
{
	if (json_type(v) == t)
		return 0;
	return json_fail(v, NULL, err, "must be %s, not %s", json_type_name(t),
			 json_type_name(json_type(v)));
}

int json_string(const struct json_val *v, const char **out, struct rv_err *err)
{
	if (json_check_type(v, JSON_STRING, err) < 0)
		return -1;
	if (strlen(v->text) != v->text_len)
		return json_fail(v, NULL, err, "must not contain a NUL character (\\u0000)");
	*out = v->text;
	return 0;
}

int json_bool(const struct json_val *v, bool *out, struct rv_err *err)
{
	if (json_check_type(v, JSON_BOOL, err) < 0)
		return -1;
	*out = v->boolean;
	return 0;
}

/* yajl has checked the number's syntax; what is left is "integer or not". */
static int check_integer(const struct json_val *v, struct rv_err *err)
{
	if (json_type(v) != JSON_NUMBER)
		return json_fail(v, NULL, err, "must be an integer, not %s",
				 json_type_name(json_type(v)));
	if (strpbrk(v->text, ".eE"))
		return json_fail(v, NULL, err, "must be an integer, not %s", v->text);
	return 0;
}

int json_int64(const struct json_val *v, int64_t min, int64_t max, int64_t *out,
	       struct rv_err *err)
{
	if (check_integer(v, err) < 0)
		return -1;
	errno = 0;
	long long x = strtoll(v->text, NULL, 10);
	if (errno || x < min || x > max) {
		if (min == INT64_MIN && max == INT64_MAX)
			return json_fail(v, NULL, err, "must be a 64-bit integer (got %s)", v->text);
		return json_fail(v, NULL, err, "must be an integer from %" PRId64 " to %" PRId64 " (got %s)",
				 min, max, v->text);
	}
	*out = x;
	return 0;
}

int json_uint64(const struct json_val *v, uint64_t max, uint64_t *out, struct rv_err *err)
{
	if (check_integer(v, err) < 0)
		return -1;
	errno = 0;
	/* strtoull would wrap "-1" round to UINT64_MAX */
	unsigned long long x = v->text[0] == '-' ? 0 : strtoull(v->text, NULL, 10);
	if (v->text[0] == '-' || errno || x > max)
		return json_fail(v, NULL, err, "must be an integer from 0 to %" PRIu64 " (got %s)",
				 max, v->text);
	*out = x;
	return 0;
}

/* Member KEY of OBJ of any type, with json_get's results and errors. */
static int find(const struct json_val *obj, const char *key, enum json_need need,
		const struct json_val **out, struct rv_err *err)
{
	*out = NULL;
	if (obj && json_check_type(obj, JSON_OBJECT, err) < 0)
		return -1;
	const struct json_val *v = json_member(obj, key);
	if (!v || v->type == JSON_NULL) {
		if (need == JSON_REQUIRED)
			return json_fail(obj, key, err, "required, but missing");
		return 0;
	}
	*out = v;
	return 1;
}

int json_get(const struct json_val *obj, const char *key, enum json_type t, enum json_need need,
	     const struct json_val **out, struct rv_err *err)
{
	int r = find(obj, key, need, out, err);
	if (r == 1 && json_check_type(*out, t, err) < 0) {
		*out = NULL;
		return -1;
	}
	return r;
}

int json_get_string(const struct json_val *obj, const char *key, enum json_need need,
		    const char **out, struct rv_err *err)
{
	const struct json_val *v;
	int r = find(obj, key, need, &v, err);
	return r <= 0 ? r : json_string(v, out, err) < 0 ? -1 : 1;
}

int json_get_bool(const struct json_val *obj, const char *key, enum json_need need,
		  bool *out, struct rv_err *err)
{
	const struct json_val *v;
	int r = find(obj, key, need, &v, err);
	return r <= 0 ? r : json_bool(v, out, err) < 0 ? -1 : 1;
}

int json_get_int64(const struct json_val *obj, const char *key, enum json_need need,
		   int64_t min, int64_t max, int64_t *out, struct rv_err *err)
{
	const struct json_val *v;
	int r = find(obj, key, need, &v, err);
	return r <= 0 ? r : json_int64(v, min, max, out, err) < 0 ? -1 : 1;
}

int json_get_uint64(const struct json_val *obj, const char *key, enum json_need need,
		    uint64_t max, uint64_t *out, struct rv_err *err)
{
	const struct json_val *v;
	int r = find(obj, key, need, &v, err);
	return r <= 0 ? r : json_uint64(v, max, out, err) < 0 ? -1 : 1;
}
