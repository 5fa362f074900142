#include "devices/fs/fusedev.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fuse.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

/* The device number of the newest mount on `path`, from mountinfo: a stat
 * of the mount itself would wait for a server that is not serving yet. */
static bool mount_dev(const char *path, unsigned *major, unsigned *minor)
{
	char want[PATH_MAX], line[PATH_MAX + 256], point[PATH_MAX];
	bool found = false;
	unsigned ma, mi;

	if (!realpath(path, want))
		return false;
	FILE *f = fopen("/proc/self/mountinfo", "re");
	if (!f)
		return false;
	/* Paths with spaces are escaped there (\040); they simply do not match. */
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%*u %*u %u:%u %*s %4095s", &ma, &mi, point) == 3 && !strcmp(point, want)) {
			*major = ma;
			*minor = mi;
			found = true;
		}
	fclose(f);
	return found;
}

/* The sysfs file of the mount's read-ahead window, or "" when not found. */
static void readahead_path(const char *mountpoint, char *path, size_t size)
{
	unsigned ma, mi;

	path[0] = '\0';
	if (mountpoint && mount_dev(mountpoint, &ma, &mi))
		snprintf(path, size, "/sys/class/bdi/%u:%u/read_ahead_kb", ma, mi);
}

/* See FS_READAHEAD_KB; best effort, as in the guest's agent. */
static void widen_readahead(const char *path)
{
	if (!path[0])
		return;
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && dprintf(fd, "%u", FS_READAHEAD_KB) < 0) {
		/* the kernel's 128 KiB window stays: slower, not wrong */
	}
}

int fusedev_mount(const char *mountpoint, const char *fsname, bool allow_other, struct rv_err *err)
{
	struct stat st;
	char data[160];

	if (stat(mountpoint, &st) < 0)
		return rv_fail(err, errno, "mount point %s", mountpoint);
	if (!S_ISDIR(st.st_mode))
		return rv_failx(err, ENOTDIR, "mount point %s is not a directory", mountpoint);
	_cleanup_close_ int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return rv_fail(err, errno, "open /dev/fuse");
	/* What libfuse's mount passes: the fd the kernel will talk to, the root's
	 * type, and whose mount it is. default_permissions makes the host kernel
	 * check modes and owners the way a guest kernel does, so the server is
	 * tested as virtio-fs uses it. */
	snprintf(data, sizeof(data), "fd=%d,rootmode=%o,user_id=%u,group_id=%u,default_permissions%s",
		 fd, (unsigned)S_IFDIR, (unsigned)getuid(), (unsigned)getgid(),
		 allow_other ? ",allow_other" : "");
	/* nodev: a device node in an export must never open a host device through
	 * this mount (in a guest it opens the guest's own device, which is fine). */
	if (mount(fsname && *fsname ? fsname : "runvm", mountpoint, "fuse.runvm",
		  MS_NOSUID | MS_NODEV, data) < 0)
		return rv_fail(err, errno, "mount a FUSE filesystem on %s", mountpoint);
	return rv_steal_fd(&fd);
}

/* Serving threads block in read() on /dev/fuse, as libfuse's do: the kernel
 * wakes exactly one reader per request. (An epoll set per thread woke one
 * thread per request too, but a thread finishing a request saw the next one
 * in epoll_wait as well and raced its owner: 60% of reads came back EAGAIN
 * in a tar, each a wasted wakeup on 2 cores.) A blocked read() is ended
 * by unmounting (ENODEV), or by FUSEDEV_KICK_SIGNAL, whose handler does
 * nothing and is installed without SA_RESTART so the read fails EINTR and
 * the thread sees `quit`. The calling thread waits for the stop fd or the
 * first thread to end, then kicks the others until all have ended. */
#define FUSEDEV_KICK_SIGNAL SIGUSR2

struct pool {
	int fd;
	struct fs_server *s;
	char readahead[64];          /* the mount's read_ahead_kb, widened once INIT is answered */
	int quit_fd;                 /* written when a thread ends the serving */
	atomic_bool quit;
	atomic_uint running;
	pthread_mutex_t lock;
	bool failed;
	struct rv_err err;           /* the first failure */
};

static void kick_handler(int sig)
{
	(void)sig;
}

