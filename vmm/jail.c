#include "vmm/jail.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* What glibc needs on any of our threads: locks, malloc's memory, signals,
 * clocks where the vDSO falls back, thread start (in the child, under its
 * creator's filter) and end. */
static const char *const common_calls[] = {
	"futex", "brk", "munmap", "madvise", "mremap", "rt_sigprocmask", "rt_sigreturn",
	"restart_syscall", "clock_gettime", "clock_nanosleep", "nanosleep", "gettid", "getpid",
	"sched_yield", "sched_getaffinity", "rseq", "set_robust_list", "exit", "exit_group",
	"read", "write", "writev", "close",
	NULL,
};

/* The main loop and its devices (vsock, net, rng, serial), the agent's and
 * the control socket's threads, the console's, and the exit path after the
 * VM: signals re-raised, the pod's redirect removed over the netlink socket
 * opened before, `runvm do`'s keeper (runtime/do_keeper.h) reaped. Also
 * everything a vCPU does, whose filter stacks on this. */
static const char *const vmm_calls[] = {
	"epoll_wait", "epoll_pwait", "epoll_ctl", "readv", "sendmsg", "recvmsg", "sendto",
	"recvfrom", "accept4", "socketpair", "getsockopt", "setsockopt", "shutdown", "poll",
	"ppoll", "fcntl", "dup", "lseek", "newfstatat", "fstat", "readlink", "eventfd2",
	"getrandom", "geteuid", "getuid", "tgkill", "rt_sigaction", "rt_sigtimedwait",
	"seccomp", "wait4",
	/* Saving a template (vmm/template.h) into its two files, opened before
	 * the jail; runvm create, outside it, publishes them. */
	"pwrite64",
	NULL,
};

/* A pod's member relays between its callers and the pod's agent, whose
 * connections come from the pod's VMM over a connection it already has: it
 * makes no socket, opens no file. */
static const char *const member_calls[] = {
	"readv", "sendmsg", "recvmsg", "sendto", "recvfrom", "accept4", "getsockopt",
	"setsockopt", "shutdown", "poll", "ppoll", "fcntl", "dup", "lseek", "fstat",
	"newfstatat", "eventfd2", "getrandom", "geteuid", "getuid", "tgkill", "rt_sigaction",
	"rt_sigtimedwait",
	NULL,
};

static const char *const vcpu_calls[] = {
	"epoll_ctl", "newfstatat", "fstat",
	NULL,
};

/* Passthrough file calls (devices/fs), each resolved below an export's fd;
 * no sockets, no ioctl, no new processes. renameat: glibc's renameat2()
 * without flags (every plain rename) makes that call. */
static const char *const fs_worker_calls[] = {
	"openat", "open_by_handle_at", "name_to_handle_at", "newfstatat", "fstat", "fstatfs",
	"getdents64", "lseek", "readlinkat", "mkdirat", "mknodat", "symlinkat", "unlinkat",
	"renameat2", "renameat", "linkat", "fchmodat", "fchownat", "utimensat", "ftruncate",
	"fallocate", "fsync", "fdatasync", "preadv", "pwritev", "pread64", "pwrite64",
	"copy_file_range", "setxattr", "getxattr", "listxattr", "removexattr", "fcntl", "flock", "setfsuid",
	"setfsgid", "capget", "capset",
	NULL,
};

#if JAIL_SANITIZER_BUILD
/* ASan's per-thread signal stack and reports, and LeakSanitizer at exit,
 * which stops the threads from a clone that ptraces them after listing
 * /proc/PID/task. On x86-64 the sanitizer runtime makes the legacy calls
 * (open, getdents, stat) where glibc makes the *at ones; its tracer blocks
 * SIGSYS, so a call refused there kills it silently and LeakSanitizer waits
 * for it for ever. */
static const char *const sanitizer_calls[] = {
	"sigaltstack", "prctl", "openat", "open", "getdents64", "getdents", "stat", "lstat",
	"access", "dup2", "readlink", "clone", "ptrace", "wait4",
	"getppid", "rt_sigaction", "pipe2", "sched_getparam", "sched_getscheduler", "kill",
	"tkill", "tgkill", "process_vm_readv",
	NULL,
};
#else
static const char *const sanitizer_calls[] = { NULL };
#endif

/* A vCPU's ioctls: KVM_RUN, a stop's diagnostics, virtio-net's offloads at
 * activation. The VMM's list holds them too, as a vCPU runs under both. */
#define VCPU_IOCTLS KVM_RUN, KVM_GET_REGS, KVM_GET_SREGS, KVM_TRANSLATE, KVM_GET_LAPIC, \
		    KVM_GET_MP_STATE, TUNSETOFFLOAD

static const unsigned long vcpu_ioctls[] = { VCPU_IOCTLS, 0 };

/* A template's machine state, read on the agent's thread with every vCPU
 * parked (vmm/x86/vcpu_state.h); reads only. */
#define TEMPLATE_IOCTLS KVM_GET_PIT2, KVM_GET_CLOCK, KVM_GET_XSAVE, KVM_GET_XCRS, \
			KVM_GET_DEBUGREGS, KVM_GET_MSRS, KVM_GET_MSR_INDEX_LIST, KVM_GET_VCPU_EVENTS

/* Also the I/O APIC for a stop's diagnostics and templates, the console's window size,
 * what stdio asks of a stream it opens (print_tail's fdopen), and `runvm
 * do`'s terminal, raw while its command runs and given back after. */
static const unsigned long vmm_ioctls[] = { VCPU_IOCTLS, KVM_GET_IRQCHIP, TIOCGWINSZ, TCGETS,
					    TCSETS, TEMPLATE_IOCTLS, 0 };

static const unsigned long no_ioctls[] = { 0 };

/* The console's window size. */
static const unsigned long member_ioctls[] = { TIOCGWINSZ, 0 };

static const struct {
	const char *name;
	const char *const *calls;
	const unsigned long *ioctls;
	bool threads;                /* may start threads (never processes) */
} roles[JAIL_ROLES] = {
	[JAIL_VMM] = { "vmm", vmm_calls, vmm_ioctls, true },
	[JAIL_VCPU] = { "vcpu", vcpu_calls, vcpu_ioctls, false },
	[JAIL_FS_WORKER] = { "fs-worker", fs_worker_calls, no_ioctls, false },
	[JAIL_POD_MEMBER] = { "pod-member", member_calls, member_ioctls, true },
};

const char *jail_role_name(enum jail_role role)
{
	return role < JAIL_ROLES ? roles[role].name : "?";
}

int jail_role_parse(const char *name, enum jail_role *out, struct rv_err *err)
{
	for (unsigned i = 0; i < JAIL_ROLES; i++)
		if (!strcmp(name, roles[i].name)) {
			*out = (enum jail_role)i;
			return 0;
		}
	return rv_failx(err, EINVAL, "seccomp role '%s': give vmm, vcpu, fs-worker or pod-member",
			name);
}

static bool is_listed(const char *const *calls, const char *name)
{
	for (; *calls; calls++)
		if (!strcmp(*calls, name))
			return true;
	return false;
}

/* Calls whose arguments the rules below check: listed by name they would
 * be allowed outright, and libseccomp drops a conditional rule that comes
 * after an unconditional one without a word. */
static const char *const checked_calls[] = { "mmap", "mprotect", "ioctl", "clone", "clone3", NULL };

/* by_name_only: refuse the calls that have rules of their own (all lists
 * but the sanitizer runtime's, which needs clone unchecked). */
static int allow_list(scmp_filter_ctx ctx, const char *const *calls, bool by_name_only,
		      struct rv_err *err)
{
	for (; *calls; calls++) {
		if (by_name_only && is_listed(checked_calls, *calls))
			return rv_failx(err, EINVAL, "seccomp: %s has a rule of its own; list it "
					"there, not by name", *calls);
		int nr = seccomp_syscall_resolve_name(*calls);
		if (nr == __NR_SCMP_ERROR)
			return rv_failx(err, EINVAL, "seccomp: no system call '%s' here", *calls);
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
		if (rc < 0)
			return rv_fail(err, -rc, "seccomp: allow %s", *calls);
	}
	return 0;
}

/* Memory may be mapped and re-protected, never made executable: code a
 * hostile guest smuggled into our memory stays data. */
static int allow_memory(scmp_filter_ctx ctx, struct rv_err *err)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				  SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	return rc < 0 ? rv_fail(err, -rc, "seccomp: allow mmap and mprotect") : 0;
}

