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

/* ---- JSON output ---------------------------------------------------------- */

/* Go's encoder: MarshalIndent puts "\n" + indent before each member and ": "
 * after a key; the compact form has neither. A failed allocation sticks. */
struct jout {
	FILE *f;
	bool pretty, failed;
};

static void put_quoted(struct jout *o, const char *s)
{
	char small[256];
	size_t need = jsonw_quote(small, sizeof(small), s ? s : "");
	if (need < sizeof(small)) {
		fputs(small, o->f);
		return;
	}
	_cleanup_free_ char *big = malloc(need + 1);
	if (!big) {
		o->failed = true;
		return;
	}
	jsonw_quote(big, need + 1, s);
	fputs(big, o->f);
}

static void put_key(struct jout *o, int depth, bool first, const char *key)
{
	fprintf(o->f, "%s%s%*s", first ? "" : ",", o->pretty ? "\n" : "",
		o->pretty ? 2 * depth : 0, "");
	put_quoted(o, key);
	fputs(o->pretty ? ": " : ":", o->f);
}

static void put_str(struct jout *o, const char *key, const char *v)
{
	put_key(o, 1, false, key);
	put_quoted(o, v);
}

static int cmp_annotation(const void *a, const void *b)
{
	return strcmp((*(const struct ct_annotation *const *)a)->key,
		      (*(const struct ct_annotation *const *)b)->key);
}

/* Go prints a map with its keys sorted. */
static void put_annotations(struct jout *o, const struct ct_state *s)
{
	_cleanup_free_ const struct ct_annotation **sorted = calloc(s->nannotations,
								     sizeof(*sorted));
	if (!sorted) {
		o->failed = true;
		return;
	}
	for (size_t i = 0; i < s->nannotations; i++)
		sorted[i] = &s->annotations[i];
	qsort(sorted, s->nannotations, sizeof(*sorted), cmp_annotation);
	put_key(o, 1, false, "annotations");
	fputc('{', o->f);
	for (size_t i = 0; i < s->nannotations; i++) {
		put_key(o, 2, i == 0, sorted[i]->key);
		put_quoted(o, sorted[i]->value);
	}
	fputs(o->pretty ? "\n  }" : "}", o->f);
}

/* The fields of runc's containerState in its order; state.json adds pidStart. */
static char *emit_state(const struct ct_state *s, const char *status, pid_t pid,
			bool pretty, bool with_private)
{
	char *buf = NULL;
	size_t size;
	struct jout o = { .f = open_memstream(&buf, &size), .pretty = pretty };

	if (!o.f)
		return NULL;
	fputc('{', o.f);
	put_key(&o, 1, true, "ociVersion");
	put_quoted(&o, STATE_OCI_VERSION);
	put_str(&o, "id", s->id);
	put_key(&o, 1, false, "pid");
	fprintf(o.f, "%d", (int)pid);
	if (with_private) {
		put_key(&o, 1, false, "pidStart");
		fprintf(o.f, "%" PRIu64, s->pid_start);
		if (s->cgroup)
			put_str(&o, "cgroupPath", s->cgroup);
	}
	put_str(&o, "status", status);
	put_str(&o, "bundle", s->bundle);
	put_str(&o, "rootfs", s->rootfs);
	put_str(&o, "created", s->created);
	if (s->nannotations)
		put_annotations(&o, s);
	put_str(&o, "owner", s->owner);
	fputs(pretty ? "\n}" : "}", o.f);
	bool bad = ferror(o.f) || o.failed;
	if (fclose(o.f) != 0 || bad) {
		free(buf);
		return NULL;
	}
	return buf;
}

static pid_t shown_pid(const struct ct_state *s, const char *status)
{
	return status && strcmp(status, "stopped") == 0 ? 0 : s->pid;
}

char *state_oci_json(const struct ct_state *s, const char *status)
{
	return emit_state(s, status, shown_pid(s, status), true, false);
}

char *state_list_json_entry(const struct ct_state *s, const char *status)
{
	return emit_state(s, status, shown_pid(s, status), false, false);
}

int state_write(int dirfd, const struct ct_state *s, struct rv_err *err)
{
	_cleanup_free_ char *json = emit_state(s, s->status, s->pid, true, true);
	if (!json)
		return rv_fail(err, ENOMEM, "format %s", STATE_FILE);
	return write_atomic_at(dirfd, STATE_FILE, json, strlen(json), 0600, err);
}

/* ---- state.json parser ---------------------------------------------------- */

struct jp {
	const char *p, *start, *end;
	const char *file;           /* for messages */
	struct rv_err *err;
};

