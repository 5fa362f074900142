/* runvm run [-d] [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID:
 * create and start. In the foreground it forwards the signals it gets to the
 * container, waits for it, deletes it and exits as runc does: the process's
 * code, or 128 + the signal that killed it. A process.terminal without
 * --console-socket is runc's too: in the foreground the console's master
 * stays with us (console_relay.h), our stdin raw when it is a terminal;
 * detached, it is refused before anything is made. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ctl.h"
#include "runtime/cli.h"
#include "runtime/console.h"
#include "runtime/console_relay.h"
#include "runtime/container.h"
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

static void forward_cb(void *arg, int sig)
{
	forward(arg, sig);
}

/* Waits for the VMM (our child), forwarding signals meanwhile. */
static int wait_vmm(pid_t vmm, const char *ctl_path, const sigset_t *set, int *status)
{
	for (;;) {
		pid_t r = waitpid(vmm, status, WNOHANG);
		if (r == vmm)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		siginfo_t si;
		int sig = sigwaitinfo(set, &si);
		if (sig > 0 && sig != SIGCHLD)
			forward(ctl_path, sig);
	}
}

/* The console's master between our stdio and the container (SIGWINCH
 * resizes it from our terminal rather than going to the container). */
static int relay_vmm(pid_t vmm, int master, int size_fd, const char *ctl_path,
		     const sigset_t *set, int *status, struct rv_err *err)
{
	int sfd = signalfd(-1, set, SFD_CLOEXEC);

	if (sfd < 0) {
		int e = errno;
		close(master);    /* the terminal hangs up: the container gets SIGHUP */
		return rv_fail(err, e, "signalfd");
	}
	struct console_relay r = { .in_fd = STDIN_FILENO, .out_fd = STDOUT_FILENO,
				   .master = master, .size_fd = size_fd, .sig_fd = sfd,
				   .child = vmm, .on_signal = forward_cb, .arg = (void *)ctl_path };
	int rc = console_relay(&r, status, err);
	close(sfd);
	return rc;
}

/* The user's terminal, whose size the console takes: stdin, stdout or
 * stderr, whichever is one first; -1 when none is. */
static int user_terminal(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (isatty(fd))
			return fd;
	return -1;
}

int cmd_run(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct launch_opts o = { 0 };
	struct console_raw raw = { .fd = -1 };
	bool detach = false;
	const char *id;
	char ctl_path[PATH_MAX];
	int master = -1, size_fd = -1, status, rc;
	struct winsize ws;
	sigset_t set;
	pid_t vmm;

	if (launch_parse(argc, argv, &o, &detach, &id, err) < 0)
		return -1;
	if (!detach) {
		o.console_master = &master;
		size_fd = user_terminal();
		if (size_fd >= 0 && ioctl(size_fd, TIOCGWINSZ, &ws) == 0) {
			o.console_rows = ws.ws_row;
			o.console_cols = ws.ws_col;
		}
	}
	if (launch_create(cli, id, &o, &vmm, err) < 0)
		return rv_wrap(err, "run %.64s", id);
	/* From here on our signals are the container's, or ours to act on
	 * (SIGWINCH with a console): none may end us with the terminal raw. */
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
		sigaddset(&set, forwarded[i]);
	if (!detach)
		sigprocmask(SIG_BLOCK, &set, NULL);
	if (master >= 0)
		signal(SIGPIPE, SIG_IGN);      /* a stdout whose reader is gone: EPIPE */
	if (container_start(cli, id, err) < 0) {
		struct rv_err ignored;
		if (master >= 0)
			close(master);
		kill(vmm, SIGKILL);
		waitpid(vmm, NULL, 0);
		state_remove(cli->root, id, &ignored);
		return rv_wrap(err, "run %.64s", id);
	}
	if (detach)
		return 0;
	snprintf(ctl_path, sizeof(ctl_path), "%s/%s/%s", cli->root, id, STATE_CONTROL_SOCK);
	if (master >= 0) {
		/* Only now: while start's hooks ran, the terminal stayed cooked,
		 * their output readable; the container's waited in the pty. */
		console_raw_begin(&raw, STDIN_FILENO);
		rc = relay_vmm(vmm, master, size_fd, ctl_path, &set, &status, err);
		console_raw_end(&raw);
		if (rc < 0)
			return rv_wrap(err, "run %.64s", id);
	} else if (wait_vmm(vmm, ctl_path, &set, &status) < 0) {
		return rv_fail(err, errno, "run %.64s: wait for its VMM", id);
	}
	struct container c;
	char failed[RV_ERR_MSG_BYTES];
	launch_boot_error(cli, id, failed, sizeof(failed));
	if (container_open(cli, id, &c, err) < 0 || container_destroy(&c, err) < 0)
		return rv_wrap(err, "run %.64s", id);
	if (failed[0])
		return rv_failx(err, EIO, "run %.64s: %s", id, failed);
	cli->exit_code = WIFSIGNALED(status) ? 128 + WTERMSIG(status) : WEXITSTATUS(status);
	return 0;
}
