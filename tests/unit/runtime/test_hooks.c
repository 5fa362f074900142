#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "runtime/hooks.h"
#include "runtime/spec.h"

/* Hooks as config.json would give them, parsed by spec_parse. */
#define SPEC_WITH_HOOKS(hooks) "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, " \
	"\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"hooks\": " hooks "}"

static struct oci_spec spec;
static char dir[] = "/tmp/test-hooks.XXXXXX";

static void parse(const char *text)
{
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(text, strlen(text), "/b", &spec, &err), 0, "%s", err.msg);
}

static char *slurp(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(chdir(dir), 0);
}

static void teardown(void)
{
	char cmd[64];

	spec_free(&spec);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(chdir("/"), 0);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(hooks, .init = setup, .fini = teardown);

Test(hooks, run_in_order_with_the_state_on_stdin_args_and_env)
{
	struct rv_err err = { 0 };

	parse(SPEC_WITH_HOOKS("{\"createRuntime\": ["
		"{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"cat >stdin.json; echo \\\"one $FOO $1\\\" >>order\", \"sh\", \"x\"], \"env\": [\"FOO=bar\"]},"
		"{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo two >>order\"]}]}"));
	cr_assert_eq(spec.hooks.n[HOOK_CREATE_RUNTIME], 2);
	cr_assert_eq(hooks_run(&spec.hooks, HOOK_CREATE_RUNTIME, "{\"id\": \"c1\"}", &err), 0,
		     "%s", err.msg);
	cr_expect_str_eq(slurp("stdin.json"), "{\"id\": \"c1\"}");
	cr_expect_str_eq(slurp("order"), "one bar x\ntwo\n");
	cr_expect_eq(hooks_run(&spec.hooks, HOOK_POSTSTOP, "{}", &err), 0, "no hooks: nothing");
}

Test(hooks, the_first_failure_stops_them_naming_hook_status_and_output)
{
	struct rv_err err = { 0 };

	parse(SPEC_WITH_HOOKS("{\"poststart\": ["
		"{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"echo it broke >&2; exit 3\"]},"
		"{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"touch ran\"]}]}"));
	cr_assert_eq(hooks_run(&spec.hooks, HOOK_POSTSTART, "{}", &err), -1);
	cr_expect_str_eq(err.msg, "hooks.poststart[0] /bin/sh: exit status 3: it broke");
	cr_expect_neq(access("ran", F_OK), 0, "the second hook never ran");
}

Test(hooks, a_timeout_kills_the_hook)
{
	struct rv_err err = { 0 };

	parse(SPEC_WITH_HOOKS("{\"prestart\": [{\"path\": \"/bin/sleep\", \"args\": [\"sleep\", \"30\"], \"timeout\": 1}]}"));
	uint64_t t0 = rv_now_ms(CLOCK_MONOTONIC);
	cr_assert_eq(hooks_run(&spec.hooks, HOOK_PRESTART, "{}", &err), -1);
	cr_expect_lt(rv_now_ms(CLOCK_MONOTONIC) - t0, 5000);
	cr_expect_eq(err.code, ETIMEDOUT);
	cr_expect_not_null(strstr(err.msg, "hooks.prestart[0] /bin/sleep: did not finish within its "
				  "timeout of 1 s"), "%s", err.msg);
}

Test(hooks, a_missing_program_and_a_signal_are_named)
{
	struct rv_err err = { 0 };

	parse(SPEC_WITH_HOOKS("{\"poststop\": [{\"path\": \"/no/such/hook\"}], "
			      "\"createRuntime\": [{\"path\": \"/bin/sh\", \"args\": [\"sh\", \"-c\", \"kill -9 $$\"]}]}"));
	cr_assert_eq(hooks_run(&spec.hooks, HOOK_POSTSTOP, "{}", &err), -1);
	cr_expect_not_null(strstr(err.msg, "exit status 127: exec /no/such/hook: No such file"),
			   "%s", err.msg);
	cr_assert_eq(hooks_run(&spec.hooks, HOOK_CREATE_RUNTIME, "{}", &err), -1);
	cr_expect_not_null(strstr(err.msg, "killed by signal 9"), "%s", err.msg);
}

Test(hooks, a_hook_that_reads_no_stdin_does_not_hang)
{
	struct rv_err err = { 0 };
	size_t n = 512 * 1024;
	char *big = malloc(n + 1);

	cr_assert_not_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	parse(SPEC_WITH_HOOKS("{\"poststart\": [{\"path\": \"/bin/true\"}]}"));
	cr_expect_eq(hooks_run(&spec.hooks, HOOK_POSTSTART, big, &err), 0, "%s", err.msg);
	free(big);
}

static void refused(const char *text, const char *want)
{
	struct oci_spec s;
	struct rv_err err = { 0 };

	cr_expect_eq(spec_parse(text, strlen(text), "/b", &s, &err), -1, "accepted %s", text);
	cr_expect_not_null(strstr(err.msg, want), "want: %s\n  got:  %s", want, err.msg);
}

Test(hooks, bad_hooks_are_named_by_their_field)
{
	refused(SPEC_WITH_HOOKS("{\"prestart\": [{\"path\": \"bin/x\"}]}"),
		"hooks.prestart[0].path: \"bin/x\": give an absolute path");
	refused(SPEC_WITH_HOOKS("{\"poststop\": [{\"args\": [\"x\"]}]}"), "hooks.poststop[0].path");
	refused(SPEC_WITH_HOOKS("{\"poststart\": [{\"path\": \"/x\", \"timeout\": 0}]}"),
		"hooks.poststart[0].timeout: must be at least 1");
	refused(SPEC_WITH_HOOKS("{\"createRuntime\": {\"path\": \"/x\"}}"),
		"hooks.createRuntime: must be an array");
}

/* execve(path, args): the path is what runs, args[0] the name it sees. */
Test(hooks, the_path_runs_with_args0_as_its_argv0)
{
	struct rv_err err = { 0 };

	parse(SPEC_WITH_HOOKS("{\"prestart\": [{\"path\": \"/bin/sh\", "
		"\"args\": [\"not-a-program\", \"-c\", \"echo \\\"$0\\\" >argv0\"]}]}"));
	cr_assert_eq(hooks_run(&spec.hooks, HOOK_PRESTART, "{}", &err), 0, "%s", err.msg);
	cr_expect_str_eq(slurp("argv0"), "not-a-program\n");
}

Test(hooks, without_args_argv0_is_the_path)
{
	parse(SPEC_WITH_HOOKS("{\"poststop\": [{\"path\": \"/bin/true\"}]}"));
	cr_assert_str_eq(spec.hooks.list[HOOK_POSTSTOP][0].args[0], "/bin/true");
	cr_assert_null(spec.hooks.list[HOOK_POSTSTOP][0].args[1]);
	cr_assert_null(spec.hooks.list[HOOK_POSTSTOP][0].env[0]);
}