static void pool_quit(struct pool *p)
{
	uint64_t one = 1;

	atomic_store(&p->quit, true);
	/* A thread waiting for a lock would never see the quit. */
	fs_server_cancel_waits(p->s, true);
	/* The eventfd's counter cannot overflow with one write per thread. */
	if (write(p->quit_fd, &one, sizeof(one)) < 0) {
		/* nothing to do: the caller also polls `running` */
	}
}

static void pool_fail(struct pool *p, const struct rv_err *e)
{
	pthread_mutex_lock(&p->lock);
	if (!p->failed) {
		p->failed = true;
		p->err = *e;
	}
	pthread_mutex_unlock(&p->lock);
	pool_quit(p);
}

/* Writes one reply. The kernel takes a reply whole or not at all. */
static int reply(struct pool *p, const uint8_t *in, const uint8_t *out, size_t len, struct rv_err *err)
{
	const struct fuse_in_header *ih = (const struct fuse_in_header *)in;

	for (;;) {
		ssize_t n = write(p->fd, out, len);
		if (n == (ssize_t)len)
			return 0;
		if (n >= 0)
			return rv_failx(err, EIO, "short reply to opcode %u (unique %llu): %zd of %zu bytes",
					ih->opcode, (unsigned long long)ih->unique, n, len);
		if (errno == EINTR)
			continue;
		/* ENOENT: the request was interrupted and already answered with
		 * EINTR by the kernel; ENODEV: unmounted meanwhile. */
		if (errno == ENOENT || errno == ENODEV)
			return 0;
		/* EINVAL and the like: the reply is malformed, which is a server
		 * bug the tests should see loudly rather than as a hung caller. */
		return rv_fail(err, errno, "the kernel refused our %zu-byte reply to opcode %u (unique %llu)",
			       len, ih->opcode, (unsigned long long)ih->unique);
	}
}

/* READ replies by splice (fs_server_handle_ref): the file's pages go into a
 * pipe by reference and from there into the client's pages, one copy in
 * all; pread() into a buffer and write() from it made two, and the server's
 * copies were what bounded sequential reads. `data` takes the file's bytes
 * first, so that the header, which must say how many came, can go into
 * `reply` ahead of them. A pipe holds FUSEDEV_MAX_WRITE's pages plus the
 * header's; anything unexpected falls back to pread(), never to a short
 * reply, which the client would take for the end of the file. */
struct splicer {
	int data[2], reply[2];
};

static void splicer_close(struct splicer *sp)
{
	for (int i = 0; i < 2; i++) {
		if (sp->data[i] >= 0)
			close(sp->data[i]);
		if (sp->reply[i] >= 0)
			close(sp->reply[i]);
		sp->data[i] = sp->reply[i] = -1;
	}
}

/* false: no splicing on this thread (then READs come inline). */
static bool splicer_open(struct splicer *sp)
{
	const int size = 1 << 20;   /* the default pipe-max-size, no capability needed */

	sp->data[0] = sp->data[1] = sp->reply[0] = sp->reply[1] = -1;
	if (pipe2(sp->data, O_CLOEXEC | O_NONBLOCK) < 0 || pipe2(sp->reply, O_CLOEXEC | O_NONBLOCK) < 0 ||
	    fcntl(sp->data[1], F_SETPIPE_SZ, size) < 0 || fcntl(sp->reply[1], F_SETPIPE_SZ, size) < 0) {
		splicer_close(sp);
		return false;
	}
	return true;
}

/* After a failure part-way: whatever the pipes hold is garbage now. */
static int splicer_reset(struct splicer *sp, struct rv_err *err)
{
	splicer_close(sp);
	return splicer_open(sp) ? 0 : rv_fail(err, ENOMEM, "replace the splice pipes");
}

/* Moves len bytes into a pipe; fewer only at the end of the file (from a
 * file) or never (from a pipe). -1 on any failure, errno set. */
static ssize_t splice_in(int from, loff_t *off, int to, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = splice(from, off, to, NULL, len - done, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
		if (n == 0 && off)
			break;
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			if (n == 0)
				errno = EIO;
			return -1;
		}
		done += (size_t)n;
	}
	return (ssize_t)done;
}

