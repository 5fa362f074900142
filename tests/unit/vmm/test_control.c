/* The VMM's control socket: requests answered by the handler, and callers
 * other than root and the VMM's own user refused by their credentials. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/control.h"

#define NOBODY 65534

static char dir[] = "/tmp/runvm-control-XXXXXX";
static struct sockaddr_un sa = { .sun_family = AF_UNIX };
static struct control_server *server;

static int echo(void *arg, struct control_call *call, const char *req, char *reply, size_t size,
		struct rv_err *err)
{
	(void)arg, (void)call, (void)err;
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
	cr_assert_eq(control_server_start(fd, echo, NULL, &server, &err), 0, "%s", err.msg);
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
