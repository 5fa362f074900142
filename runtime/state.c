/* The container state directory: ids, create/open/lock/remove, state.json, the
 * OCI state JSON, the pid file and /proc pid checks. state.json is our own file,
 * so it has its own small strict parser rather than a general JSON library. */
#include "runtime/state.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonw.h"
#include "runtime/state_json.h"

#define STATE_ROOT_MODE 0711   /* others may traverse to a socket they are given */
#define STATE_DIR_MODE 0700
#define STATE_REMOVE_DEPTH_MAX 16

/* ---- ids ------------------------------------------------------------------ */

/* An id as an error message may show it: short, and no terminal control bytes. */
static const char *id_for_msg(const char *id, char out[80])
{
	size_t n = 0;

	for (; id[n] && n < 64; n++) {
		unsigned char c = (unsigned char)id[n];
		out[n] = c < 0x20 || c >= 0x7f ? '?' : (char)c;
	}
	strcpy(out + n, id[n] ? "..." : "");
	return out;
}

static bool id_char_ok(unsigned char c, bool first)
{
	if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
		return true;
	return !first && (c == '_' || c == '.' || c == '+' || c == '-');
}

int state_check_id(const char *id, struct rv_err *err)
{
	char shown[80];
	size_t len = strlen(id);

	if (len == 0)
		return rv_failx(err, EINVAL, "container id is empty");
	if (len > STATE_ID_MAX)
		return rv_failx(err, EINVAL, "container id '%s' is %zu bytes long: at most %d",
				id_for_msg(id, shown), len, STATE_ID_MAX);
	for (size_t i = 0; i < len; i++)
		if (!id_char_ok((unsigned char)id[i], i == 0))
			return rv_failx(err, EINVAL, "container id '%s': use letters, digits and "
					"_ . + - only (starting with a letter or digit)",
					id_for_msg(id, shown));
	return 0;
}

/* ---- the directory -------------------------------------------------------- */

/* mkdir -p with the mode set exactly on what it creates (the umask may be 077). */
static int mkdir_parents(const char *root, struct rv_err *err)
{
	if (!*root)
		return rv_failx(err, EINVAL, "the state root is empty (set it with --root)");
	_cleanup_free_ char *path = strdup(root);
	if (!path)
		return rv_fail(err, ENOMEM, "copy %s", root);

	for (char *p = path + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char saved = *p;
		*p = '\0';
		if (mkdir(path, STATE_ROOT_MODE) == 0)
			chmod(path, STATE_ROOT_MODE);
		else if (errno != EEXIST)
			return rv_fail(err, errno, "create state root %s (choose another with --root)",
				       root);
		*p = saved;
		if (!saved)
			return 0;
	}
}

int state_create(const char *root, const char *id, int *dirfd, struct rv_err *err)
{
	if (state_check_id(id, err) < 0 || mkdir_parents(root, err) < 0)
		return -1;
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return rv_fail(err, errno, "open state root %s (choose another with --root)", root);
	if (mkdirat(rootfd, id, STATE_DIR_MODE) < 0) {
		if (errno == EEXIST)
			return rv_failx(err, EEXIST, "container '%s' already exists", id);
		return rv_fail(err, errno, "create state directory %s/%s", root, id);
	}
	*dirfd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (*dirfd < 0)
		return rv_fail(err, errno, "open state directory %s/%s", root, id);
	return 0;
}

int state_open(const char *root, const char *id, int *dirfd, struct rv_err *err)
{
	if (state_check_id(id, err) < 0)
		return -1;
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd >= 0)
		*dirfd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (rootfd < 0 || *dirfd < 0) {
		if (errno == ENOENT)
			return rv_failx(err, ENOENT, "container '%s' does not exist", id);
		return rv_fail(err, errno, "open state directory %s/%s", root, id);
	}
	return 0;
}

/* For messages about files in the dir: the path the dir fd was opened at. */
static void dir_path(int dirfd, char *buf, size_t size)
{
	char link[64];

	snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
	ssize_t n = readlink(link, buf, size - 1);
	if (n <= 0)
		snprintf(buf, size, "<state dir>");
	else
		buf[n] = '\0';
}

int state_lock(int dirfd, int *lockfd, struct rv_err *err)
{
	char dir[PATH_MAX];
	struct stat st;

	_cleanup_close_ int fd = openat(dirfd, STATE_LOCK_FILE,
					O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		dir_path(dirfd, dir, sizeof(dir));
		return rv_fail(err, errno, "open lock file %s/%s", dir, STATE_LOCK_FILE);
	}
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return rv_fail(err, errno, "lock container state");
	/* state_remove unlinks the lock file: a waiter then holds a lock on nothing. */
	if (fstat(fd, &st) < 0)
		return rv_fail(err, errno, "stat lock file");
	if (st.st_nlink == 0)
		return rv_failx(err, ENOENT, "the container was deleted while waiting for its lock");
	*lockfd = rv_steal_fd(&fd);
	return 0;
}