static int jp_fail(struct jp *j, const char *what)
{
	if (j->p >= j->end)
		return rv_failx(j->err, EINVAL, "corrupt state file %s: %s at its end (truncated?)",
				j->file, what);
	return rv_failx(j->err, EINVAL, "corrupt state file %s: %s at byte %zu",
			j->file, what, (size_t)(j->p - j->start));
}

static void jp_ws(struct jp *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

/* Skips whitespace, then consumes C if it is next. */
static bool jp_eat(struct jp *j, char c)
{
	jp_ws(j);
	if (j->p < j->end && *j->p == c) {
		j->p++;
		return true;
	}
	return false;
}

static int jp_hex4(struct jp *j, unsigned *out)
{
	static const char hex[] = "0123456789abcdef";

	*out = 0;
	for (int i = 0; i < 4; i++, j->p++) {
		const char *h = j->p < j->end && *j->p ? strchr(hex, tolower((unsigned char)*j->p)) : NULL;
		if (!h)
			return jp_fail(j, "bad \\u escape");
		*out = *out << 4 | (unsigned)(h - hex);
	}
	return 0;
}

/* \uXXXX, or a surrogate pair of them, as UTF-8 (never longer than its escape). */
static int jp_unicode(struct jp *j, char **o)
{
	unsigned cp, lo;

	if (jp_hex4(j, &cp) < 0)
		return -1;
	if (cp >= 0xdc00 && cp <= 0xdfff)
		return jp_fail(j, "lone low surrogate");
	if (cp >= 0xd800 && cp <= 0xdbff) {
		if (j->end - j->p < 2 || j->p[0] != '\\' || j->p[1] != 'u')
			return jp_fail(j, "lone high surrogate");
		j->p += 2;
		if (jp_hex4(j, &lo) < 0)
			return -1;
		if (lo < 0xdc00 || lo > 0xdfff)
			return jp_fail(j, "bad surrogate pair");
		cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
	}
	if (cp == 0)
		return jp_fail(j, "NUL in a string");
	static const unsigned char lead[] = { 0, 0, 0xc0, 0xe0, 0xf0 };
	int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
	unsigned char *u = (unsigned char *)*o;
	for (int i = n - 1; i > 0; i--, cp >>= 6)
		u[i] = (unsigned char)(0x80 | (cp & 0x3f));
	u[0] = (unsigned char)(lead[n] | cp);
	*o += n;
	return 0;
}

static int jp_escape(struct jp *j, char **o)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";

	if (j->p >= j->end)
		return jp_fail(j, "unterminated string");
	char c = *j->p++;
	if (c == 'u')
		return jp_unicode(j, o);
	const char *hit = strchr(from, c);
	if (!hit || !c)
		return jp_fail(j, "bad escape");
	*(*o)++ = to[hit - from];
	return 0;
}

/* Bytes up to the closing quote: the decoded string is never longer. */
static size_t jp_string_span(const struct jp *j)
{
	const char *p = j->p;

	while (p < j->end && *p != '"')
		p += *p == '\\' && p + 1 < j->end ? 2 : 1;
	return p < j->end ? (size_t)(p - j->p) : (size_t)(j->end - j->p);
}

static int jp_string(struct jp *j, char **out)
{
	if (!jp_eat(j, '"'))
		return jp_fail(j, "expected a string");
	_cleanup_free_ char *s = malloc(jp_string_span(j) + 1);
	if (!s)
		return rv_fail(j->err, ENOMEM, "parse %s", j->file);
	char *o = s;
	for (;;) {
		if (j->p >= j->end)
			return jp_fail(j, "unterminated string");
		unsigned char c = (unsigned char)*j->p++;
		if (c == '"')
			break;
		if (c < 0x20)
			return jp_fail(j, "control byte in a string");
		if (c != '\\')
			*o++ = (char)c;
		else if (jp_escape(j, &o) < 0)
			return -1;
	}
	*o = '\0';
	*out = s;
	s = NULL;
	return 0;
}

static int jp_uint(struct jp *j, uint64_t max, uint64_t *out)
{
	jp_ws(j);
	const char *digits = j->p;
	uint64_t v = 0;

	while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
		unsigned d = (unsigned)(*j->p - '0');
		if (v > (max - d) / 10)
			return jp_fail(j, "number out of range");
		v = v * 10 + d;
		j->p++;
	}
	if (j->p == digits || (*digits == '0' && j->p - digits > 1))
		return jp_fail(j, "expected a non-negative integer");
	*out = v;
	return 0;
}