static int allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, struct rv_err *err)
{
	for (; *reqs; reqs++) {
		int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					  SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffUL, *reqs));
		if (rc < 0)
			return rv_fail(err, -rc, "seccomp: allow ioctl 0x%lx", *reqs);
	}
	return 0;
}

/* Threads, never processes: clone must carry CLONE_THREAD; clone3, whose
 * flags sit behind a pointer no filter can read, says ENOSYS, on which
 * glibc falls back to clone. */
static int allow_threads(scmp_filter_ctx ctx, struct rv_err *err)
{
	int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				  SCMP_A0(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	return rc < 0 ? rv_fail(err, -rc, "seccomp: allow threads") : 0;
}

static int build(scmp_filter_ctx ctx, enum jail_role role, struct rv_err *err)
{
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	/* Set by runvm boot before its first thread; libseccomp need not. */
	if (rc == 0)
		rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (rc < 0)
		return rv_fail(err, -rc, "seccomp: filter attributes");
	if (allow_list(ctx, common_calls, true, err) < 0 || allow_memory(ctx, err) < 0 ||
	    allow_list(ctx, sanitizer_calls, false, err) < 0 ||
	    allow_list(ctx, roles[role].calls, true, err) < 0 ||
	    allow_ioctls(ctx, roles[role].ioctls, err) < 0 ||
	    (roles[role].threads && allow_threads(ctx, err) < 0))
		return -1;
	/* glibc opens files behind our back (malloc's overcommit probe, once);
	 * refused, it copes. A role that opens files lists openat itself. */
	if (!JAIL_SANITIZER_BUILD && !is_listed(roles[role].calls, "openat") &&
	    (rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(openat), 0)) < 0)
		return rv_fail(err, -rc, "seccomp: refuse openat");
	return 0;
}

