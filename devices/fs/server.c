/* The FUSE request server: framing, replies, INIT, dispatch and exports. */
#include "devices/fs/fs_priv.h"

#include <errno.h>
#include <linux/capability.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>


/* Arguments of every request but WRITE are small: names, an xattr value. */
#define FS_MAX_ARG_BYTES (FS_MAX_XATTR_BYTES + 2 * 4096u)

/* FUSE_DIRECT_IO_ALLOW_MMAP (1 << 36) as a flags2 bit; newer than our headers. */
#define FS_DIRECT_IO_ALLOW_MMAP2 (1u << (36 - 32))

#define AUTO_TIMEOUT_SEC 1u
#define ALWAYS_TIMEOUT_SEC 86400u

static size_t iov_copy(const struct fs_iov *v, size_t off, void *buf, size_t len, bool into_iov)
{
	size_t done = 0;

	for (unsigned i = 0; i < v->n && done < len; i++) {
		size_t seg = v->iov[i].iov_len;
		if (off >= seg) {
			off -= seg;
			continue;
		}
		size_t take = seg - off < len - done ? seg - off : len - done;
		uint8_t *p = (uint8_t *)v->iov[i].iov_base + off;
		if (into_iov)
			memcpy(p, (const uint8_t *)buf + done, take);
		else
			memcpy((uint8_t *)buf + done, p, take);
		done += take;
		off = 0;
	}
	return done;
}

size_t fs_out_room(const struct fs_req *r)
{
	return r->out.bytes - sizeof(struct fuse_out_header);
}

size_t fs_out_write(struct fs_req *r, size_t off, const void *buf, size_t len)
{
	return iov_copy(&r->out, sizeof(struct fuse_out_header) + off, (void *)buf, len, true);
}

static void reply_header(struct fs_req *r, int err, size_t body)
{
	struct fuse_out_header oh = { .len = (uint32_t)(sizeof(oh) + body), .error = -err,
				      .unique = r->h.unique };
	iov_copy(&r->out, 0, &oh, sizeof(oh), true);
	r->reply_len = oh.len;
}

void fs_reply_err(struct fs_req *r, int err)
{
	reply_header(r, err, 0);
}

void fs_reply_written(struct fs_req *r, size_t len)
{
	reply_header(r, 0, len);
}

void fs_reply(struct fs_req *r, const void *body, size_t len)
{
	/* A client that gave too little room for a fixed-size reply is broken. */
	if (len > fs_out_room(r)) {
		fs_reply_err(r, EINVAL);
		return;
	}
	fs_out_write(r, 0, body, len);
	reply_header(r, 0, len);
}

const void *fs_arg(struct fs_req *r, size_t len)
{
	if (r->arg_len < len) {
		fs_reply_err(r, EINVAL);
		return NULL;
	}
	return r->arg;
}

const char *fs_arg_str(struct fs_req *r, size_t *off, size_t max)
{
	if (*off > r->arg_len) {
		fs_reply_err(r, EINVAL);
		return NULL;
	}
	const char *s = (const char *)r->arg + *off;
	size_t left = r->arg_len - *off;
	const char *nul = memchr(s, '\0', left < max + 1 ? left : max + 1);
	if (!nul) {
		fs_reply_err(r, left > max ? ENAMETOOLONG : EINVAL);
		return NULL;
	}
	*off += (size_t)(nul - s) + 1;
	return s;
}

const char *fs_arg_name(struct fs_req *r, size_t *off)
{
	const char *name = fs_arg_str(r, off, FS_MAX_NAME_BYTES);

	if (name && (!*name || strchr(name, '/') || !strcmp(name, ".") || !strcmp(name, ".."))) {
		fs_reply_err(r, EINVAL);
		return NULL;
	}
	return name;
}

