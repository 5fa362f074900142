/* The VMM's per-role seccomp filters, each loaded in a child of the test:
 * what a role does passes, anything else kills the process with SIGSYS. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/kvm.h>
#include <sys/stat.h>
#include <stdio.h>

#include "vmm/jail.h"

typedef int (*act_fn)(void);

/* Runs act in a child under role's filter, stacked on first's when first
 * is not JAIL_ROLES (as a vCPU's is on the VMM's): its exit code, or 1000 +
 * the signal that killed it. */
static int jailed_on(enum jail_role first, enum jail_role role, act_fn act)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct rv_err err;
		unsetenv(JAIL_REPORT_ENV);      /* killed, as shipped */
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
		    (first != JAIL_ROLES && jail_load(first, &err) < 0) || jail_load(role, &err) < 0)
			_exit(99);
		_exit(act());
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int jailed(enum jail_role role, act_fn act)
{
	return jailed_on(JAIL_ROLES, role, act);
}

#define KILLED_BY_SIGSYS (1000 + SIGSYS)

static int forbidden(void) { jail_forbidden_call(); return 0; }
static int malloc_and_free(void) { void *p = malloc(1 << 20); free(p); return p ? 0 : 1; }
static int exec_mapping(void)
{
	return mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) ==
	       MAP_FAILED;
}
static int make_socket(void) { return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 2; }
static int open_file(void) { return open("/", O_RDONLY | O_DIRECTORY) >= 0 ? 0 : errno; }
static int kvm_run(void) { return ioctl(-1, KVM_RUN, 0) < 0 && errno == EBADF ? 0 : 2; }

/* What the file workers do to a tree (devices/fs/ops_*.c), through the same
 * glibc calls, below a directory the parent made: none may be killed. */
static char work_dir[] = "/tmp/runvm-jail-XXXXXX";

