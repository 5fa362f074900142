/* runvm exec's side of the conversation with the sandbox's VMM
 * (vmm/sandbox_ctl.h, "exec"): hands over the stdio fds and the process,
 * forwards our signals and window size to it, and gets its status back. */
#ifndef RV_EXEC_CLIENT_H
#define RV_EXEC_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"

struct exec_call {
	const char *ctl_path;          /* ROOT/ID/control.sock */
	const char *path;              /* NULL: the process's args[0] is what runs, looked
					* up in its PATH; else the absolute path in the
					* container of what runs, args[0] only its name (an
					* OCI hook's path and args) */
	int stdio[3];                  /* given to the process; -1: /dev/null. With a
					* terminal, stdio[0] (required) is its tty */
	int winsize_fd;                /* a tty whose size the process's terminal follows
					* (SIGWINCH), or -1 */
	const struct seccomp_prog *seccomp;   /* the container's linux.seccomp, or NULL */
	bool hand_over_stdio;          /* close stdio[] once the VMM has them (a relay
					* must not keep its caller's pipes open) */
	unsigned timeout_s;            /* 0: none; else the process is SIGKILLed then
					* and the call fails with ETIMEDOUT */
	/* Told once the process runs; may fail the call (the process is then
	 * killed). */
	int (*started)(void *arg, uint32_t exec_id, uint32_t guest_pid, struct rv_err *err);
	void *arg;
};

/* Runs p in the container and waits for it: *status is its exit code, or
 * 128 + the signal that killed it. Every signal we get meanwhile but CHLD,
 * URG, WINCH and PIPE goes to the process (those before it runs, once it
 * does). A process that cannot be started
 * is an error with the guest's errno (ENOENT: the executable is missing). */
int exec_call_run(const struct exec_call *c, const struct oci_process *p, int *status,
		  struct rv_err *err);

#endif
