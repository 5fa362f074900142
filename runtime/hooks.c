#include "runtime/hooks.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"

const char *const hook_kind_names[HOOK_KINDS] = {
	"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
};

struct hook_run {
	pid_t pid;
	int pidfd, in, out;     /* stdin's write end, stdout+stderr's read end */
	char text[HOOK_STDERR_BYTES];
	size_t len;
};

static void __attribute__((noreturn)) child(const struct oci_hook *hk, int in, int out)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
	if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(126);
	execve(hk->path, hk->args, hk->env);
	dprintf(2, "exec %s: %s", hk->path, strerror(errno));
	_exit(127);
}

static int start(const struct oci_hook *hk, struct hook_run *r, struct rv_err *err)
{
	int in[2], out[2];

	if (pipe2(in, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	if (pipe2(out, O_CLOEXEC) < 0) {
		int e = errno;
		close(in[0]);
		close(in[1]);
		return rv_fail(err, e, "pipe");
	}
	r->pid = fork();
	if (r->pid == 0)
		child(hk, in[0], out[1]);
	int e = errno;
	close(in[0]);
	close(out[1]);
	r->in = in[1];
	r->out = out[0];
	if (r->pid < 0) {
		close(r->in);
		close(r->out);
		return rv_fail(err, e, "fork");
	}
	r->pidfd = (int)syscall(SYS_pidfd_open, r->pid, 0);
	fcntl(r->in, F_SETFL, O_NONBLOCK);
	fcntl(r->out, F_SETFL, O_NONBLOCK);
	return 0;
}

/* Keeps the tail of what the hook printed. */
static void drain(struct hook_run *r)
{
	char buf[1024];
	ssize_t n;

	_Static_assert(sizeof(buf) < HOOK_STDERR_BYTES, "a read fits the kept tail");
	while ((n = read(r->out, buf, sizeof(buf))) > 0) {
		if (r->len + (size_t)n >= sizeof(r->text)) {
			size_t drop = r->len + (size_t)n - (sizeof(r->text) - 1);
			memmove(r->text, r->text + drop, r->len - drop);
			r->len -= drop;
		}
		memcpy(r->text + r->len, buf, (size_t)n);
		r->len += (size_t)n;
	}
}

/* Feeds stdin (what the hook reads of it), collects output, until it exits
 * or its time is up: 0 with *status, or 1 on the timeout. */
static int wait_hook(struct hook_run *r, const char *json, unsigned timeout_s, int *status)
{
	size_t off = 0, len = strlen(json);
	uint64_t until = timeout_s ? rv_now_ms(CLOCK_MONOTONIC) + timeout_s * 1000ull : 0;

	for (;;) {
		if (waitpid(r->pid, status, WNOHANG) == r->pid) {
			drain(r);
			return 0;
		}
		long left = until ? (long)(until - rv_now_ms(CLOCK_MONOTONIC)) : 1000;
		if (until && rv_now_ms(CLOCK_MONOTONIC) >= until)
			return 1;
		struct pollfd pf[3] = { { r->pidfd, POLLIN, 0 }, { r->out, POLLIN, 0 },
					{ r->in, POLLOUT, 0 } };
		poll(pf, r->in >= 0 ? 3 : 2, r->pidfd >= 0 ? (int)(left < 1000 ? left : 1000) : 10);
		drain(r);
		if (r->in >= 0 && (pf[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
			ssize_t n = write(r->in, json + off, len - off);
			if (n > 0)
				off += (size_t)n;
			if (off == len || (n < 0 && errno != EAGAIN && errno != EINTR)) {
				close(r->in);    /* all of it, or the hook closed its stdin */
				r->in = -1;
			}
		}
	}
}

static int run_one(const struct oci_hook *hk, const char *what, const char *json,
		   struct rv_err *err)
{
	struct hook_run r = { .pidfd = -1 };
	int status = 0;

	if (start(hk, &r, err) < 0)
		return rv_wrap(err, "%s %s", what, hk->path);
	int timed_out = wait_hook(&r, json, hk->timeout_s, &status);
	if (timed_out) {
		kill(r.pid, SIGKILL);
		waitpid(r.pid, &status, 0);
	}
	if (r.in >= 0)
		close(r.in);
	close(r.out);
	if (r.pidfd >= 0)
		close(r.pidfd);
	while (r.len && (r.text[r.len - 1] == '\n' || r.text[r.len - 1] == '\r'))
		r.len--;
	r.text[r.len] = '\0';
	const char *sep = r.len ? ": " : "";
	if (timed_out)
		return rv_failx(err, ETIMEDOUT, "%s %s: did not finish within its timeout of %u s%s%s",
				what, hk->path, hk->timeout_s, sep, r.text);
	if (WIFSIGNALED(status))
		return rv_failx(err, ECANCELED, "%s %s: killed by signal %d%s%s", what, hk->path,
				WTERMSIG(status), sep, r.text);
	if (WEXITSTATUS(status))
		return rv_failx(err, ECANCELED, "%s %s: exit status %d%s%s", what, hk->path,
				WEXITSTATUS(status), sep, r.text);
	return 0;
}

int hooks_run(const struct oci_hooks *h, enum hook_kind kind, const char *state_json,
	      struct rv_err *err)
{
	char what[64];
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	int rc = 0;

	if (!h->n[kind])
		return 0;
	/* A hook that exits without reading its stdin is no reason to die. */
	sigaction(SIGPIPE, &ign, &old);
	for (size_t i = 0; i < h->n[kind] && rc == 0; i++) {
		snprintf(what, sizeof(what), "hooks.%s[%zu]", hook_kind_names[kind], i);
		rc = run_one(&h->list[kind][i], what, state_json, err);
	}
	sigaction(SIGPIPE, &old, NULL);
	return rc;
}
