/* The host cgroup of a container's VMM (DESIGN §7): linux.cgroupsPath, in
 * runc's cgroupfs form ("/a/b") or, with --systemd-cgroup, its systemd form
 * ("slice:prefix:name"), joined in every hierarchy the host mounts: cgroup2
 * and each cgroup v1 one, so a hybrid host (v1 controllers plus cgroup2, as
 * our own machines are) works as a pure v2 one does. */
#ifndef RV_CGROUP_H
#define RV_CGROUP_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

/* The cgroup below each hierarchy's root: "/a/b", or for systemd's form
 * "/system.slice/prefix-name.scope" (a slice "a-b.slice" nests as
 * "/a.slice/a-b.slice", as systemd nests it). Errors name the field. */
int cgroup_path(const char *cgroups_path, bool systemd, char *out, size_t size, struct rv_err *err);

/* Moves pid (0: the caller) into rel in every hierarchy under mountinfo
 * (a /proc/self/mountinfo text; NULL: the live one), making missing
 * directories (a new cpuset gets its parent's cpus and mems, or it could
 * hold no task). */
int cgroup_join(const char *rel, pid_t pid, const char *mountinfo, struct rv_err *err);

/* Removes rel in every hierarchy once its tasks are gone; best effort (a
 * cgroup someone else still uses stays). */
void cgroup_remove(const char *rel, const char *mountinfo);

#endif
