#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/cli.h"
#include "runtime/spec.h"

/* A valid config; a case appends members after it, and since the last of a
 * repeated key wins (as in runc), an appended member replaces the base one. */
#define BASE "\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, " \
	"\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}"
#define WITH(members) "{" BASE ", " members "}"
#define PROC(members) WITH("\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\", " members "}")

static void parse_ok(const char *text, const char *bundle, struct oci_spec *s)
{
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(text, strlen(text), bundle, s, &err), 0, "%s", err.msg);
}

static void expect_error(const char *text, const char *want)
{
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_expect_eq(spec_parse(text, strlen(text), "/b", &s, &err), -1, "accepted %s", text);
	cr_expect_not_null(strstr(err.msg, want), "for %s\n  want: %s\n  got:  %s", text, want,
			   err.msg);
	cr_expect_null(s.doc, "a failed parse leaves nothing to free");
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/runvm-spec-XXXXXX";
	cr_assert_not_null(mkdtemp(tmpl));
	return strdup(tmpl);
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "we");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void remove_tree(const char *dir)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

Test(spec, parses_a_minimal_config)
{
	struct oci_spec s;

	parse_ok("{" BASE "}", "/b", &s);
	cr_assert_str_eq(s.oci_version, "1.2.0");
	cr_assert_str_eq(s.root_path, "/b/rootfs");
	cr_assert_not(s.root_readonly);
	cr_assert_str_eq(s.process.args[0], "sh");
	cr_assert_null(s.process.args[1]);
	cr_assert_not_null(s.process.env);
	cr_assert_null(s.process.env[0], "absent env is an empty vector");
	cr_assert_str_eq(s.process.cwd, "/");
	cr_assert_eq(s.process.uid, 0);
	cr_assert_null(s.hostname);
	cr_assert_null(s.cgroups_path);
	cr_assert_eq(s.nmounts + s.nannotations + s.nnamespaces + s.ndevices, 0);
	cr_assert_not(s.has_cpu_quota || s.has_memory_limit || s.process.has_umask);
	spec_free(&s);
	spec_free(&s);   /* freeing twice is harmless */
}

static const char realistic[] =
	"{\n"
	"  \"ociVersion\": \"1.0.2-dev\",\n"
	"  \"process\": {\n"
	"    \"terminal\": false,\n"
	"    \"consoleSize\": {\"height\": 40, \"width\": 120},\n"
	"    \"user\": {\"uid\": 1000, \"gid\": 100, \"umask\": 18,\n"
	"             \"additionalGids\": [10, 4294967295]},\n"
	"    \"args\": [\"/bin/server\", \"--port\", \"8080\"],\n"
	"    \"env\": [\"PATH=/usr/bin:/bin\", \"EMPTY=\", \"A=b=c\"],\n"
	"    \"cwd\": \"/srv\",\n"
	"    \"capabilities\": {\"bounding\": [\"CAP_KILL\"]},\n"
	"    \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1024, \"soft\": 1024}],\n"
	"    \"noNewPrivileges\": true,\n"
	"    \"futureField\": {\"anything\": [1, 2.5, null]}\n"
	"  },\n"
	"  \"root\": {\"path\": \"/var/lib/ctr/rootfs\", \"readonly\": true},\n"
	"  \"hostname\": \"web-1\",\n"
	"  \"mounts\": [\n"
	"    {\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},\n"
	"    {\"destination\": \"/data\", \"type\": \"bind\", \"source\": \"/srv/data\",\n"
	"     \"options\": [\"rbind\", \"ro\", \"nosuid\"]}\n"
	"  ],\n"
	"  \"annotations\": {\"io.runvm.cpus\": \"2\", \"org.example/owner\": \"team\"},\n"
	"  \"linux\": {\n"
	"    \"cgroupsPath\": \"/kubepods/pod1/ctr\",\n"
	"    \"resources\": {\n"
	"      \"cpu\": {\"quota\": 150000, \"period\": 100000, \"shares\": 1024},\n"
	"      \"memory\": {\"limit\": 536870912, \"swap\": 536870912}\n"
	"    },\n"
	"    \"devices\": [{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229}],\n"
	"    \"namespaces\": [{\"type\": \"pid\"},\n"
	"                   {\"type\": \"network\", \"path\": \"/var/run/netns/x\"},\n"
	"                   {\"type\": \"mount\"}],\n"
	"    \"seccomp\": {\"defaultAction\": \"SCMP_ACT_ERRNO\"}\n"
	"  }\n"
	"}\n";

