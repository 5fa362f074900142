/* The VMM's control socket: requests answered by the handler, and callers
 * other than root and the VMM's own user refused by their credentials. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/ctl.h"
#include "vmm/control.h"

#define NOBODY 65534

static char dir[] = "/tmp/runvm-control-XXXXXX";
static struct sockaddr_un sa = { .sun_family = AF_UNIX };
static struct control_server *server;

/* "pipe": a pipe's read end comes back with the reply, "x" waiting in it;
 * "read": what the fd that came holds; anything else is echoed. */
static int echo(void *arg, struct control_call *call, const char *req, char *reply, size_t size,
		struct rv_err *err)
{
	int p[2];

	(void)arg;
	if (!strcmp(req, "pipe")) {
		if (pipe(p) < 0 || write(p[1], "x", 1) != 1)
			return rv_fail(err, errno, "pipe");
		close(p[1]);
		call->reply_fd = p[0];
		return 0;
	}
	if (!strcmp(req, "read")) {
		if (call->nfds != 1)
			return rv_failx(err, EINVAL, "%u fds came", call->nfds);
		ssize_t n = read(call->fds[0], reply, size - 1);
		reply[n > 0 ? n : 0] = '\0';
		return 0;
	}
	snprintf(reply, size, "heard %s", req);
	return 0;
}

static void setup(void)
{
	struct rv_err err;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/control.sock", dir);
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 4) == 0);
	/* Others may reach the socket here: only their credentials stop them. */
	cr_assert_eq(chmod(dir, 0755) | chmod(sa.sun_path, 0666), 0);
	cr_assert_eq(control_server_start(fd, echo, NULL, NULL, &server, &err), 0, "%s", err.msg);
}

static void teardown(void)
{
	control_server_stop(server);
	unlink(sa.sun_path);
	rmdir(dir);
}

TestSuite(control, .init = setup, .fini = teardown);

/* One request, its reply into out; -1 when the call itself failed. */
static int call(const char *req, char *out, size_t size)
{
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    send(fd, req, strlen(req), 0) < 0)
		return -1;
	ssize_t n = recv(fd, out, size - 1, 0);
	close(fd);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}

Test(control, answers_root)
{
	char out[256];

	cr_assert_eq(call("state", out, sizeof(out)), 0);
	cr_assert_str_eq(out, "ok heard state");
}

Test(control, refuses_another_user_by_credentials_naming_the_uid)
{
	int p[2];
	char out[256] = { 0 };

	if (geteuid() != 0)
		cr_skip_test("becoming uid 65534 needs root");
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char got[256] = "call failed";
		if (setresgid(NOBODY, NOBODY, NOBODY) < 0 || setresuid(NOBODY, NOBODY, NOBODY) < 0)
			_exit(2);
		call("kill 9", got, sizeof(got));
		_exit(write(p[1], got, strlen(got)) < 0);
	}
	close(p[1]);
	cr_assert_gt(read(p[0], out, sizeof(out) - 1), 0);
	int status;
	waitpid(pid, &status, 0);
	close(p[0]);
	cr_assert(strncmp(out, "error 13 ", 9) == 0, "%s", out);
	cr_assert(strstr(out, "uid 65534 may not drive this sandbox"), "%s", out);
}

Test(control, peer_rule)
{
	cr_assert(control_peer_allowed(0, 1000), "root");
	cr_assert(control_peer_allowed(1000, 1000), "the VMM's own user");
	cr_assert_not(control_peer_allowed(1001, 1000));
	cr_assert_not(control_peer_allowed(1000, 0), "a user, when the VMM is root's");
}

/* A pod's member gets its agent connections this way (pod-dial), and
 * gives its rootfs the other way (pod-export). */
Test(control, an_fd_goes_each_way_with_a_request_and_its_reply)
{
	char reply[64];
	struct rv_err err;
	int fd = -1, p[2];

	int sock = ctl_dial(sa.sun_path, &err);
	cr_assert_geq(sock, 0, "%s", err.msg);
	cr_assert_eq(ctl_request(sock, "pipe", -1, reply, sizeof(reply), &fd, &err), 0, "%s", err.msg);
	cr_assert_geq(fd, 0, "the reply's fd came");
	char c = 0;
	cr_assert_eq(read(fd, &c, 1), 1);
	cr_assert_eq(c, 'x');
	close(fd);

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(write(p[1], "sent", 4), 4);
	close(p[1]);
	cr_assert_eq(ctl_request(sock, "read", p[0], reply, sizeof(reply), NULL, &err), 0, "%s", err.msg);
	cr_assert_str_eq(reply, "sent");
	close(p[0]);
	/* Without recv_fd, an "ok" keeps no fd and strips to its payload. */
	cr_assert_eq(ctl_request(sock, "pipe", -1, reply, sizeof(reply), NULL, &err), 0, "%s", err.msg);
	cr_assert_str_eq(reply, "");
	cr_assert_eq(ctl_request(sock, "read", -1, reply, sizeof(reply), NULL, &err), -1);
	cr_assert_eq(err.code, EINVAL, "the handler's error comes back: %s", err.msg);
	close(sock);
}
