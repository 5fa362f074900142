/* runvm exec [OPTIONS] ID COMMAND [ARG...]: one more process in a running
 * container's VM. In the foreground we relay its stdio and exit with its
 * status; with --detach a relay process (our child, left to whoever reaps
 * us) stands for it: its pid goes to --pid-file and it exits with the
 * process's status, so a subreaping shim sees the right one. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/cli.h"
#include "runtime/console.h"
#include "runtime/container.h"
#include "runtime/exec_client.h"
#include "runtime/exec_proc.h"
#include "runtime/seccomp.h"

#define USAGE "exec [OPTIONS] ID COMMAND [ARG...]"
#define EXEC_FAILED_STATUS 255      /* runc's, for a process that never ran */
#define MAX_REPEATS 1024            /* --env, --cap, --additional-gids each */

struct exec_opts {
	struct exec_flags f;
	const char *env[MAX_REPEATS], *gids[MAX_REPEATS], *caps[MAX_REPEATS];
	const char *console_socket, *pid_file;
	bool detach;
};

static int add(const char **v, size_t *n, const char *s, const char *flag, struct rv_err *err)
{
	if (*n == MAX_REPEATS)
		return rv_failx(err, E2BIG, "exec: more than %d %s", MAX_REPEATS, flag);
	v[(*n)++] = s;
	return 0;
}

static int refuse(const char *flag, const char *val, const char *why, struct rv_err *err)
{
	return rv_failx(err, ENOTSUP, "exec: %s %s: %s", flag, val, why);
}

static int parse_flag(struct exec_opts *o, int c, const char *val, struct rv_err *err)
{
	switch (c) {
	case 'p': o->f.process_file = val; return 0;
	case 'w': o->f.cwd = val; return 0;
	case 'e': return add(o->env, &o->f.nenv, val, "--env", err);
	case 'u': o->f.user = val; return 0;
	case 'g': return add(o->gids, &o->f.ngids, val, "--additional-gids", err);
	case 'c': return add(o->caps, &o->f.ncaps, val, "--cap", err);
	case 't': o->f.tty = o->f.tty_set = true; return 0;
	case 'd': o->detach = true; return 0;
	case 'n': o->f.no_new_privs = o->f.no_new_privs_set = true; return 0;
	case 'C': o->console_socket = val; return 0;
	case 'P': o->pid_file = val; return 0;
	case 'a': case 'l':
		return val[0] ? refuse(c == 'a' ? "--apparmor" : "--process-label", val,
				       "no AppArmor or SELinux in runvm's guest", err) : 0;
	case 'f':
		return strcmp(val, "0") ? refuse("--preserve-fds", val, "only stdio reaches a "
						 "process in the VM", err) : 0;
	case 'G': return refuse("--cgroup", val, "the container's cgroups are in its VM", err);
	case 'i': return 0;   /* --ignore-paused: a paused VM runs nothing, so it is refused anyway */
	}
	return rv_failx(err, EINVAL, "exec: unknown flag (usage: runvm " USAGE ")");
}

static int parse(int argc, char **argv, struct exec_opts *o, const char **id, struct rv_err *err)
{
	static const struct option opts[] = {
		{ "process", required_argument, NULL, 'p' }, { "cwd", required_argument, NULL, 'w' },
		{ "env", required_argument, NULL, 'e' }, { "user", required_argument, NULL, 'u' },
		{ "additional-gids", required_argument, NULL, 'g' },
		{ "cap", required_argument, NULL, 'c' }, { "tty", no_argument, NULL, 't' },
		{ "detach", no_argument, NULL, 'd' }, { "no-new-privs", no_argument, NULL, 'n' },
		{ "console-socket", required_argument, NULL, 'C' },
		{ "pid-file", required_argument, NULL, 'P' },
		{ "apparmor", required_argument, NULL, 'a' },
		{ "process-label", required_argument, NULL, 'l' },
		{ "preserve-fds", required_argument, NULL, 'f' },
		{ "cgroup", required_argument, NULL, 'G' },
		{ "ignore-paused", no_argument, NULL, 'i' }, { 0 } };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+p:e:u:g:c:td", opts, NULL)) != -1) {
		if (c == '?' || c == ':')
			return rv_failx(err, EINVAL, "exec: unknown flag or missing value '%s' (usage: "
					"runvm " USAGE ")", argv[optind - 1]);
		if (parse_flag(o, c, optarg, err) < 0)
			return -1;
	}
	if (optind >= argc)
		return rv_failx(err, EINVAL, "exec: give the container id (usage: runvm " USAGE ")");
	*id = argv[optind];
	o->f.env = o->env;
	o->f.gids = o->gids;
	o->f.caps = o->caps;
	o->f.args = argv + optind + 1;
	o->f.nargs = (size_t)(argc - optind - 1);
	return 0;
}

