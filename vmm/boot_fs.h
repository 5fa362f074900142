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
	uint32_t root_propagation;   /* of the rootfs mount in the guest, MS_* bits */
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

/* v->src a directory or a regular file (an export of its own), v->dst
 * absolute without "..", not the root; v->dst is
 * then replaced by where it lands in the rootfs (boot_fs_resolve). */
int boot_fs_check_volume(const struct boot_fs *f, struct boot_volume *v, struct rv_err *err);

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

/* The first two of those: the virtio-fs tag at BOOT_GUEST_FS and the rootfs
 * bound onto itself, so that it can be remounted read-only later. */
int boot_fs_mount_root(const struct agent_client *a, const struct boot_fs *f, struct rv_err *err);

#endif
