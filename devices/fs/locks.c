/* POSIX record locks and flock, held on the host so that a guest's locks
 * conflict with everyone else's on the same files: host processes, and other
 * VMs sharing a volume.
 *
 * flock locks belong to an open file description, and each guest open() is
 * one FUSE handle with its own host fd, so flock(2) on that fd is exact.
 * POSIX locks belong to a process (the client's lock owner) across all its
 * fds of a file: each (inode, owner) pair gets a host fd of its own and the
 * locks are OFD locks on it. Closing that fd when the owner closes any fd of
 * the file (FLUSH) drops them all, which is POSIX's rule.
 *
 * SETLKW waits by polling with a growing pause, so a FUSE_INTERRUPT (the
 * waiting guest process got a signal) or the server stopping ends it at once,
 * and no lock is held across a sleep. A waiter occupies a worker, so at most
 * max_lock_waiters wait at a time; one more gets EDEADLK rather than leaving
 * no worker for the request that would release the lock.
 *
 * A removed export's owners go with it (fs_locks_drop_export), and its
 * waiters stop at their next attempt (ESTALE): neither keeps its files, or
 * the detached mount tree they are on, open for the pod's life. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#define LOCK_BUCKETS 256u
#define MAX_LOCK_OWNERS 1024u           /* host fds kept for POSIX lock owners */
#define WAIT_FIRST_NS 1000000L          /* 1 ms, doubling up to ... */
#define WAIT_MAX_NS 32000000L           /* ... 32 ms between attempts */
#define FUSE_OFFSET_MAX 0x7fffffffffffffffull

struct fs_lock_owner {
	uint64_t nodeid, owner;
	int fd;
	struct fs_lock_owner *next;
};

static unsigned bucket(uint64_t nodeid, uint64_t owner)
{
	return (unsigned)((nodeid * 0x9e3779b97f4a7c15ull ^ owner) >> 40) % LOCK_BUCKETS;
}

int fs_locks_init(struct fs_server *s)
{
	s->lock_owners = calloc(LOCK_BUCKETS, sizeof(*s->lock_owners));
	if (!s->lock_owners)
		return -ENOMEM;
	pthread_mutex_init(&s->locks_lock, NULL);
	return 0;
}

void fs_server_set_workers(struct fs_server *s, unsigned n)
{
	pthread_mutex_lock(&s->locks_lock);
	unsigned waiters = n ? n - 1 : 0;
	s->max_lock_waiters = waiters < FS_MAX_LOCK_WAITERS ? waiters : FS_MAX_LOCK_WAITERS;
	pthread_mutex_unlock(&s->locks_lock);
}

void fs_locks_free(struct fs_server *s)
{
	if (!s->lock_owners)
		return;
	for (unsigned b = 0; b < LOCK_BUCKETS; b++) {
		for (struct fs_lock_owner *o = s->lock_owners[b], *next; o; o = next) {
			next = o->next;
			close(o->fd);
			free(o);
		}
	}
	free(s->lock_owners);
	s->lock_owners = NULL;
	pthread_mutex_destroy(&s->locks_lock);
}

/* locks_lock held. */
static struct fs_lock_owner **owner_slot(struct fs_server *s, uint64_t nodeid, uint64_t owner)
{
	struct fs_lock_owner **pp = &s->lock_owners[bucket(nodeid, owner)];

	while (*pp && ((*pp)->nodeid != nodeid || (*pp)->owner != owner))
		pp = &(*pp)->next;
	return pp;
}

/* A dup of the owner's fd (sharing its open file description, so its locks),
 * made on first use when `create`. -errno, or -ENOENT when there is none. */
static int owner_fd(struct fs_server *s, struct fs_inode *i, uint64_t owner, bool create)
{
	int fd = -ENOENT;

	pthread_mutex_lock(&s->locks_lock);
	struct fs_lock_owner **pp = owner_slot(s, i->nodeid, owner);
	if (*pp) {
		fd = fcntl((*pp)->fd, F_DUPFD_CLOEXEC, 0);
		fd = fd < 0 ? -errno : fd;
	} else if (create && s->nlock_owners >= MAX_LOCK_OWNERS) {
		fd = -ENOLCK;
	} else if (create && !fs_export_live(s, i->export)) {
		/* Removed, and its owners dropped or about to be (the removal
		 * marks the export before it takes locks_lock to drop them):
		 * one made now would be left behind. */
		fd = -ESTALE;
	} else if (create) {
		/* Write locks need a writable fd; a directory, a read-only export
		 * or a file the host cannot open for writing gets read locks only. */
		bool dir = i->type == S_IFDIR;
		int own = dir || fs_export_readonly(s, i->export) ? -1 : fs_reopen(s, i, O_RDWR);
		if (own < 0)
			own = fs_reopen(s, i, dir ? O_RDONLY | O_DIRECTORY : O_RDONLY);
		struct fs_lock_owner *o = own < 0 ? NULL : malloc(sizeof(*o));
		if (!o) {
			fd = own < 0 ? -errno : -ENOMEM;
			if (own >= 0)
				close(own);
		} else {
			*o = (struct fs_lock_owner){ .nodeid = i->nodeid, .owner = owner, .fd = own };
			*pp = o;
			s->nlock_owners++;
			fd = fcntl(own, F_DUPFD_CLOEXEC, 0);
			fd = fd < 0 ? -errno : fd;
		}
	}
	pthread_mutex_unlock(&s->locks_lock);
	return fd;
}