void fs_attr_from_stat(struct fuse_attr *a, const struct stat *st)
{
	*a = (struct fuse_attr){
		.ino = st->st_ino, .size = (uint64_t)st->st_size, .blocks = (uint64_t)st->st_blocks,
		.atime = (uint64_t)st->st_atim.tv_sec, .atimensec = (uint32_t)st->st_atim.tv_nsec,
		.mtime = (uint64_t)st->st_mtim.tv_sec, .mtimensec = (uint32_t)st->st_mtim.tv_nsec,
		.ctime = (uint64_t)st->st_ctim.tv_sec, .ctimensec = (uint32_t)st->st_ctim.tv_nsec,
		.mode = st->st_mode, .nlink = (uint32_t)st->st_nlink, .uid = st->st_uid,
		.gid = st->st_gid, .rdev = (uint32_t)st->st_rdev, .blksize = (uint32_t)st->st_blksize,
	};
}

void fs_timeouts(const struct fs_server *s, unsigned export, uint64_t *sec, uint32_t *nsec)
{
	/* Callers hold an inode or handle of export, so its slot is set and
	 * stays: its flags outlive a removal while its inodes and handles do.
	 * The synthetic root (FS_NO_EXPORT) has a cache mode of its own. */
	enum fs_cache c = export < FS_MAX_EXPORTS ? s->exports[export].cache : FS_CACHE_AUTO;

	*nsec = 0;
	*sec = c == FS_CACHE_NONE ? 0 : c == FS_CACHE_ALWAYS ? ALWAYS_TIMEOUT_SEC : AUTO_TIMEOUT_SEC;
}

bool fs_export_readonly(const struct fs_server *s, unsigned export)
{
	return export >= FS_MAX_EXPORTS || s->exports[export].readonly;     /* as fs_timeouts */
}

/* The kernel's own filesystems, by statfs f_type: what they hold is the
 * host kernel's state, not files a guest should read. */
static bool kernel_fs_type(long type)
{
	static const long types[] = {
		0x9fa0,      /* proc */
		0x62656572,  /* sysfs */
		0x64626720,  /* debugfs */
		0x74726163,  /* tracefs */
		0x73636673,  /* securityfs */
		0xcafe4a11,  /* bpf */
		0x27e0eb,    /* cgroup */
		0x63677270,  /* cgroup2 */
		0x1cd1,      /* devpts */
		0x6165676c,  /* pstore */
		0xde5e81e4,  /* efivarfs */
		0x62656570,  /* configfs */
		0x42494e4d,  /* binfmt_misc */
		0x65735543,  /* fusectl */
		0x19800202,  /* mqueue */
		0x958458f6,  /* hugetlbfs */
		0x6e736673,  /* nsfs */
	};

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if ((type & 0xffffffffL) == types[i])
			return true;
	return false;
}

bool fs_export_hides(const struct fs_server *s, unsigned export, int fd, const struct stat *st)
{
	struct statfs sf;

	if (export >= FS_MAX_EXPORTS || !s->exports[export].hide_kernel_fs)
		return false;
	if (s->exports[export].host_dev_fs && st->st_dev == s->exports[export].host_dev_fs)
		return true;
	return fstatfs(fd, &sf) < 0 || kernel_fs_type((long)sf.f_type);
}

void fs_creds_enter(const struct fs_req *r, struct fs_creds *saved)
{
	/* Per thread on Linux: other requests keep their own. Group first, while
	 * we still have the capability to change it. */
	saved->gid = setfsgid(r->h.gid);
	saved->uid = setfsuid(r->h.uid);
}

void fs_creds_leave(const struct fs_creds *saved)
{
	setfsuid((uid_t)saved->uid);
	setfsgid((gid_t)saved->gid);
}

int fs_reopen(const struct fs_server *s, const struct fs_inode *i, int flags)
{
	char name[16];

	snprintf(name, sizeof(name), "%d", i->fd);
	return openat(s->proc_fd, name, (flags & ~O_NOFOLLOW) | O_CLOEXEC);
}

static int caps(bool set, struct __user_cap_data_struct data[2])
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };

	return (int)syscall(set ? SYS_capset : SYS_capget, &h, data);
}

void fs_fsetid_drop(bool want, struct fs_fsetid *saved)
{
	struct __user_cap_data_struct data[2];

	saved->dropped = false;
	/* Without CAP_FSETID in the first place the host clears the bits anyway. */
	if (!want || caps(false, data) < 0 || !(data[0].effective & (1u << CAP_FSETID)))
		return;
	saved->effective[0] = data[0].effective;
	saved->effective[1] = data[1].effective;
	data[0].effective &= ~(1u << CAP_FSETID);
	saved->dropped = caps(true, data) == 0;
}