Test(spec, parses_a_realistic_config)
{
	struct oci_spec s;

	parse_ok(realistic, "/b", &s);
	cr_assert_str_eq(s.oci_version, "1.0.2-dev");
	cr_assert_str_eq(s.root_path, "/var/lib/ctr/rootfs");
	cr_assert(s.root_readonly);
	cr_assert_not(s.process.terminal);
	cr_assert_eq(s.process.console_height, 40);
	cr_assert_eq(s.process.console_width, 120);
	cr_assert_eq(s.process.uid, 1000);
	cr_assert_eq(s.process.gid, 100);
	cr_assert(s.process.has_umask);
	cr_assert_eq(s.process.umask, 022);
	cr_assert_eq(s.process.nadditional_gids, 2);
	cr_assert_eq(s.process.additional_gids[1], UINT32_MAX);
	cr_assert_eq(s.process.nargs, 3);
	cr_assert_str_eq(s.process.args[2], "8080");
	cr_assert_null(s.process.args[3]);
	cr_assert_str_eq(s.process.env[2], "A=b=c");
	cr_assert_null(s.process.env[3]);
	cr_assert_str_eq(s.process.cwd, "/srv");
	cr_assert(s.process.no_new_privileges);
	cr_assert_str_eq(s.hostname, "web-1");
	cr_assert_eq(s.nmounts, 2);
	cr_assert_str_eq(s.mounts[0].destination, "/proc");
	cr_assert_null(s.mounts[0].options[0]);
	cr_assert_eq(s.mounts[0].noptions, 0);
	cr_assert_str_eq(s.mounts[1].source, "/srv/data");
	cr_assert_eq(s.mounts[1].noptions, 3);
	cr_assert_str_eq(s.mounts[1].options[1], "ro");
	cr_assert_eq(s.nannotations, 2);
	cr_assert_str_eq(s.annotations[1].key, "org.example/owner");
	cr_assert_str_eq(spec_annotation(&s, "io.runvm.cpus"), "2");
	cr_assert_null(spec_annotation(&s, "nope"));
	cr_assert_str_eq(s.cgroups_path, "/kubepods/pod1/ctr");
	cr_assert(s.has_cpu_quota);
	cr_assert_eq(s.cpu_quota, 150000);
	cr_assert_eq(s.cpu_period, 100000);
	cr_assert(s.has_memory_limit);
	cr_assert_eq(s.memory_limit, 512 << 20);
	cr_assert_eq(s.ndevices, 1);
	cr_assert_str_eq(s.devices[0].target, "/dev/fuse");
	cr_expect_eq(s.devices[0].kind, 'c');
	cr_expect_eq(s.devices[0].major, 10);
	cr_expect_eq(s.devices[0].minor, 229);
	cr_expect_eq(s.devices[0].mode, 0666, "runc's default without fileMode");
	cr_assert_eq(s.nnamespaces, 3);
	cr_assert_str_eq(s.namespaces[1].type, "network");
	cr_assert_str_eq(s.namespaces[1].path, "/var/run/netns/x");
	cr_assert_null(s.namespaces[2].path);
	cr_assert_not_null(json_member(json_member(json_root(s.doc), "linux"), "seccomp"),
			   "the tree stays for later consumers");
	spec_free(&s);
}

Test(spec, default_json_parses_as_runc_spec_writes_it)
{
	_cleanup_free_ char *text = spec_default_json(false);
	struct oci_spec s;

	cr_assert_not_null(text);
	parse_ok(text, "/bundle", &s);
	cr_assert_str_eq(s.root_path, "/bundle/rootfs");
	cr_assert(s.root_readonly);
	cr_assert(s.process.terminal);
	cr_assert_str_eq(s.process.args[0], "sh");
	cr_assert_str_eq(s.hostname, "runvm");
	cr_assert(s.process.no_new_privileges);
	cr_assert_eq(s.nmounts, 7);
	cr_assert_str_eq(s.mounts[2].destination, "/dev/pts");
	cr_assert_str_eq(s.mounts[2].options[5], "gid=5");
	cr_assert_str_eq(s.mounts[6].destination, "/sys/fs/cgroup");
	cr_assert_eq(s.nnamespaces, 5);
	cr_assert_str_eq(s.namespaces[1].type, "network");
	const struct json_val *lnx = json_member(json_root(s.doc), "linux");
	cr_assert_eq(json_len(json_member(lnx, "maskedPaths")), 10);
	cr_assert_eq(json_len(json_member(lnx, "readonlyPaths")), 5);
	cr_assert_not_null(json_member(lnx, "resources"));
	const struct json_val *rl = json_member(json_member(json_root(s.doc), "process"), "rlimits");
	cr_assert_eq(json_len(rl), 1);
	unsigned cpus;
	uint64_t mem;
	struct rv_err err;
	cr_assert_eq(spec_vm_shape(&s, &cpus, &mem, &err), 0);
	spec_free(&s);
}

Test(spec, default_rootless_json_maps_the_caller_in_a_user_namespace)
{
	_cleanup_free_ char *text = spec_default_json(true);
	struct oci_spec s;
	struct rv_err err;
	uint64_t host;

	parse_ok(text, "/bundle", &s);
	cr_assert_eq(s.nnamespaces, 5);
	for (size_t i = 0; i < s.nnamespaces; i++)
		cr_assert_str_neq(s.namespaces[i].type, "network");
	cr_assert_str_eq(s.namespaces[4].type, "user");
	cr_assert_str_eq(s.mounts[5].destination, "/sys");
	cr_assert_str_eq(s.mounts[5].options[0], "rbind");
	for (size_t i = 0; i < s.mounts[2].noptions; i++)
		cr_assert_str_neq(s.mounts[2].options[i], "gid=5");
	const struct json_val *lnx = json_member(json_root(s.doc), "linux");
	cr_assert_null(json_member(lnx, "resources"));
	const struct json_val *map = json_item(json_member(lnx, "uidMappings"), 0);
	cr_assert_eq(json_get_uint64(map, "hostID", JSON_REQUIRED, UINT32_MAX, &host, &err), 1);
	cr_assert_eq(host, geteuid());
	map = json_item(json_member(lnx, "gidMappings"), 0);
	cr_assert_eq(json_get_uint64(map, "hostID", JSON_REQUIRED, UINT32_MAX, &host, &err), 1);
	cr_assert_eq(host, getegid());
	spec_free(&s);
}

