/* The container's executable looked up on the host (runtime/lookpath.h). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/proto.h"
#include "runtime/lookpath.h"
#include "vmm/boot_fs.h"

/* What the guest's exec of one path would meet; the MISSING kinds are Go's
 * findExecutable's, which runc reports. */
enum found { FOUND, UNSURE, NO_FILE, IS_DIR, NOT_EXEC };

/* The spec and where each mount's destination lands in the rootfs (the
 * guest mounts there, symlinks in the rootfs followed), resolved once. */
struct lookup {
	const struct oci_spec *spec;
	char (*landed)[PATH_MAX];     /* one per mount */
};

/* false: a destination the host cannot place, so nothing is sure. */
static bool place_mounts(struct lookup *l)
{
	const struct oci_spec *spec = l->spec;
	struct rv_err ignored;
	bool exists;

	l->landed = spec->nmounts ? calloc(spec->nmounts, sizeof(*l->landed)) : NULL;
	if (spec->nmounts && !l->landed)
		return false;
	for (size_t i = 0; i < spec->nmounts; i++) {
		const char *dst = spec->mounts[i].destination;
		if (!dst || dst[0] != '/' ||
		    boot_fs_resolve(spec->root_path, dst, l->landed[i], PATH_MAX, &exists,
				    &ignored) < 0)
			return false;
	}
	return true;
}

/* path lies on or below one of the spec's mounts, as written or as landed. */
static bool below_a_mount(const struct lookup *l, const char *path)
{
	for (size_t i = 0; i < l->spec->nmounts; i++)
		if (boot_fs_below(path, l->spec->mounts[i].destination) ||
		    boot_fs_below(path, l->landed[i]))
			return true;
	return false;
}

/* What the guest's exec of the absolute path would find in the rootfs. */
static enum found look_at(const struct lookup *l, const char *path)
{
	const struct oci_spec *spec = l->spec;
	char rel[PATH_MAX], host[PATH_MAX * 2];
	struct rv_err ignored;
	struct stat st;
	bool exists;

	/* A file on the way (ENOTDIR) could lie below a mount too: unsure. */
	if (below_a_mount(l, path) ||
	    boot_fs_resolve(spec->root_path, path, rel, sizeof(rel), &exists, &ignored) < 0 ||
	    below_a_mount(l, rel))
		return UNSURE;
	if (!exists)
		return NO_FILE;
	snprintf(host, sizeof(host), "%s%s", spec->root_path, rel);
	/* Every symlink of rel is resolved inside the rootfs already. */
	if (lstat(host, &st) < 0)
		return errno == ENOENT ? NO_FILE : UNSURE;
	if (S_ISDIR(st.st_mode))
		return IS_DIR;
	return S_ISREG(st.st_mode) && (st.st_mode & 0111) ? FOUND : NOT_EXEC;
}

/* The PATH execvp in the guest searches: the first PATH= of the
 * environment (getenv's), the agent's when the environment is empty, NULL
 * for execvp's own default when there is none. */
static const char *env_path(const struct oci_process *p)
{
	if (!p->env || !p->env[0])
		return PROTO_DEFAULT_PATH;
	for (size_t i = 0; p->env[i]; i++)
		if (!strncmp(p->env[i], "PATH=", 5))
			return p->env[i] + 5;
	return NULL;
}

/* The first executable named name in the PATH dirs: FOUND, UNSURE, or
 * NO_FILE when none is there for sure. */
static enum found search(const struct lookup *l, const char *name)
{
	const char *dirs = env_path(&l->spec->process);
	enum found verdict = NO_FILE;
	char path[PATH_MAX];

	if (!dirs || !dirs[0])
		return UNSURE;
	for (const char *d = dirs;; d += strcspn(d, ":") + 1) {
		size_t n = strcspn(d, ":");
		if (n == 0 || d[0] != '/' ||
		    snprintf(path, sizeof(path), "%.*s/%s", (int)n, d, name) >= (int)sizeof(path))
			verdict = UNSURE;         /* "" and relative entries: the cwd's */
		else {
			enum found f = look_at(l, path);
			if (f == FOUND)
				return FOUND;
			if (f == UNSURE)
				verdict = UNSURE;
		}
		if (!d[n])
			return verdict;
	}
}

static bool hooks_before_process(const struct oci_spec *spec)
{
	return spec->hooks.n[HOOK_PRESTART] || spec->hooks.n[HOOK_CREATE_RUNTIME] ||
	       spec->hooks.n[HOOK_CREATE_CONTAINER];
}

/* runc's words: "unable to start container process: exec: ..." and then
 * Go's exec.LookPath error for the file as args[0] names it. */
static int refuse(const char *arg0, enum found why, struct rv_err *err)
{
	const char *tail = why == IS_DIR ? "is a directory" : "permission denied";

	if (!strchr(arg0, '/'))
		return rv_failx(err, ENOENT, "unable to start container process: exec: \"%s\": "
				"executable file not found in $PATH (process.args[0])", arg0);
	if (why == NO_FILE)
		return rv_failx(err, ENOENT, "unable to start container process: exec: \"%s\": "
				"stat %s: no such file or directory (process.args[0])", arg0, arg0);
	return rv_failx(err, why == IS_DIR ? EISDIR : EACCES, "unable to start container process: "
			"exec: \"%s\": %s (process.args[0])", arg0, tail);
}

int lookpath_check(const struct oci_spec *spec, struct rv_err *err)
{
	const char *arg0 = spec->process.args[0], *cwd = spec->process.cwd;
	struct lookup l = { .spec = spec };
	char path[PATH_MAX];
	enum found f;

	if (hooks_before_process(spec) || !arg0[0])
		return 0;
	if (!place_mounts(&l))
		f = UNSURE;
	else if (!strchr(arg0, '/'))
		f = search(&l, arg0);
	else if (snprintf(path, sizeof(path), "%s/%s", arg0[0] == '/' ? "" : cwd, arg0) >=
		 (int)sizeof(path))
		f = UNSURE;
	else
		f = look_at(&l, path);
	free(l.landed);
	return f == FOUND || f == UNSURE ? 0 : refuse(arg0, f, err);
}
