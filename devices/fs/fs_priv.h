/* Shared by the FUSE server's files: server.c (requests, replies, INIT, the
 * synthetic root), inode.c (inode and handle tables), ops_node.c (names and
 * attributes), ops_file.c (file I/O), ops_dir.c (directories). */
#ifndef RV_FS_PRIV_H
#define RV_FS_PRIV_H

#include <linux/fuse.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "devices/fs/server.h"

#define FS_ROOT_ID FUSE_ROOT_ID         /* the synthetic root of all exports */
#define FS_MIN_MINOR 31u                /* oldest FUSE 7.x client we serve (Linux 5.4) */
#define FS_HASH_BUCKETS 16384u
#define FS_MAX_HANDLES 16384u
#define FS_MAX_NAME_BYTES 255u
#define FS_MAX_XATTR_BYTES (64u * 1024)
#define FS_MAX_LOCK_WAITERS 16u         /* SETLKW requests waiting at once, at most */
#define FS_NO_EXPORT FS_MAX_EXPORTS     /* the synthetic root's: it is in no export */

/* A node id is its export's slot in the top bits and a sequence number below,
 * never reused. The slot tells a node id of a removed export (ESTALE) from
 * one never handed out (EBADF) without remembering anything per inode. */
#define FS_NODEID_SLOT_SHIFT 56
#define FS_NODEID_SEQ_MASK ((1ull << FS_NODEID_SLOT_SHIFT) - 1)
_Static_assert(FS_MAX_EXPORTS <= (1u << (64 - FS_NODEID_SLOT_SHIFT)), "slot bits of a node id");

struct fs_inode {
	uint64_t nodeid;
	int fd;                         /* O_PATH|O_NOFOLLOW; -1: the synthetic root, or closed
					 * to stay under the fd budget (reopened from handle) */
	struct file_handle *handle;     /* taken when the fd is first closed for the budget */
	bool keeps_fd;                  /* no usable handle: this inode keeps its fd for good */
	struct fs_inode *lru_prev, *lru_next;   /* unused, fd open: may be closed */
	bool on_lru;
	dev_t dev;
	ino_t ino;
	mode_t type;                    /* S_IFMT bits */
	unsigned export;
	bool export_root;               /* pinned: never forgotten */
	bool gone;                      /* its export was removed: out of the tables,
					 * freed when its last request ends */
	bool keyed;                     /* in by_key: later lookups of (dev, ino) find it */
	uint64_t nlookup;               /* the client's references (LOOKUP, FORGET) */
	uint64_t refs;                  /* requests using it right now */
	struct fs_inode *next_by_id, *next_by_key;
};

/* An export slot. LIVE: in the synthetic root. DRAINING: removed, but
 * requests in flight still use some of its inodes or handles; its flags stay
 * valid for them. FREE once none remains: a later add may take it. */
enum fs_export_state { FS_EXPORT_FREE, FS_EXPORT_LIVE, FS_EXPORT_DRAINING };

struct fs_export {
	enum fs_export_state state;     /* written under the lock, atomically (locks.c
					 * reads it without) */
	size_t nobjs;                   /* its inodes and handles still allocated */
	uint64_t stale_below;           /* node id sequence numbers below this with this
					 * slot were a removed export's; kept across reuse */
	char name[FS_EXPORT_NAME_MAX];
	char *path;                     /* as the caller gave it: the jail binds it */
	int jail_fd;                    /* path opened in the jail's namespace, till bound */
	int mount_fd;                   /* open_by_handle_at's anchor: the root, O_RDONLY */
	int mount_id;                   /* handles only for inodes on the root's own mount */
	bool readonly;
	enum fs_cache cache;
	bool hide_kernel_fs;
	dev_t host_dev_fs;              /* hide_kernel_fs: the host's /dev (a devtmpfs
					 * says it is a tmpfs), 0 when not known */
	struct fs_inode *root;          /* NULL once removed */
};

struct fs_handle {
	int fd;                         /* -1 for a synthetic-root handle */
	bool in_use;
	uint32_t gen;                   /* part of the fh: a stale fh never matches */
	bool dir;
	bool synthetic;                 /* a directory handle on the synthetic root */
	unsigned export;
	uint64_t refs;                  /* requests using it; RELEASE waits for none */
	bool released;
	pthread_mutex_t dir_lock;       /* READDIR's seek + getdents pair */
};

struct fs_lock_owner;
struct fs_lock_wait {
	uint64_t unique;                /* the SETLKW request waiting */
	bool busy, interrupted;
};

