#include <criterion/criterion.h>
#include <string.h>

#include "vmm/boot_cli.h"

Test(parse_mem_size, accepts_suffixes_and_bytes)
{
	unsigned long long b;
	struct rv_err err;

	cr_assert_eq(parse_mem_size("512M", &b, &err), 0);
	cr_assert_eq(b, 512ull << 20);
	cr_assert_eq(parse_mem_size("2G", &b, &err), 0);
	cr_assert_eq(b, 2ull << 30);
	cr_assert_eq(parse_mem_size("64MiB", &b, &err), 0);
	cr_assert_eq(b, 64ull << 20);
	cr_assert_eq(parse_mem_size("1048576", &b, &err), 0);
	cr_assert_eq(b, 1048576);
}

Test(parse_mem_size, rejects_junk_naming_the_flag)
{
	unsigned long long b;
	struct rv_err err;
	const char *bad[] = { "", "M", "-1G", "12X", "1.5G", "99999999999999999999G" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse_mem_size(bad[i], &b, &err), -1, "accepted '%s'", bad[i]);
		cr_assert_not_null(strstr(err.msg, "--total-memory"));
	}
}