void fs_fsetid_restore(const struct fs_fsetid *saved)
{
	struct __user_cap_data_struct data[2];
	int code = errno;

	if (saved->dropped && caps(false, data) == 0) {
		data[0].effective = saved->effective[0];
		data[1].effective = saved->effective[1];
		caps(true, data);
	}
	errno = code;
}

/* --- INIT / DESTROY ------------------------------------------------------ */

static void op_init(struct fs_req *r)
{
	struct fs_server *s = r->s;
	const struct fuse_init_in *in = fs_arg(r, offsetof(struct fuse_init_in, flags2));
	if (!in)
		return;
	struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION, .minor = FUSE_KERNEL_MINOR_VERSION };
	if (in->major > FUSE_KERNEL_VERSION) {
		/* The client retries with our major (FUSE's rule). */
		fs_reply(r, &out, FUSE_COMPAT_INIT_OUT_SIZE);
		return;
	}
	if (in->major < FUSE_KERNEL_VERSION || in->minor < FS_MIN_MINOR) {
		fs_reply_err(r, EPROTO);
		return;
	}
	uint32_t want = FUSE_ASYNC_READ | FUSE_ATOMIC_O_TRUNC | FUSE_BIG_WRITES | FUSE_DO_READDIRPLUS |
			FUSE_PARALLEL_DIROPS | FUSE_MAX_PAGES | FUSE_CACHE_SYMLINKS |
			FUSE_POSIX_LOCKS | FUSE_FLOCK_LOCKS | FUSE_HANDLE_KILLPRIV_V2 |
			(s->opt.writeback ? FUSE_WRITEBACK_CACHE : 0);
	uint32_t max_write = s->opt.max_write ? s->opt.max_write : FS_MAX_WRITE_BYTES;
	/* HANDLE_KILLPRIV_V2: otherwise the client asks GETXATTR
	 * security.capability before every write(2) (its superblock lacks
	 * SB_NOSEC): a round trip per write for an xattr almost never there.
	 * READDIRPLUS always, not READDIRPLUS_AUTO: AUTO sends plus only for a
	 * directory's first page, so `du`, `find`, `ls -l` and `git status` paid
	 * a LOOKUP round trip per entry (du of 20k files: 1.1-1.6 s, now 0.7 s;
	 * bindfs 0.9 s). A names-only listing now costs us a lookup per entry,
	 * without a round trip. */
	/* flags2 arrives with FUSE_INIT_EXT (7.36+). Shared writable mmap of a
	 * direct-I/O file (--fs-cache none: SQLite's WAL index) needs 7.39's
	 * DIRECT_IO_ALLOW_MMAP, or the client refuses it with ENODEV. */
	uint32_t flags2 = (in->flags & FUSE_INIT_EXT) && r->arg_len >= sizeof(*in) ? in->flags2 : 0;
	pthread_mutex_lock(&s->lock);
	s->minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION;
	s->flags = in->flags & want;
	if (flags2 & FS_DIRECT_IO_ALLOW_MMAP2) {
		s->flags |= FUSE_INIT_EXT;
		out.flags2 = FS_DIRECT_IO_ALLOW_MMAP2;
	}
	s->initialized = true;
	pthread_mutex_unlock(&s->lock);
	out.minor = s->minor;
	out.flags = s->flags;
	out.max_readahead = in->max_readahead < max_write ? in->max_readahead : max_write;
	out.max_background = 64;
	out.congestion_threshold = 48;
	out.max_write = max_write;
	out.time_gran = 1;
	out.max_pages = (uint16_t)(max_write / 4096);
	fs_reply(r, &out, sizeof(out));
}

/* --- dispatch ----------------------------------------------------------- */

typedef void (*fs_op_fn)(struct fs_req *r);

