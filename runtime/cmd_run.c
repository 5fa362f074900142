/* runvm run [-d] [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID:
 * create and start. In the foreground it forwards the signals it gets to the
 * container, waits for it, deletes it and exits as runc does: the process's
 * code, or 128 + the signal that killed it. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/cli.h"
#include "runtime/container.h"
#include "runtime/ctl.h"
#include "runtime/launch.h"

static const int forwarded[] = { SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGWINCH,
				 SIGCONT, SIGTSTP };

static void forward(const char *ctl_path, int sig)
{
	char req[32], reply[64];
	struct rv_err ignored;

	/* The VMM has its own terminal session; a stop is for the container. */
	snprintf(req, sizeof(req), "kill %d", sig);
	ctl_call(ctl_path, req, reply, sizeof(reply), &ignored);
}

/* Waits for the VMM (our child), forwarding signals meanwhile. */
static int wait_vmm(pid_t vmm, const char *ctl_path, int *status)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	sigprocmask(SIG_BLOCK, &set, NULL);
	for (;;) {
		pid_t r = waitpid(vmm, status, WNOHANG);
		if (r == vmm)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		siginfo_t si;
		int sig = sigwaitinfo(&set, &si);
		if (sig > 0 && sig != SIGCHLD)
			forward(ctl_path, sig);
	}
}

int cmd_run(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct launch_opts o = { 0 };
	bool detach = false;
	const char *id;
	char ctl_path[PATH_MAX];
	pid_t vmm;
	int status;

	if (launch_parse(argc, argv, &o, &detach, &id, err) < 0)
		return -1;
	if (launch_create(cli, id, &o, &vmm, err) < 0)
		return rv_wrap(err, "run %.64s", id);
	if (container_start(cli, id, err) < 0) {
		struct rv_err ignored;
		kill(vmm, SIGKILL);
		waitpid(vmm, NULL, 0);
		state_remove(cli->root, id, &ignored);
		return rv_wrap(err, "run %.64s", id);
	}
	if (detach)
		return 0;
	snprintf(ctl_path, sizeof(ctl_path), "%s/%s/%s", cli->root, id, STATE_CONTROL_SOCK);
	if (wait_vmm(vmm, ctl_path, &status) < 0)
		return rv_fail(err, errno, "run %.64s: wait for its VMM", id);
	struct container c;
	if (container_open(cli, id, &c, err) < 0 || container_destroy(&c, err) < 0)
		return rv_wrap(err, "run %.64s", id);
	cli->exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	return 0;
}
