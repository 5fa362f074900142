/* EXEC's path (protocol version 8): what is executed, apart from argv[0],
 * the name the process sees (an OCI hook's path and args[0]). "" or an
 * absolute path of at most PROTO_MAX_PATH_BYTES, refused otherwise by the
 * encoder and the decoder alike. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/proto.h"
#include "tests/unit/common/proto_wire.h"

static const char *hook_argv[] = { "my-hook", "-c", "echo $0" };

static struct proto_msg path_exec(const char *path)
{
	return (struct proto_msg){ .type = PROTO_EXEC, .id = 12, .exec = {
		.exec_id = 3, .argc = 3, .argv = hook_argv, .root = "/run/rootfs", .path = path } };
}

/* A whole EXEC of hook_argv whose path field is len bytes of path. */
static void wexec_path(struct wire *w, const char *path, size_t len)
{
	whdr(w, PROTO_EXEC, 0, 12);
	w32(w, 3);                 /* exec_id */
	w32(w, 0);                 /* streams */
	w32(w, 0);                 /* uid */
	w32(w, 0);                 /* gid */
	wstr(w, "", 0);            /* root */
	wstr(w, "", 0);            /* cwd */
	w32(w, 1);
	wstr(w, "sh", 2);
	w32(w, 0);                 /* envc */
	w32(w, 0);                 /* ngroups */
	wexec_tail(w, 0, 0, 0);    /* ends with an empty path: replaced */
	w->n -= 4;
	wstr(w, path, len);
	wseal(w);
}

Test(proto_path, round_trips_a_path_apart_from_argv0)
{
	struct proto_msg m = path_exec("/bin/busybox"), d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.exec.path, "/bin/busybox");
	cr_assert_eq(d.exec.argc, 3);
	cr_assert_str_eq(d.exec.argv[0], "my-hook", "argv[0] stays the name given");
	cr_assert_str_eq(d.exec.argv[2], "echo $0");
	proto_msg_free(&d);
}

Test(proto_path, an_unset_path_travels_as_empty)
{
	struct proto_msg m = path_exec(NULL), d;

	round_trip(&m, &d);
	cr_assert_str_eq(d.exec.path, "", "no path: argv[0] is what runs");
	proto_msg_free(&d);
	m = path_exec("");
	round_trip(&m, &d);
	cr_assert_str_eq(d.exec.path, "");
	proto_msg_free(&d);
}

Test(proto_path, a_path_of_the_limit_passes)
{
	char *path = malloc(PROTO_MAX_PATH_BYTES + 1);
	struct proto_msg m, d;
	struct wire w;

	cr_assert_not_null(path);
	memset(path, 'p', PROTO_MAX_PATH_BYTES);
	path[0] = '/';
	path[PROTO_MAX_PATH_BYTES] = '\0';
	m = path_exec(path);
	round_trip(&m, &d);
	cr_assert_eq(strlen(d.exec.path), PROTO_MAX_PATH_BYTES);
	proto_msg_free(&d);
	wexec_path(&w, path, PROTO_MAX_PATH_BYTES);
	cr_assert_eq(proto_decode(w.b, w.n, &d, &(struct rv_err){ 0 }), 0);
	proto_msg_free(&d);
	free(path);
}

Test(proto_path, refuses_a_relative_path)
{
	struct proto_msg m = path_exec("bin/sh");
	struct wire w;

	encode_fails(&m, EINVAL, "EXEC message: path 'bin/sh' is neither \"\" nor an absolute path");
	wexec_path(&w, "bin/sh", 6);
	decode_fails(&w, EPROTO, "EXEC frame: path 'bin/sh' is neither \"\" nor an absolute path");
}

Test(proto_path, refuses_a_path_over_its_limit)
{
	char *path = malloc(PROTO_MAX_PATH_BYTES + 2);
	struct proto_msg m;
	struct wire w;

	cr_assert_not_null(path);
	memset(path, 'p', PROTO_MAX_PATH_BYTES + 1);
	path[0] = '/';
	path[PROTO_MAX_PATH_BYTES + 1] = '\0';
	m = path_exec(path);
	encode_fails(&m, EMSGSIZE, "path is over the limit of 4095 bytes");
	wexec_path(&w, path, PROTO_MAX_PATH_BYTES + 1);
	decode_fails(&w, EMSGSIZE, "EXEC frame: path is 4096 bytes, the limit is 4095");
	free(path);
}

Test(proto_path, refuses_a_path_with_a_nul_or_cut_short)
{
	struct wire w;

	wexec_path(&w, "/bin\0sh", 7);
	decode_fails(&w, EPROTO, "EXEC frame: path has a NUL byte at offset 4");
	wexec_path(&w, "/bin/sh", 7);
	w.n -= 3;                  /* its last bytes missing */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: path needs 7 bytes, only 4 are left");
}

Test(proto_path, refuses_a_version_7_exec_without_one)
{
	struct wire w;

	wexec_path(&w, "", 0);
	w.n -= 4;                  /* the frame as version 7 made it */
	wseal(&w);
	decode_fails(&w, EPROTO, "EXEC frame: path needs 4 bytes, only 0 are left");
}
