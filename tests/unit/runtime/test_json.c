#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json.h"

static struct json_doc *parse_ok(const char *text)
{
	struct rv_err err = { 0 };
	struct json_doc *doc = json_parse(text, strlen(text), &err);

	cr_assert_not_null(doc, "parse failed: %s", err.msg);
	return doc;
}

static void expect_syntax_error(const char *text, const char *want)
{
	struct rv_err err = { 0 };

	cr_assert_null(json_parse(text, strlen(text), &err), "accepted %s", text);
	cr_expect_eq(err.code, EINVAL);
	cr_expect_not_null(strstr(err.msg, want), "for %s: want '%s', got '%s'", text, want, err.msg);
}

Test(json, walks_objects_arrays_and_scalars)
{
	struct json_doc *doc = parse_ok("{\"a\": [true, null, 7, \"x\"], \"b\": {\"c\": false}}");
	const struct json_val *root = json_root(doc), *a = json_member(root, "a");
	struct rv_err err;
	const char *s;
	bool b;
	int64_t i;

	cr_assert_eq(json_type(root), JSON_OBJECT);
	cr_assert_eq(json_len(root), 2);
	cr_assert_str_eq(json_key(root, 0), "a");
	cr_assert_str_eq(json_key(root, 1), "b");
	cr_assert_eq(json_item(root, 0), a);
	cr_assert_eq(json_type(a), JSON_ARRAY);
	cr_assert_eq(json_len(a), 4);
	cr_assert_eq(json_bool(json_item(a, 0), &b, &err), 0);
	cr_assert(b);
	cr_assert_eq(json_type(json_item(a, 1)), JSON_NULL);
	cr_assert_eq(json_int64(json_item(a, 2), INT64_MIN, INT64_MAX, &i, &err), 0);
	cr_assert_eq(i, 7);
	cr_assert_eq(json_string(json_item(a, 3), &s, &err), 0);
	cr_assert_str_eq(s, "x");
	cr_assert_null(json_item(a, 4), "past the end is NULL");
	cr_assert_eq(json_get_bool(json_member(root, "b"), "c", JSON_REQUIRED, &b, &err), 1);
	cr_assert_not(b);
	json_free(doc);
}

Test(json, reports_line_and_column_of_syntax_error)
{
	expect_syntax_error("{\n  \"a\": 1,\n  \"b\": x\n}", "line 3, column 8: invalid char");
	expect_syntax_error("{\"a\" 1}", "line 1, column 6: ");
	expect_syntax_error("[1,]", "line 1, column 4: ");
}

Test(json, counts_columns_in_characters_not_bytes)
{
	expect_syntax_error("{\"\xc3\xa9\xc3\xa9\": x}", "line 1, column 8: ");
}

Test(json, reports_unexpected_end_at_the_end)
{
	expect_syntax_error("{\n  \"a\": [1, 2\n", "line 3, column 1: unexpected end of text");
	expect_syntax_error("", "line 1, column 1: unexpected end of text");
}

Test(json, refuses_trailing_text_comments_and_bad_utf8)
{
	expect_syntax_error("{} x", "line 1, column 4: trailing garbage");
	expect_syntax_error("{}{}", "trailing garbage");
	expect_syntax_error("/* hi */ {}", "comment");
	expect_syntax_error("[\"\xff\"]", "UTF8");
}

Test(json, refuses_nesting_beyond_the_limit_without_crashing)
{
	size_t n = 100000;
	char *text = malloc(2 * n + 1);
	struct rv_err err;

	memset(text, '[', n);
	memset(text + n, ']', n);
	text[2 * n] = '\0';
	cr_assert_null(json_parse(text, 2 * n, &err));
	cr_assert_not_null(strstr(err.msg, "nested deeper than 128 levels"), "%s", err.msg);
	free(text);
}

Test(json, refuses_deep_objects_without_crashing)
{
	size_t n = 20000, len = 0;
	char *text = malloc(n * 6 + n + 2);
	struct rv_err err;

	for (size_t i = 0; i < n; i++)
		len += (size_t)sprintf(text + len, "{\"a\": ");
	memset(text + len, '}', n);
	len += n;
	text[len] = '\0';
	cr_assert_null(json_parse(text, len, &err));
	cr_assert_not_null(strstr(err.msg, "nested deeper"), "%s", err.msg);
	free(text);
}