static int jp_annotations(struct jp *j, struct ct_state *s)
{
	size_t cap = 0;

	if (!jp_eat(j, '{'))
		return jp_fail(j, "expected an object");
	if (jp_eat(j, '}'))
		return 0;
	do {
		if (s->nannotations == cap) {
			cap = cap ? cap * 2 : 8;
			void *p = reallocarray(s->annotations, cap, sizeof(*s->annotations));
			if (!p)
				return rv_fail(j->err, ENOMEM, "parse %s", j->file);
			s->annotations = p;
		}
		struct ct_annotation *a = &s->annotations[s->nannotations];
		*a = (struct ct_annotation){ 0 };
		s->nannotations++;   /* counted now so ct_state_free sees a half-parsed one */
		if (jp_string(j, &a->key) < 0)
			return -1;
		if (!jp_eat(j, ':'))
			return jp_fail(j, "expected ':'");
		if (jp_string(j, &a->value) < 0)
			return -1;
	} while (jp_eat(j, ','));
	return jp_eat(j, '}') ? 0 : jp_fail(j, "expected ',' or '}'");
}

/* A member this version does not know (a newer runvm wrote it): a string or
 * a number, the only kinds we ever add. */
static int jp_skip(struct jp *j)
{
	_cleanup_free_ char *str = NULL;
	uint64_t num;

	jp_ws(j);
	if (j->p < j->end && *j->p == '"')
		return jp_string(j, &str);
	return jp_uint(j, UINT64_MAX, &num);
}

enum { F_ID, F_PID, F_PIDSTART, F_STATUS, F_BUNDLE, F_ROOTFS, F_CREATED, F_OWNER, F_ANN,
       F_CGROUP };
#define REQUIRED_FIELDS ((1u << F_OWNER) - 1)

static int jp_member(struct jp *j, struct ct_state *s, unsigned *seen)
{
	static const char *const names[] = {
		[F_ID] = "id", [F_PID] = "pid", [F_PIDSTART] = "pidStart", [F_STATUS] = "status",
		[F_BUNDLE] = "bundle", [F_ROOTFS] = "rootfs", [F_CREATED] = "created",
		[F_OWNER] = "owner", [F_ANN] = "annotations", [F_CGROUP] = "cgroupPath",
	};
	char **strs[] = {
		[F_ID] = &s->id, [F_STATUS] = &s->status, [F_BUNDLE] = &s->bundle,
		[F_ROOTFS] = &s->rootfs, [F_CREATED] = &s->created, [F_OWNER] = &s->owner,
		[F_CGROUP] = &s->cgroup,
	};
	_cleanup_free_ char *key = NULL;
	uint64_t v;

	if (jp_string(j, &key) < 0)
		return -1;
	if (!jp_eat(j, ':'))
		return jp_fail(j, "expected ':'");
	unsigned f = 0;
	while (f < sizeof(names) / sizeof(names[0]) && strcmp(key, names[f]) != 0)
		f++;
	if (f == sizeof(names) / sizeof(names[0]))
		return jp_skip(j);
	if (*seen & (1u << f))
		return jp_fail(j, "duplicate member");
	*seen |= 1u << f;
	switch (f) {
	case F_PID:
		if (jp_uint(j, INT_MAX, &v) < 0)
			return -1;
		s->pid = (pid_t)v;
		return 0;
	case F_PIDSTART:
		return jp_uint(j, UINT64_MAX, &s->pid_start);
	case F_ANN:
		return jp_annotations(j, s);
	default:
		return jp_string(j, strs[f]);
	}
}

static int jp_state(struct jp *j, struct ct_state *s)
{
	unsigned seen = 0;

	jp_ws(j);
	if (j->p == j->end)
		return rv_failx(j->err, EINVAL, "corrupt state file %s: it is empty", j->file);
	if (!jp_eat(j, '{'))
		return jp_fail(j, "expected '{'");
	if (!jp_eat(j, '}')) {
		do {
			if (jp_member(j, s, &seen) < 0)
				return -1;
		} while (jp_eat(j, ','));
		if (!jp_eat(j, '}'))
			return jp_fail(j, "expected ',' or '}'");
	}
	jp_ws(j);
	if (j->p != j->end)
		return jp_fail(j, "junk after the object");
	if ((seen & REQUIRED_FIELDS) != REQUIRED_FIELDS)
		return jp_fail(j, "a required member is missing");
	if (!s->owner && !(s->owner = strdup("")))
		return rv_fail(j->err, ENOMEM, "parse %s", j->file);
	return 0;
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

	struct jp j = { .p = buf, .start = buf, .end = buf + len, .file = file, .err = err };
	if (jp_state(&j, s) < 0) {
		ct_state_free(s);
		return -1;
	}
	return 0;
}

void ct_state_free(struct ct_state *s)
{
	free(s->id);
	free(s->bundle);
	free(s->rootfs);
	free(s->created);
	free(s->status);
	free(s->owner);
	free(s->cgroup);
	for (size_t i = 0; i < s->nannotations; i++) {
		free(s->annotations[i].key);
		free(s->annotations[i].value);
	}
	free(s->annotations);
	*s = (struct ct_state){ 0 };
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