Test(spec, reports_syntax_errors_with_file_line_and_column)
{
	expect_error("{\n  \"ociVersion\": \"1.2.0\",\n  \"root\" {}\n}",
		     "config.json: line 3, column 10: object key and value must be separated");
	expect_error("", "config.json: line 1, column 1: unexpected end of text");
}

struct bad_case {
	const char *text, *want;
};

static const struct bad_case bad_cases[] = {
	{ "[]", "config.json: top level: must be an object, not an array" },
	{ "{}", "config.json: ociVersion: required; runvm supports 1.0 to 1.2" },
	{ WITH("\"ociVersion\": \"0.9\""),
	  "config.json: ociVersion \"0.9\": unsupported; runvm supports 1.0 to 1.2" },
	{ WITH("\"ociVersion\": \"1.3.0\""), "ociVersion \"1.3.0\": unsupported" },
	{ WITH("\"ociVersion\": \"1.10.0\""), "ociVersion \"1.10.0\": unsupported" },
	{ WITH("\"ociVersion\": \"1.0.x\""), "ociVersion \"1.0.x\": unsupported" },
	{ WITH("\"ociVersion\": 1.0"), "config.json: ociVersion: must be a string, not a number" },
	{ WITH("\"root\": null"), "config.json: root: required; name the root filesystem" },
	{ WITH("\"root\": \"rootfs\""), "config.json: root: must be an object, not a string" },
	{ WITH("\"root\": {\"path\": \"\"}"), "config.json: root.path: required" },
	{ WITH("\"root\": {\"path\": 5}"), "config.json: root.path: must be a string, not a number" },
	{ WITH("\"root\": {\"path\": \"r\", \"readonly\": \"yes\"}"),
	  "root.readonly: must be a boolean, not a string" },
	{ WITH("\"process\": null"), "config.json: process: required" },
	{ WITH("\"process\": {\"args\": [], \"cwd\": \"/\"}"),
	  "config.json: process.args: must be a non-empty array of strings" },
	{ WITH("\"process\": {\"args\": \"sh\", \"cwd\": \"/\"}"),
	  "process.args: must be a non-empty array" },
	{ WITH("\"process\": {\"cwd\": \"/\"}"), "process.args: must be a non-empty array" },
	{ WITH("\"process\": {\"args\": [\"sh\", \"-c\", 3], \"cwd\": \"/\"}"),
	  "config.json: process.args[2]: must be a string, not a number" },
	{ WITH("\"process\": {\"args\": [\"\"], \"cwd\": \"/\"}"),
	  "process.args[0]: must name the program to run" },
	{ WITH("\"process\": {\"args\": [\"sh\"]}"),
	  "process.cwd: required; give an absolute path such as \"/\"" },
	{ PROC("\"cwd\": \"srv\""), "process.cwd: \"srv\" is relative; give an absolute path" },
	{ PROC("\"cwd\": [\"/\"]"), "process.cwd: must be a string, not an array" },
	{ PROC("\"env\": [\"PATH=/bin\", \"FOO\"]"),
	  "process.env[1]: \"FOO\": must have the form NAME=VALUE" },
	{ PROC("\"env\": [\"=x\"]"), "process.env[0]: \"=x\": must have the form NAME=VALUE" },
	{ PROC("\"env\": [1]"), "process.env[0]: must be a string, not a number" },
	{ PROC("\"env\": \"A=b\""), "process.env: must be an array, not a string" },
	{ PROC("\"terminal\": \"true\""), "process.terminal: must be a boolean, not a string" },
	{ PROC("\"noNewPrivileges\": 1"), "process.noNewPrivileges: must be a boolean" },
	{ PROC("\"consoleSize\": {\"height\": -1}"),
	  "process.consoleSize.height: must be an integer from 0 to" },
	{ PROC("\"user\": {\"uid\": -1}"),
	  "process.user.uid: must be an integer from 0 to 4294967295 (got -1)" },
	{ PROC("\"user\": {\"gid\": 4294967296}"),
	  "process.user.gid: must be an integer from 0 to 4294967295 (got 4294967296)" },
	{ PROC("\"user\": {\"uid\": \"0\"}"), "process.user.uid: must be an integer, not a string" },
	{ PROC("\"user\": {\"uid\": 1.5}"), "process.user.uid: must be an integer, not 1.5" },
	{ PROC("\"user\": {\"umask\": true}"), "process.user.umask: must be an integer, not a boolean" },
	{ PROC("\"user\": {\"additionalGids\": [1, \"2\"]}"),
	  "process.user.additionalGids[1]: must be an integer, not a string" },
	{ PROC("\"user\": 0"), "process.user: must be an object, not a number" },
	{ WITH("\"hostname\": 5"), "config.json: hostname: must be a string, not a number" },
	{ WITH("\"mounts\": {}"), "config.json: mounts: must be an array, not an object" },
	{ WITH("\"mounts\": [5]"), "config.json: mounts[0]: must be an object, not a number" },
	{ WITH("\"mounts\": [{\"destination\": \"/a\"}, {\"type\": \"proc\"}]"),
	  "config.json: mounts[1].destination: required; give the absolute path" },
	{ WITH("\"mounts\": [{\"destination\": \"proc\"}]"),
	  "mounts[0].destination: \"proc\" is relative; give an absolute path" },
	{ WITH("\"mounts\": [{\"destination\": \"/a\", \"options\": [\"ro\", 1]}]"),
	  "mounts[0].options[1]: must be a string, not a number" },
	{ WITH("\"mounts\": [{\"destination\": \"/a\", \"options\": \"ro\"}]"),
	  "mounts[0].options: must be an array, not a string" },
	{ WITH("\"mounts\": [{\"destination\": \"/a\", \"source\": false}]"),
	  "mounts[0].source: must be a string, not a boolean" },
	{ WITH("\"annotations\": []"), "config.json: annotations: must be an object, not an array" },
	{ WITH("\"annotations\": {\"owner\": 1}"),
	  "config.json: annotations.owner: must be a string, not a number" },
	{ WITH("\"annotations\": {\"io.runvm.cpus\": 2}"),
	  "config.json: annotations[\"io.runvm.cpus\"]: must be a string, not a number" },
	{ WITH("\"linux\": 5"), "config.json: linux: must be an object, not a number" },
	{ WITH("\"linux\": {\"cgroupsPath\": 5}"), "linux.cgroupsPath: must be a string" },
	{ WITH("\"linux\": {\"resources\": []}"), "linux.resources: must be an object, not an array" },
	{ WITH("\"linux\": {\"resources\": {\"memory\": {\"limit\": \"1G\"}}}"),
	  "config.json: linux.resources.memory.limit: must be an integer, not a string" },
	{ WITH("\"linux\": {\"resources\": {\"memory\": {\"limit\": 1.5e9}}}"),
	  "linux.resources.memory.limit: must be an integer, not 1.5e9" },
	{ WITH("\"linux\": {\"resources\": {\"cpu\": {\"quota\": \"1\"}}}"),
	  "linux.resources.cpu.quota: must be an integer, not a string" },
	{ WITH("\"linux\": {\"resources\": {\"cpu\": {\"period\": -1}}}"),
	  "linux.resources.cpu.period: must be an integer from 0 to 18446744073709551615" },
	{ WITH("\"linux\": {\"resources\": {\"cpu\": {\"quota\": 9223372036854775808}}}"),
	  "linux.resources.cpu.quota: must be a 64-bit integer" },
	{ WITH("\"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"foo\"}]}"),
	  "linux.namespaces[1].type: \"foo\": unknown; use pid, network" },
	{ WITH("\"linux\": {\"namespaces\": [{\"type\": \"pid\"}, {\"type\": \"pid\"}]}"),
	  "linux.namespaces[1].type: \"pid\": listed twice" },
	{ WITH("\"linux\": {\"namespaces\": [{\"path\": \"/proc/1/ns/pid\"}]}"),
	  "linux.namespaces[0].type: required" },
	{ WITH("\"linux\": {\"namespaces\": [{\"type\": \"network\", \"path\": \"netns\"}]}"),
	  "linux.namespaces[0].path: \"netns\" is relative; give an absolute path such as "
	  "/proc/1234/ns/net" },
	{ WITH("\"linux\": {\"namespaces\": [\"pid\"]}"),
	  "linux.namespaces[0]: must be an object, not a string" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"dev/fuse\", \"type\": \"c\"}]}"),
	  "linux.devices[0].path: \"dev/fuse\": give an absolute path inside the container" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"s\"}]}"),
	  "linux.devices[0].type: \"s\": use c or u (character), b (block) or p (FIFO)" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\", \"minor\": 1}]}"),
	  "linux.devices[0].major: required" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"b\", \"major\": 4096, "
	       "\"minor\": 1}]}"), "linux.devices[0].major" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"c\", \"major\": 1, "
	       "\"minor\": 3, \"fileMode\": 4096000}]}"),
	  "linux.devices[0].fileMode: 017500000 has bits beyond a file type and 07777" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/\", \"type\": \"p\"}]}"),
	  "linux.devices[0].path: \"/\": give an absolute path inside the container, without \"..\", "
	  "naming the node" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/dev/x\", \"type\": \"p\", \"major\": 1}]}"),
	  "linux.devices[0].major: a FIFO has no device number" },
	{ WITH("\"linux\": {\"devices\": [{\"path\": \"/dev/../x\", \"type\": \"p\"}]}"),
	  "linux.devices[0].path: \"/dev/../x\": give an absolute path" },
	{ WITH("\"linux\": {\"devices\": [{\"type\": \"c\"}]}"), "linux.devices[0].path: required" },
};