Test(json, accepts_nesting_up_to_the_limit)
{
	char text[2 * JSON_MAX_DEPTH + 1];

	memset(text, '[', JSON_MAX_DEPTH);
	memset(text + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
	text[2 * JSON_MAX_DEPTH] = '\0';
	json_free(parse_ok(text));
}

Test(json, names_the_full_path_in_type_errors)
{
	struct json_doc *doc = parse_ok("{\"process\": {\"args\": [\"sh\", \"-c\", 3]}}");
	const struct json_val *args = json_member(json_member(json_root(doc), "process"), "args");
	struct rv_err err;
	const char *s;

	cr_assert_eq(json_string(json_item(args, 2), &s, &err), -1);
	cr_assert_str_eq(err.msg, "process.args[2]: must be a string, not a number");
	cr_assert_eq(err.code, EINVAL);
	json_free(doc);
}

Test(json, quotes_keys_that_are_not_identifiers_in_paths)
{
	struct json_doc *doc = parse_ok("{\"annotations\": {\"io.runvm.cpus\": 4}}");
	const struct json_val *ann = json_member(json_root(doc), "annotations");
	struct rv_err err;
	const char *s;
	char path[64];

	cr_assert_eq(json_get_string(ann, "io.runvm.cpus", JSON_REQUIRED, &s, &err), -1);
	cr_assert_str_eq(err.msg, "annotations[\"io.runvm.cpus\"]: must be a string, not a number");
	cr_assert_str_eq(json_path(json_member(ann, "io.runvm.cpus"), path, sizeof(path)),
			 "annotations[\"io.runvm.cpus\"]");
	cr_assert_str_eq(json_path(json_root(doc), path, sizeof(path)), "");
	json_free(doc);
}

Test(json, names_missing_required_members_and_wrong_containers)
{
	struct json_doc *doc = parse_ok("{\"root\": {}, \"linux\": 5}");
	const struct json_val *top = json_root(doc), *v;
	struct rv_err err;
	const char *s;

	cr_assert_eq(json_get_string(json_member(top, "root"), "path", JSON_REQUIRED, &s, &err), -1);
	cr_assert_str_eq(err.msg, "root.path: required, but missing");
	cr_assert_eq(json_get(top, "linux", JSON_OBJECT, JSON_OPTIONAL, &v, &err), -1);
	cr_assert_str_eq(err.msg, "linux: must be an object, not a number");
	cr_assert_eq(json_get_string(json_member(top, "linux"), "x", JSON_OPTIONAL, &s, &err), -1,
		     "a member of a non-object is an error, not absent");
	cr_assert_str_eq(err.msg, "linux: must be an object, not a number");
	json_free(doc);
}

Test(json, top_level_errors_say_top_level)
{
	struct json_doc *doc = parse_ok("[]");
	struct rv_err err;

	cr_assert_eq(json_check_type(json_root(doc), JSON_OBJECT, &err), -1);
	cr_assert_str_eq(err.msg, "top level: must be an object, not an array");
	json_free(doc);
}

Test(json, treats_null_members_and_null_parents_as_absent)
{
	struct json_doc *doc = parse_ok("{\"hostname\": null}");
	const struct json_val *v = (const void *)1;
	struct rv_err err;
	const char *s = "untouched";

	cr_assert_eq(json_get_string(json_root(doc), "hostname", JSON_OPTIONAL, &s, &err), 0);
	cr_assert_str_eq(s, "untouched");
	cr_assert_eq(json_get(NULL, "resources", JSON_OBJECT, JSON_OPTIONAL, &v, &err), 0);
	cr_assert_null(v);
	cr_assert_eq(json_get_string(json_root(doc), "hostname", JSON_REQUIRED, &s, &err), -1);
	cr_assert_str_eq(err.msg, "hostname: required, but missing");
	json_free(doc);
}

Test(json, reads_the_last_of_repeated_keys)
{
	struct json_doc *doc = parse_ok("{\"a\": \"first\", \"a\": \"last\"}");
	const char *s;
	struct rv_err err;

	cr_assert_eq(json_get_string(json_root(doc), "a", JSON_REQUIRED, &s, &err), 1);
	cr_assert_str_eq(s, "last");
	json_free(doc);
}

Test(json, refuses_nul_inside_string_values_when_read)
{
	struct json_doc *doc = parse_ok("{\"args\": [\"a\\u0000b\"], \"ok\": \"caf\\u00e9\"}");
	const struct json_val *top = json_root(doc);
	struct rv_err err;
	const char *s;

	cr_assert_eq(json_string(json_item(json_member(top, "args"), 0), &s, &err), -1);
	cr_assert_str_eq(err.msg, "args[0]: must not contain a NUL character (\\u0000)");
	cr_assert_eq(json_get_string(top, "ok", JSON_REQUIRED, &s, &err), 1);
	cr_assert_str_eq(s, "caf\xc3\xa9");
	json_free(doc);
}

Test(json, refuses_nul_inside_object_keys)
{
	expect_syntax_error("{\"ociVersion\\u0000x\": \"1.0.0\"}",
			    "object key contains a NUL character");
}

Test(json, reads_the_whole_uint64_range)
{
	struct json_doc *doc = parse_ok("[18446744073709551615, 18446744073709551616, -1, -0, 0]");
	const struct json_val *a = json_root(doc);
	struct rv_err err;
	uint64_t u;

	cr_assert_eq(json_uint64(json_item(a, 0), UINT64_MAX, &u, &err), 0);
	cr_assert_eq(u, UINT64_MAX);
	cr_assert_eq(json_uint64(json_item(a, 1), UINT64_MAX, &u, &err), -1);
	cr_assert_str_eq(err.msg, "[1]: must be an integer from 0 to 18446744073709551615 "
			 "(got 18446744073709551616)");
	cr_assert_eq(json_uint64(json_item(a, 2), UINT64_MAX, &u, &err), -1, "-1 must not wrap");
	cr_assert_eq(json_uint64(json_item(a, 3), UINT64_MAX, &u, &err), -1);
	cr_assert_eq(json_uint64(json_item(a, 4), UINT64_MAX, &u, &err), 0);
	cr_assert_eq(u, 0);
	json_free(doc);
}

Test(json, checks_int64_ranges)
{
	struct json_doc *doc = parse_ok("[-9223372036854775808, 9223372036854775808, 4294967296, -5]");
	const struct json_val *a = json_root(doc);
	struct rv_err err;
	int64_t i;
	uint64_t u;

	cr_assert_eq(json_int64(json_item(a, 0), INT64_MIN, INT64_MAX, &i, &err), 0);
	cr_assert_eq(i, INT64_MIN);
	cr_assert_eq(json_int64(json_item(a, 1), INT64_MIN, INT64_MAX, &i, &err), -1);
	cr_assert_str_eq(err.msg, "[1]: must be a 64-bit integer (got 9223372036854775808)");
	cr_assert_eq(json_uint64(json_item(a, 2), UINT32_MAX, &u, &err), -1);
	cr_assert_not_null(strstr(err.msg, "from 0 to 4294967295"), "%s", err.msg);
	cr_assert_eq(json_int64(json_item(a, 3), 0, 10, &i, &err), -1);
	cr_assert_str_eq(err.msg, "[3]: must be an integer from 0 to 10 (got -5)");
	json_free(doc);
}

Test(json, refuses_fractions_and_exponents_as_integers)
{
	struct json_doc *doc = parse_ok("{\"a\": 1.0, \"b\": 1e3, \"c\": \"1\"}");
	const struct json_val *top = json_root(doc);
	struct rv_err err;
	int64_t i;

	cr_assert_eq(json_get_int64(top, "a", JSON_REQUIRED, INT64_MIN, INT64_MAX, &i, &err), -1);
	cr_assert_str_eq(err.msg, "a: must be an integer, not 1.0");
	cr_assert_eq(json_get_int64(top, "b", JSON_REQUIRED, INT64_MIN, INT64_MAX, &i, &err), -1);
	cr_assert_eq(json_get_int64(top, "c", JSON_REQUIRED, INT64_MIN, INT64_MAX, &i, &err), -1);
	cr_assert_str_eq(err.msg, "c: must be an integer, not a string");
	json_free(doc);
}

Test(json, fail_names_a_member_of_a_value)
{
	struct json_doc *doc = parse_ok("{\"mounts\": [{}]}");
	const struct json_val *m = json_item(json_member(json_root(doc), "mounts"), 0);
	struct rv_err err;

	cr_assert_eq(json_fail(m, "destination", &err, "required (%d)", 1), -1);
	cr_assert_str_eq(err.msg, "mounts[0].destination: required (1)");
	json_fail(NULL, "ociVersion", &err, "required");
	cr_assert_str_eq(err.msg, "ociVersion: required");
	json_free(doc);
}

Test(json, walkers_accept_null)
{
	cr_assert_eq(json_type(NULL), JSON_NULL);
	cr_assert_eq(json_len(NULL), 0);
	cr_assert_null(json_item(NULL, 0));
	cr_assert_null(json_key(NULL, 0));
	cr_assert_null(json_member(NULL, "a"));
	cr_assert_null(json_root(NULL));
	json_free(NULL);
}