/* ---- atomic writes -------------------------------------------------------- */

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A temp file beside NAME, renamed over it: readers see the old file or the new
 * one, never half of one. The random suffix keeps two writers apart. */
static int write_atomic_at(int dirfd, const char *name, const char *data, size_t len,
			   mode_t mode, struct rv_err *err)
{
	char tmp[NAME_MAX + 1];
	_cleanup_close_ int fd = -1;

	for (int tries = 0; fd < 0 && tries < 8; tries++) {
		uint64_t r;
		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			return rv_fail(err, errno, "random name for a temp file");
		snprintf(tmp, sizeof(tmp), ".%.200s.%016" PRIx64, name, r);
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
		if (fd < 0 && errno != EEXIST)
			return rv_fail(err, errno, "create %s", tmp);
	}
	if (fd < 0)
		return rv_fail(err, EEXIST, "create a temp file for %s", name);
	if (fchmod(fd, mode) < 0 || write_all(fd, data, len) < 0 ||
	    renameat(dirfd, tmp, dirfd, name) < 0) {
		int saved = errno;
		unlinkat(dirfd, tmp, 0);
		return rv_fail(err, saved, "write %s", name);
	}
	return 0;
}

int state_write_pid_file(const char *path, pid_t pid, struct rv_err *err)
{
	char data[24];
	const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
	_cleanup_free_ char *copy = strdup(path);

	if (!copy)
		return rv_fail(err, ENOMEM, "pid file %s", path);
	if (!*base)
		return rv_failx(err, EINVAL, "pid file %s: give a file name, not a directory", path);
	const char *dir = dirname(copy);   /* "." or "/" when PATH has no other */

	_cleanup_close_ int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 && errno == ENOENT)
		return rv_failx(err, ENOENT, "pid file %s: directory %s does not exist", path, dir);
	if (dirfd < 0)
		return rv_fail(err, errno, "pid file %s: open directory %s", path, dir);
	int len = snprintf(data, sizeof(data), "%d", (int)pid);
	if (write_atomic_at(dirfd, base, data, (size_t)len, 0644, err) < 0)
		return rv_wrap(err, "pid file %s", path);
	return 0;
}

int state_write(int dirfd, const struct ct_state *s, struct rv_err *err)
{
	_cleanup_free_ char *json = state_json_private(s);
	if (!json)
		return rv_fail(err, ENOMEM, "format %s", STATE_FILE);
	return write_atomic_at(dirfd, STATE_FILE, json, strlen(json), 0600, err);
}

/* The whole file, at most STATE_JSON_MAX_BYTES. It is replaced by rename, never
 * rewritten in place, so the size fstat gives is the size there is to read. */
static int read_bounded(int fd, char **buf, size_t *len)
{
	struct stat st;
	size_t n = 0;
	ssize_t r;

	if (fstat(fd, &st) < 0)
		return -1;
	if (st.st_size > STATE_JSON_MAX_BYTES) {
		errno = EFBIG;
		return -1;
	}
	size_t cap = (size_t)st.st_size + 1;
	_cleanup_free_ char *p = malloc(cap);
	if (!p)
		return -1;
	while (n < cap && (r = read(fd, p + n, cap - n)))
		if (r > 0)
			n += (size_t)r;
		else if (errno != EINTR)
			return -1;
	if (n == cap) {
		errno = EFBIG;   /* it grew after all */
		return -1;
	}
	*buf = p;
	p = NULL;
	*len = n;
	return 0;
}

int state_read(int dirfd, struct ct_state *s, struct rv_err *err)
{
	char file[PATH_MAX + sizeof(STATE_FILE) + 1], dir[PATH_MAX];
	_cleanup_free_ char *buf = NULL;
	size_t len;

	*s = (struct ct_state){ 0 };
	dir_path(dirfd, dir, sizeof(dir));
	snprintf(file, sizeof(file), "%s/%s", dir, STATE_FILE);
	_cleanup_close_ int fd = openat(dirfd, STATE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 || read_bounded(fd, &buf, &len) < 0)
		return rv_fail(err, errno, "read %s", file);

	return state_json_parse(buf, len, file, s, err);
}

/* ---- remove and list ------------------------------------------------------ */

static int empty_dir(int fd, int depth, struct rv_err *err);

