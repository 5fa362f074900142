#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/ctl.h"

/* A state dir as Docker makes one under a test's exec root: longer than
 * sun_path holds once the 64-digit id and the socket's name are added. */
static void long_dir(char *out, size_t size)
{
	char tmpl[] = "/tmp/runvm-ctl.XXXXXX";

	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(out, size, "%s/exec/runtime-runc/moby/"
		 "1ec3fad070cb0179f8d09908e65944d454b6959cb61429bda31de39b5b29424a", tmpl);
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", out);
	cr_assert_eq(system(cmd), 0);
}

Test(ctl, a_socket_path_longer_than_sun_path_is_bound_and_dialled_through_its_dir)
{
	char dir[512], path[PATH_MAX];
	struct sockaddr_un sa;
	struct rv_err err;
	_cleanup_close_ int dirfd = -1;

	long_dir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/control.sock", dir);
	cr_assert_gt(strlen(path), sizeof(sa.sun_path) - 1, "the case under test: %zu bytes", strlen(path));
	cr_assert_eq(ctl_sockaddr(path, &sa, &dirfd, &err), 0, "%s", err.msg);
	cr_assert_geq(dirfd, 0);
	_cleanup_close_ int srv = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(srv, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind: %s", strerror(errno));
	cr_assert_eq(listen(srv, 1), 0);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "the socket is at its own path");
	cr_assert(S_ISSOCK(st.st_mode));
	_cleanup_close_ int c = ctl_dial(path, &err);
	cr_assert_geq(c, 0, "%s", err.msg);
	unlink(path);
}

Test(ctl, a_short_path_is_used_as_it_is)
{
	struct sockaddr_un sa;
	struct rv_err err;
	int dirfd = 7;

	cr_assert_eq(ctl_sockaddr("/run/runvm/x/control.sock", &sa, &dirfd, &err), 0);
	cr_assert_eq(dirfd, -1);
	cr_assert_str_eq(sa.sun_path, "/run/runvm/x/control.sock");
}

Test(ctl, a_long_path_whose_dir_is_missing_is_an_error_naming_it)
{
	char path[200];
	struct sockaddr_un sa;
	struct rv_err err;
	int dirfd = -1;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[120] = '/';
	path[sizeof(path) - 1] = '\0';
	cr_assert_eq(ctl_sockaddr(path, &sa, &dirfd, &err), -1);
	cr_assert_eq(dirfd, -1);
	cr_assert(strstr(err.msg, "its directory"), "%s", err.msg);
}
