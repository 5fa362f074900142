/* createContainer and startContainer hooks: the runtime spec runs them in
 * the container's namespaces, which for runvm are the guest's. Each runs as
 * an exec into the sandbox (exec_client.h): root in the container (in its
 * user namespace when it has one), with the rootfs as its root, so its
 * path is looked up inside the container; the state JSON on its stdin, its
 * output kept for the error, its timeout enforced by SIGKILL. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/exec_client.h"
#include "runtime/hooks.h"

/* A pipe already holding all of json, its write end closed: the hook reads
 * it at its pace and then sees EOF, with nobody left to feed it. */
static int json_pipe(const char *json, struct rv_err *err)
{
	int p[2];
	size_t len = strlen(json);

	if (pipe2(p, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	/* As big as the JSON, never assuming the default (64 KiB): a user over
	 * its pipe quota gets one page, which is all a pipe always holds. */
	if (len > 4096 && fcntl(p[1], F_SETPIPE_SZ, (int)len) < (int)len) {
		rv_fail(err, errno, "a pipe for %zu bytes of state JSON", len);
		goto fail;
	}
	if (write(p[1], json, len) != (ssize_t)len) {
		rv_fail(err, errno, "write the state JSON to the hook's stdin");
		goto fail;
	}
	close(p[1]);
	return p[0];
fail:
	close(p[0]);
	close(p[1]);
	return -1;
}

/* A memfd of HOOK_OUTPUT_MAX bytes that cannot grow: a hook from the image
 * may write without end, and what it wrote past that is refused (its write
 * fails), never kept in host memory. The VMM writes through a dup of the
 * same open file, so our offset is how far it got. */
#define HOOK_OUTPUT_MAX (1u << 20)

static int output_file(struct rv_err *err)
{
	_cleanup_close_ int fd = memfd_create("hook-output", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, HOOK_OUTPUT_MAX) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) < 0)
		return rv_fail(err, errno, "a memfd for the hook's output");
	return rv_steal_fd(&fd);
}

/* The end of what the hook wrote, without its last newlines. */
static void output_tail(int fd, char *buf, size_t size)
{
	off_t end = lseek(fd, 0, SEEK_CUR);
	off_t from = end > (off_t)size - 1 ? end - ((off_t)size - 1) : 0;
	ssize_t n = end > 0 ? pread(fd, buf, (size_t)(end - from), from) : 0;
	size_t len = n > 0 ? (size_t)n : 0;

	while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
		len--;
	buf[len] = '\0';
}

static int run_one(const char *ctl_path, const struct oci_hook *hk, const char *what,
		   const char *json, struct rv_err *err)
{
	char tail[HOOK_STDERR_BYTES];
	int status = 0;
	_cleanup_close_ int in = json_pipe(json, err);
	_cleanup_close_ int out = in >= 0 ? output_file(err) : -1;

	if (in < 0 || out < 0)
		return rv_wrap(err, "%s %s", what, hk->path);
	size_t nargs = 0, nenv = 0;
	while (hk->args[nargs])
		nargs++;
	while (hk->env[nenv])
		nenv++;
	/* As execve(path, args) on the host: the path is what runs, args[0]
	 * only the name it sees. */
	struct oci_process p = { .args = hk->args, .nargs = nargs, .env = hk->env, .nenv = nenv,
				 .cwd = "/" };
	struct exec_call c = { .ctl_path = ctl_path, .path = hk->path, .stdio = { in, out, out },
			       .winsize_fd = -1, .timeout_s = hk->timeout_s };
	int rc = exec_call_run(&c, &p, &status, err);
	output_tail(out, tail, sizeof(tail));
	const char *sep = tail[0] ? ": " : "";
	if (rc < 0) {
		char why[sizeof(err->msg)];
		snprintf(why, sizeof(why), "%s", err->msg);
		return rv_failx(err, err->code, "%s %s: %s%s%s", what, hk->path, why, sep, tail);
	}
	/* 128 + N may be death by signal N or an exit code: the guest's words
	 * are the same, so say what a shell would. */
	if (status)
		return rv_failx(err, ECANCELED, "%s %s: exit status %d%s%s", what, hk->path, status,
				sep, tail);
	return 0;
}

int hooks_run_guest(const char *ctl_path, const struct oci_hooks *h, enum hook_kind kind,
		    const char *state_json, struct rv_err *err)
{
	char what[64];

	for (size_t i = 0; i < h->n[kind]; i++) {
		snprintf(what, sizeof(what), "hooks.%s[%zu]", hook_kind_names[kind], i);
		if (run_one(ctl_path, &h->list[kind][i], what, state_json, err) < 0)
			return -1;
	}
	return 0;
}
