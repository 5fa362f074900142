#include "devices/fs/fusedev.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

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

/* Shared by the serving threads. Each thread has its own epoll set holding
 * the /dev/fuse fd with EPOLLEXCLUSIVE, so a request wakes one idle thread
 * instead of all of them, plus the two stop fds without it, so a stop wakes
 * every thread. Blocking read()s would wake one thread too, but a thread
 * blocked in read() on /dev/fuse cannot be told to stop. */
struct pool {
	int fd;
	struct fs_server *s;
	int stop_fd;                 /* the caller's, or -1 */
	int quit_fd;                 /* ours: written when one thread ends the serving */
	pthread_mutex_t lock;
	bool failed;
	struct rv_err err;           /* the first failure */
};

enum { EV_FUSE, EV_STOP, EV_QUIT };

static void pool_quit(struct pool *p)
{
	uint64_t one = 1;

	/* A thread waiting for a lock would never see the quit below. */
	fs_server_cancel_waits(p->s, true);
	/* The eventfd's counter cannot overflow with one write per thread. */
	if (write(p->quit_fd, &one, sizeof(one)) < 0) {
		/* nothing to do: every thread already sees quit_fd readable */
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

static int epoll_add(int ep, int fd, uint32_t events, uint64_t tag, struct rv_err *err)
{
	struct epoll_event ev = { .events = events, .data.u64 = tag };

	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
		return rv_fail(err, errno, "epoll_ctl add fd %d", fd);
	return 0;
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

/* Reads and serves requests until told to stop. Returns 1 when the
 * filesystem went away or a stop fd fired, -1 on failure. */
static int serve_loop(struct pool *p, int ep, uint8_t *in, uint8_t *out, struct rv_err *err)
{
	struct epoll_event evs[3];

	for (;;) {
		int n = epoll_wait(ep, evs, 3, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return rv_fail(err, errno, "epoll_wait");
		}
		bool request = false;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.u64 != EV_FUSE)
				return 1;
			request = true;
		}
		if (!request)
			continue;
		ssize_t r = read(p->fd, in, FS_MAX_REQ_BYTES);
		if (r < 0) {
			/* EAGAIN: another thread took the request first. */
			if (errno == EAGAIN || errno == EINTR || errno == ENOENT)
				continue;
			if (errno == ENODEV)
				return 1;
			return rv_fail(err, errno, "read a request from /dev/fuse");
		}
		if ((size_t)r < sizeof(struct fuse_in_header))
			return rv_failx(err, EIO, "a %zd-byte request from /dev/fuse", r);
		struct iovec iv = { .iov_base = in, .iov_len = (size_t)r };
		struct iovec ov = { .iov_base = out, .iov_len = FS_MAX_REQ_BYTES };
		struct fs_iov fin = { .iov = &iv, .n = 1, .bytes = (size_t)r };
		struct fs_iov fout = { .iov = &ov, .n = 1, .bytes = FS_MAX_REQ_BYTES };
		size_t len = fs_server_handle(p->s, fin, fout);
		if (len > FS_MAX_REQ_BYTES)
			return rv_failx(err, EIO, "the server claims a %zu-byte reply", len);
		if (len > 0 && reply(p, in, out, len, err) < 0)
			return -1;
	}
}

static void serve_thread_run(struct pool *p)
{
	struct rv_err err;
	_cleanup_close_ int ep = epoll_create1(EPOLL_CLOEXEC);
	_cleanup_free_ uint8_t *in = malloc(FS_MAX_REQ_BYTES);
	_cleanup_free_ uint8_t *out = malloc(FS_MAX_REQ_BYTES);

	if (ep < 0) {
		rv_fail(&err, errno, "epoll_create1");
		pool_fail(p, &err);
		return;
	}
	if (!in || !out) {
		rv_fail(&err, ENOMEM, "allocate %u-byte request buffers", FS_MAX_REQ_BYTES);
		pool_fail(p, &err);
		return;
	}
	if (epoll_add(ep, p->fd, EPOLLIN | EPOLLEXCLUSIVE, EV_FUSE, &err) < 0 ||
	    epoll_add(ep, p->quit_fd, EPOLLIN, EV_QUIT, &err) < 0 ||
	    (p->stop_fd >= 0 && epoll_add(ep, p->stop_fd, EPOLLIN, EV_STOP, &err) < 0)) {
		pool_fail(p, &err);
		return;
	}
	if (serve_loop(p, ep, in, out, &err) < 0)
		pool_fail(p, &err);
	else
		pool_quit(p);   /* unmounted or stopped: the others end too */
}

static void *serve_thread(void *arg)
{
	serve_thread_run(arg);
	return NULL;
}

int fusedev_serve(int fd, struct fs_server *s, unsigned threads, int stop_fd, struct rv_err *err)
{
	if (threads == 0 || threads > FUSEDEV_MAX_THREADS)
		return rv_failx(err, EINVAL, "%u serving threads: use 1 to %u", threads, FUSEDEV_MAX_THREADS);
	int fl = fcntl(fd, F_GETFL);
	/* Non-blocking, so that a thread woken for a request another thread
	 * already took goes back to waiting instead of sleeping in read(). */
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return rv_fail(err, errno, "make the /dev/fuse fd non-blocking");

	struct pool p = { .fd = fd, .s = s, .stop_fd = stop_fd };
	_cleanup_close_ int quit = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (quit < 0)
		return rv_fail(err, errno, "eventfd");
	p.quit_fd = quit;
	pthread_mutex_init(&p.lock, NULL);
	fs_server_set_workers(s, threads);

	pthread_t tids[FUSEDEV_MAX_THREADS];
	unsigned started = 0;
	for (; started + 1 < threads; started++) {
		int rc = pthread_create(&tids[started], NULL, serve_thread, &p);
		if (rc != 0) {
			struct rv_err e;
			rv_fail(&e, rc, "start serving thread %u of %u", started + 2, threads);
			pool_fail(&p, &e);
			break;
		}
	}
	serve_thread_run(&p);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tids[i], NULL);
	pthread_mutex_destroy(&p.lock);
	if (p.failed) {
		*err = p.err;
		return rv_wrap(err, "serve /dev/fuse");
	}
	return 0;
}
