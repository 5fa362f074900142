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

#include "vmm/jail.h"

typedef int (*act_fn)(void);

/* Runs act in a child under role's filter: its exit code, or 1000 + the
 * signal that killed it. */
static int jailed(enum jail_role role, act_fn act)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct rv_err err;
		if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 || jail_load(role, &err) < 0)
			_exit(99);
		_exit(act());
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
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
static int open_file(void) { return open("/etc/hostname", O_RDONLY) >= 0 ? 0 : errno; }
static int fork_process(void) { return fork() >= 0 ? 0 : 2; }
static int clone3_call(void) { return syscall(SYS_clone3, NULL, 0) < 0 && errno == ENOSYS ? 0 : 2; }
static int kvm_create_vm(void) { return ioctl(0, 0xAE01 /* KVM_CREATE_VM */, 0) < 0 ? 0 : 2; }

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

Test(jail, no_role_makes_a_network_socket)
{
	for (unsigned r = 0; r < JAIL_ROLES; r++)
		cr_assert_eq(jailed((enum jail_role)r, make_socket), KILLED_BY_SIGSYS, "role %s",
			     jail_role_name((enum jail_role)r));
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
	cr_assert(strstr(err.msg, "vmm, vcpu or fs-worker"), "%s", err.msg);
}