Test(spec, each_validation_error_names_its_path)
{
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
		expect_error(bad_cases[i].text, bad_cases[i].want);
}

Test(spec, accepts_the_supported_versions)
{
	const char *ok[] = { "1.0.0", "1.0.2-dev", "1.1.0", "1.2.0", "1.2.1+build", "1.1" };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char text[256];
		struct oci_spec s;
		snprintf(text, sizeof(text), WITH("\"ociVersion\": \"%s\""), ok[i]);
		parse_ok(text, "/b", &s);
		spec_free(&s);
	}
}

Test(spec, ignores_unknown_fields_and_nulls)
{
	struct oci_spec s;

	parse_ok(WITH("\"windows\": {\"x\": [1]}, \"hostname\": null, \"mounts\": null, "
		      "\"linux\": {\"resources\": {\"cpu\": {\"quota\": null}, \"pids\": {}}}"),
		 "/b", &s);
	cr_assert_null(s.hostname);
	cr_assert_not(s.has_cpu_quota);
	spec_free(&s);
}

Test(spec, rejects_embedded_nul_in_strings)
{
	expect_error(PROC("\"args\": [\"sh\\u0000-c\"]"),
		     "config.json: process.args[0]: must not contain a NUL character (\\u0000)");
	expect_error(WITH("\"hostname\": \"a\\u0000b\""), "hostname: must not contain a NUL");
	expect_error(WITH("\"root\": {\"path\": \"rootfs\\u0000/../x\"}"),
		     "root.path: must not contain a NUL");
	expect_error(WITH("\"annotations\": {\"k\": \"\\u0000\"}"), "annotations.k: must not contain");
	expect_error(WITH("\"annotations\": {\"k\\u0000\": \"v\"}"),
		     "object key contains a NUL character");
}