/* The owner closed an fd of the file: all its POSIX locks on it go. */
void fs_locks_flush(struct fs_server *s, uint64_t nodeid, uint64_t owner)
{
	pthread_mutex_lock(&s->locks_lock);
	struct fs_lock_owner **pp = owner_slot(s, nodeid, owner), *o = *pp;
	if (o) {
		*pp = o->next;
		s->nlock_owners--;
		close(o->fd);
		free(o);
	}
	pthread_mutex_unlock(&s->locks_lock);
}

void fs_locks_drop_export(struct fs_server *s, unsigned export, uint64_t seq_below)
{
	pthread_mutex_lock(&s->locks_lock);
	for (unsigned b = 0; b < LOCK_BUCKETS; b++) {
		for (struct fs_lock_owner **pp = &s->lock_owners[b]; *pp;) {
			struct fs_lock_owner *o = *pp;
			if (o->nodeid >> FS_NODEID_SLOT_SHIFT != export ||
			    (o->nodeid & FS_NODEID_SEQ_MASK) >= seq_below) {
				pp = &o->next;
				continue;
			}
			*pp = o->next;
			s->nlock_owners--;
			close(o->fd);
			free(o);
		}
	}
	pthread_mutex_unlock(&s->locks_lock);
}

/* The client's lock as a struct flock, or -EINVAL for a range or type it
 * could not have meant. */
static int to_flock(const struct fuse_file_lock *lk, struct flock *fl)
{
	if (lk->start > FUSE_OFFSET_MAX || lk->end > FUSE_OFFSET_MAX || lk->start > lk->end)
		return -EINVAL;
	if (lk->type != F_RDLCK && lk->type != F_WRLCK && lk->type != F_UNLCK)
		return -EINVAL;
	*fl = (struct flock){
		.l_type = (short)lk->type, .l_whence = SEEK_SET, .l_start = (off_t)lk->start,
		.l_len = lk->end == FUSE_OFFSET_MAX ? 0 : (off_t)(lk->end - lk->start + 1),
	};
	return 0;
}

/* Registers a waiter for request `unique`; false when max_lock_waiters wait. */
static bool wait_begin(struct fs_server *s, uint64_t unique, unsigned *slot)
{
	bool ok = false;

	pthread_mutex_lock(&s->locks_lock);
	for (unsigned k = 0; k < s->max_lock_waiters && !ok && !s->waits_cancelled; k++) {
		if (!s->waits[k].busy) {
			s->waits[k] = (struct fs_lock_wait){ .unique = unique, .busy = true };
			*slot = k;
			ok = true;
		}
	}
	pthread_mutex_unlock(&s->locks_lock);
	return ok;
}

static bool wait_cancelled(struct fs_server *s, unsigned slot)
{
	pthread_mutex_lock(&s->locks_lock);
	bool c = s->waits[slot].interrupted || s->waits_cancelled;
	pthread_mutex_unlock(&s->locks_lock);
	return c;
}

static void wait_end(struct fs_server *s, unsigned slot)
{
	pthread_mutex_lock(&s->locks_lock);
	s->waits[slot].busy = false;
	pthread_mutex_unlock(&s->locks_lock);
}

void fs_locks_interrupt(struct fs_server *s, uint64_t unique)
{
	pthread_mutex_lock(&s->locks_lock);
	for (unsigned k = 0; k < FS_MAX_LOCK_WAITERS; k++)
		if (s->waits[k].busy && s->waits[k].unique == unique)
			s->waits[k].interrupted = true;
	pthread_mutex_unlock(&s->locks_lock);
}

void fs_server_cancel_waits(struct fs_server *s, bool for_good)
{
	pthread_mutex_lock(&s->locks_lock);
	for (unsigned k = 0; k < FS_MAX_LOCK_WAITERS; k++)
		s->waits[k].interrupted = s->waits[k].busy;
	s->waits_cancelled |= for_good;
	pthread_mutex_unlock(&s->locks_lock);
}

void fs_server_allow_waits(struct fs_server *s)
{
	pthread_mutex_lock(&s->locks_lock);
	s->waits_cancelled = false;
	pthread_mutex_unlock(&s->locks_lock);
}

/* One non-blocking attempt: 0, or -errno (-EAGAIN: someone holds it). */
static int try_lock(int fd, bool flock_style, const struct flock *fl)
{
	int rc;

	if (flock_style) {
		int op = fl->l_type == F_RDLCK ? LOCK_SH : fl->l_type == F_WRLCK ? LOCK_EX : LOCK_UN;
		rc = flock(fd, op | LOCK_NB);
		return rc < 0 ? (errno == EWOULDBLOCK ? -EAGAIN : -errno) : 0;
	}
	struct flock copy = *fl;
	rc = fcntl(fd, F_OFD_SETLK, &copy);
	return rc < 0 ? (errno == EACCES ? -EAGAIN : -errno) : 0;
}