/* The container's process as a template; its status must allow an exec. */
static int prepare(const struct cli *cli, const char *id, const struct exec_opts *o,
		   struct oci_process *p, struct seccomp_prog *filter, char *ctl_path,
		   struct rv_err *err)
{
	struct container ct;
	struct oci_spec spec = { 0 };
	int rc = -1;

	if (container_open(cli, id, &ct, err) < 0)
		return -1;
	const char *status = container_status(&ct);
	if (!strcmp(status, "stopped"))
		rv_failx(err, ESRCH, "cannot exec in a stopped container");
	else if (!strcmp(status, "paused"))
		rv_failx(err, EBUSY, "cannot exec in a paused container: resume it first");
	else if (!strcmp(status, "creating"))
		rv_failx(err, EBUSY, "the container is still being created");
	else if (container_spec(&ct, &spec, err) == 0 && exec_proc_build(&spec, &o->f, p, err) == 0 &&
		 seccomp_compile(&spec, filter, err) == 0)
		rc = 0;
	snprintf(ctl_path, PATH_MAX, "%s", ct.ctl_path);
	spec_free(&spec);
	container_close(&ct);
	return rc;
}

/* runc's words for a process that could not start. */
static int start_failed(const struct oci_process *p, struct rv_err *err)
{
	const char *arg0 = p->args[0];

	if (err->code == ENOENT && !strchr(arg0, '/'))
		return rv_failx(err, ENOENT, "exec failed: unable to start container process: exec: "
				"\"%s\": executable file not found in $PATH", arg0);
	if (err->code == ENOENT || err->code == EACCES || err->code == ENOEXEC)
		return rv_failx(err, err->code, "exec failed: unable to start container process: "
				"exec: \"%s\": %s", arg0, strerror(err->code));
	return -1;
}

struct started_ctx {
	const char *pid_file;
	pid_t pid;                 /* what stands for the process */
	int report_fd;             /* detach: tells the parent; -1 */
};

static int on_started(void *arg, uint32_t exec_id, uint32_t guest_pid, struct rv_err *err)
{
	struct started_ctx *s = arg;

	(void)exec_id;
	(void)guest_pid;
	if (s->pid_file && state_write_pid_file(s->pid_file, s->pid, err) < 0)
		return -1;
	if (s->report_fd >= 0) {
		if (write(s->report_fd, "ok", 2) != 2)
			return rv_fail(err, errno, "exec --detach: tell runvm it runs");
		close(s->report_fd);
		s->report_fd = -1;
	}
	return 0;
}

static int run(const struct exec_call *call, const struct oci_process *p, int *status,
	       struct rv_err *err)
{
	struct console_raw raw = { .fd = -1 };

	if (p->terminal && call->stdio[0] == STDIN_FILENO)
		console_raw_begin(&raw, STDIN_FILENO);
	int rc = exec_call_run(call, p, status, err);
	console_raw_end(&raw);
	return rc;
}

/* The relay keeps none of its caller's stdio once the VMM has it: a shim
 * reading the process's output sees its end when the process closes it, not
 * when the relay exits. Copies above 2 go to the VMM; 0, 1 and 2 become
 * /dev/null. */
static void hand_over_stdio(struct exec_call *call)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	for (int i = 0; i < 3 && null >= 0; i++) {
		if (call->stdio[i] >= 0 && call->stdio[i] <= 2) {
			int copy = fcntl(call->stdio[i], F_DUPFD_CLOEXEC, 3);
			if (copy < 0)
				return;     /* keep them as they are: correct, only later */
			for (int j = i + 1; j < 3; j++)
				if (call->stdio[j] == call->stdio[i])
					call->stdio[j] = copy;
			call->stdio[i] = copy;
		}
	}
	if (null < 0)
		return;
	for (int i = 0; i < 3; i++)
		dup2(null, i);
	close(null);
	call->hand_over_stdio = true;
}

/* The relay: a session of its own, so that the console (when there is one)
 * is its terminal and tells it of size changes. Reports to the parent
 * through report_fd: "ok", or "ERRNO MESSAGE". */
