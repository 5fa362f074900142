/* The FUSE request server behind virtio-fs (DESIGN §5): one server, two
 * transports. The virtio-fs device hands it the guest's descriptor chains; the
 * host-test transport (fusedev) hands it requests read from /dev/fuse. Either
 * way a request arrives as the bytes the FUSE client wrote and the reply goes
 * into the space the client gave for it, so READ and WRITE payloads move
 * between the file and guest memory with one preadv/pwritev.
 *
 * What it serves is a synthetic, read-only root directory (node id 1) whose
 * entries are the exports: "rootfs" for the bundle root, one per bind-mount
 * source (a directory, or a regular file that is then all the guest reaches
 * of it). Below an export every inode is an O_PATH fd opened one name at a time
 * relative to its parent with O_NOFOLLOW, so no request reaches a host path
 * outside the export it started in. A read-only export refuses every change
 * with EROFS on the host side, whatever the guest mounted.
 *
 * Everything that comes in is hostile: lengths, node ids, handles, names. A
 * bad request gets a FUSE error reply, never a crash or a host access outside
 * an export. fs_server_handle may be called from many threads at once. */
#ifndef RV_FS_SERVER_H
#define RV_FS_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"
#include "common/log.h"

#define FS_EXPORT_NAME_MAX 64u          /* bytes of an export's entry name, NUL included */
#define FS_MAX_EXPORTS 64u
#define FS_MAX_WRITE_BYTES (1024u * 1024)   /* max_write / max_readahead we offer */
#define FS_MAX_REQ_BYTES (FS_MAX_WRITE_BYTES + 4096u)
/* read_ahead_kb for a mount of this server (the agent's virtiofs mounts, the
 * host's fusedev ones). The kernel starts a FUSE mount at 128 KiB and lets
 * INIT only lower it; a wider window fills max_write-sized READs and keeps
 * several in flight, which is what sequential reads need (bench/fs.sh's
 * host read through /dev/fuse: 0.32 -> ~0.5 of native tmpfs with this and
 * the transport's other changes). */
#define FS_READAHEAD_KB 4096u

/* How long the guest may trust what it was told (DESIGN §5, virtiofsd's modes). */
enum fs_cache {
	FS_CACHE_AUTO,     /* 1 s attribute/entry timeouts, page cache kept while unchanged */
	FS_CACHE_NONE,     /* no timeouts, direct I/O: the host may change files under us */
	FS_CACHE_ALWAYS,   /* long timeouts, page cache kept: only the guest changes files */
};

struct fs_export_cfg {
	const char *name;       /* entry in the synthetic root: [A-Za-z0-9._-]+, not "." or ".." */
	const char *path;       /* host directory (opened at once; later renames don't matter) */
	bool readonly;
	enum fs_cache cache;
	/* An export of a host's whole root (`runvm do`): the kernel's own
	 * filesystems mounted in it (proc, sysfs, debugfs, cgroup, the host's
	 * /dev and the like) are not there for the guest; a lookup that would
	 * cross into one answers ENOENT. Their files are the host kernel's
	 * (/proc/kcore, /sys/kernel/...) and regular files to an open(). */
	bool hide_kernel_fs;
};

struct fs_options {
	bool writeback;         /* offer FUSE_WRITEBACK_CACHE (guest page cache absorbs writes) */
	bool allow_devices;     /* MKNOD of char/block devices; refused (EPERM) by default */
	uint32_t max_write;     /* 0: FS_MAX_WRITE_BYTES; /dev/fuse needs its read buffer size */
};

struct fs_server;

struct fs_server *fs_server_new(const struct fs_options *opt, const struct rv_log *log,
				struct rv_err *err);
void fs_server_free(struct fs_server *s);

/* Adds an export (any time, also while requests are served: a pod's next
 * container). Fails on a bad or duplicate name, a path that is not a
 * directory, or FS_MAX_EXPORTS reached. */
int fs_server_add_export(struct fs_server *s, const struct fs_export_cfg *cfg, struct rv_err *err);
/* The same for a directory or file the caller has opened (path_fd, kept by
 * the caller; cfg->path only names it in errors): a pod's next container,
 * whose VMM is jailed and opens no host path, gets its rootfs as an fd, a
 * detached mount (open_tree) where ".." from its root stays there. Not for
 * exports added before fs_server_open_exports (the jail reopens by path). */