/* SETLKW: tries until it gets the lock, the request is interrupted (EINTR),
 * the file's export is removed (ESTALE) or too many already wait (EDEADLK). */
static int wait_lock(struct fs_req *r, unsigned export, int fd, bool flock_style,
		     const struct flock *fl)
{
	unsigned slot;
	long pause = WAIT_FIRST_NS;
	int rc;

	if (!wait_begin(r->s, r->h.unique, &slot))
		return -EDEADLK;
	while ((rc = try_lock(fd, flock_style, fl)) == -EAGAIN) {
		if (wait_cancelled(r->s, slot)) {
			rc = -EINTR;
			break;
		}
		if (!fs_export_live(r->s, export)) {
			rc = -ESTALE;
			break;
		}
		struct timespec ts = { 0, pause };
		nanosleep(&ts, NULL);
		pause = pause * 2 < WAIT_MAX_NS ? pause * 2 : WAIT_MAX_NS;
	}
	wait_end(r->s, slot);
	return rc;
}

/* The fd a lock request works on: the handle's own for flock, the owner's
 * for POSIX locks (none yet and an unlock: -ENOENT, nothing to do). */
static int lock_fd(struct fs_req *r, struct fs_inode *i, const struct fuse_lk_in *in,
		   bool flock_style, bool unlock)
{
	if (!flock_style)
		return owner_fd(r->s, i, in->owner, !unlock);
	struct fs_handle *h = fs_handle_get(r->s, in->fh, false);
	if (!h)
		return -EBADF;
	int fd = fcntl(h->fd, F_DUPFD_CLOEXEC, 0);
	fs_handle_put(r->s, h);
	return fd < 0 ? -errno : fd;
}

static struct fs_inode *lock_inode(struct fs_req *r)
{
	struct fs_inode *i = r->h.nodeid == FS_ROOT_ID ? NULL : fs_inode_get(r->s, r->h.nodeid);

	if (!i)
		fs_reply_err(r, r->h.nodeid == FS_ROOT_ID ? ENOLCK : fs_inode_gone(r->s, r->h.nodeid));
	else if (i->type != S_IFREG && i->type != S_IFDIR) {
		fs_reply_err(r, ENOLCK);     /* reopening a device or FIFO could do anything */
		fs_inode_put(r->s, i);
		i = NULL;
	}
	return i;
}

void fs_op_setlk(struct fs_req *r)
{
	const struct fuse_lk_in *in = fs_arg(r, sizeof(*in));
	struct flock fl;

	if (!in)
		return;
	if (to_flock(&in->lk, &fl) < 0) {
		fs_reply_err(r, EINVAL);
		return;
	}
	struct fs_inode *i = lock_inode(r);
	if (!i)
		return;
	bool flock_style = in->lk_flags & FUSE_LK_FLOCK;
	int fd = lock_fd(r, i, in, flock_style, fl.l_type == F_UNLCK);
	int rc = fd == -ENOENT ? 0 : fd;
	if (fd >= 0) {
		rc = try_lock(fd, flock_style, &fl);
		if (rc == -EAGAIN && r->h.opcode == FUSE_SETLKW)
			rc = wait_lock(r, i->export, fd, flock_style, &fl);
		close(fd);
	}
	fs_inode_put(r->s, i);
	if (rc < 0)
		fs_reply_err(r, -rc);
	else
		fs_reply(r, NULL, 0);
}

void fs_op_getlk(struct fs_req *r)
{
	const struct fuse_lk_in *in = fs_arg(r, sizeof(*in));
	struct fuse_lk_out out = { 0 };
	struct flock fl;

	if (!in)
		return;
	if ((in->lk_flags & FUSE_LK_FLOCK) || to_flock(&in->lk, &fl) < 0 || fl.l_type == F_UNLCK) {
		fs_reply_err(r, EINVAL);
		return;
	}
	struct fs_inode *i = lock_inode(r);
	if (!i)
		return;
	/* The owner's own fd, so that its own locks do not count as conflicts. */
	int fd = owner_fd(r->s, i, in->owner, true);
	int rc = fd < 0 ? fd : fcntl(fd, F_OFD_GETLK, &fl) < 0 ? -errno : 0;
	if (fd >= 0)
		close(fd);
	fs_inode_put(r->s, i);
	if (rc < 0) {
		fs_reply_err(r, -rc);
		return;
	}
	out.lk.type = (uint32_t)fl.l_type;
	if (fl.l_type != F_UNLCK) {
		out.lk.start = (uint64_t)fl.l_start;
		out.lk.end = fl.l_len == 0 ? FUSE_OFFSET_MAX : (uint64_t)(fl.l_start + fl.l_len - 1);
		out.lk.pid = 0;      /* the holder is no process the guest could name */
	}
	fs_reply(r, &out, sizeof(out));
}