Test(spec, deep_nesting_is_an_error_not_a_crash)
{
	size_t depth = 100000, len = 0;
	char *text = malloc(depth * 2 + sizeof(BASE) + 16);

	len += (size_t)sprintf(text, "{" BASE ", \"x\": ");
	memset(text + len, '[', depth);
	len += depth;
	memset(text + len, ']', depth);
	len += depth;
	text[len++] = '}';
	text[len] = '\0';
	expect_error(text, "nested deeper than 128 levels");
	free(text);
}

Test(spec, nesting_within_the_limit_in_unknown_fields_is_fine)
{
	char text[1024];
	size_t len = (size_t)sprintf(text, "{" BASE ", \"x\": ");
	struct oci_spec s;

	memset(text + len, '[', 100);
	memset(text + len + 100, ']', 100);
	strcpy(text + len + 200, "}");
	parse_ok(text, "/b", &s);
	spec_free(&s);
}

Test(spec, resolves_relative_root_path_against_the_bundle)
{
	static const struct { const char *bundle, *path, *want; } cases[] = {
		{ "/b", "rootfs", "/b/rootfs" },
		{ "/b/", "./rootfs/", "/b/rootfs" },
		{ "/b//c", "a//./b", "/b/c/a/b" },
		{ "/b/c", "../shared/rootfs", "/b/shared/rootfs" },
		{ "/b", "../../..", "/" },
		{ "/b", "/abs/./root/", "/abs/root" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char text[256];
		struct oci_spec s;
		snprintf(text, sizeof(text), WITH("\"root\": {\"path\": \"%s\"}"), cases[i].path);
		parse_ok(text, cases[i].bundle, &s);
		cr_expect_str_eq(s.root_path, cases[i].want, "bundle %s path %s", cases[i].bundle,
				 cases[i].path);
		spec_free(&s);
	}
}

Test(spec, makes_a_relative_bundle_absolute)
{
	char cwd[PATH_MAX], want[PATH_MAX + 32];
	struct oci_spec s;

	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	parse_ok("{" BASE "}", "rel/b", &s);
	snprintf(want, sizeof(want), "%s/rel/b/rootfs", strcmp(cwd, "/") ? cwd : "");
	cr_assert_str_eq(s.root_path, want);
	spec_free(&s);
	parse_ok("{" BASE "}", NULL, &s);
	snprintf(want, sizeof(want), "%s/rootfs", strcmp(cwd, "/") ? cwd : "");
	cr_assert_str_eq(s.root_path, want);
	spec_free(&s);
}

static void shape(const char *text, unsigned want_cpus, uint64_t want_mem)
{
	struct oci_spec s;
	struct rv_err err = { 0 };
	unsigned cpus = 0;
	uint64_t mem = 0;

	parse_ok(text, "/b", &s);
	cr_expect_eq(spec_vm_shape(&s, &cpus, &mem, &err), 0, "%s: %s", text, err.msg);
	cr_expect_eq(cpus, want_cpus, "%s: %u vCPUs", text, cpus);
	cr_expect_eq(mem, want_mem, "%s: %llu bytes", text, (unsigned long long)mem);
	spec_free(&s);
}

static void shape_error(const char *text, const char *want)
{
	struct oci_spec s;
	struct rv_err err = { 0 };
	unsigned cpus;
	uint64_t mem;

	parse_ok(text, "/b", &s);
	cr_expect_eq(spec_vm_shape(&s, &cpus, &mem, &err), -1, "accepted %s", text);
	cr_expect_not_null(strstr(err.msg, want), "for %s\n  want: %s\n  got:  %s", text, want,
			   err.msg);
	spec_free(&s);
}

#define CPU(q) WITH("\"linux\": {\"resources\": {\"cpu\": " q "}}")
#define MEM(l) WITH("\"linux\": {\"resources\": {\"memory\": {\"limit\": " l "}}}")
#define ANN(a) WITH("\"annotations\": {" a "}")

Test(spec, vm_shape_defaults_to_one_cpu_and_256_mib)
{
	shape("{" BASE "}", 1, 256ull << 20);
	shape(CPU("{\"quota\": -1, \"period\": 100000}"), 1, 256ull << 20);
	shape(CPU("{\"quota\": 0}"), 1, 256ull << 20);
	shape(MEM("-1"), 1, 256ull << 20);
	shape(MEM("0"), 1, 256ull << 20);
}

Test(spec, vm_shape_rounds_quota_over_period_up)
{
	shape(CPU("{\"quota\": 50000, \"period\": 100000}"), 1, 256ull << 20);
	shape(CPU("{\"quota\": 100000, \"period\": 100000}"), 1, 256ull << 20);
	shape(CPU("{\"quota\": 100001, \"period\": 100000}"), 2, 256ull << 20);
	shape(CPU("{\"quota\": 150000, \"period\": 100000}"), 2, 256ull << 20);
	shape(CPU("{\"quota\": 250000}"), 3, 256ull << 20);   /* period: the kernel's 100 ms */
	shape(CPU("{\"quota\": 400000, \"period\": 200000}"), 2, 256ull << 20);
	shape(CPU("{\"quota\": 9223372036854775807, \"period\": 1}"), SPEC_MAX_CPUS, 256ull << 20);
	shape(CPU("{\"quota\": 5, \"period\": 18446744073709551615}"), 1, 256ull << 20);
}

Test(spec, vm_shape_takes_the_memory_limit_in_whole_mib)
{
	shape(MEM("536870912"), 1, 512ull << 20);
	shape(MEM("67108864"), 1, 64ull << 20);
	shape(MEM("100000000"), 1, 95ull << 20);
}

Test(spec, vm_shape_refuses_a_memory_limit_below_64_mib)
{
	shape_error(MEM("33554432"), "linux.resources.memory.limit 33554432: a VM needs at least "
		    "64 MiB; raise the limit or set the annotation io.runvm.memory");
	shape_error(MEM("67108863"), "linux.resources.memory.limit 67108863");
}

Test(spec, vm_shape_annotations_override_resources)
{
	const char *res = "\"linux\": {\"resources\": {\"cpu\": {\"quota\": 400000}, "
			  "\"memory\": {\"limit\": 1048576}}}";
	char text[512];

	snprintf(text, sizeof(text), WITH("%s, \"annotations\": {\"io.runvm.cpus\": \"3\", "
		 "\"io.runvm.memory\": \"1G\"}"), res);
	shape(text, 3, 1ull << 30);
	shape(ANN("\"io.runvm.memory\": \"512M\""), 1, 512ull << 20);
	shape(ANN("\"io.runvm.memory\": \"512MiB\""), 1, 512ull << 20);
	shape(ANN("\"io.runvm.memory\": \"134217728\""), 1, 128ull << 20);
	shape(ANN("\"io.runvm.memory\": \"2g\""), 1, 2ull << 30);
	shape(ANN("\"io.runvm.cpus\": \"256\""), 256, 256ull << 20);
	shape(ANN("\"io.runvm.cpus\": \"9\", \"io.runvm.cpus\": \"2\""), 2, 256ull << 20);
}

Test(spec, vm_shape_refuses_bad_annotations_naming_them)
{
	const char *cpus[] = { "0", "257", "-1", "two", "", "1.5", " 2", "2 ", "99999999999999999999" };
	const char *mems[] = { "32M", "0", "-1G", "1X", "", "M", "1.5G", "99999999999999999999G",
			       "67108863" };
	char text[256];

	for (size_t i = 0; i < sizeof(cpus) / sizeof(cpus[0]); i++) {
		snprintf(text, sizeof(text), ANN("\"io.runvm.cpus\": \"%s\""), cpus[i]);
		shape_error(text, "annotation io.runvm.cpus \"");
		shape_error(text, "give a whole number of vCPUs from 1 to 256");
	}
	for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++) {
		snprintf(text, sizeof(text), ANN("\"io.runvm.memory\": \"%s\""), mems[i]);
		shape_error(text, "annotation io.runvm.memory \"");
		shape_error(text, "at least 64M");
	}
}