/* The header in `out`, then the data: pread() into out and one write(). */
static int reply_inline(struct pool *p, const uint8_t *in, uint8_t *out, const struct fs_read_ref *ref,
			struct rv_err *err)
{
	struct fuse_out_header oh;
	ssize_t got = pread(ref->fd, out + sizeof(oh), ref->len, (off_t)ref->offset);

	memcpy(&oh, out, sizeof(oh));
	oh.error = got < 0 ? -errno : 0;
	oh.len = (uint32_t)(sizeof(oh) + (got < 0 ? 0 : (size_t)got));
	memcpy(out, &oh, sizeof(oh));
	return reply(p, in, out, oh.len, err);
}

static int reply_spliced(struct pool *p, struct splicer *sp, const uint8_t *in, uint8_t *out,
			 const struct fs_read_ref *ref, struct rv_err *err)
{
	struct fuse_out_header oh;
	loff_t off = (loff_t)ref->offset;

	memcpy(&oh, out, sizeof(oh));
	ssize_t got = splice_in(ref->fd, &off, sp->data[1], ref->len);
	if (got >= 0) {
		oh.len = (uint32_t)(sizeof(oh) + (size_t)got);
		if (write(sp->reply[1], &oh, sizeof(oh)) != (ssize_t)sizeof(oh) ||
		    splice_in(sp->data[0], NULL, sp->reply[1], (size_t)got) != got)
			got = -1;
	}
	if (got < 0) {
		/* Nothing reached the client yet: empty pipes and the slow way. */
		if (splicer_reset(sp, err) < 0)
			return -1;
		return reply_inline(p, in, out, ref, err);
	}
	for (;;) {
		ssize_t n = splice(sp->reply[0], NULL, p->fd, NULL, oh.len, SPLICE_F_MOVE);
		if (n == (ssize_t)oh.len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		int code = n < 0 ? errno : EIO;
		if (splicer_reset(sp, err) < 0)
			return -1;
		/* ENOENT: interrupted and answered by the kernel; ENODEV: unmounted. */
		if (code == ENOENT || code == ENODEV)
			return 0;
		return rv_fail(err, code, "splice a %u-byte READ reply (unique %llu)", oh.len,
			       (unsigned long long)oh.unique);
	}
}

/* Reads and serves one request. 1: go on; 0: the filesystem went away;
 * -1: failure. */
static int serve_one(struct pool *p, struct splicer *sp, uint8_t *in, uint8_t *out, struct rv_err *err)
{
	ssize_t r = read(p->fd, in, FS_MAX_REQ_BYTES);
	if (r < 0) {
		/* EINTR: kicked (or any signal); ENOENT: the request was
		 * interrupted before we got it. */
		if (errno == EINTR || errno == ENOENT || errno == EAGAIN)
			return 1;
		if (errno == ENODEV)
			return 0;
		return rv_fail(err, errno, "read a request from /dev/fuse");
	}
	if ((size_t)r < sizeof(struct fuse_in_header))
		return rv_failx(err, EIO, "a %zd-byte request from /dev/fuse", r);
	struct iovec iv = { .iov_base = in, .iov_len = (size_t)r };
	struct iovec ov = { .iov_base = out, .iov_len = FS_MAX_REQ_BYTES };
	struct fs_iov fin = { .iov = &iv, .n = 1, .bytes = (size_t)r };
	struct fs_iov fout = { .iov = &ov, .n = 1, .bytes = FS_MAX_REQ_BYTES };
	struct fs_read_ref ref;
	size_t len = fs_server_handle_ref(p->s, fin, fout, sp ? &ref : NULL);
	int rc = 0;
	if (len > FS_MAX_REQ_BYTES)
		rc = rv_failx(err, EIO, "the server claims a %zu-byte reply", len);
	else if (sp && ref.fd >= 0)
		rc = reply_spliced(p, sp, in, out, &ref, err);
	else if (len > 0)
		rc = reply(p, in, out, len, err);
	if (sp)
		fs_read_ref_done(p->s, &ref);
	if (rc < 0)
		return -1;
	/* The kernel applied INIT's reply within our write(): only now would
	 * it not lower the window again. */
	if (((const struct fuse_in_header *)in)->opcode == FUSE_INIT)
		widen_readahead(p->readahead);
	return 1;
}

/* Reads and serves requests until told to stop. Returns 1 when the
 * filesystem went away or the pool is quitting, -1 on failure. */
static int serve_loop(struct pool *p, uint8_t *in, uint8_t *out, struct rv_err *err)
{
	struct splicer sp;
	bool can_splice = splicer_open(&sp);
	int rc = 1;

	while (rc == 1 && !atomic_load(&p->quit))
		rc = serve_one(p, can_splice ? &sp : NULL, in, out, err);
	splicer_close(&sp);
	return rc < 0 ? -1 : 1;
}

static void *serve_thread(void *arg)
{
	struct pool *p = arg;
	struct rv_err err;
	uint8_t *in = malloc(FS_MAX_REQ_BYTES), *out = malloc(FS_MAX_REQ_BYTES);
	sigset_t kick;

	/* The caller may block signals for a signalfd; the kick must get through. */
	sigemptyset(&kick);
	sigaddset(&kick, FUSEDEV_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	if (!in || !out) {
		rv_fail(&err, ENOMEM, "allocate %u-byte request buffers", FS_MAX_REQ_BYTES);
		pool_fail(p, &err);
	} else if (serve_loop(p, in, out, &err) < 0) {
		pool_fail(p, &err);
	} else {
		pool_quit(p);   /* unmounted or stopped: the others end too */
	}
	free(in);
	free(out);
	atomic_fetch_sub(&p->running, 1);
	return NULL;
}

/* Until the stop fd fires or a serving thread ends (it wrote quit_fd). */
static void wait_for_stop(struct pool *p, int stop_fd)
{
	struct pollfd fds[2] = { { .fd = p->quit_fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN } };

	while (!atomic_load(&p->quit) && poll(fds, stop_fd >= 0 ? 2 : 1, -1) <= 0) {
		/* EINTR: wait again */
	}
}

/* Kicks until every thread has left its read(); a kick that lands just
 * before a thread enters read() is lost, hence again every 10 ms. */
static void stop_threads(struct pool *p, const pthread_t *tids, unsigned n)
{
	pool_quit(p);
	while (atomic_load(&p->running) > 0) {
		for (unsigned i = 0; i < n; i++)
			pthread_kill(tids[i], FUSEDEV_KICK_SIGNAL);
		poll(NULL, 0, 10);
	}
	for (unsigned i = 0; i < n; i++)
		pthread_join(tids[i], NULL);
}

int fusedev_serve(int fd, const char *mountpoint, struct fs_server *s, unsigned threads, int stop_fd,
		  struct rv_err *err)
{
	if (threads == 0 || threads > FUSEDEV_MAX_THREADS)
		return rv_failx(err, EINVAL, "%u serving threads: use 1 to %u", threads, FUSEDEV_MAX_THREADS);
	int fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0)
		return rv_fail(err, errno, "make the /dev/fuse fd blocking");
	struct sigaction kick = { .sa_handler = kick_handler }, old;
	if (sigaction(FUSEDEV_KICK_SIGNAL, &kick, &old) < 0)
		return rv_fail(err, errno, "install the serving threads' wake-up signal");

	struct pool p = { .fd = fd, .s = s };
	/* Found now, before any thread serves: finding it must never wait on
	 * the mount itself. */
	readahead_path(mountpoint, p.readahead, sizeof(p.readahead));
	_cleanup_close_ int quit = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (quit < 0) {
		sigaction(FUSEDEV_KICK_SIGNAL, &old, NULL);
		return rv_fail(err, errno, "eventfd");
	}
	p.quit_fd = quit;
	pthread_mutex_init(&p.lock, NULL);
	fs_server_set_workers(s, threads);

	pthread_t tids[FUSEDEV_MAX_THREADS];
	unsigned started = 0;
	for (; started < threads; started++) {
		atomic_fetch_add(&p.running, 1);
		int rc = pthread_create(&tids[started], NULL, serve_thread, &p);
		if (rc != 0) {
			atomic_fetch_sub(&p.running, 1);
			struct rv_err e;
			rv_fail(&e, rc, "start serving thread %u of %u", started + 1, threads);
			pool_fail(&p, &e);
			break;
		}
	}
	wait_for_stop(&p, stop_fd);
	stop_threads(&p, tids, started);
	sigaction(FUSEDEV_KICK_SIGNAL, &old, NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.failed) {
		*err = p.err;
		return rv_wrap(err, "serve /dev/fuse");
	}
	return 0;
}
