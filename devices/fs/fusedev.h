/* The host kernel's /dev/fuse as a second transport of the FUSE request server
 * (DESIGN §10, layer 3): the host mounts a FUSE filesystem and our server
 * answers its requests, so real workloads (tar, git, SQLite) run on a host
 * mount served by the same code that serves the guest over virtio-fs.
 *
 * Used by tests and benchmarks only; the VMM itself never mounts anything on
 * the host. */
#ifndef RV_FS_FUSEDEV_H
#define RV_FS_FUSEDEV_H

#include <stdbool.h>

#include "common/err.h"
#include "devices/fs/server.h"

#define FUSEDEV_MAX_THREADS 64u
/* The max_write to create a server with for fusedev: a READ reply spliced
 * through a pipe of the default maximum size (1 MiB, 256 pages) must fit with
 * its header page, at any page offset. */
#define FUSEDEV_MAX_WRITE (FS_MAX_WRITE_BYTES - 8192u)

/* Opens /dev/fuse and mounts a FUSE filesystem on `mountpoint` (as type
 * "fuse.runvm", source `fsname`) that talks to it. The mount is nosuid and
 * nodev: device nodes in an export are never opened on the host through it.
 * With allow_other, users other than the caller may use the mount. The kernel
 * checks permissions itself (default_permissions), as for a guest. Returns the
 * /dev/fuse fd (O_CLOEXEC) to hand to fusedev_serve, or -1. Needs root. */
int fusedev_mount(const char *mountpoint, const char *fsname, bool allow_other, struct rv_err *err);

/* Serves requests read from `fd` with `threads` threads (the caller's waits
 * for them), and once INIT is answered widens the read-ahead of the mount on
 * `mountpoint` (NULL: leave it) to FS_READAHEAD_KB, until the filesystem is
 * unmounted (then 0), `stop_fd` becomes readable (then 0; -1: no such fd;
 * nobody reads it, so a signalfd or an eventfd works), or a reply is refused
 * by the kernel, which means a bug in the server (then -1). The server must
 * have been created with a max_write of at most FUSEDEV_MAX_WRITE (READs are
 * spliced), so any request fits in FS_MAX_REQ_BYTES.
 * The caller unmounts (umount2 MNT_DETACH) and then closes `fd`; closing the
 * last /dev/fuse fd aborts whatever requests are still in flight. While it
 * serves, SIGUSR2 is this module's (it ends the threads' blocking reads). */
int fusedev_serve(int fd, const char *mountpoint, struct fs_server *s, unsigned threads, int stop_fd,
		  struct rv_err *err);

#endif
