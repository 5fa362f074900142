/* The VMM's jail (vmm/jail_ns.c), entered in a child of the test (which
 * runs as root, as the VMM does): what is left to see and do inside, and
 * that the host's namespaces are untouched. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "devices/fs/fs_priv.h"
#include "vmm/jail.h"

typedef int (*check_fn)(void *arg);

/* Runs check in a child after jail_enter(cfg): its exit code (0: all held),
 * or 100 when the jail could not be entered, 1000 + a killing signal. */
static int in_jail(const struct jail_config *cfg, check_fn check, void *arg)
{
	pid_t pid = fork();
	if (pid == 0) {
		struct rv_err err;
		if (jail_enter(cfg, &err) < 0) {
			fprintf(stderr, "%s\n", err.msg);
			_exit(100);
		}
		_exit(check(arg));
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

static int root_holds_only_proc(void *arg)
{
	int pipe_fd = *(int *)arg;
	char link[64];
	struct stat st;
	DIR *d = opendir("/");
	struct dirent *e;
	int names = 0;

	if (!d)
		return 1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.' && (names++, strcmp(e->d_name, "proc")))
			return 2;
	closedir(d);
	if (names != 1)
		return 3;
	if (stat("/etc", &st) == 0 || errno != ENOENT || stat("/dev/kvm", &st) == 0)
		return 4;
	/* The file server's xattr calls reach its inodes this way. */
	snprintf(link, sizeof(link), "/proc/self/fd/%d", pipe_fd);
	if (stat(link, &st) < 0 || !S_ISFIFO(st.st_mode))
		return 5;
	snprintf(link, sizeof(link), "/proc/%d/task", getpid());
	if (stat(link, &st) < 0)
		return 6;
	if (mkdir("/x", 0700) == 0 || errno != EROFS)
		return 7;
	return 0;
}

Test(jail_ns, the_root_holds_nothing_but_our_own_proc_entry)
{
	int p[2];

	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(in_jail(&(struct jail_config){ 0 }, root_holds_only_proc, &p[0]), 0);
	close(p[0]);
	close(p[1]);
}

static long long ns_inode(const char *ns)
{
	char path[64];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", ns);
	return stat(path, &st) == 0 ? (long long)st.st_ino : -1;
}

static int namespaces_differ(void *arg)
{
	const long long *host = arg;
	static const char *const ns[] = { "mnt", "ipc", "uts" };

	for (int i = 0; i < 3; i++)
		if (ns_inode(ns[i]) < 0 || ns_inode(ns[i]) == host[i])
			return 1 + i;
	return 0;
}

Test(jail_ns, new_mount_ipc_and_uts_namespaces_and_the_hosts_untouched)
{
	long long host[3] = { ns_inode("mnt"), ns_inode("ipc"), ns_inode("uts") };
	char line[512];
	FILE *f;

	int rc = in_jail(&(struct jail_config){ 0 }, namespaces_differ, host);
	cr_assert_eq(rc, 0, "check %d", rc);
	cr_assert_eq(ns_inode("mnt"), host[0]);
	f = fopen("/proc/self/mountinfo", "re");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		cr_assert_null(strstr(line, "runvm-jail"), "the jail's mount leaked: %s", line);
	fclose(f);
}

static uint64_t caps_now(int set)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];

	if (syscall(SYS_capget, &h, d) < 0)
		return ~0ull;
	return set == 0 ? d[0].effective | (uint64_t)d[1].effective << 32 :
	       set == 1 ? d[0].permitted | (uint64_t)d[1].permitted << 32 :
			  d[0].inheritable | (uint64_t)d[1].inheritable << 32;
}

