#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "runtime/spec.h"

#define BASE "\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, " \
	"\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}"
#define USERNS "\"namespaces\": [{\"type\": \"mount\"}, {\"type\": \"user\"}]"
#define MAP(c, h, n) "{\"containerID\": " #c ", \"hostID\": " #h ", \"size\": " #n "}"
#define LINUX(members) "{" BASE ", \"linux\": {" members "}}"

static void expect_error(const char *text, const char *want)
{
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_expect_eq(spec_parse(text, strlen(text), "/b", &s, &err), -1, "accepted %s", text);
	cr_expect_not_null(strstr(err.msg, want), "for %s\n  want: %s\n  got:  %s", text, want,
			   err.msg);
}

Test(spec_userns, reads_the_maps_of_a_new_user_namespace)
{
	const char *text = LINUX(USERNS ", \"uidMappings\": [" MAP(0, 100000, 65536) ", "
				 MAP(65536, 1000, 1) "], \"gidMappings\": [" MAP(0, 200000, 10) "]");
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(text, strlen(text), "/b", &s, &err), 0, "%s", err.msg);
	cr_expect(s.userns);
	cr_assert_eq(s.nuid_maps, 2);
	cr_expect_eq(s.uid_maps[0].host_id, 100000);
	cr_expect_eq(s.uid_maps[0].size, 65536);
	cr_expect_eq(s.uid_maps[1].container_id, 65536);
	cr_expect_eq(s.uid_maps[1].host_id, 1000);
	cr_assert_eq(s.ngid_maps, 1);
	cr_expect_eq(s.gid_maps[0].host_id, 200000);
	spec_free(&s);
}

Test(spec_userns, no_user_namespace_no_maps)
{
	const char *text = LINUX("\"namespaces\": [{\"type\": \"mount\"}]");
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(text, strlen(text), "/b", &s, &err), 0, "%s", err.msg);
	cr_expect_not(s.userns);
	cr_expect_eq(s.nuid_maps + s.ngid_maps, 0);
	spec_free(&s);
}

Test(spec_userns, default_rootless_spec_maps_the_caller)
{
	_cleanup_free_ char *text = spec_default_json(true);
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(text, strlen(text), "/b", &s, &err), 0, "%s", err.msg);
	cr_expect(s.userns);
	cr_assert_eq(s.nuid_maps, 1);
	cr_expect_eq(s.uid_maps[0].container_id, 0);
	cr_expect_eq(s.uid_maps[0].host_id, geteuid());
	cr_expect_eq(s.uid_maps[0].size, 1);
	spec_free(&s);
}

/* 340 lines of the widest ids pass the kernel's count but not its page. */
Test(spec_userns, refuses_maps_longer_than_a_page)
{
	char *text = malloc(64 * 1024), *p = text;

	p += sprintf(p, "{" BASE ", \"linux\": {" USERNS ", \"gidMappings\": [" MAP(0, 0, 1) "], "
		     "\"uidMappings\": [");
	for (unsigned i = 0; i < 340; i++)
		p += sprintf(p, "%s{\"containerID\": %u, \"hostID\": %u, \"size\": 1}", i ? ", " : "",
			     i == 0 ? 0 : 4000000000u + i, 4000000000u + i);
	sprintf(p, "]}}");
	expect_error(text, "linux.uidMappings: 340 lines make more than the 4095 bytes");
	free(text);
}

Test(spec_userns, refuses_bad_maps_naming_the_line_and_the_fix)
{
	expect_error(LINUX(USERNS ", \"gidMappings\": [" MAP(0, 0, 1) "]"),
		     "linux.uidMappings: the user namespace (linux.namespaces) needs uid and gid "
		     "mappings");
	expect_error(LINUX("\"uidMappings\": [" MAP(0, 0, 1) "], \"gidMappings\": [" MAP(0, 0, 1) "]"),
		     "linux.uidMappings: mappings without a user namespace; add {\"type\": \"user\"}");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(0, 0, 0) "], \"gidMappings\": []"),
		     "linux.uidMappings[0].size: must be at least 1");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(0, 4294967294, 2) "]"),
		     "linux.uidMappings[0].size: 2 ids from containerID 0 or hostID 4294967294 pass "
		     "4294967294, the last id");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(1, 1000, 10) "], \"gidMappings\": ["
			   MAP(0, 1000, 10) "]"),
		     "linux.uidMappings: no line maps the container's root (uid 0)");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(0, 1000, 10) "], \"gidMappings\": ["
			   MAP(1, 1000, 10) "]"),
		     "linux.gidMappings: no line maps the container's root group (gid 0)");
	expect_error("{" BASE ", \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", \"user\": "
		     "{\"uid\": 50, \"gid\": 0}}, \"linux\": {" USERNS ", \"uidMappings\": ["
		     MAP(0, 1000, 10) "], \"gidMappings\": [" MAP(0, 1000, 10) "]}}",
		     "linux.uidMappings: process.user 50:0 is not mapped");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(0, 1000, 10) ", " MAP(5, 2000, 1) "]"),
		     "linux.uidMappings[1].containerID: the range overlaps that of line 0");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(0, 1000, 10) ", " MAP(10, 1009, 1) "]"),
		     "linux.uidMappings[1].hostID: the range overlaps that of line 0");
	expect_error(LINUX(USERNS ", \"uidMappings\": [" MAP(-1, 0, 1) "]"),
		     "linux.uidMappings[0].containerID");
	expect_error(LINUX("\"namespaces\": [{\"type\": \"user\", \"path\": \"/proc/1/ns/user\"}]"),
		     "linux.namespaces[0].path: a container in runvm's VM cannot join the host's user "
		     "namespace");
}
