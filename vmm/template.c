#include "vmm/template.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/snapbuf.h"

/* Bump when anything saved changes meaning; it is part of every key. */
#define TEMPLATE_FORMAT 1u
#define TMP_PREFIX ".tmp."
#define MEMORY_FILE "memory"
#define STATE_FILE "state"
#define PAGE 4096u

struct fnv {
	uint64_t h;
};

static void fnv_add(struct fnv *f, const void *p, size_t len)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < len; i++) {
		f->h ^= b[i];
		f->h *= 0x100000001b3ull;
	}
}

static void fnv_str(struct fnv *f, const char *s)
{
	fnv_add(f, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* A file's identity: replacing or rewriting it changes one of these. */
static int fnv_file(struct fnv *f, const char *what, const char *path, struct rv_err *err)
{
	struct stat st;

	if (stat(path, &st) < 0)
		return rv_fail(err, errno, "%s %s", what, path);
	uint64_t id[6] = { st.st_dev, st.st_ino, (uint64_t)st.st_size, (uint64_t)st.st_ctim.tv_sec,
			   (uint64_t)st.st_ctim.tv_nsec, (uint64_t)st.st_mtim.tv_nsec };
	fnv_add(f, id, sizeof(id));
	return 0;
}

int template_key(const struct template_shape *s, char key[TEMPLATE_KEY_BYTES], struct rv_err *err)
{
	struct fnv f = { 0xcbf29ce484222325ull };
	uint64_t shape[3] = { TEMPLATE_FORMAT, s->cpus, s->mem_bytes };

	fnv_add(&f, shape, sizeof(shape));
	if (fnv_file(&f, "this runvm", "/proc/self/exe", err) < 0 ||
	    fnv_file(&f, "kernel", s->kernel, err) < 0 ||
	    (s->initrd && fnv_file(&f, "initrd", s->initrd, err) < 0))
		return rv_wrap(err, "template key");
	fnv_str(&f, s->initrd ? "initrd" : "no initrd");
	fnv_str(&f, s->cmdline);
	fnv_str(&f, s->devices);
	if (s->cpuid)
		fnv_add(&f, s->cpuid, s->cpuid_bytes);
	char boot_id[64] = "";
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, boot_id, sizeof(boot_id) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return rv_fail(err, n < 0 ? errno : EIO, "template key: this host's boot id");
	fnv_str(&f, boot_id);
	snprintf(key, TEMPLATE_KEY_BYTES, "%016llx", (unsigned long long)f.h);
	return 0;
}

static void remove_dir(int dir_fd, const char *name)
{
	int fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd >= 0) {
		unlinkat(fd, MEMORY_FILE, 0);
		unlinkat(fd, STATE_FILE, 0);
		close(fd);
	}
	unlinkat(dir_fd, name, AT_REMOVEDIR);
}

/* ".tmp.PID.N" of a process that is gone. */
static bool is_stale_tmp(const char *name)
{
	unsigned long pid;
	char *end;

	if (strncmp(name, TMP_PREFIX, strlen(TMP_PREFIX)))
		return false;
	pid = strtoul(name + strlen(TMP_PREFIX), &end, 10);
	return *end == '.' && (pid == 0 || pid > INT32_MAX ||
			       (kill((pid_t)pid, 0) < 0 && errno == ESRCH));
}

static void sweep(int dir_fd)
{
	int fd = dup(dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;

	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);   /* a dup shares its offset with the store's fd */
	while ((e = readdir(d)))
		if (is_stale_tmp(e->d_name))
			remove_dir(dir_fd, e->d_name);
	closedir(d);
}

int template_store_open(const char *dir, struct template_store *st, struct rv_err *err)
{
	st->dir_fd = -1;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return rv_fail(err, errno, "make the template store %s", dir);
	st->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (st->dir_fd < 0)
		return rv_fail(err, errno, "open the template store %s", dir);
	struct stat sb;
	if (fstat(st->dir_fd, &sb) < 0 || sb.st_uid != geteuid() || (sb.st_mode & 022)) {
		template_store_close(st);
		return rv_failx(err, EPERM, "template store %s: must be a directory of ours that no "
				"one else can write (chmod 700)", dir);
	}
	sweep(st->dir_fd);
	return 0;
}

void template_store_close(struct template_store *st)
{
	if (st->dir_fd >= 0)
		close(st->dir_fd);
	st->dir_fd = -1;
}

static int read_whole(int fd, uint8_t **out, size_t *len, struct rv_err *err)
{
	struct stat sb;

	if (fstat(fd, &sb) < 0)
		return rv_fail(err, errno, "template state");
	if (sb.st_size <= 0 || (uint64_t)sb.st_size > TEMPLATE_STATE_MAX_BYTES)
		return rv_failx(err, EPROTO, "template state is %lld bytes, not 1 to %u",
				(long long)sb.st_size, TEMPLATE_STATE_MAX_BYTES);
	uint8_t *buf = malloc((size_t)sb.st_size);
	if (!buf)
		return rv_fail(err, ENOMEM, "template state");
	size_t got = 0;
	while (got < (size_t)sb.st_size) {
		ssize_t n = pread(fd, buf + got, (size_t)sb.st_size - got, (off_t)got);
		if (n <= 0) {
			free(buf);
			return n < 0 ? rv_fail(err, errno, "read template state")
				     : rv_failx(err, EPROTO, "template state shrank while read");
		}
		got += (size_t)n;
	}
	*out = buf;
	*len = got;
	return 0;
}

int template_open(const struct template_store *st, const char *key, uint64_t mem_bytes, int *mem_fd,
		  uint8_t **state, size_t *state_len, struct rv_err *err)
{
	_cleanup_close_ int dir = openat(st->dir_fd, key, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dir < 0)
		return errno == ENOENT ? 0 : rv_fail(err, errno, "open template %s", key);
	/* O_NONBLOCK: a FIFO put there must not hang the VMM. */
	_cleanup_close_ int mem = openat(dir, MEMORY_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	_cleanup_close_ int sf = openat(dir, STATE_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	struct stat sb;
	if (mem < 0 || sf < 0)
		return rv_fail(err, errno, "open template %s's files", key);
	if (fstat(mem, &sb) < 0 || !S_ISREG(sb.st_mode) || (uint64_t)sb.st_size != mem_bytes)
		return rv_failx(err, EPROTO, "template %s: its memory is not a file of %llu bytes", key,
				(unsigned long long)mem_bytes);
	if (fstat(sf, &sb) < 0 || !S_ISREG(sb.st_mode))
		return rv_failx(err, EPROTO, "template %s: its state is not a file", key);
	if (read_whole(sf, state, state_len, err) < 0)
		return rv_wrap(err, "template %s", key);
	*mem_fd = rv_steal_fd(&mem);
	return 1;
}

void template_discard(const struct template_store *st, const char *key)
{
	remove_dir(st->dir_fd, key);
}

/* Room for a whole copy of guest RAM and some: a template must not be what
 * fills the filesystem that also holds the containers' state. */
static bool store_has_room(int dir_fd, uint64_t mem_bytes)
{
	struct statvfs sv;

	return fstatvfs(dir_fd, &sv) == 0 &&
	       (uint64_t)sv.f_bavail * sv.f_frsize > mem_bytes + (64ull << 20);
}

int template_writer_begin(const struct template_store *st, const char *key, uint64_t mem_bytes,
			  struct template_writer *w, struct rv_err *err)
{
	char lock[TEMPLATE_KEY_BYTES + 8];

	*w = (struct template_writer){ .mem_fd = -1, .state_fd = -1, .lock_fd = -1 };
	if (!store_has_room(st->dir_fd, mem_bytes))
		return 0;
	/* One writer per key: VMMs of one shape that boot together save it once. */
	snprintf(lock, sizeof(lock), ".lock.%s", key);
	w->lock_fd = openat(st->dir_fd, lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (w->lock_fd < 0)
		return rv_fail(err, errno, "template lock %s", lock);
	if (flock(w->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		int code = errno;
		template_writer_end(w);
		return code == EWOULDBLOCK ? 0 : rv_fail(err, code, "template lock %s", lock);
	}
	snprintf(w->tmp_name, sizeof(w->tmp_name), TMP_PREFIX "%d.%s", (int)getpid(), key);
	remove_dir(st->dir_fd, w->tmp_name);   /* ours from a VMM of this pid long gone */
	if (mkdirat(st->dir_fd, w->tmp_name, 0700) < 0) {
		int code = errno;
		template_writer_end(w);
		return rv_fail(err, code, "make template directory %s", w->tmp_name);
	}
	_cleanup_close_ int dir = openat(st->dir_fd, w->tmp_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir >= 0) {
		w->mem_fd = openat(dir, MEMORY_FILE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		w->state_fd = openat(dir, STATE_FILE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	if (dir < 0 || w->mem_fd < 0 || w->state_fd < 0 ||
	    ftruncate(w->mem_fd, (off_t)mem_bytes) < 0) {
		int code = errno;
		template_writer_end(w);
		remove_dir(st->dir_fd, w->tmp_name);
		return rv_fail(err, code, "make template files in %s", w->tmp_name);
	}
	return 1;
}

static int write_at(int fd, const uint8_t *p, size_t len, off_t off, struct rv_err *err)
{
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return rv_fail(err, n < 0 ? errno : EIO, "write template");
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static bool page_is_zero(const uint8_t *p)
{
	static const uint8_t zero[PAGE];
	return memcmp(p, zero, PAGE) == 0;
}

/* One extent the memfd has pages for: written whole but for runs of zero
 * pages long enough to be worth a hole of their own (a clone maps the file
 * over its data only, and each mapping costs a VMA). */
static int write_extent(struct template_writer *w, const uint8_t *base, uint64_t from,
			uint64_t to, struct rv_err *err)
{
	uint64_t data = from, zeros = from;   /* data to write from; the zero run's start */

	for (uint64_t off = from; off < to; off += PAGE) {
		if (!page_is_zero(base + off)) {
			zeros = off + PAGE;
			continue;
		}
		if (off + PAGE - zeros < TEMPLATE_HOLE_MIN_BYTES)
			continue;
		if (zeros > data && write_at(w->mem_fd, base + data, zeros - data, (off_t)data, err) < 0)
			return -1;
		data = off + PAGE;
	}
	/* A run of zeros at the end is a hole too, whatever its length. */
	uint64_t end = zeros < to ? zeros : to;
	if (end < data)
		end = data;
	return end > data ? write_at(w->mem_fd, base + data, end - data, (off_t)data, err) : 0;
}

/* Holes shorter than TEMPLATE_HOLE_MIN_BYTES between data become zeros in
 * the file: a clone maps the file over its data extents only, and each one
 * is a VMA of its own. */
static int fill_small_holes(struct template_writer *w, uint64_t mem_bytes, struct rv_err *err)
{
	static const uint8_t zero[64 * 1024];
	off_t off = 0;

	for (;;) {
		off_t hole = lseek(w->mem_fd, off, SEEK_HOLE);
		if (hole < 0 || (uint64_t)hole >= mem_bytes)
			return hole < 0 ? rv_fail(err, errno, "find the template's holes") : 0;
		off_t data = lseek(w->mem_fd, hole, SEEK_DATA);
		if (data < 0)
			return errno == ENXIO ? 0 : rv_fail(err, errno, "find the template's data");
		for (off_t at = hole; data - hole < (off_t)TEMPLATE_HOLE_MIN_BYTES && at < data;) {
			size_t n = (size_t)(data - at) < sizeof(zero) ? (size_t)(data - at) : sizeof(zero);
			if (write_at(w->mem_fd, zero, n, at, err) < 0)
				return -1;
			at += (off_t)n;
		}
		off = data;
	}
}

int template_writer_memory(struct template_writer *w, int memfd, const uint8_t *base,
			   uint64_t mem_bytes, struct rv_err *err)
{
	uint64_t off = 0;

	while (off < mem_bytes) {
		off_t data = lseek(memfd, (off_t)off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			break;     /* holes to the end */
		if (data < 0)
			return rv_fail(err, errno, "find guest memory's pages");
		off_t hole = lseek(memfd, data, SEEK_HOLE);
		if (hole < 0)
			return rv_fail(err, errno, "find guest memory's holes");
		uint64_t from = (uint64_t)data & ~(uint64_t)(PAGE - 1);
		uint64_t to = (uint64_t)hole < mem_bytes ? (uint64_t)hole : mem_bytes;
		to = (to + PAGE - 1) & ~(uint64_t)(PAGE - 1);
		if (write_extent(w, base, from, to < mem_bytes ? to : mem_bytes, err) < 0)
			return -1;
		off = to;
	}
	return fill_small_holes(w, mem_bytes, err);
}

int template_writer_state(struct template_writer *w, const void *state, size_t len,
			  struct rv_err *err)
{
	return write_at(w->state_fd, state, len, 0, err);
}

void template_writer_end(struct template_writer *w)
{
	if (w->mem_fd >= 0)
		close(w->mem_fd);
	if (w->state_fd >= 0)
		close(w->state_fd);
	if (w->lock_fd >= 0)
		close(w->lock_fd);     /* the lock goes with it */
	w->mem_fd = w->state_fd = w->lock_fd = -1;
}

/* The state ends with the end record: the writer got that far. */
static bool state_is_whole(int dir_fd)
{
	uint32_t tail[2];
	struct stat sb;
	int fd = openat(dir_fd, STATE_FILE, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	bool whole = fd >= 0 && fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) &&
		     sb.st_size >= (off_t)sizeof(tail) &&
		     pread(fd, tail, sizeof(tail), sb.st_size - (off_t)sizeof(tail)) == sizeof(tail) &&
		     tail[0] == TEMPLATE_END_TAG && tail[1] == 0;

	if (fd >= 0)
		close(fd);
	return whole;
}

int template_publish(const char *dir, pid_t vmm, struct rv_err *err)
{
	struct template_store st;
	char prefix[32];

	if (template_store_open(dir, &st, err) < 0)
		return -1;
	int n = snprintf(prefix, sizeof(prefix), TMP_PREFIX "%d.", (int)vmm);
	int fd = dup(st.dir_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *e;
	if (!d) {
		if (fd >= 0)
			close(fd);
		template_store_close(&st);
		return rv_fail(err, errno, "read the template store %s", dir);
	}
	rewinddir(d);   /* the sweep read the shared offset to the end */
	while ((e = readdir(d))) {
		const char *key = e->d_name + n;
		if (strncmp(e->d_name, prefix, (size_t)n) || strlen(key) != TEMPLATE_KEY_BYTES - 1 ||
		    strspn(key, "0123456789abcdef") != TEMPLATE_KEY_BYTES - 1)
			continue;
		_cleanup_close_ int tmp = openat(st.dir_fd, e->d_name,
						 O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		/* renameat onto an existing non-empty directory fails: the first wins. */
		if (tmp < 0 || !state_is_whole(tmp) || renameat(st.dir_fd, e->d_name, st.dir_fd, key) < 0)
			remove_dir(st.dir_fd, e->d_name);
	}
	closedir(d);
	template_store_close(&st);
	return 0;
}

void template_forget_failed(const char *dir, const char *vmm_error)
{
	static const char mark[] = "clone of template ";
	const char *at = vmm_error ? strstr(vmm_error, mark) : NULL;
	char key[TEMPLATE_KEY_BYTES];
	struct template_store st;
	struct rv_err ignored;

	if (!at)
		return;
	at += sizeof(mark) - 1;
	if (strspn(at, "0123456789abcdef") < TEMPLATE_KEY_BYTES - 1)
		return;
	memcpy(key, at, TEMPLATE_KEY_BYTES - 1);
	key[TEMPLATE_KEY_BYTES - 1] = '\0';
	if (template_store_open(dir, &st, &ignored) == 0) {
		template_discard(&st, key);
		template_store_close(&st);
	}
}