struct fs_server {
	struct fs_options opt;
	const struct rv_log *log;
	int proc_fd;                    /* /proc/self/fd: reopen an O_PATH fd with real flags */
	pthread_mutex_t lock;           /* tables, exports, INIT state */
	struct fs_export exports[FS_MAX_EXPORTS];
	unsigned nslots;                /* slots ever used: [0, nslots) may hold FREE ones */
	unsigned nlive;                 /* LIVE exports; written under the lock, atomically
					 * (GETATTR of the root reads it without) */
	struct fs_inode root;           /* FS_ROOT_ID, never in the tables */
	struct fs_inode *by_id[FS_HASH_BUCKETS];
	struct fs_inode *by_key[FS_HASH_BUCKETS];
	size_t ninodes;
	size_t open_fds, fd_budget;     /* inode fds open, and how many may stay open */
	struct fs_inode *lru_head, *lru_tail;
	uint32_t max_handles;
	uint64_t next_seq;              /* of node ids (FS_NODEID_SEQ_MASK) */
	struct fs_handle *handles;      /* FS_MAX_HANDLES slots, allocated lazily */
	uint32_t *free_slots;           /* stack of released slots below handles_high */
	uint32_t nfree, handles_used, handles_high;
	bool initialized;
	uint32_t minor;                 /* negotiated protocol minor */
	uint32_t flags;                 /* negotiated FUSE_* init flags */
	pthread_mutex_t locks_lock;     /* the lock owners and waiters below */
	struct fs_lock_owner **lock_owners;     /* hash of (nodeid, owner) -> host fd */
	size_t nlock_owners;
	struct fs_lock_wait waits[FS_MAX_LOCK_WAITERS];
	unsigned max_lock_waiters;      /* transport's threads - 1 */
	bool waits_cancelled;           /* stopping: no SETLKW waits any more */
};

/* One request in flight. */
struct fs_req {
	struct fs_server *s;
	struct fuse_in_header h;
	const uint8_t *arg;             /* the request after the header (a private copy) */
	size_t arg_len;
	struct fs_iov in, out;
	size_t data_off;                /* WRITE: where its payload starts in `in` */
	size_t reply_len;
	struct fs_read_ref *ref;        /* NULL: the transport takes data only inline */
};

/* server.c: replies. Each returns nothing; the reply length lands in r->reply_len. */
void fs_reply_err(struct fs_req *r, int err);
void fs_reply(struct fs_req *r, const void *body, size_t len);
/* Header for a reply whose body (len bytes) the caller already wrote at
 * fs_out_body(r) onwards through fs_out_write. */
void fs_reply_written(struct fs_req *r, size_t len);
size_t fs_out_write(struct fs_req *r, size_t off, const void *buf, size_t len);
/* Body room in `out` (after the reply header). */
size_t fs_out_room(const struct fs_req *r);
/* Fixed-size argument at the start of the request, or NULL (then the request
 * got EINVAL). */
const void *fs_arg(struct fs_req *r, size_t len);
/* A NUL-terminated name at arg+off (off advanced past it): one component, no
 * '/', not "." or "..", at most FS_MAX_NAME_BYTES. NULL: replied EINVAL. */
const char *fs_arg_name(struct fs_req *r, size_t *off);
const char *fs_arg_str(struct fs_req *r, size_t *off, size_t max);  /* any bytes but NUL */
void fs_attr_from_stat(struct fuse_attr *a, const struct stat *st);
void fs_timeouts(const struct fs_server *s, unsigned export, uint64_t *sec, uint32_t *nsec);
bool fs_export_readonly(const struct fs_server *s, unsigned export);
/* Whether export is in the synthetic root; without the lock (an atomic read). */
static inline bool fs_export_live(const struct fs_server *s, unsigned export)
{
	return export < FS_MAX_EXPORTS &&
	       __atomic_load_n(&s->exports[export].state, __ATOMIC_ACQUIRE) == FS_EXPORT_LIVE;
}
/* e's mount_fd and mount_id for open_by_handle_at, from its root's fd. */
void fs_export_anchor(const struct fs_server *s, struct fs_export *e, int root_fd);
/* Whether fd (st its stat), reached from a directory on another device,
 * is on a filesystem the export hides (fs_export_cfg.hide_kernel_fs). */
bool fs_export_hides(const struct fs_server *s, unsigned export, int fd, const struct stat *st);

/* inode.c. fs_inode_get: a nodeid the client holds, with a request reference
 * (fs_inode_put drops it); NULL if it was never handed out or is forgotten. */
struct fs_inode *fs_inode_get(struct fs_server *s, uint64_t nodeid);
void fs_inode_put(struct fs_server *s, struct fs_inode *i);
/* The error for a node id fs_inode_get did not find: ESTALE when it named
 * an inode of a removed export, EBADF otherwise. */
int fs_inode_gone(struct fs_server *s, uint64_t nodeid);
/* Takes fd (an O_PATH fd of a file inside `export`) and returns the inode
 * for it with one more client lookup and a request reference (fs_inode_put);
 * an existing inode keeps its own fd.
 * A removed export gets no new inode (ESTALE).
 * `fresh`: the file was just created, so an inode already known by its
 * (dev, ino) is a dead file whose number the host reused (an O_PATH fd does
 * not pin the number on every filesystem: 9p does not); it stops being found. */
struct fs_inode *fs_inode_found(struct fs_server *s, int fd, const struct stat *st,
				unsigned export, bool fresh, int *err);
void fs_inode_forget(struct fs_server *s, uint64_t nodeid, uint64_t nlookup);
int fs_inode_add_export_root(struct fs_server *s, int fd, const struct stat *st, unsigned export,
			     struct fs_inode **out);
