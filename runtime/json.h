/* JSON documents for the runtime (config.json today; hooks, seccomp and the
 * state file later): the project's only user of yajl. A document owns every
 * value in it; values are read-only views valid while their document lives.
 * Each value knows its path ("process.args[2]", "annotations[\"io.x\"]"), so
 * every error names where the bad value is and the caller need not track it. */
#ifndef RV_RUNTIME_JSON_H
#define RV_RUNTIME_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

/* Deeper documents are refused: real ones nest about 6 levels (seccomp), and
 * the bound keeps recursion over a tree (free, paths) off a hostile stack. */
#define JSON_MAX_DEPTH 128

struct json_doc;
struct json_val;

enum json_type { JSON_NULL, JSON_BOOL, JSON_NUMBER, JSON_STRING, JSON_ARRAY, JSON_OBJECT };

/* Strict RFC 8259 text (no comments, one value, valid UTF-8). A syntax error
 * reads "line L, column C: <what>" (column in characters, both from 1). */
struct json_doc *json_parse(const char *text, size_t len, struct rv_err *err);
void json_free(struct json_doc *doc);
const struct json_val *json_root(const struct json_doc *doc);

/* --- walking any subtree; every function accepts NULL (an absent value) --- */
enum json_type json_type(const struct json_val *v);
const char *json_type_name(enum json_type t);             /* "a string", "an array" */
size_t json_len(const struct json_val *v);                /* items or members; 0 otherwise */
const struct json_val *json_item(const struct json_val *v, size_t i);  /* item or member value */
const char *json_key(const struct json_val *obj, size_t i);            /* member key */
/* The member named KEY (the last one if repeated, as Go's encoding/json
 * reads it); NULL when absent or OBJ is not an object. */
const struct json_val *json_member(const struct json_val *obj, const char *key);
/* V's path, "" for the top level; truncated to fit, always terminated. */
const char *json_path(const struct json_val *v, char *buf, size_t size);

/* "<path of V>[.KEY]: <fmt>" with code EINVAL ("top level" for the root);
 * V NULL names KEY alone. Returns -1. */
int json_fail(const struct json_val *v, const char *key, struct rv_err *err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* --- reading one value: 0, or -1 with "<path>: must be ..." ---------------- */
int json_check_type(const struct json_val *v, enum json_type t, struct rv_err *err);
/* Refuses strings holding a NUL (\u0000): C code would see a shorter one. */
int json_string(const struct json_val *v, const char **out, struct rv_err *err);
int json_bool(const struct json_val *v, bool *out, struct rv_err *err);
/* Integers only: 1.0 and 1e3 are refused, as Go refuses them for int fields. */
int json_int64(const struct json_val *v, int64_t min, int64_t max, int64_t *out,
	       struct rv_err *err);
int json_uint64(const struct json_val *v, uint64_t max, uint64_t *out, struct rv_err *err);

/* --- reading member KEY of object OBJ ---------------------------------------
 * 1 when present (out set), 0 when absent and optional (out untouched; the
 * json_get *out is NULL), -1 on a wrong type, range or a missing required
 * member. A null member counts as absent, as runc's Go decoder reads it; so
 * does every member of a NULL OBJ, which lets optional parents chain. */
enum json_need { JSON_OPTIONAL, JSON_REQUIRED };

int json_get(const struct json_val *obj, const char *key, enum json_type t, enum json_need need,
	     const struct json_val **out, struct rv_err *err);
int json_get_string(const struct json_val *obj, const char *key, enum json_need need,
		    const char **out, struct rv_err *err);
int json_get_bool(const struct json_val *obj, const char *key, enum json_need need,
		  bool *out, struct rv_err *err);
int json_get_int64(const struct json_val *obj, const char *key, enum json_need need,
		   int64_t min, int64_t max, int64_t *out, struct rv_err *err);
int json_get_uint64(const struct json_val *obj, const char *key, enum json_need need,
		    uint64_t max, uint64_t *out, struct rv_err *err);

#endif
