#include <criterion/criterion.h>
#include <string.h>

#include "common/jsonw.h"

Test(jsonw, quotes_and_escapes_specials)
{
	char buf[64];

	jsonw_quote(buf, sizeof(buf), "a\"b\\c\nd\te\x01");
	cr_assert_str_eq(buf, "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
}

Test(jsonw, passes_utf8_through)
{
	char buf[32];

	jsonw_quote(buf, sizeof(buf), "caf\xc3\xa9");
	cr_assert_str_eq(buf, "\"caf\xc3\xa9\"");
}

Test(jsonw, reports_needed_length_when_truncated)
{
	char buf[4];

	size_t need = jsonw_quote(buf, sizeof(buf), "hello");
	cr_assert_eq(need, 7);
	cr_assert_eq(strlen(buf), 3, "truncated output stays NUL-terminated");
}
