#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/caps.h"
#include "runtime/exec_proc.h"
#include "runtime/spec.h"

#define SPEC "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, \"process\": {" \
	"\"args\": [\"sleep\", \"9\"], \"cwd\": \"/srv\", \"user\": {\"uid\": 5, \"gid\": 6, " \
	"\"additionalGids\": [7]}, \"env\": [\"PATH=/bin\", \"HOME=/root\", \"A=1\"], " \
	"\"terminal\": true, \"noNewPrivileges\": true, " \
	"\"capabilities\": {\"bounding\": [\"CAP_CHOWN\", \"CAP_KILL\"], " \
	"\"effective\": [\"CAP_KILL\"]}}}"

static struct oci_spec spec;

static void load(void)
{
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(SPEC, strlen(SPEC), "/b", &spec, &err), 0, "%s", err.msg);
}

static void unload(void)
{
	spec_free(&spec);
}

static char *argv_sh[] = { "sh", "-c", "true" };

static int build(const struct exec_flags *f, struct oci_process *p, struct rv_err *err)
{
	return exec_proc_build(&spec, f, p, err);
}

TestSuite(exec_proc, .init = load, .fini = unload);

Test(exec_proc, the_spec_process_with_the_command_line_args)
{
	struct exec_flags f = { .args = argv_sh, .nargs = 3 };
	struct oci_process p;
	struct rv_err err = { 0 };

	cr_assert_eq(build(&f, &p, &err), 0, "%s", err.msg);
	cr_expect_eq(p.nargs, 3);
	cr_expect_str_eq(p.args[0], "sh");
	cr_expect_null(p.args[3]);
	cr_expect_str_eq(p.cwd, "/srv");
	cr_expect_eq(p.uid, 5);
	cr_expect_eq(p.gid, 6);
	cr_expect_eq(p.nadditional_gids, 1);
	cr_expect_eq(p.additional_gids[0], 7);
	cr_expect_not(p.terminal, "runc: no terminal unless --tty");
	cr_expect(p.no_new_privileges);
	cr_expect(p.has_caps);
	cr_expect_eq(p.caps[SPEC_CAP_BOUNDING], (1ull << caps_number("CAP_CHOWN")) |
						(1ull << caps_number("CAP_KILL")));
	exec_proc_free(&p);
}

Test(exec_proc, flags_override_and_add)
{
	const char *env[] = { "A=2", "NEW=x", "PATH=/usr/bin" };
	const char *gids[] = { "8", "9" };
	const char *caps[] = { "CAP_NET_ADMIN" };
	struct exec_flags f = { .args = argv_sh, .nargs = 1, .cwd = "/tmp", .user = "1000:100",
				.env = env, .nenv = 3, .gids = gids, .ngids = 2, .caps = caps,
				.ncaps = 1, .tty = true, .tty_set = true };
	struct oci_process p;
	struct rv_err err = { 0 };

	cr_assert_eq(build(&f, &p, &err), 0, "%s", err.msg);
	cr_expect_str_eq(p.cwd, "/tmp");
	cr_expect_eq(p.uid, 1000);
	cr_expect_eq(p.gid, 100);
	cr_expect_eq(p.nadditional_gids, 3);
	cr_expect_eq(p.additional_gids[2], 9);
	cr_expect(p.terminal);
	/* later wins, in the place the name first had */
	cr_assert_eq(p.nenv, 4);
	cr_expect_str_eq(p.env[0], "PATH=/usr/bin");
	cr_expect_str_eq(p.env[1], "HOME=/root");
	cr_expect_str_eq(p.env[2], "A=2");
	cr_expect_str_eq(p.env[3], "NEW=x");
	uint64_t net_admin = 1ull << caps_number("CAP_NET_ADMIN");
	cr_expect(p.caps[SPEC_CAP_BOUNDING] & net_admin);
	cr_expect(p.caps[SPEC_CAP_EFFECTIVE] & net_admin);
	cr_expect(p.caps[SPEC_CAP_PERMITTED] & net_admin);
	cr_expect_not(p.caps[SPEC_CAP_INHERITABLE] & net_admin, "runc leaves inheritable alone");
	cr_expect_not(p.caps[SPEC_CAP_AMBIENT] & net_admin);
	exec_proc_free(&p);
}

Test(exec_proc, user_without_gid_keeps_the_spec_gid)
{
	struct exec_flags f = { .args = argv_sh, .nargs = 1, .user = "42" };
	struct oci_process p;
	struct rv_err err = { 0 };

	cr_assert_eq(build(&f, &p, &err), 0, "%s", err.msg);
	cr_expect_eq(p.uid, 42);
	cr_expect_eq(p.gid, 6);
	exec_proc_free(&p);
}

