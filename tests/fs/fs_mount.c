/* fs-mount: the FUSE request server (devices/fs/server.c) mounted on the host
 * through /dev/fuse (DESIGN §10, layer 3), so real programs run on it. The
 * mount shows the server's synthetic root: "rootfs" is EXPORT_DIR, and each
 * --export NAME=DIR adds the entry NAME, as a sandbox's bind mounts would.
 *
 * usage: fs-mount [--ro] [--cache auto|none|always] [--writeback] [--threads N]
 *                 [--export NAME=DIR[:ro]]... [--log FILE] [--debug]
 *                 EXPORT_DIR MOUNTPOINT
 *
 * Runs in the foreground until the mount is unmounted (umount MOUNTPOINT) or
 * SIGTERM/SIGINT arrives (then it detaches the mount itself); exits 0 either
 * way. Prints nothing on success except what the server logs at warning level
 * (everything with --debug); errors go to stderr as "fs-mount: ..." with
 * exit status 1, bad usage exits 2. Needs root (mount(2), /dev/fuse). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "devices/fs/fusedev.h"
#include "devices/fs/server.h"

#define DEFAULT_THREADS 4u

struct args {
	struct fs_export_cfg exports[FS_MAX_EXPORTS];
	unsigned n_exports;
	struct fs_options opt;
	enum fs_cache cache;
	bool rootfs_ro;
	unsigned threads;
	const char *log_path;
	bool debug;
	const char *mountpoint;
};

static int usage(void)
{
	fprintf(stderr, "usage: fs-mount [--ro] [--cache auto|none|always] [--writeback] [--threads N]\n"
			"                [--export NAME=DIR[:ro]]... [--log FILE] [--debug] EXPORT_DIR MOUNTPOINT\n");
	return 2;
}

static int parse_cache(const char *s, enum fs_cache *out, struct rv_err *err)
{
	if (strcmp(s, "auto") == 0)
		*out = FS_CACHE_AUTO;
	else if (strcmp(s, "none") == 0)
		*out = FS_CACHE_NONE;
	else if (strcmp(s, "always") == 0)
		*out = FS_CACHE_ALWAYS;
	else
		return rv_failx(err, EINVAL, "--cache '%s': use auto, none or always", s);
	return 0;
}

/* NAME=DIR[:ro]: the arguments are modified in place (the '=' and the ':ro'
 * become NULs), which keeps the names alive for the program's lifetime. */
static int parse_export(char *spec, struct args *a, struct rv_err *err)
{
	char *eq = strchr(spec, '=');
	if (!eq || eq == spec || !eq[1])
		return rv_failx(err, EINVAL, "--export '%s': use NAME=DIR or NAME=DIR:ro", spec);
	if (a->n_exports >= FS_MAX_EXPORTS)
		return rv_failx(err, E2BIG, "more than %u exports", FS_MAX_EXPORTS);
	*eq = '\0';
	char *dir = eq + 1;
	size_t len = strlen(dir);
	bool ro = len > 3 && strcmp(dir + len - 3, ":ro") == 0;
	if (ro)
		dir[len - 3] = '\0';
	a->exports[a->n_exports++] = (struct fs_export_cfg){ .name = spec, .path = dir, .readonly = ro };
	return 0;
}