static int caps_are_kept_ones(void *arg)
{
	const struct jail_config *cfg = arg;
	uint64_t keep = jail_kept_caps(cfg);

	if (caps_now(0) != keep || caps_now(1) != keep || caps_now(2) != 0)
		return 1;
	for (int cap = 0; cap < 41; cap++)
		if (prctl(PR_CAPBSET_READ, cap, 0, 0, 0) != !!(keep & (1ull << cap)))
			return 2;
	if (mount("none", "/proc", "tmpfs", 0, NULL) == 0 || errno != EPERM)
		return 3;
	if (chroot("/proc") == 0 || sethostname("x", 1) == 0)
		return 4;
	return 0;
}

Test(jail_ns, only_the_file_servers_capabilities_are_kept_in_every_set)
{
	struct jail_config plain = { 0 }, pod = { .keep_net_admin = true };

	cr_assert(jail_kept_caps(&plain) & (1ull << CAP_DAC_OVERRIDE));
	cr_assert(jail_kept_caps(&plain) & (1ull << CAP_SETUID));
	cr_assert_eq(jail_kept_caps(&plain) & (1ull << CAP_SYS_ADMIN), 0);
	cr_assert_eq(jail_kept_caps(&plain) & (1ull << CAP_NET_ADMIN), 0);
	cr_assert(jail_kept_caps(&pod) & (1ull << CAP_NET_ADMIN));
	cr_assert_eq(in_jail(&plain, caps_are_kept_ones, &plain), 0);
	cr_assert_eq(in_jail(&pod, caps_are_kept_ones, &pod), 0);
}

static int limits_are_zero(void *arg)
{
	static const int res[] = { RLIMIT_CORE, RLIMIT_MEMLOCK, RLIMIT_MSGQUEUE };
	struct rlimit rl;

	(void)arg;
	for (int i = 0; i < 3; i++)
		if (getrlimit(res[i], &rl) < 0 || rl.rlim_cur || rl.rlim_max)
			return 1 + i;
	/* Nor can they be raised again. */
	if (setrlimit(RLIMIT_CORE, &(struct rlimit){ 1 << 20, 1 << 20 }) == 0)
		return 9;
	return 0;
}

Test(jail_ns, no_core_file_no_locked_memory_no_message_queues)
{
	cr_assert_eq(in_jail(&(struct jail_config){ 0 }, limits_are_zero, NULL), 0);
}