Test(spec, keeps_one_annotation_per_key_the_last)
{
	struct oci_spec s;

	parse_ok(ANN("\"a\": \"1\", \"b\": \"2\", \"a\": \"3\", \"c\": \"4\", \"a\": \"5\""), "/b",
		 &s);
	cr_assert_eq(s.nannotations, 3);
	cr_assert_str_eq(s.annotations[0].key, "b");
	cr_assert_str_eq(s.annotations[1].key, "c");
	cr_assert_str_eq(s.annotations[2].key, "a");
	cr_assert_str_eq(s.annotations[2].value, "5");
	spec_free(&s);
}

Test(spec, load_reads_the_bundle_config)
{
	char *dir = tmpdir(), real[PATH_MAX], want[PATH_MAX + 16];
	struct oci_spec s;
	struct rv_err err = { 0 };

	write_file(dir, "config.json", "{" BASE "}");
	cr_assert_eq(spec_load(dir, &s, &err), 0, "%s", err.msg);
	cr_assert_not_null(realpath(dir, real));
	snprintf(want, sizeof(want), "%s/rootfs", real);
	cr_assert_str_eq(s.root_path, want);
	cr_assert_str_eq(s.bundle, real);
	spec_free(&s);
	remove_tree(dir);
	free(dir);
}

Test(spec, load_errors_name_the_bundle_and_file)
{
	char *dir = tmpdir(), want[PATH_MAX + 64];
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_assert_eq(spec_load("/nonexistent/bundle", &s, &err), -1);
	cr_assert_str_eq(err.msg, "bundle /nonexistent/bundle: no such directory");
	cr_assert_eq(spec_load(dir, &s, &err), -1);
	snprintf(want, sizeof(want), "bundle %s: no config.json", dir);
	cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
	write_file(dir, "config.json", "{\n  \"ociVersion\": \"1.2.0\",\n  oops\n}");
	cr_assert_eq(spec_load(dir, &s, &err), -1);
	snprintf(want, sizeof(want), "bundle %s: config.json: line 3, column 3: ", dir);
	cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
	write_file(dir, "config.json", PROC("\"cwd\": \"x\""));
	cr_assert_eq(spec_load(dir, &s, &err), -1);
	snprintf(want, sizeof(want), "bundle %s: config.json: process.cwd: \"x\" is relative", dir);
	cr_assert_not_null(strstr(err.msg, want), "%s", err.msg);
	snprintf(want, sizeof(want), "%s/config.json", dir);
	cr_assert_eq(spec_load(want, &s, &err), -1);
	cr_assert_not_null(strstr(err.msg, "not a directory"), "%s", err.msg);
	cr_assert_null(s.doc);
	remove_tree(dir);
	free(dir);
}