int fs_server_add_export_fd(struct fs_server *s, const struct fs_export_cfg *cfg, int path_fd,
			    struct rv_err *err);
/* Removes the export named name (a pod's container that has ended): its entry
 * leaves the synthetic root at once (LOOKUP of it: ENOENT; READDIR of the root no
 * longer lists it); every inode and open handle under it is let go, its host fd
 * closed, as soon as no request in flight uses it, and the client's later requests
 * naming them fail (ESTALE for an inode, EBADF for a handle), FORGET and RELEASE of
 * them are ignored (RELEASE answers EBADF, as for any fh it does not know). A
 * SETLKW waiting on one of its files ends with ESTALE; its POSIX lock owners'
 * fds close. Its slot is reused by a later add once nothing of it remains (until
 * then it counts against FS_MAX_EXPORTS). ENOENT for a name that is no export.
 * Safe while requests are served on other threads. */
int fs_server_remove_export(struct fs_server *s, const char *name, struct rv_err *err);

/* A request or reply buffer as the transport found it: scattered segments. */
struct fs_iov {
	const struct iovec *iov;
	unsigned n;
	size_t bytes;           /* sum of the segments' lengths */
};

/* Serves one FUSE request (fuse_in_header + arguments) from `in` and writes
 * the reply (fuse_out_header + data) into `out`. Returns the reply's length;
 * 0 means no reply is due (FORGET, BATCH_FORGET, INTERRUPT, or a request too
 * broken to name its unique id). */
size_t fs_server_handle(struct fs_server *s, struct fs_iov in, struct fs_iov out);

/* A READ of at least FS_READ_REF_MIN bytes answered by reference, for a
 * transport that moves file data without copying it through the server
 * (fusedev: splice). When fs_server_handle_ref fills `ref` (fd >= 0), the
 * reply it returns is the header alone, length 0: the transport sends up to
 * `len` bytes of `fd` from `offset` after it, sets the header's len to what
 * it sent, and then calls fs_read_ref_done, which lets go of the fd. */
#define FS_READ_REF_MIN (64u * 1024)
struct fs_read_ref {
	int fd;                 /* -1: the reply is complete as returned */
	uint64_t offset;
	size_t len;
	void *hold;             /* the server's: keeps fd open until done */
};
size_t fs_server_handle_ref(struct fs_server *s, struct fs_iov in, struct fs_iov out,
			    struct fs_read_ref *ref);
void fs_read_ref_done(struct fs_server *s, struct fs_read_ref *ref);

/* The transport serves requests on n threads. A SETLKW that has to wait
 * holds one, so at most n - 1 wait at a time (more get EDEADLK): one thread
 * always remains for the request that releases the lock. Default: none wait. */
void fs_server_set_workers(struct fs_server *s, unsigned n);
/* Ends every SETLKW wait now (EINTR); `for_good`: later ones too, for a
 * transport about to stop its threads. */
void fs_server_cancel_waits(struct fs_server *s, bool for_good);
/* Undoes a cancel for good: the server serves a new client (a VM booted
 * after one that failed to start from a template, vmm/vm.c). */
void fs_server_allow_waits(struct fs_server *s);

/* Number of live inodes and open handles (tests: FORGET and RELEASE free them). */
void fs_server_counts(struct fs_server *s, size_t *inodes, size_t *handles);

/* For the VMM's jail (vmm/jail.h), whose pivot would leave the exports'
 * fds in the host's mount tree, where ".." from them climbs to the host's
 * root. In the VMM's own mount namespace, before anything is mounted there:
 * opens each export again (checking it is the inode first opened); then,
 * before the pivot, binds each (its submounts too; all read-only for a
 * read-only export) at DIR/INDEX. After it: reopens each export from there,
 * as the jail sees DIR, and /proc/self/fd from the jail's /proc. Before the
 * workers start. */
int fs_server_open_exports(struct fs_server *s, struct rv_err *err);
int fs_server_bind_exports(struct fs_server *s, const char *dir, struct rv_err *err);
int fs_server_reopen_in_jail(struct fs_server *s, const char *dir, struct rv_err *err);

#endif
