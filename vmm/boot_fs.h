/* The file service of one sandbox (DESIGN §5): its exports, the bundle's
 * rootfs and one per volume, and the guest mounts the agent makes over them. */
#ifndef RV_BOOT_FS_H
#define RV_BOOT_FS_H

#include <limits.h>
#include <stdbool.h>

#include "common/err.h"
#include "common/log.h"
#include "devices/fs/server.h"
#include "vmm/agent_client.h"

/* As the guest sees it: the agent mounts the virtio-fs tag at BOOT_GUEST_FS,
 * whose entries are the exports: "rootfs" and one "volN" per volume. */
#define BOOT_FS_TAG "runvm"
#define BOOT_GUEST_FS "/run/runvm/fs"
#define BOOT_GUEST_ROOTFS BOOT_GUEST_FS "/rootfs"
#define BOOT_MAX_VOLUMES 16u
/* With a writable layer (boot_fs.overlay): a tmpfs holding the overlay's
 * upper and work directories, and the overlay, the process's root. */
#define BOOT_GUEST_LAYER "/run/runvm/layer"
#define BOOT_GUEST_OVERLAY "/run/runvm/root"

struct boot_volume {
	const char *arg;             /* SRC:DST[:ro] as given, for errors */
	char src[PATH_MAX];          /* host directory or file */
	char dst[PATH_MAX];          /* in the rootfs, its symlinks followed inside it */
	bool readonly;
};

/* --rootfs and what goes with it; rootfs NULL: no file service. */
struct boot_fs {
	const char *rootfs;
	bool readonly, writeback;
	/* The rootfs exported read-only under a writable layer in the guest
	 * (overlayfs over a tmpfs): the guest writes, the host never sees it
	 * (`runvm do`). The export hides the host's kernel filesystems; the
	 * guest gets its own /proc, /sys and /dev. */
	bool overlay;
	/* readonly, and boot_fs_make_mount_points made what the rootfs lacked:
	 * a volume's destination still missing lies below an earlier mount,
	 * where the guest makes it. Else such a volume is refused (EROFS). */
	bool points_made;
	uint32_t root_propagation;   /* of the rootfs mount in the guest, MS_* bits */
	bool root_pidns;             /* the root's processes get a PID namespace of their own
				      * (PROTO_MOUNT_PIDNS): its init is the EXEC with INIT */
	const char *cache_arg;       /* --fs-cache as given; NULL: auto */
	enum fs_cache cache;
	bool has_proc, has_dev, has_sys;
	unsigned nvolumes;
	struct boot_volume vol[BOOT_MAX_VOLUMES];
};

/* Where dst lands in the rootfs dir, as the container's own lookups take it:
 * a symlink on the way is followed inside dir (an absolute one from dir, ".."
 * never above it). out gets the path relative to dir ("/a/b"); a missing tail
 * is kept as written and *exists says whether all of it was there. */
int boot_fs_resolve(const char *dir, const char *dst, char *out, size_t size, bool *exists,
		    struct rv_err *err);

/* path (as boot_fs_resolve gives it) is dir or lies below it; everything
 * lies below "/". */
bool boot_fs_below(const char *path, const char *dir);

/* A mount point the rootfs dir lacks, made there on the host: a read-only
 * root's export is read-only to the guest too, so the agent cannot make it
 * (runc, too, makes mount points in the rootfs itself). dst is absolute
 * inside dir, as boot_fs_resolve gives it; each directory missing on the
 * way is made (0755), and last a directory, or an empty file (0644) for
 * file. What is there already stays. Every name is resolved inside dir
 * (openat2 RESOLVE_IN_ROOT): a symlink met on the way, even one swapped in
 * meanwhile, is followed inside dir, never out of it. */
int boot_fs_make_mount_point(const char *dir, const char *dst, bool file, struct rv_err *err);

/* One mount, for boot_fs_make_mount_points. */
struct boot_mount_point {
	const char *dst;             /* absolute in the container, as the spec says it */
	bool file;                   /* a bind of a regular file: its mount point is one */
};

/* A read-only root's mount points, in the mounts' order: each destination
 * the rootfs lacks (where boot_fs_resolve takes it) is made there with
 * boot_fs_make_mount_point, unless an earlier mount holds it (/dev/pts in a
 * tmpfs /dev): the agent makes that one, in what is mounted there. On
 * failure *failed is the mount's index. */
int boot_fs_make_mount_points(const char *rootfs, const struct boot_mount_point *mp, size_t n,
			      size_t *failed, struct rv_err *err);

/* v->src a directory or a regular file (an export of its own), v->dst
 * absolute without "..", not the root; v->dst is
 * then replaced by where it lands in the rootfs (boot_fs_resolve). */
int boot_fs_check_volume(const struct boot_fs *f, struct boot_volume *v, struct rv_err *err);

/* The rootfs (a directory; which of /proc, /dev, /sys it has) and each
 * volume (boot_fs_check_volume): what boot_fs_make_server checks first, and
 * a pod's member before it hands its files to the pod's VM. */
int boot_fs_check(struct boot_fs *f, struct rv_err *err);

/* Checks every path and makes the server with its exports; *srv is NULL
 * without a rootfs. */
int boot_fs_make_server(struct boot_fs *f, const struct rv_log *log, struct fs_server **srv,
			struct rv_err *err);

/* `boot --rootfs`'s guest mounts: the file service, the rootfs as a mount of
 * its own, /proc /dev /sys where the rootfs has them, the volumes, and last
 * the read-only remount. */
int boot_fs_mount(const struct agent_client *a, const struct boot_fs *f, struct rv_err *err);

/* Where the process's root is in the guest. */
const char *boot_fs_guest_root(const struct boot_fs *f);

/* The first two of those: the virtio-fs tag at BOOT_GUEST_FS (when
 * mount_tag) and the rootfs, at root_dir in the guest (BOOT_GUEST_ROOTFS;
 * a pod member's is another export), bound onto itself as the container's
 * root (PROTO_MOUNT_ROOT: the later mounts below it are made in its own
 * mount namespace, its process pivots into it), so that it can be
 * remounted read-only later. */
int boot_fs_mount_root(const struct agent_client *a, const struct boot_fs *f, const char *root_dir,
		       bool mount_tag, struct rv_err *err);

#endif
