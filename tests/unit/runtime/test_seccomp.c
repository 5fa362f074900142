#include <criterion/criterion.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/proto.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"

#define WITH_SECCOMP(sc) "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, " \
	"\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"linux\": {\"seccomp\": " sc "}}"

static int compile(const char *text, struct seccomp_prog *p, struct rv_err *err)
{
	struct oci_spec s;

	cr_assert_eq(spec_parse(text, strlen(text), "/b", &s, err), 0, "%s", err->msg);
	int rc = seccomp_compile(&s, p, err);
	spec_free(&s);
	return rc;
}

/* Loads p in a child, as the agent does (as struct sock_filter), and reports
 * what mkdir and getpid then do there. */
static int child_mkdir_errno(const struct seccomp_prog *p)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct sock_filter f[PROTO_MAX_SECCOMP_INSNS];
		for (size_t i = 0; i < p->n; i++) {
			uint64_t v = p->insns[i];
			f[i] = (struct sock_filter){ (uint16_t)v, (uint8_t)(v >> 16), (uint8_t)(v >> 24),
						     (uint32_t)(v >> 32) };
		}
		struct sock_fprog prog = { .len = (unsigned short)p->n, .filter = f };
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, p->flags, &prog) < 0)
			_exit(200);
		if (getpid() <= 0)
			_exit(201);
		_exit(mkdir("/tmp/test-seccomp-never", 0700) < 0 ? errno : 0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st), "killed by %d", WTERMSIG(st));
	return WEXITSTATUS(st);
}

Test(seccomp, no_profile_no_filter)
{
	struct seccomp_prog p;
	struct rv_err err = { 0 };
	const char *text = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"}, "
			   "\"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}}";

	cr_assert_eq(compile(text, &p, &err), 0, "%s", err.msg);
	cr_expect_eq(p.n, 0);
	cr_expect_null(p.insns);
}

Test(seccomp, a_denied_syscall_returns_its_errno_once_loaded)
{
	struct seccomp_prog p;
	struct rv_err err = { 0 };

	cr_assert_eq(compile(WITH_SECCOMP("{\"defaultAction\": \"SCMP_ACT_ALLOW\", "
		"\"architectures\": [\"SCMP_ARCH_X86_64\", \"SCMP_ARCH_X86\"], "
		"\"flags\": [\"SECCOMP_FILTER_FLAG_LOG\"], "
		"\"syscalls\": [{\"names\": [\"mkdir\", \"mkdirat\"], \"action\": \"SCMP_ACT_ERRNO\", "
		"\"errnoRet\": 38}, {\"names\": [\"getpid\"], \"action\": \"SCMP_ACT_ALLOW\"}]}"),
		&p, &err), 0, "%s", err.msg);
	cr_assert_gt(p.n, 0);
	cr_expect_eq(p.flags, SECCOMP_FILTER_FLAG_LOG);
	cr_expect_eq(child_mkdir_errno(&p), 38, "mkdir fails with the profile's ENOSYS (38)");
	seccomp_prog_free(&p);
}

Test(seccomp, conditions_on_arguments)
{
	struct seccomp_prog p;
	struct rv_err err = { 0 };

	/* mkdir with mode 0700 is refused, other modes pass (the child uses 0700). */
	cr_assert_eq(compile(WITH_SECCOMP("{\"defaultAction\": \"SCMP_ACT_ALLOW\", "
		"\"syscalls\": [{\"names\": [\"mkdir\"], \"action\": \"SCMP_ACT_ERRNO\", "
		"\"args\": [{\"index\": 1, \"value\": 448, \"op\": \"SCMP_CMP_EQ\"}]}]}"),
		&p, &err), 0, "%s", err.msg);
	cr_expect_eq(child_mkdir_errno(&p), EPERM, "errnoRet absent: EPERM, as runc");
	seccomp_prog_free(&p);
}

static void refused(const char *sc, const char *want)
{
	struct seccomp_prog p;
	struct rv_err err = { 0 };
	char text[2048];

	snprintf(text, sizeof(text), WITH_SECCOMP("%s"), sc);
	cr_expect_eq(compile(text, &p, &err), -1, "accepted %s", sc);
	cr_expect_not_null(strstr(err.msg, want), "want: %s\n  got:  %s", want, err.msg);
	cr_expect_null(p.insns);
}

Test(seccomp, bad_profiles_are_named_by_field)
{
	refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\", "
		"\"frobnicate\"], \"action\": \"SCMP_ACT_ERRNO\"}]}",
		"linux.seccomp.syscalls[0].names[1]: unknown syscall \"frobnicate\"");
	refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"architectures\": [\"SCMP_ARCH_PDP11\"]}",
		"linux.seccomp.architectures[0]: unknown architecture \"SCMP_ARCH_PDP11\"");
	refused("{\"defaultAction\": \"SCMP_ACT_EXPLODE\"}",
		"linux.seccomp.defaultAction: unknown action \"SCMP_ACT_EXPLODE\"");
	refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
		"\"action\": \"SCMP_ACT_NOTIFY\"}]}", "SCMP_ACT_NOTIFY");
	refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"syscalls\": [{\"names\": [\"read\"], "
		"\"action\": \"SCMP_ACT_ERRNO\", \"args\": [{\"index\": 0, \"value\": 1, "
		"\"op\": \"SCMP_CMP_ALMOST\"}]}]}",
		"linux.seccomp.syscalls[0].args[0].op: unknown operator");
	refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"flags\": [\"SECCOMP_FILTER_FLAG_FAST\"]}",
		"linux.seccomp.flags[0]: unknown flag");
	refused("{\"defaultAction\": \"SCMP_ACT_ALLOW\", \"listenerPath\": \"/run/agent.sock\"}",
		"linux.seccomp.listenerPath");
	refused("{\"syscalls\": []}", "linux.seccomp.defaultAction");
}