static int parse_args(int argc, char **argv, struct args *a, struct rv_err *err)
{
	static const struct option opts[] = {
		{ "ro", no_argument, NULL, 'r' },       { "cache", required_argument, NULL, 'c' },
		{ "writeback", no_argument, NULL, 'w' }, { "threads", required_argument, NULL, 't' },
		{ "export", required_argument, NULL, 'e' }, { "log", required_argument, NULL, 'l' },
		{ "debug", no_argument, NULL, 'd' },    { 0 },
	};
	int c;

	/* rootfs goes first; its path is filled in from the first operand. */
	a->n_exports = 1;
	a->threads = DEFAULT_THREADS;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': a->rootfs_ro = true; break;
		case 'c':
			if (parse_cache(optarg, &a->cache, err) < 0)
				return -1;
			break;
		case 'w': a->opt.writeback = true; break;
		case 't': {
			char *end;
			unsigned long n = strtoul(optarg, &end, 10);
			if (*end || n == 0 || n > FUSEDEV_MAX_THREADS)
				return rv_failx(err, EINVAL, "--threads '%s': use 1 to %u", optarg,
						FUSEDEV_MAX_THREADS);
			a->threads = (unsigned)n;
			break;
		}
		case 'e':
			if (parse_export(optarg, a, err) < 0)
				return -1;
			break;
		case 'l': a->log_path = optarg; break;
		case 'd': a->debug = true; break;
		default: return 1;
		}
	}
	if (argc - optind != 2)
		return 1;
	a->exports[0] = (struct fs_export_cfg){ .name = "rootfs", .path = argv[optind],
						.readonly = a->rootfs_ro };
	for (unsigned i = 0; i < a->n_exports; i++)
		a->exports[i].cache = a->cache;
	a->mountpoint = argv[optind + 1];
	/* /dev/fuse reads need room for the largest WRITE the kernel may send,
	 * and the kernel sizes its WRITEs by the max_write the server offers;
	 * READ replies go through a pipe of at most 1 MiB (fusedev.h). */
	a->opt.max_write = FUSEDEV_MAX_WRITE;
	return 0;
}

static bool signalled(int sfd)
{
	struct pollfd p = { .fd = sfd, .events = POLLIN };
	return poll(&p, 1, 0) == 1;
}

/* Mounts, serves until unmounted or signalled, and cleans up. */
static int run(const struct args *a, int sfd, struct rv_log *log, struct rv_err *err)
{
	struct fs_server *s = fs_server_new(&a->opt, log, err);
	if (!s)
		return rv_wrap(err, "create the FUSE server");
	for (unsigned i = 0; i < a->n_exports; i++) {
		if (fs_server_add_export(s, &a->exports[i], err) < 0) {
			fs_server_free(s);
			return rv_wrap(err, "export %s=%s", a->exports[i].name, a->exports[i].path);
		}
	}
	int fd = fusedev_mount(a->mountpoint, "runvm-fs-mount", true, err);
	if (fd < 0) {
		fs_server_free(s);
		return -1;
	}
	int rc = fusedev_serve(fd, a->mountpoint, s, a->threads, sfd, err);
	/* Unmounted from outside: the mount point is no longer ours to touch.
	 * Signalled or failed: detach it, so that programs still using it see
	 * errors (once fd closes below) instead of hanging. */
	if ((rc < 0 || signalled(sfd)) && umount2(a->mountpoint, MNT_DETACH) < 0 && rc == 0)
		rc = rv_fail(err, errno, "unmount %s", a->mountpoint);
	close(fd);
	fs_server_free(s);
	return rc;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct rv_err err = { 0 };
	struct rv_log log;

	int p = parse_args(argc, argv, &a, &err);
	if (p != 0) {
		if (p < 0)
			fprintf(stderr, "fs-mount: %s\n", err.msg);
		return usage();
	}
	if (rv_log_open(&log, a.log_path, RV_LOG_TEXT, a.debug, &err) < 0) {
		fprintf(stderr, "fs-mount: %s\n", err.msg);
		return 1;
	}
	if (!a.debug)
		log.min_level = RV_LOG_WARN;

	/* Each inode the kernel remembers pins an O_PATH fd in the server, and
	 * a big tree is tens of thousands of them: take all the fds we may
	 * (never above the hard limit, DESIGN §7). */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	/* Blocked before any thread starts, so no serving thread ever takes
	 * them: they arrive on the signalfd, which also tells the serving
	 * threads to stop. */
	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGTERM);
	sigaddset(&stop, SIGINT);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	_cleanup_close_ int sfd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);
	int rc = sfd < 0 ? rv_fail(&err, errno, "signalfd") : run(&a, sfd, &log, &err);
	if (rc < 0)
		fprintf(stderr, "fs-mount: %s\n", err.msg);
	rv_log_close(&log);
	return rc < 0 ? 1 : 0;
}
