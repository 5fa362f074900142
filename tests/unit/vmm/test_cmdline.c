#include <criterion/criterion.h>
#include <string.h>

#include "vmm/cmdline.h"

Test(cmdline, joins_options_with_single_spaces)
{
	struct cmdline c;
	struct rv_err err;

	cmdline_init(&c, 100);
	cr_assert_eq(cmdline_add(&c, "console=ttyS0 reboot=k", &err), 0);
	cr_assert_eq(cmdline_add(&c, "", &err), 0);
	cr_assert_eq(cmdline_addf(&c, &err, "virtio_mmio.device=4K@0x%x:%d", 0xd0000000, 5), 0);
	cr_assert_str_eq(c.buf, "console=ttyS0 reboot=k virtio_mmio.device=4K@0xd0000000:5");
	cr_assert_eq(c.len, strlen(c.buf));
}

Test(cmdline, rejects_what_does_not_fit_and_names_it)
{
	struct cmdline c;
	struct rv_err err;

	cmdline_init(&c, 10);
	cr_assert_eq(cmdline_add(&c, "12345", &err), 0);
	cr_assert_eq(cmdline_add(&c, "6789", &err), 0, "exactly 10 bytes fit");
	cr_assert_eq(cmdline_add(&c, "x", &err), -1);
	cr_assert_not_null(strstr(err.msg, "'x'"), "got: %s", err.msg);
	cr_assert_str_eq(c.buf, "12345 6789", "a failed add leaves the line as it was");
}

Test(cmdline, rejects_newlines)
{
	struct cmdline c;
	struct rv_err err;

	cmdline_init(&c, 100);
	cr_assert_eq(cmdline_add(&c, "init=/x\nroot=y", &err), -1);
	cr_assert_not_null(strstr(err.msg, "newline"));
}
