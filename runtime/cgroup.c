#include "runtime/cgroup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"

#define MOUNTINFO_MAX_BYTES (1u << 20)
#define MAX_HIERARCHIES 32
#define RMDIR_TRIES 200
#define RMDIR_WAIT_NS 10000000L     /* 10 ms: 2 s in all */

/* "a-b-c.slice" as systemd nests it: "/a.slice/a-b.slice/a-b-c.slice". */
static int expand_slice(const char *slice, char *out, size_t size, struct rv_err *err)
{
	size_t n = strlen(slice), len = 0;

	out[0] = '\0';
	if (!strcmp(slice, "-.slice") || n == 0)
		return 0;
	if (n < 7 || strcmp(slice + n - 6, ".slice") || strchr(slice, '/') || slice[0] == '-')
		return rv_failx(err, EINVAL, "linux.cgroupsPath: slice '%s' must be NAME.slice", slice);
	for (const char *dash = strchr(slice, '-'); dash; dash = strchr(dash + 1, '-')) {
		if (dash[1] == '-' || dash[1] == '.')
			return rv_failx(err, EINVAL, "linux.cgroupsPath: slice '%s' has an empty part",
					slice);
		int k = snprintf(out + len, size - len, "/%.*s.slice", (int)(dash - slice), slice);
		if (k < 0 || (size_t)k >= size - len)
			return rv_failx(err, ENAMETOOLONG, "linux.cgroupsPath: too long");
		len += (size_t)k;
	}
	int k = snprintf(out + len, size - len, "/%s", slice);
	if (k < 0 || (size_t)k >= size - len)
		return rv_failx(err, ENAMETOOLONG, "linux.cgroupsPath: too long");
	return 0;
}

static int systemd_path(const char *p, char *out, size_t size, struct rv_err *err)
{
	char slice[256], prefix[256], name[256];
	const char *c1 = strchr(p, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;

	if (!c2 || strchr(c2 + 1, ':') || (size_t)(c1 - p) >= sizeof(slice) ||
	    (size_t)(c2 - c1 - 1) >= sizeof(prefix) || strlen(c2 + 1) >= sizeof(name) || !c2[1])
		return rv_failx(err, EINVAL, "linux.cgroupsPath '%s': with --systemd-cgroup give "
				"slice:prefix:name, e.g. system.slice:runvm:web", p);
	snprintf(slice, sizeof(slice), "%.*s", (int)(c1 - p), p);
	snprintf(prefix, sizeof(prefix), "%.*s", (int)(c2 - c1 - 1), c1 + 1);
	snprintf(name, sizeof(name), "%s", c2 + 1);
	if (strchr(prefix, '/') || strchr(name, '/'))
		return rv_failx(err, EINVAL, "linux.cgroupsPath '%s': no '/' in a systemd unit", p);
	if (expand_slice(slice[0] ? slice : "system.slice", out, size, err) < 0)
		return -1;
	size_t len = strlen(out);
	bool is_slice = strlen(name) > 6 && !strcmp(name + strlen(name) - 6, ".slice");
	int k = is_slice ? snprintf(out + len, size - len, "/%s", name) :
		prefix[0] ? snprintf(out + len, size - len, "/%s-%s.scope", prefix, name) :
		snprintf(out + len, size - len, "/%s.scope", name);
	if (k < 0 || (size_t)k >= size - len)
		return rv_failx(err, ENAMETOOLONG, "linux.cgroupsPath: too long");
	return 0;
}

int cgroup_path(const char *p, bool systemd, char *out, size_t size, struct rv_err *err)
{
	if (systemd)
		return systemd_path(p, out, size, err);
	const char *s = p;
	while (*s == '/')
		s++;
	if (!*s)
		return rv_failx(err, EINVAL, "linux.cgroupsPath '%s': names the root cgroup; give "
				"a cgroup of the container's own", p);
	for (const char *c = s; *c; c += strcspn(c, "/"), c += *c == '/') {
		size_t n = strcspn(c, "/");
		if ((n == 2 && !strncmp(c, "..", 2)) || (n == 1 && c[0] == '.'))
			return rv_failx(err, EINVAL, "linux.cgroupsPath '%s': no '.' or '..' parts", p);
	}
	if (snprintf(out, size, "/%s", s) >= (int)size)
		return rv_failx(err, ENAMETOOLONG, "linux.cgroupsPath: too long");
	return 0;
}

struct hierarchy {
	char mnt[PATH_MAX];
	bool cpuset;
};

/* Every cgroup (v1) and cgroup2 mount of mountinfo, its mount point and
 * whether it holds the cpuset controller. */
static int hierarchies(const char *mountinfo, struct hierarchy *h, int max)
{
	int n = 0;
	const char *line = mountinfo;

	while (line && *line && n < max) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char buf[PATH_MAX * 2], mnt[PATH_MAX], fstype[32], opts[512];
		if (len < sizeof(buf)) {
			memcpy(buf, line, len);
			buf[len] = '\0';
			const char *dash = strstr(buf, " - ");
			if (dash && sscanf(buf, "%*s %*s %*s %*s %4095s", mnt) == 1 &&
			    sscanf(dash + 3, "%31s %*s %511s", fstype, opts) == 2 &&
			    (!strcmp(fstype, "cgroup") || !strcmp(fstype, "cgroup2"))) {
				snprintf(h[n].mnt, sizeof(h[n].mnt), "%s", mnt);
				h[n].cpuset = !strcmp(fstype, "cgroup") && strstr(opts, "cpuset");
				n++;
			}
		}
		line = end ? end + 1 : NULL;
	}
	return n;
}