static int file_work(void)
{
	struct stat st;
	struct timespec times[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
	char buf[64];
	int d = open(work_dir, O_PATH | O_DIRECTORY);
	int f = d < 0 ? -1 : openat(d, "f", O_CREAT | O_EXCL | O_RDWR, 0600);

	int bad = f < 0 || pwrite(f, "data", 4, 0) != 4 || pread(f, buf, 4, 0) != 4 ||
		  fsync(f) < 0 || fdatasync(f) < 0 || ftruncate(f, 2) < 0 || fstat(f, &st) < 0 ||
		  fallocate(f, 0, 0, 4096) < 0 || lseek(f, 0, SEEK_DATA) < 0 ||
		  fchmodat(d, "f", 0644, 0) < 0 || fchownat(f, "", 0, 0, AT_EMPTY_PATH) < 0 ||
		  utimensat(d, "f", times, 0) < 0 || linkat(d, "f", d, "g", 0) < 0 ||
		  renameat(d, "g", d, "h") < 0 || renameat2(d, "h", d, "i", RENAME_NOREPLACE) < 0 ||
		  symlinkat("f", d, "s") < 0 || readlinkat(d, "s", buf, sizeof(buf)) < 0 ||
		  mkdirat(d, "sub", 0700) < 0 || mknodat(d, "p", S_IFIFO | 0600, 0) < 0 ||
		  fstatat(d, "p", &st, AT_SYMLINK_NOFOLLOW) < 0;
	const char *names[] = { "f", "i", "s", "p" };
	for (unsigned i = 0; i < 4; i++)
		bad |= unlinkat(d, names[i], 0) < 0;
	bad |= unlinkat(d, "sub", AT_REMOVEDIR) < 0;
	return bad ? 4 : 0;
}

static int fork_process(void) { return fork() >= 0 ? 0 : 2; }
static int clone3_call(void) { return syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS ? 0 : 2; }
static int kvm_create_vm(void) { return ioctl(0, KVM_CREATE_VM, 0) < 0 ? 0 : 2; }

static void *nothing(void *arg) { return arg; }
static int start_thread(void)
{
	pthread_t t;
	return pthread_create(&t, NULL, nothing, NULL) == 0 && pthread_join(t, NULL) == 0 ? 0 : 2;
}

Test(jail, every_role_kills_the_process_on_a_forbidden_call)
{
	for (unsigned r = 0; r < JAIL_ROLES; r++)
		cr_assert_eq(jailed((enum jail_role)r, forbidden), KILLED_BY_SIGSYS, "role %s",
			     jail_role_name((enum jail_role)r));
}

Test(jail, every_role_may_allocate_but_never_map_code)
{
	for (unsigned r = 0; r < JAIL_ROLES; r++) {
		const char *name = jail_role_name((enum jail_role)r);
		cr_assert_eq(jailed((enum jail_role)r, malloc_and_free), 0, "role %s", name);
		cr_assert_eq(jailed((enum jail_role)r, exec_mapping), KILLED_BY_SIGSYS, "role %s", name);
	}
}

Test(jail, only_the_vmm_starts_threads_and_never_a_process)
{
	cr_assert_eq(jailed(JAIL_VMM, start_thread), 0);
	cr_assert_eq(jailed(JAIL_VMM, clone3_call), 0, "clone3 says ENOSYS: glibc uses clone");
	cr_assert_eq(jailed(JAIL_VCPU, start_thread), KILLED_BY_SIGSYS);
	if (JAIL_SANITIZER_BUILD)
		return;         /* the leak checker's clone is let through (jail.h) */
	cr_assert_eq(jailed(JAIL_VMM, fork_process), KILLED_BY_SIGSYS);
	cr_assert_eq(jailed(JAIL_FS_WORKER, fork_process), KILLED_BY_SIGSYS);
}

Test(jail, only_file_workers_open_files_and_others_are_refused_not_killed)
{
	cr_assert_eq(jailed(JAIL_FS_WORKER, open_file), 0);
	if (JAIL_SANITIZER_BUILD)
		return;         /* the sanitizer runtime opens files (jail.h) */
	cr_assert_eq(jailed(JAIL_VCPU, open_file), EACCES);
	cr_assert_eq(jailed(JAIL_VMM, open_file), EACCES);
}

Test(jail, file_workers_do_every_file_operation_they_serve)
{
	cr_assert_not_null(mkdtemp(work_dir));
	int rc = jailed(JAIL_FS_WORKER, file_work);
	rmdir(work_dir);
	cr_assert_eq(rc, 0, "file_work ended with %d", rc);
}

Test(jail, a_vcpu_under_the_vmms_filter_still_runs)
{
	cr_assert_eq(jailed_on(JAIL_VMM, JAIL_VCPU, kvm_run), 0, "KVM_RUN through both filters");
	cr_assert_eq(jailed_on(JAIL_VMM, JAIL_VCPU, malloc_and_free), 0);
	cr_assert_eq(jailed_on(JAIL_VMM, JAIL_VCPU, forbidden), KILLED_BY_SIGSYS);
}

Test(jail, no_role_makes_a_network_socket)
{
	for (unsigned r = 0; r < JAIL_ROLES; r++)
		cr_assert_eq(jailed((enum jail_role)r, make_socket), KILLED_BY_SIGSYS, "role %s",
			     jail_role_name((enum jail_role)r));
}

static int make_unix_socket(void)
{
	return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0) >= 0 ? 0 : 2;
}

/* Its connections are made before its filter: it makes no other. */
Test(jail, a_pod_member_makes_no_socket_and_opens_nothing)
{
	cr_assert_eq(jailed(JAIL_POD_MEMBER, make_unix_socket), KILLED_BY_SIGSYS);
	cr_assert_eq(jailed(JAIL_POD_MEMBER, malloc_and_free), 0);
	if (!JAIL_SANITIZER_BUILD)      /* the sanitizer runtime opens files (jail.h) */
		cr_assert_eq(jailed(JAIL_POD_MEMBER, open_file), EACCES,
			     "refused, not killed (glibc's probe)");
	cr_assert_eq(jailed(JAIL_POD_MEMBER, kvm_create_vm), KILLED_BY_SIGSYS);
}

Test(jail, ioctls_are_the_listed_ones)
{
	cr_assert_eq(jailed(JAIL_VCPU, kvm_create_vm), KILLED_BY_SIGSYS);
	cr_assert_eq(jailed(JAIL_VMM, kvm_create_vm), KILLED_BY_SIGSYS);
	cr_assert_eq(jailed(JAIL_FS_WORKER, kvm_create_vm), KILLED_BY_SIGSYS);
}

Test(jail, roles_by_name)
{
	enum jail_role r;
	struct rv_err err;

	cr_assert_eq(jail_role_parse("vcpu", &r, &err), 0);
	cr_assert_eq(r, JAIL_VCPU);
	cr_assert_eq(jail_role_parse("fs-worker", &r, &err), 0);
	cr_assert_eq(r, JAIL_FS_WORKER);
	cr_assert_eq(jail_role_parse("gpu", &r, &err), -1);
	cr_assert(strstr(err.msg, "vmm, vcpu, fs-worker or pod-member"), "%s", err.msg);
}