static fs_op_fn op_for(uint32_t opcode)
{
	switch (opcode) {
	case FUSE_LOOKUP: return fs_op_lookup;
	case FUSE_FORGET: return fs_op_forget;
	case FUSE_BATCH_FORGET: return fs_op_batch_forget;
	case FUSE_GETATTR: return fs_op_getattr;
	case FUSE_SETATTR: return fs_op_setattr;
	case FUSE_READLINK: return fs_op_readlink;
	case FUSE_SYMLINK: return fs_op_symlink;
	case FUSE_MKNOD: return fs_op_mknod;
	case FUSE_MKDIR: return fs_op_mkdir;
	case FUSE_UNLINK: return fs_op_unlink;
	case FUSE_RMDIR: return fs_op_rmdir;
	case FUSE_RENAME: return fs_op_rename;
	case FUSE_RENAME2: return fs_op_rename2;
	case FUSE_LINK: return fs_op_link;
	case FUSE_OPEN: return fs_op_open;
	case FUSE_READ: return fs_op_read;
	case FUSE_WRITE: return fs_op_write;
	case FUSE_STATFS: return fs_op_statfs;
	case FUSE_RELEASE: return fs_op_release;
	case FUSE_FSYNC: return fs_op_fsync;
	case FUSE_SETXATTR: return fs_op_setxattr;
	case FUSE_GETXATTR: return fs_op_getxattr;
	case FUSE_LISTXATTR: return fs_op_listxattr;
	case FUSE_REMOVEXATTR: return fs_op_removexattr;
	case FUSE_FLUSH: return fs_op_flush;
	case FUSE_OPENDIR: return fs_op_opendir;
	case FUSE_READDIR: return fs_op_readdir;
	case FUSE_READDIRPLUS: return fs_op_readdirplus;
	case FUSE_RELEASEDIR: return fs_op_releasedir;
	case FUSE_FSYNCDIR: return fs_op_fsyncdir;
	case FUSE_GETLK: return fs_op_getlk;
	case FUSE_SETLK: case FUSE_SETLKW: return fs_op_setlk;
	case FUSE_ACCESS: return fs_op_access;
	case FUSE_CREATE: return fs_op_create;
	case FUSE_TMPFILE: return fs_op_tmpfile;
	case FUSE_FALLOCATE: return fs_op_fallocate;
	case FUSE_LSEEK: return fs_op_lseek;
	case FUSE_COPY_FILE_RANGE: return fs_op_copy_file_range;
	}
	return NULL;
}

static bool no_reply(uint32_t opcode)
{
	return opcode == FUSE_FORGET || opcode == FUSE_BATCH_FORGET || opcode == FUSE_INTERRUPT;
}

/* Reads the request into r (a private copy: the guest may rewrite its
 * buffers while we look). Returns the copy to free, or NULL with a reply set
 * (or none due) when the request is malformed. */
static uint8_t *take_request(struct fs_req *r, bool *ok)
{
	*ok = false;
	if (r->in.bytes < sizeof(r->h))
		return NULL;              /* cannot even name the request: no reply */
	iov_copy(&r->in, 0, &r->h, sizeof(r->h), false);
	/* A FORGET comes with no reply space at all (Linux's on hiprio). */
	if (!no_reply(r->h.opcode) && r->out.bytes < sizeof(struct fuse_out_header))
		return NULL;              /* cannot be answered: no reply */
	if (r->h.len != r->in.bytes || r->h.total_extlen) {
		if (!no_reply(r->h.opcode))
			fs_reply_err(r, EINVAL);
		return NULL;
	}
	size_t arg_len = r->in.bytes - sizeof(r->h);
	if (r->h.opcode == FUSE_WRITE) {
		/* The payload stays where it is: pwritev takes it from the buffers. */
		r->data_off = sizeof(r->h) + sizeof(struct fuse_write_in);
		arg_len = arg_len < sizeof(struct fuse_write_in) ? arg_len : sizeof(struct fuse_write_in);
	} else if (arg_len > FS_MAX_ARG_BYTES) {
		fs_reply_err(r, E2BIG);
		return NULL;
	}
	/* One spare NUL: string arguments are scanned with memchr, never past it. */
	uint8_t *copy = malloc(arg_len + 1);
	if (!copy) {
		fs_reply_err(r, ENOMEM);
		return NULL;
	}
	iov_copy(&r->in, sizeof(r->h), copy, arg_len, false);
	copy[arg_len] = 0;
	r->arg = copy;
	r->arg_len = arg_len;
	*ok = true;
	return copy;
}