static int run_spec(char **argv, struct rv_err *err)
{
	struct cli cli = { .root = "/nonexistent" };
	int argc = 0;

	while (argv[argc])
		argc++;
	return cmd_spec(&cli, argc, argv, err);
}

Test(spec_cmd, writes_a_config_that_loads_and_refuses_to_overwrite_it)
{
	char *dir = tmpdir(), want[PATH_MAX + 64];
	struct rv_err err = { 0 };
	struct oci_spec s;

	cr_assert_eq(run_spec((char *[]){ "spec", "--bundle", dir, NULL }, &err), 0, "%s", err.msg);
	cr_assert_eq(spec_load(dir, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s.process.args[0], "sh");
	cr_assert_str_eq(s.hostname, "runvm");
	spec_free(&s);
	cr_assert_eq(run_spec((char *[]){ "spec", "-b", dir, NULL }, &err), -1);
	snprintf(want, sizeof(want), "bundle %s: File config.json exists. Remove it first", dir);
	cr_assert_str_eq(err.msg, want);
	cr_assert_eq(err.code, EEXIST);
	remove_tree(dir);
	free(dir);
}

Test(spec_cmd, accepts_flag_equals_value_and_rootless)
{
	char *dir = tmpdir(), flag[PATH_MAX + 16];
	struct rv_err err = { 0 };
	struct oci_spec s;

	snprintf(flag, sizeof(flag), "--bundle=%s", dir);
	cr_assert_eq(run_spec((char *[]){ "spec", "--rootless", flag, NULL }, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(spec_load(dir, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s.namespaces[s.nnamespaces - 1].type, "user");
	spec_free(&s);
	remove_tree(dir);
	free(dir);
}

Test(spec_cmd, writes_into_the_current_directory_by_default)
{
	char *dir = tmpdir();
	struct rv_err err = { 0 };
	struct stat st;

	cr_assert_eq(chdir(dir), 0);
	cr_assert_eq(run_spec((char *[]){ "spec", NULL }, &err), 0, "%s", err.msg);
	cr_assert_eq(stat("config.json", &st), 0);
	cr_assert(S_ISREG(st.st_mode));
	cr_assert_eq(run_spec((char *[]){ "spec", NULL }, &err), -1);
	cr_assert_str_eq(err.msg, "File config.json exists. Remove it first");
	remove_tree(dir);
	free(dir);
}

Test(spec_cmd, refuses_bad_flags_and_arguments)
{
	struct rv_err err = { 0 };

	cr_assert_eq(run_spec((char *[]){ "spec", "--nope", NULL }, &err), -1);
	cr_assert_str_eq(err.msg, "spec: unknown flag '--nope' (see runvm spec --help)");
	cr_assert_eq(run_spec((char *[]){ "spec", "-x", NULL }, &err), -1);
	cr_assert_str_eq(err.msg, "spec: unknown flag '-x' (see runvm spec --help)");
	cr_assert_eq(run_spec((char *[]){ "spec", "--bundle", NULL }, &err), -1);
	cr_assert_str_eq(err.msg, "spec: '--bundle' needs a value (see runvm spec --help)");
	cr_assert_eq(run_spec((char *[]){ "spec", "somedir", NULL }, &err), -1);
	cr_assert_not_null(strstr(err.msg, "spec takes no arguments (got 'somedir')"), "%s", err.msg);
	cr_assert_eq(run_spec((char *[]){ "spec", "-b", "/nonexistent/x", NULL }, &err), -1);
	cr_assert_str_eq(err.msg, "bundle /nonexistent/x: no such directory");
}

/* --- the process attributes the guest applies (caps, rlimits, oomScoreAdj) -- */

Test(spec, parses_capabilities_rlimits_and_oom_score_adj)
{
	struct oci_spec s;

	parse_ok(PROC("\"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"CAP_SYS_ADMIN\"], "
		      "\"ambient\": [\"CAP_KILL\"]}, \"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", "
		      "\"hard\": 2048, \"soft\": 1024}, {\"type\": \"RLIMIT_CORE\", \"hard\": 0, "
		      "\"soft\": 0}], \"oomScoreAdj\": -500"), "/b", &s);
	cr_expect(s.process.has_caps);
	cr_expect_eq(s.process.caps[SPEC_CAP_BOUNDING], (1ull << 0) | (1ull << 21));
	cr_expect_eq(s.process.caps[SPEC_CAP_AMBIENT], 1ull << 5);
	cr_expect_eq(s.process.caps[SPEC_CAP_EFFECTIVE], 0);
	cr_assert_eq(s.process.nrlimits, 2);
	cr_expect_eq(s.process.rlimits[0].type, 7);   /* RLIMIT_NOFILE */
	cr_expect_eq(s.process.rlimits[0].soft, 1024);
	cr_expect_eq(s.process.rlimits[0].hard, 2048);
	cr_expect_eq(s.process.rlimits[1].type, 4);   /* RLIMIT_CORE */
	cr_expect(s.process.has_oom_score_adj);
	cr_expect_eq(s.process.oom_score_adj, -500);
	spec_free(&s);
	parse_ok(PROC("\"user\": {\"uid\": 0}"), "/b", &s);
	cr_expect_not(s.process.has_caps, "no capabilities object: the uid's own");
	cr_expect_not(s.process.has_oom_score_adj);
	spec_free(&s);
}

Test(spec, refuses_bad_process_attributes_naming_them)
{
	expect_error(PROC("\"capabilities\": {\"effective\": [\"CAP_CHOWN\", \"CAP_NOPE\"]}"),
		     "process.capabilities.effective[1]: unknown capability \"CAP_NOPE\"");
	expect_error(PROC("\"capabilities\": {\"bounding\": \"CAP_CHOWN\"}"),
		     "process.capabilities.bounding: must be an array");
	expect_error(PROC("\"rlimits\": [{\"type\": \"RLIMIT_FOO\", \"hard\": 1, \"soft\": 1}]"),
		     "process.rlimits[0].type: unknown rlimit \"RLIMIT_FOO\"");
	expect_error(PROC("\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 2}]"),
		     "process.rlimits[0].soft: 2 is over the hard limit 1");
	expect_error(PROC("\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 1}, "
			  "{\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 1}]"),
		     "process.rlimits[1].type: RLIMIT_NOFILE given twice");
	expect_error(PROC("\"rlimits\": [{\"type\": \"RLIMIT_NOFILE\", \"soft\": 1}]"),
		     "process.rlimits[0].hard");
	expect_error(PROC("\"oomScoreAdj\": 1001"), "process.oomScoreAdj");
}

Test(spec, parses_masked_and_readonly_paths_sysctl_and_domainname)
{
	struct oci_spec s;

	parse_ok(WITH("\"domainname\": \"example.org\", \"linux\": {\"maskedPaths\": "
		      "[\"/proc/kcore\", \"/sys/firmware\"], \"readonlyPaths\": [\"/proc/sys\"], "
		      "\"sysctl\": {\"net.ipv4.ip_forward\": \"1\", \"kernel.msgmax\": \"8192\"}}"),
		 "/b", &s);
	cr_expect_str_eq(s.domainname, "example.org");
	cr_assert_eq(s.nmasked, 2);
	cr_expect_str_eq(s.masked_paths[1], "/sys/firmware");
	cr_assert_eq(s.nreadonly, 1);
	cr_expect_str_eq(s.readonly_paths[0], "/proc/sys");
	cr_assert_eq(s.nsysctls, 2);
	cr_expect_str_eq(s.sysctls[0], "net.ipv4.ip_forward=1");
	cr_expect_str_eq(s.sysctls[1], "kernel.msgmax=8192");
	spec_free(&s);
}

Test(spec, refuses_bad_paths_and_sysctls_naming_them)
{
	expect_error(WITH("\"linux\": {\"maskedPaths\": [\"proc/kcore\"]}"),
		     "linux.maskedPaths[0]: \"proc/kcore\": give an absolute path");
	expect_error(WITH("\"linux\": {\"readonlyPaths\": [\"/proc/../etc\"]}"),
		     "linux.readonlyPaths[0]: \"/proc/../etc\"");
	expect_error(WITH("\"linux\": {\"sysctl\": {\"net/ipv4/ip_forward\": \"1\"}}"),
		     "is not a sysctl name");
	expect_error(WITH("\"linux\": {\"sysctl\": {\"kernel..x\": \"1\"}}"), "kernel..x");
	expect_error(WITH("\"linux\": {\"sysctl\": {\"kernel.msgmax\": 1}}"),
		     "linux.sysctl[\"kernel.msgmax\"]: must be a string, not a number");
}

#define POD "\"io.kubernetes.cri.container-type\": \"sandbox\", "

/* The pod's VM holds every container of the pod: containerd gives the
 * sandbox the kubelet's sums of their limits. */
Test(spec, a_pods_sandbox_takes_the_pods_total_limits)
{
	shape(ANN(POD "\"io.kubernetes.cri.sandbox-cpu-quota\": \"250000\", "
		  "\"io.kubernetes.cri.sandbox-cpu-period\": \"100000\", "
		  "\"io.kubernetes.cri.sandbox-memory\": \"536870912\""), 3, 512ull << 20);
	/* -1: unlimited, as the CRI has it; a small pod still gets a VM. */
	shape(ANN(POD "\"io.kubernetes.cri.sandbox-cpu-quota\": \"-1\", "
		  "\"io.kubernetes.cri.sandbox-memory\": \"-1\""), 1, 256ull << 20);
	shape(ANN(POD "\"io.kubernetes.cri.sandbox-memory\": \"33554432\""), 1, 64ull << 20);
	/* "0": no limit (as containerd writes it), the defaults. */
	shape(ANN(POD "\"io.kubernetes.cri.sandbox-cpu-quota\": \"0\", "
		  "\"io.kubernetes.cri.sandbox-memory\": \"0\""), 1, 256ull << 20);
	/* io.runvm.* still wins. */
	shape(ANN(POD "\"io.kubernetes.cri.sandbox-memory\": \"536870912\", "
		  "\"io.runvm.memory\": \"2G\", \"io.runvm.cpus\": \"4\""), 4, 2048ull << 20);
	/* A container of the pod: its VM is the pod's, these are not its own. */
	shape(ANN("\"io.kubernetes.cri.container-type\": \"container\", "
		  "\"io.kubernetes.cri.sandbox-memory\": \"536870912\""), 1, 256ull << 20);
	shape_error(ANN(POD "\"io.kubernetes.cri.sandbox-memory\": \"lots\""),
		    "annotation io.kubernetes.cri.sandbox-memory \"lots\": give a whole number");
}