static void *sleeper(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

static int enter_with_a_thread(void)
{
	pthread_t t;
	struct rv_err err;

	if (pthread_create(&t, NULL, sleeper, NULL))
		return 1;
	if (jail_enter(&(struct jail_config){ 0 }, &err) == 0)
		return 2;
	return err.code == EBUSY && strstr(err.msg, "2 threads") ? 0 : 3;
}

/* fn's exit status in a child, or 1000 + the signal that killed it. */
static int in_child(int (*fn)(void))
{
	pid_t pid = fork();
	int status;

	if (pid == 0)
		_exit(fn());
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	return WIFSIGNALED(status) ? 1000 + WTERMSIG(status) : WEXITSTATUS(status);
}

Test(jail_ns, a_thread_started_before_would_stay_outside_so_it_is_refused)
{
	cr_assert_eq(in_child(enter_with_a_thread), 0);
}

static int close_all_but_kept(void)
{
	struct rv_err err;
	int keep[] = { 7, 42, 1 };

	if (dup2(0, 5) != 5 || dup2(0, 7) != 7 || dup2(0, 9) != 9 || dup2(0, 300) != 300)
		return 1;
	if (jail_close_fds(keep, 3, &err) < 0)
		return 2;
	if (fcntl(5, F_GETFD) >= 0 || fcntl(9, F_GETFD) >= 0 || fcntl(300, F_GETFD) >= 0)
		return 3;
	if (fcntl(7, F_GETFD) < 0 || fcntl(0, F_GETFD) < 0 || fcntl(2, F_GETFD) < 0)
		return 4;
	int many[JAIL_MAX_KEPT_FDS + 1] = { 0 };
	return jail_close_fds(many, JAIL_MAX_KEPT_FDS + 1, &err) == -1 && err.code == EINVAL ? 0 : 5;
}

Test(jail_ns, every_fd_but_stdio_and_the_named_ones_is_closed)
{
	cr_assert_eq(in_child(close_all_but_kept), 0);
}

static int open_exports(void *arg, struct rv_err *err)
{
	return fs_server_open_exports(arg, err);
}

static int bind_exports(void *arg, const char *dir, struct rv_err *err)
{
	return fs_server_bind_exports(arg, dir, err);
}

/* A file server exporting path read-only, in the jail with it: NULL (and
 * why on stderr) when either fails. */
static struct fs_server *jailed_server(const char *path)
{
	struct rv_err err;
	struct fs_options opt = { 0 };
	struct fs_server *srv = fs_server_new(&opt, NULL, &err);
	struct fs_export_cfg e = { .name = "rootfs", .path = path, .readonly = true };
	struct jail_config cfg = { .prepare = open_exports, .furnish = bind_exports };

	if (!srv || fs_server_add_export(srv, &e, &err) < 0)
		return NULL;
	cfg.furnish_arg = srv;
	if (jail_enter(&cfg, &err) < 0 || fs_server_reopen_in_jail(srv, JAIL_FURNISHED_DIR, &err) < 0) {
		fprintf(stderr, "%s\n", err.msg);
		return NULL;
	}
	return srv;
}

/* The file server's exports, reopened inside: what it reads is there, and
 * ".." from an export's fd ends at the jail's root, not in the host's tree
 * where the fd first opened lay. */
static int serve_from_jail(const char *dir)
{
	struct fs_server *srv = jailed_server(dir);
	struct stat up, root;
	char buf[16] = "";

	if (!srv)
		return 2;
	int fd = openat(srv->exports[0].root->fd, "sub/f", O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) != 6 || strcmp(buf, "inside"))
		return 3;
	int top = openat(srv->exports[0].root->fd, "../../../..", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (top < 0 || fstat(top, &up) < 0 || stat("/", &root) < 0)
		return 4;
	if (up.st_dev != root.st_dev || up.st_ino != root.st_ino)
		return 5;
	if (openat(srv->exports[0].root->fd, "../../etc", O_PATH | O_CLOEXEC) >= 0)
		return 6;
	/* A read-only export is read-only in the host kernel's eyes too. */
	if (open(JAIL_FURNISHED_DIR "/0/sub/f", O_WRONLY | O_CLOEXEC) >= 0 || errno != EROFS)
		return 7;
	return 0;
}

/* Below /dev, which the jail's own root covers while it is built: the
 * export is still the host's (a volume of /dev/shm, as docker --ipc=host). */
Test(jail_ns, the_exports_are_reopened_inside_so_dotdot_ends_at_the_jails_root)
{
	char dir[] = "/dev/shm/runvm-jail-export.XXXXXX", path[64];
	int status;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sub", dir);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/sub/f", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("inside", f);
	fclose(f);
	pid_t pid = fork();
	if (pid == 0)
		_exit(serve_from_jail(dir));
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sub", dir);
	rmdir(path);
	rmdir(dir);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "check %d", WEXITSTATUS(status));
}

/* The host's root as an export (runvm do): its copy in the jail holds the
 * host's tree, not the jail's own root, which is mounted below it (at /dev)
 * while the exports are bound, nor the VMM's /proc entry bound there. */
static int host_root_from_jail(void)
{
	struct stat st;

	if (!jailed_server("/"))
		return 2;
	if (stat(JAIL_FURNISHED_DIR "/0/etc/passwd", &st) < 0)
		return 3;
	if (stat(JAIL_FURNISHED_DIR "/0/dev" JAIL_FURNISHED_DIR, &st) == 0)
		return 4;
	if (stat(JAIL_FURNISHED_DIR "/0/dev/proc/self", &st) == 0)
		return 5;
	return 0;
}

Test(jail_ns, the_hosts_root_as_an_export_does_not_hold_the_jail_itself)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(host_root_from_jail());
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "check %d", WEXITSTATUS(status));
}