static void dispatch(struct fs_req *r)
{
	if (r->h.opcode == FUSE_INIT) {
		op_init(r);
	} else if (r->h.opcode == FUSE_INTERRUPT) {
		/* Only a SETLKW waits for long; anything else finishes on its own. */
		const struct fuse_interrupt_in *in = r->arg_len >= sizeof(*in) ? (const void *)r->arg : NULL;
		if (in)
			fs_locks_interrupt(r->s, in->unique);
	} else if (r->h.opcode == FUSE_DESTROY) {
		fs_reply(r, NULL, 0);
	} else if (!__atomic_load_n(&r->s->initialized, __ATOMIC_ACQUIRE)) {
		fs_reply_err(r, EIO);
	} else {
		fs_op_fn fn = op_for(r->h.opcode);
		if (fn)
			fn(r);
		else
			fs_reply_err(r, ENOSYS);
	}
}

size_t fs_server_handle(struct fs_server *s, struct fs_iov in, struct fs_iov out)
{
	return fs_server_handle_ref(s, in, out, NULL);
}

void fs_read_ref_done(struct fs_server *s, struct fs_read_ref *ref)
{
	if (ref->hold)
		fs_handle_put(s, ref->hold);
	*ref = (struct fs_read_ref){ .fd = -1 };
}

size_t fs_server_handle_ref(struct fs_server *s, struct fs_iov in, struct fs_iov out,
			    struct fs_read_ref *ref)
{
	struct fs_req r = { .s = s, .in = in, .out = out, .ref = ref };

	if (ref)
		*ref = (struct fs_read_ref){ .fd = -1 };
	bool ok;
	uint8_t *copy = take_request(&r, &ok);

	if (!ok)
		return r.reply_len;
	dispatch(&r);
	free(copy);
	return no_reply(r.h.opcode) ? 0 : r.reply_len;
}

/* --- the server and its exports ------------------------------------------ */

struct fs_server *fs_server_new(const struct fs_options *opt, const struct rv_log *log,
				struct rv_err *err)
{
	struct fs_server *s = calloc(1, sizeof(*s));
	struct rlimit rl;