void fs_inodes_free(struct fs_server *s);
/* Lock held, export just made DRAINING: its inodes leave the tables; each
 * is freed now, or by the fs_inode_put that ends its last request. */
void fs_inodes_drop_export(struct fs_server *s, unsigned export);

/* Handles: fh values the client got from OPEN/CREATE/OPENDIR. A removed
 * export gets no new handle (-ESTALE). */
int fs_handle_new(struct fs_server *s, int fd, bool dir, bool synthetic, unsigned export,
		  uint64_t *fh);
struct fs_handle *fs_handle_get(struct fs_server *s, uint64_t fh, bool dir);
void fs_handle_put(struct fs_server *s, struct fs_handle *h);
int fs_handle_release(struct fs_server *s, uint64_t fh, bool dir);
void fs_handles_free(struct fs_server *s);
/* Lock held, export just made DRAINING: its handles are released as by
 * RELEASE; each closes now or at its last fs_handle_put. */
void fs_handles_drop_export(struct fs_server *s, unsigned export);

/* Open an inode's O_PATH fd again with real flags (never follows a symlink:
 * the magic link names the inode itself). */
int fs_reopen(const struct fs_server *s, const struct fs_inode *i, int flags);

/* FUSE_HANDLE_KILLPRIV_V2: the client leaves clearing set-ID bits on a
 * write, truncate or O_TRUNC open by a caller without CAP_FSETID to us. Our
 * host calls run with CAP_FSETID, so around such a call this thread drops it
 * from its effective set (capabilities are per thread) and the host kernel
 * clears the bits itself, by its own rules, under its own inode lock. */
struct fs_fsetid {
	bool dropped;
	uint32_t effective[2];
};
void fs_fsetid_drop(bool want, struct fs_fsetid *saved);
void fs_fsetid_restore(const struct fs_fsetid *saved);   /* keeps errno */

/* locks.c */
int fs_locks_init(struct fs_server *s);
void fs_locks_free(struct fs_server *s);
void fs_locks_flush(struct fs_server *s, uint64_t nodeid, uint64_t owner);
void fs_locks_interrupt(struct fs_server *s, uint64_t unique);
/* A removed export's lock owners go: those of node ids in slot `export`
 * whose sequence number is below seq_below (its successor's are above). */
void fs_locks_drop_export(struct fs_server *s, unsigned export, uint64_t seq_below);

/* ops_*.c, locks.c: one handler per opcode. */
void fs_op_lookup(struct fs_req *r);
void fs_op_forget(struct fs_req *r);
void fs_op_batch_forget(struct fs_req *r);
void fs_op_getattr(struct fs_req *r);
void fs_op_setattr(struct fs_req *r);
void fs_op_readlink(struct fs_req *r);
void fs_op_symlink(struct fs_req *r);
void fs_op_mknod(struct fs_req *r);
void fs_op_mkdir(struct fs_req *r);
void fs_op_unlink(struct fs_req *r);
void fs_op_rmdir(struct fs_req *r);
void fs_op_rename(struct fs_req *r);
void fs_op_rename2(struct fs_req *r);
void fs_op_link(struct fs_req *r);
void fs_op_statfs(struct fs_req *r);
void fs_op_access(struct fs_req *r);
void fs_op_setxattr(struct fs_req *r);
void fs_op_getxattr(struct fs_req *r);
void fs_op_listxattr(struct fs_req *r);
void fs_op_removexattr(struct fs_req *r);
void fs_op_open(struct fs_req *r);
void fs_op_create(struct fs_req *r);
void fs_op_tmpfile(struct fs_req *r);
void fs_op_read(struct fs_req *r);
void fs_op_write(struct fs_req *r);
void fs_op_release(struct fs_req *r);
void fs_op_flush(struct fs_req *r);
void fs_op_fsync(struct fs_req *r);
void fs_op_fallocate(struct fs_req *r);
void fs_op_lseek(struct fs_req *r);
void fs_op_copy_file_range(struct fs_req *r);
void fs_op_getlk(struct fs_req *r);
void fs_op_setlk(struct fs_req *r);
void fs_op_opendir(struct fs_req *r);
void fs_op_readdir(struct fs_req *r);
void fs_op_readdirplus(struct fs_req *r);
void fs_op_releasedir(struct fs_req *r);
void fs_op_fsyncdir(struct fs_req *r);

/* ops_node.c, for ops_dir.c's READDIRPLUS and ops_file.c's CREATE: looks name
 * up under parent and fills e (one more client lookup on success). */
int fs_lookup_entry(struct fs_server *s, struct fs_inode *parent, const char *name, bool fresh,
		    struct fuse_entry_out *e);
void fs_entry_fill(struct fs_server *s, struct fs_inode *i, const struct stat *st,
		   struct fuse_entry_out *e);

/* Runs the creating ops with the caller's fsuid/fsgid so new files are theirs. */
struct fs_creds { int uid, gid; };
void fs_creds_enter(const struct fs_req *r, struct fs_creds *saved);
void fs_creds_leave(const struct fs_creds *saved);

#endif