static void refused(struct exec_flags f, const char *want)
{
	struct oci_process p;
	struct rv_err err = { 0 };

	if (!f.args) {
		f.args = argv_sh;
		f.nargs = f.process_file ? 0 : 1;
	}
	cr_expect_eq(build(&f, &p, &err), -1, "accepted; want %s", want);
	cr_expect_not_null(strstr(err.msg, want), "want: %s\n  got:  %s", want, err.msg);
	cr_expect_null(p.args, "a refusal leaves nothing to free");
}

Test(exec_proc, bad_flags_are_named)
{
	const char *bad_env[] = { "NOEQUALS" }, *bad_gid[] = { "wheel" }, *bad_cap[] = { "CAP_FLY" };

	refused((struct exec_flags){ .user = "root" }, "--user: uid 'root'");
	refused((struct exec_flags){ .user = "1:x" }, "--user: gid 'x'");
	refused((struct exec_flags){ .user = "-1" }, "--user: uid '-1'");
	refused((struct exec_flags){ .user = "4294967296" }, "uid '4294967296'");
	refused((struct exec_flags){ .env = bad_env, .nenv = 1 }, "--env 'NOEQUALS'");
	refused((struct exec_flags){ .gids = bad_gid, .ngids = 1 }, "--additional-gids 'wheel'");
	refused((struct exec_flags){ .caps = bad_cap, .ncaps = 1 }, "--cap 'CAP_FLY'");
	refused((struct exec_flags){ .cwd = "tmp" }, "--cwd 'tmp'");
	refused((struct exec_flags){ .args = argv_sh, .nargs = 0 }, "give the command");
}

static char *write_tmp(const char *text)
{
	char *path = strdup("/tmp/test-exec-proc.XXXXXX");
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

Test(exec_proc, a_process_file_is_taken_whole)
{
	char *path = write_tmp("{\"args\": [\"ls\", \"-l\"], \"cwd\": \"/etc\", \"env\": [\"X=1\"], "
			       "\"user\": {\"uid\": 3}, \"terminal\": true}");
	struct exec_flags f = { .process_file = path };
	struct oci_process p;
	struct rv_err err = { 0 };

	cr_assert_eq(build(&f, &p, &err), 0, "%s", err.msg);
	cr_expect_str_eq(p.args[1], "-l");
	cr_expect_str_eq(p.cwd, "/etc");
	cr_expect_eq(p.nenv, 1);
	cr_expect_eq(p.uid, 3);
	cr_expect(p.terminal);
	cr_expect_not(p.has_caps, "nothing of the spec's process comes along");
	exec_proc_free(&p);
	unlink(path);
	free(path);
}

Test(exec_proc, a_bad_process_file_is_named_with_its_field)
{
	char *empty_args = write_tmp("{\"args\": [], \"cwd\": \"/\"}");
	char *bad_json = write_tmp("{\"args\": [\"ls\"],\n \"cwd\": }");
	char *bad_cap = write_tmp("{\"args\": [\"ls\"], \"cwd\": \"/\", \"capabilities\": "
				  "{\"bounding\": [\"CAP_NOPE\"]}}");

	refused((struct exec_flags){ .process_file = empty_args }, "args: must be a non-empty");
	refused((struct exec_flags){ .process_file = bad_json }, "line 2");
	refused((struct exec_flags){ .process_file = bad_cap }, "capabilities.bounding[0]");
	refused((struct exec_flags){ .process_file = "/nonexistent/p.json" }, "/nonexistent/p.json");
	refused((struct exec_flags){ .process_file = empty_args, .args = argv_sh, .nargs = 1 },
		"not both");
	unlink(empty_args);
	unlink(bad_json);
	unlink(bad_cap);
	free(empty_args);
	free(bad_json);
	free(bad_cap);
}

Test(exec_proc, env_merge_keeps_first_place_and_last_value)
{
	char *env[6] = { strdup("A=1"), strdup("B=2"), strdup("A=3"), strdup("C"), strdup("B=") };

	cr_assert_eq(exec_env_merge(env, 5), 3);
	cr_expect_str_eq(env[0], "A=3");
	cr_expect_str_eq(env[1], "B=");
	cr_expect_str_eq(env[2], "C");
	cr_expect_null(env[3]);
	for (int i = 0; i < 3; i++)
		free(env[i]);
}

Test(exec_proc, capability_names)
{
	cr_expect_eq(caps_number("CAP_CHOWN"), 0);
	cr_expect_eq(caps_number("CAP_SYS_ADMIN"), 21);
	cr_expect_eq(caps_number("CAP_CHECKPOINT_RESTORE"), CAPS_LAST);
	cr_expect_eq(caps_number("cap_chown"), -1);
	cr_expect_str_eq(caps_name(12), "CAP_NET_ADMIN");
	cr_expect_null(caps_name(CAPS_LAST + 1));
}