	if (!s)
		return rv_fail(err, ENOMEM, "file server"), NULL;
	s->opt = *opt;
	if (s->opt.max_write == 0 || s->opt.max_write > FS_MAX_WRITE_BYTES)
		s->opt.max_write = FS_MAX_WRITE_BYTES;
	s->log = log;
	s->next_seq = FS_ROOT_ID + 1;      /* slot 0's first node id is not the root's */
	s->root = (struct fs_inode){ .nodeid = FS_ROOT_ID, .fd = -1, .type = S_IFDIR, .export_root = true,
				     .export = FS_NO_EXPORT };
	pthread_mutex_init(&s->lock, NULL);
	s->proc_fd = open("/proc/self/fd", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (s->proc_fd < 0 || fs_locks_init(s) < 0) {
		rv_fail(err, s->proc_fd < 0 ? errno : ENOMEM, "file server: %s",
			s->proc_fd < 0 ? "open /proc/self/fd" : "lock table");
		if (s->proc_fd >= 0)
			close(s->proc_fd);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return NULL;
	}
	/* Every inode the guest holds is an open fd: take all the hard limit allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* Half the fds for inodes, a quarter for open files, the rest for the
	 * VMM's own (vsock connections, devices). */
	rlim_t nofile = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
	s->fd_budget = nofile / 2 > 256 ? nofile / 2 : 256;
	s->max_handles = nofile / 4 > 64 ? (uint32_t)(nofile / 4) : 64;
	if (s->max_handles > FS_MAX_HANDLES)
		s->max_handles = FS_MAX_HANDLES;
	/* The client applied the caller's umask already (we do not ask for
	 * FUSE_DONT_MASK); ours must not take more bits away. */
	umask(0);
	return s;
}

/* The export's own fds and path (its root inode is the inode table's). */
static void export_close(struct fs_export *e)
{
	if (e->mount_fd >= 0)
		close(e->mount_fd);
	if (e->jail_fd >= 0)
		close(e->jail_fd);
	free(e->path);
	e->mount_fd = e->jail_fd = -1;
	e->path = NULL;
}

void fs_server_free(struct fs_server *s)
{
	if (!s)
		return;
	fs_locks_free(s);
	fs_handles_free(s);
	fs_inodes_free(s);
	for (unsigned k = 0; k < s->nslots; k++)
		if (s->exports[k].state == FS_EXPORT_LIVE)
			export_close(&s->exports[k]);
	close(s->proc_fd);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static bool export_name_ok(const char *n)
{
	size_t len = strlen(n);

	if (len == 0 || len >= FS_EXPORT_NAME_MAX || !strcmp(n, ".") || !strcmp(n, ".."))
		return false;
	return strspn(n, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == len;
}

/* The export's anchor for open_by_handle_at; without one (a filesystem that
 * has no handles, or no CAP_DAC_READ_SEARCH) its inodes keep their fds. */
void fs_export_anchor(const struct fs_server *s, struct fs_export *e, int root_fd)
{
	union { struct file_handle fh; uint8_t raw[sizeof(struct file_handle) + MAX_HANDLE_SZ]; } h;
	char name[16];

	e->mount_fd = -1;
	h.fh.handle_bytes = MAX_HANDLE_SZ;
	if (name_to_handle_at(root_fd, "", &h.fh, &e->mount_id, AT_EMPTY_PATH) < 0)
		return;
	snprintf(name, sizeof(name), "%d", root_fd);
	e->mount_fd = openat(s->proc_fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int probe = e->mount_fd >= 0 ? open_by_handle_at(e->mount_fd, &h.fh, O_PATH | O_CLOEXEC) : -1;
	if (probe >= 0) {
		close(probe);
	} else if (e->mount_fd >= 0) {
		close(e->mount_fd);
		e->mount_fd = -1;
	}
}

/* The host's /dev when it is a filesystem of its own, other than root's. */
static dev_t host_dev_fs(const struct stat *root)
{
	struct stat st;

	return stat("/dev", &st) == 0 && st.st_dev != root->st_dev ? st.st_dev : 0;
}

int fs_server_add_export(struct fs_server *s, const struct fs_export_cfg *cfg, struct rv_err *err)
{
	int fd = open(cfg->path, O_PATH | O_CLOEXEC);

	if (fd < 0)
		return rv_fail(err, errno, "export %s: %s", cfg->name, cfg->path);
	int rc = fs_server_add_export_fd(s, cfg, fd, err);
	close(fd);
	return rc;
}

int fs_server_add_export_fd(struct fs_server *s, const struct fs_export_cfg *cfg, int path_fd,
			    struct rv_err *err)
{
	struct stat st;

	if (!export_name_ok(cfg->name))
		return rv_failx(err, EINVAL, "export name '%s': use 1-%u of [A-Za-z0-9._-], not . or ..",
				cfg->name, FS_EXPORT_NAME_MAX - 1);
	int fd = fcntl(path_fd, F_DUPFD_CLOEXEC, 3);
	if (fd < 0)
		return rv_fail(err, errno, "export %s: %s", cfg->name, cfg->path);
	if (fstat(fd, &st) < 0) {
		close(fd);
		return rv_fail(err, errno, "export %s: stat %s", cfg->name, cfg->path);
	}
	/* A file is an export of its own (a bind of /etc/hosts): the guest
	 * reaches it and nothing beside it. A socket, FIFO or device would be
	 * the host's, which no guest may reach. */
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
		close(fd);
		return rv_failx(err, EINVAL, "export %s: %s is neither a directory nor a regular file",
				cfg->name, cfg->path);
	}
	struct statfs sf;
	if (cfg->hide_kernel_fs && (fstatfs(fd, &sf) < 0 || kernel_fs_type((long)sf.f_type))) {
		close(fd);
		return rv_failx(err, EINVAL, "export %s: %s is one of the kernel's own filesystems "
				"(proc, sysfs, ...), which this export hides", cfg->name, cfg->path);
	}
	pthread_mutex_lock(&s->lock);
	int rc = 0;
	unsigned slot = FS_MAX_EXPORTS;
	for (unsigned i = 0; i < s->nslots && rc == 0; i++) {
		if (s->exports[i].state == FS_EXPORT_LIVE && !strcmp(s->exports[i].name, cfg->name))
			rc = rv_failx(err, EEXIST, "export %s: the name is taken", cfg->name);
		else if (s->exports[i].state == FS_EXPORT_FREE && slot == FS_MAX_EXPORTS)
			slot = i;
	}
	if (rc == 0 && slot == FS_MAX_EXPORTS && s->nslots < FS_MAX_EXPORTS)
		slot = s->nslots;
	if (rc == 0 && slot == FS_MAX_EXPORTS)
		rc = rv_failx(err, ENOSPC, "export %s: at most %u exports, counting removed ones "
			      "whose files are still in use", cfg->name, FS_MAX_EXPORTS);
	if (rc == 0) {
		/* stale_below stays: it outlives the slot's exports. */
		struct fs_export *e = &s->exports[slot];
		snprintf(e->name, sizeof(e->name), "%s", cfg->name);
		e->path = strdup(cfg->path);
		e->jail_fd = -1;
		fs_export_anchor(s, e, fd);
		e->readonly = cfg->readonly;
		e->cache = cfg->cache;
		e->hide_kernel_fs = cfg->hide_kernel_fs;
		e->host_dev_fs = host_dev_fs(&st);
		e->nobjs = 0;
		if (!e->path || fs_inode_add_export_root(s, fd, &st, slot, &e->root) < 0) {
			rc = rv_fail(err, ENOMEM, "export %s", cfg->name);
			export_close(e);
		} else {
			__atomic_store_n(&e->state, FS_EXPORT_LIVE, __ATOMIC_RELEASE);
			s->nslots = slot < s->nslots ? s->nslots : slot + 1;
			__atomic_store_n(&s->nlive, s->nlive + 1, __ATOMIC_RELAXED);
		}
	}
	pthread_mutex_unlock(&s->lock);
	if (rc < 0)
		close(fd);
	return rc;
}

int fs_server_remove_export(struct fs_server *s, const char *name, struct rv_err *err)
{
	unsigned k;

	pthread_mutex_lock(&s->lock);
	for (k = 0; k < s->nslots; k++)
		if (s->exports[k].state == FS_EXPORT_LIVE && !strcmp(s->exports[k].name, name))
			break;
	if (k == s->nslots) {
		pthread_mutex_unlock(&s->lock);
		return rv_failx(err, ENOENT, "remove export %s: no such export", name);
	}
	struct fs_export *e = &s->exports[k];
	/* DRAINING first: from here no new inode, handle or lock owner of it
	 * is made, and nothing of it is reopened by handle. */
	__atomic_store_n(&e->state, FS_EXPORT_DRAINING, __ATOMIC_RELEASE);
	uint64_t seq_below = s->next_seq;
	e->stale_below = seq_below;
	e->root = NULL;                 /* the inode table's to free, with the rest */
	__atomic_store_n(&s->nlive, s->nlive - 1, __ATOMIC_RELAXED);
	fs_inodes_drop_export(s, k);
	fs_handles_drop_export(s, k);
	/* Only the inodes' calls to open_by_handle_at used mount_fd, and none
	 * of them is in the tables any more. */
	export_close(e);
	if (e->nobjs == 0)
		__atomic_store_n(&e->state, FS_EXPORT_FREE, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&s->lock);
	/* By node id, not slot: an add may have taken the slot already, and its
	 * node ids are at or above seq_below. */
	fs_locks_drop_export(s, k, seq_below);
	return 0;
}

void fs_server_counts(struct fs_server *s, size_t *inodes, size_t *handles)
{
	pthread_mutex_lock(&s->lock);
	*inodes = s->ninodes;
	*handles = s->handles_used;
	pthread_mutex_unlock(&s->lock);
}