/* Async-signal-safe: the digits of n, written from the end of buf. */
static char *format_uint(unsigned n, char *end)
{
	do
		*--end = (char)('0' + n % 10);
	while (n /= 10);
	return end;
}

/* JAIL_REPORT_ENV: the call was not made; say which it was and end as the
 * kill would have. */
static void on_sigsys(int sig, siginfo_t *si, void *ctx)
{
	static const char head[] = "runvm: seccomp: a VMM thread made system call ";
	static const char tail[] = ", which its filter forbids; the VMM stops\n";
	char num[16], *digits = format_uint((unsigned)si->si_syscall, num + sizeof(num));
	size_t ndigits = (size_t)(num + sizeof(num) - digits);
	char msg[sizeof(head) + sizeof(num) + sizeof(tail)];

	(void)ctx;
	/* One write: threads trapped at once do not interleave their lines. */
	memcpy(msg, head, sizeof(head) - 1);
	memcpy(msg + sizeof(head) - 1, digits, ndigits);
	memcpy(msg + sizeof(head) - 1 + ndigits, tail, sizeof(tail) - 1);
	if (write(STDERR_FILENO, msg, sizeof(head) - 1 + ndigits + sizeof(tail) - 1) < 0) {
		/* nothing more to say it with */
	}
	syscall(SYS_exit_group, 128 + sig);
}

static uint32_t default_action(struct rv_err *err)
{
	const char *report = getenv(JAIL_REPORT_ENV);
	struct sigaction sa = { .sa_sigaction = on_sigsys, .sa_flags = SA_SIGINFO };

	if (!report || strcmp(report, "1"))
		return SCMP_ACT_KILL_PROCESS;
	if (sigaction(SIGSYS, &sa, NULL) < 0) {
		rv_fail(err, errno, "seccomp: SIGSYS handler");
		return SCMP_ACT_KILL_PROCESS;
	}
	return SCMP_ACT_TRAP;
}

int jail_load(enum jail_role role, struct rv_err *err)
{
	if (role >= JAIL_ROLES)
		return rv_failx(err, EINVAL, "seccomp: no role %d", (int)role);
	/* The first log line's time reads /etc/localtime; read it now. */
	tzset();
	scmp_filter_ctx ctx = seccomp_init(default_action(err));
	if (!ctx)
		return rv_failx(err, ENOMEM, "seccomp: the %s filter", roles[role].name);
	int rc = build(ctx, role, err);
	if (rc == 0 && (rc = seccomp_load(ctx)) < 0)
		rv_fail(err, -rc, "seccomp: load the %s filter", roles[role].name);
	seccomp_release(ctx);
	return rc < 0 ? -1 : 0;
}

void jail_forbidden_call(void)
{
	/* A query that changes nothing; no role lists personality. */
	syscall(SYS_personality, 0xffffffffUL);
}
