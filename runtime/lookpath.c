/* The container's executable looked up on the host (runtime/lookpath.h). */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "common/proto.h"
#include "runtime/lookpath.h"
#include "vmm/boot_fs.h"

enum found { FOUND, MISSING, UNSURE };

/* path (absolute in the container, as the guest names it, or as it lands
 * in the rootfs) lies on or below one of the spec's mounts. */
static bool below_a_mount(const struct oci_spec *spec, const char *path)
{
	for (size_t i = 0; i < spec->nmounts; i++)
		if (spec->mounts[i].destination && spec->mounts[i].destination[0] == '/' &&
		    boot_fs_below(path, spec->mounts[i].destination))
			return true;
	return false;
}

/* What the guest's exec of the absolute path would find in the rootfs. */
static enum found look_at(const struct oci_spec *spec, const char *path)
{
	char rel[PATH_MAX], host[PATH_MAX * 2];
	struct rv_err why;
	struct stat st;
	bool exists;

	if (below_a_mount(spec, path))
		return UNSURE;
	if (boot_fs_resolve(spec->root_path, path, rel, sizeof(rel), &exists, &why) < 0)
		return why.code == ENOTDIR ? MISSING : UNSURE;   /* a file on the way */
	if (below_a_mount(spec, rel))
		return UNSURE;
	if (!exists)
		return MISSING;
	snprintf(host, sizeof(host), "%s%s", spec->root_path, rel);
	/* rel's every symlink is resolved inside the rootfs: a plain stat of
	 * the last name, whose target boot_fs_resolve already followed. */
	if (lstat(host, &st) < 0)
		return errno == ENOENT ? MISSING : UNSURE;
	return S_ISREG(st.st_mode) && (st.st_mode & 0111) ? FOUND : MISSING;
}

static const char *env_path(const struct oci_process *p)
{
	const char *path = PROTO_DEFAULT_PATH;   /* what the agent gives an empty env */

	if (p->env && p->env[0])
		path = "";                        /* execvp's default, when PATH is unset */
	for (size_t i = 0; p->env && p->env[i]; i++)
		if (!strncmp(p->env[i], "PATH=", 5))
			path = p->env[i] + 5;
	return path;
}

/* The first executable named name in the PATH dirs: found, surely not
 * there, or not known from the host. */
static enum found search(const struct oci_spec *spec, const char *name)
{
	const char *dirs = env_path(&spec->process);
	enum found verdict = MISSING;
	char path[PATH_MAX];

	if (!dirs[0])
		return UNSURE;                    /* execvp's own default PATH */
	for (const char *d = dirs;; d += strcspn(d, ":") + 1) {
		size_t n = strcspn(d, ":");
		if (n == 0 || d[0] != '/' ||
		    snprintf(path, sizeof(path), "%.*s/%s", (int)n, d, name) >= (int)sizeof(path))
			verdict = UNSURE;         /* "" and relative entries: the cwd's */
		else {
			enum found f = look_at(spec, path);
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

int lookpath_check(const struct oci_spec *spec, struct rv_err *err)
{
	const char *arg0 = spec->process.args[0];
	char path[PATH_MAX];

	if (hooks_before_process(spec) || !arg0[0])
		return 0;
	if (!strchr(arg0, '/'))
		return search(spec, arg0) == MISSING ?
		       rv_failx(err, ENOENT, "unable to start container process: exec: \"%s\": "
				"executable file not found in $PATH (process.args[0])", arg0) : 0;
	if (snprintf(path, sizeof(path), "%s%s%s", arg0[0] == '/' ? "" : spec->process.cwd,
		     arg0[0] == '/' || !strcmp(spec->process.cwd, "/") ? "" : "/", arg0) >=
	    (int)sizeof(path))
		return 0;
	return look_at(spec, path) == MISSING ?
	       rv_failx(err, ENOENT, "unable to start container process: exec: \"%s\": no such "
			"executable file in the container (process.args[0])", arg0) : 0;
}