static int remove_subdir(int parent, const char *name, int depth, struct rv_err *err)
{
	_cleanup_close_ int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
					O_CLOEXEC);
	if (fd < 0)
		return rv_fail(err, errno, "remove %s", name);
	if (empty_dir(fd, depth + 1, err) < 0)
		return rv_wrap(err, "%s", name);
	if (unlinkat(parent, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return rv_fail(err, errno, "remove %s", name);
	return 0;
}

/* Empties the directory at FD. Entries are unlinked by name relative to their
 * parent's fd and subdirectories opened with O_NOFOLLOW, so a symlink planted
 * inside is removed itself and nothing outside is touched. */
static int empty_dir(int fd, int depth, struct rv_err *err)
{
	if (depth > STATE_REMOVE_DEPTH_MAX)
		return rv_failx(err, ELOOP, "state directory nested too deep");
	int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		int saved = errno;
		if (dfd >= 0)
			close(dfd);
		return rv_fail(err, saved, "read state directory");
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (errno = 0, e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, e->d_name, 0) == 0 || errno == ENOENT)
			continue;
		if (errno != EISDIR && errno != EPERM)
			rc = rv_fail(err, errno, "remove %s", e->d_name);
		else
			rc = remove_subdir(fd, e->d_name, depth, err);
	}
	if (rc == 0 && errno)
		rc = rv_fail(err, errno, "read state directory");
	closedir(d);
	return rc;
}

int state_remove(const char *root, const char *id, struct rv_err *err)
{
	if (state_check_id(id, err) < 0)
		return -1;
	_cleanup_close_ int rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0 && errno == ENOENT)
		return 0;
	if (rootfd < 0)
		return rv_fail(err, errno, "open state root %s", root);
	_cleanup_close_ int fd = openat(rootfd, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return 0;
	if (fd < 0)
		return rv_fail(err, errno, "open state directory %s/%s", root, id);
	if (empty_dir(fd, 0, err) < 0)
		return rv_wrap(err, "remove %s/%s", root, id);
	if (unlinkat(rootfd, id, AT_REMOVEDIR) < 0 && errno != ENOENT)
		return rv_fail(err, errno, "remove %s/%s", root, id);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool is_subdir(int rootfd, const struct dirent *e)
{
	struct stat st;

	if (e->d_type != DT_UNKNOWN)
		return e->d_type == DT_DIR;
	return fstatat(rootfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
}

int state_list(const char *root, char ***ids, size_t *n, struct rv_err *err)
{
	struct rv_err ignored;
	size_t cap = 0;

	*ids = NULL;
	*n = 0;
	DIR *d = opendir(root);
	if (!d && errno == ENOENT)
		return 0;
	if (!d)
		return rv_fail(err, errno, "read state root %s", root);
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (state_check_id(e->d_name, &ignored) < 0 || !is_subdir(dirfd(d), e))
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 16;
			char **p = reallocarray(*ids, cap, sizeof(**ids));
			if (!p)
				break;
			*ids = p;
		}
		if (!((*ids)[*n] = strdup(e->d_name)))
			break;
		(*n)++;
	}
	int saved = errno;
	closedir(d);
	if (saved) {
		state_list_free(*ids, *n);
		*ids = NULL;
		*n = 0;
		return rv_fail(err, saved, "read state root %s", root);
	}
	if (*n)
		qsort(*ids, *n, sizeof(**ids), cmp_str);
	return 0;
}

void state_list_free(char **ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

/* ---- processes and time --------------------------------------------------- */

/* State (field 3) and start time (field 22) from /proc/PID/stat. comm (field 2)
 * may hold spaces and ')', so fields are counted from its last ')'. */
static int read_proc_stat(pid_t pid, char *state, uint64_t *start)
{
	char path[64], buf[4096];

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t len = read(fd, buf, sizeof(buf) - 1);
	if (len < 0)
		return -1;
	buf[len] = '\0';
	const char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s "
			 "%*s %*s %*s %*s %" SCNu64, state, start) != 2) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int state_pid_start(pid_t pid, uint64_t *start, struct rv_err *err)
{
	char state;

	if (pid <= 0)
		return rv_failx(err, EINVAL, "pid %d: not a process", (int)pid);
	if (read_proc_stat(pid, &state, start) < 0)
		return rv_fail(err, errno, "read /proc/%d/stat", (int)pid);
	return 0;
}

bool state_pid_alive(pid_t pid, uint64_t start)
{
	char state;
	uint64_t now;

	if (pid <= 0 || read_proc_stat(pid, &state, &now) < 0)
		return false;
	return now == start && state != 'Z' && state != 'X' && state != 'x';
}

char *state_rfc3339(const struct timespec *ts)
{
	struct tm tm;
	char date[64], frac[16] = "";

	if (!gmtime_r(&ts->tv_sec, &tm) || !strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm))
		return NULL;
	if (ts->tv_nsec > 0 && ts->tv_nsec < 1000000000) {
		int n = snprintf(frac, sizeof(frac), ".%09ld", ts->tv_nsec);
		while (frac[n - 1] == '0')
			frac[--n] = '\0';
	}
	char *out;
	return asprintf(&out, "%s%sZ", date, frac) < 0 ? NULL : out;
}

char *state_now_rfc3339(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return state_rfc3339(&ts);
}