static void __attribute__((noreturn))
relay(struct exec_call *call, const struct oci_process *p, const char *pid_file, int report_fd)
{
	struct started_ctx s = { pid_file, getpid(), report_fd };
	struct rv_err err = { 0 };
	int status;

	setsid();
	if (call->winsize_fd >= 0 && ioctl(call->winsize_fd, TIOCSCTTY, 0) < 0)
		call->winsize_fd = -1;
	hand_over_stdio(call);
	call->started = on_started;
	call->arg = &s;
	if (run(call, p, &status, &err) == 0)
		_exit(status);
	if (s.report_fd >= 0) {
		start_failed(p, &err);
		dprintf(s.report_fd, "%d %s", err.code, err.msg);
	}
	_exit(EXEC_FAILED_STATUS);
}

static int detach(struct exec_call *call, const struct oci_process *p, const char *pid_file,
		  struct rv_err *err)
{
	int pfd[2];
	char msg[sizeof(err->msg) + 16];

	if (pipe2(pfd, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	pid_t pid = fork();
	if (pid < 0)
		return rv_fail(err, errno, "fork");
	if (pid == 0) {
		close(pfd[0]);
		relay(call, p, pid_file, pfd[1]);
	}
	close(pfd[1]);
	ssize_t n = read(pfd[0], msg, sizeof(msg) - 1);
	close(pfd[0]);
	if (n == 2 && !memcmp(msg, "ok", 2))
		return 0;
	if (n <= 0)
		return rv_failx(err, EIO, "exec --detach: the relay process died before the "
				"process started");
	msg[n] = '\0';
	char *sp = strchr(msg, ' ');
	return rv_failx(err, atoi(msg) > 0 ? atoi(msg) : EIO, "%s", sp ? sp + 1 : msg);
}

/* The fds the process gets, by runc's rules for --tty and --console-socket. */
static int pick_stdio(const struct exec_opts *o, const struct oci_process *p,
		      struct exec_call *call, struct rv_err *err)
{
	*call = (struct exec_call){ .stdio = { 0, 1, 2 }, .winsize_fd = -1 };
	if (!p->terminal) {
		if (o->console_socket)
			return rv_failx(err, EINVAL, "exec: --console-socket needs --tty");
		return 0;
	}
	if (o->console_socket) {
		int slave;
		if (console_open(o->console_socket, p->console_height, p->console_width, &slave,
				 err) < 0)
			return -1;
		/* Its own copy for the size: the slave itself may be handed over. */
		int size_fd = fcntl(slave, F_DUPFD_CLOEXEC, 3);
		if (size_fd < 0) {
			int e = errno;
			close(slave);
			return rv_fail(err, e, "exec: dup the console");
		}
		*call = (struct exec_call){ .stdio = { slave, slave, -1 }, .winsize_fd = size_fd };
		return 0;
	}
	if (o->detach)
		return rv_failx(err, EINVAL, "exec: --detach with --tty needs --console-socket "
				"(there is no terminal to leave the process on)");
	if (!isatty(STDIN_FILENO))
		return rv_failx(err, ENOTTY, "exec: --tty: stdin is not a terminal; give "
				"--console-socket, or leave out --tty");
	*call = (struct exec_call){ .stdio = { 0, 0, -1 }, .winsize_fd = 0 };
	return 0;
}

int cmd_exec(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	_cleanup_free_ struct exec_opts *o = calloc(1, sizeof(*o));
	struct oci_process p = { 0 };
	struct seccomp_prog filter = { 0 };
	struct exec_call call;
	char ctl_path[PATH_MAX];
	const char *id = "";
	int status = 0, rc = -1;

	if (!o)
		return rv_fail(err, ENOMEM, "exec");
	if (parse(argc, argv, o, &id, err) < 0)
		goto out;
	cli->exit_code = EXEC_FAILED_STATUS;     /* runc's for every failure from here on */
	if (prepare(cli, id, o, &p, &filter, ctl_path, err) < 0 ||
	    pick_stdio(o, &p, &call, err) < 0)
		goto out;
	call.ctl_path = ctl_path;
	call.seccomp = &filter;
	signal(SIGPIPE, SIG_IGN);
	if (o->detach) {
		rc = detach(&call, &p, o->pid_file, err);
	} else {
		struct started_ctx s = { o->pid_file, getpid(), -1 };
		call.started = on_started;
		call.arg = &s;
		rc = run(&call, &p, &status, err);
		if (rc < 0)
			start_failed(&p, err);
	}
	if (call.stdio[0] > 2)
		close(call.stdio[0]);
	if (call.winsize_fd > 2)
		close(call.winsize_fd);
	cli->exit_code = rc < 0 ? EXEC_FAILED_STATUS : status;
out:
	exec_proc_free(&p);
	seccomp_prog_free(&filter);
	return rc < 0 ? rv_wrap(err, "exec %.64s", id) : 0;
}