static char *read_mountinfo(void)
{
	_cleanup_close_ int fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	char *buf = fd >= 0 ? malloc(MOUNTINFO_MAX_BYTES) : NULL;
	size_t len = 0;
	ssize_t n;

	if (!buf)
		return NULL;
	while (len < MOUNTINFO_MAX_BYTES - 1 && (n = read(fd, buf + len, MOUNTINFO_MAX_BYTES - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = '\0';
	return buf;
}

static int write_file(const char *dir, const char *name, const char *val, size_t len)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd >= 0 && write(fd, val, len) == (ssize_t)len ? 0 : -1;
}

/* A new cpuset starts with no cpus and no mems: give it its parent's. */
static void inherit_cpuset(const char *dir)
{
	static const char *const files[] = { "cpuset.cpus", "cpuset.mems" };
	char path[PATH_MAX + 64], val[4096];

	for (size_t i = 0; i < 2; i++) {
		snprintf(path, sizeof(path), "%s/../%s", dir, files[i]);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		ssize_t n = fd >= 0 ? read(fd, val, sizeof(val)) : -1;
		if (n > 0)
			write_file(dir, files[i], val, (size_t)n);
	}
}

/* mkdir -p of mnt + rel, each new cpuset level seeded from its parent. */
static int make_dirs(const struct hierarchy *h, const char *rel, char *dir, size_t size)
{
	size_t len = (size_t)snprintf(dir, size, "%s", h->mnt);

	for (const char *p = rel; *p; ) {
		p += strspn(p, "/");
		size_t n = strcspn(p, "/");
		if (!n)
			break;
		if (len + 1 + n >= size)
			return -1;
		dir[len++] = '/';
		memcpy(dir + len, p, n);
		dir[len += n] = '\0';
		p += n;
		if (mkdir(dir, 0755) == 0) {
			if (h->cpuset)
				inherit_cpuset(dir);
		} else if (errno != EEXIST) {
			return -1;
		}
	}
	return 0;
}

int cgroup_join(const char *rel, pid_t pid, const char *mountinfo, struct rv_err *err)
{
	_cleanup_free_ char *live = mountinfo ? NULL : read_mountinfo();
	struct hierarchy h[MAX_HIERARCHIES];
	char dir[PATH_MAX], num[16];
	int n = hierarchies(mountinfo ? mountinfo : live ? live : "", h, MAX_HIERARCHIES);

	if (n == 0)
		return rv_failx(err, ENOENT, "linux.cgroupsPath %s: this host mounts no cgroup "
				"hierarchy", rel);
	int len = snprintf(num, sizeof(num), "%d", (int)pid);
	for (int i = 0; i < n; i++) {
		if (make_dirs(&h[i], rel, dir, sizeof(dir)) < 0)
			return rv_fail(err, errno, "linux.cgroupsPath: make %s%s", h[i].mnt, rel);
		if (write_file(dir, "cgroup.procs", num, (size_t)len) < 0)
			return rv_fail(err, errno, "linux.cgroupsPath: join %s", dir);
	}
	return 0;
}

void cgroup_remove(const char *rel, const char *mountinfo)
{
	_cleanup_free_ char *live = mountinfo ? NULL : read_mountinfo();
	struct hierarchy h[MAX_HIERARCHIES];
	char dir[PATH_MAX + PATH_MAX];
	int n = hierarchies(mountinfo ? mountinfo : live ? live : "", h, MAX_HIERARCHIES);

	for (int i = 0; i < n; i++) {
		if (snprintf(dir, sizeof(dir), "%s%s", h[i].mnt, rel) >= (int)sizeof(dir))
			continue;
		/* A killed VMM holds its cgroup until its parent has reaped it. */
		for (int tries = 0; rmdir(dir) < 0 && errno == EBUSY && tries < RMDIR_TRIES; tries++)
			nanosleep(&(struct timespec){ .tv_nsec = RMDIR_WAIT_NS }, NULL);
	}
}
