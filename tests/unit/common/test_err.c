#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/err.h"

Test(rv_err, fail_appends_strerror_and_keeps_code)
{
	struct rv_err e;

	cr_assert_eq(rv_fail(&e, ENOENT, "open %s", "/x"), -1);
	cr_assert_eq(e.code, ENOENT);
	cr_assert_str_eq(e.msg, "open /x: No such file or directory");
}

Test(rv_err, failx_has_no_strerror_suffix)
{
	struct rv_err e;

	rv_failx(&e, EINVAL, "--cpu-num 0: give at least 1");
	cr_assert_eq(e.code, EINVAL);
	cr_assert_str_eq(e.msg, "--cpu-num 0: give at least 1");
}

Test(rv_err, wrap_prefixes_context_outermost_first)
{
	struct rv_err e;

	rv_fail(&e, ENOMEM, "register guest memory at 0x%x", 0);
	cr_assert_eq(rv_wrap(&e, "create sandbox %s", "web-1"), -1);
	cr_assert_str_eq(e.msg, "create sandbox web-1: register guest memory at 0x0: "
			 "Cannot allocate memory");
	cr_assert_eq(e.code, ENOMEM, "wrapping must not change the errno");
}

Test(rv_err, long_messages_are_truncated_not_overflowed)
{
	struct rv_err e;
	char big[2 * RV_ERR_MSG_BYTES];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rv_fail(&e, EIO, "%s", big);
	cr_assert_eq(strlen(e.msg), RV_ERR_MSG_BYTES - 1);
	rv_wrap(&e, "%s", big);
	cr_assert_eq(strlen(e.msg), RV_ERR_MSG_BYTES - 1);
	cr_assert_eq(e.code, EIO);
}
