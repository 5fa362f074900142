/* PID 1 of the testbed's L2 Linux. It builds the command's world (the host root
 * read-only under a throwaway tmpfs layer, the checkout read-write at its own
 * path), runs the command the host wrote for it, reports how it ended on the
 * "status" port and resets the machine, which ends QEMU (-no-reboot).
 *
 * The host side is tests/testbed/run; the protocol on the status port is lines:
 *   booted UPTIME      L2 reached init
 *   exit N | signal N  how the command ended
 *   error TEXT         init could not set the command up
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NEWROOT "/newroot"
#define CMDLINE_BYTES 4096
#define DEBUG_EXIT_PORT 0xf4
#define PORT_WAIT_TRIES 1000
#define PORT_WAIT_US 10000

struct ports {
	int status, out, err;
};

/* QEMU's isa-debug-exit ends QEMU at once on any machine type; a reset is the
 * fallback, which -no-reboot turns into an exit on machines with an i8042. */
static void finish(int status_fd)
{
	fsync(status_fd);
	sync();
	if (ioperm(DEBUG_EXIT_PORT, 1, 1) == 0)
		outb(0, DEBUG_EXIT_PORT);
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void fail(int status_fd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dprintf(status_fd, "error %s: %s\n", msg, strerror(errno));
	finish(status_fd);
}

/* virtio-serial ports show up as /dev/vportNpM; their names are in sysfs. */
static int open_port(const char *name)
{
	DIR *d = opendir("/sys/class/virtio-ports");
	struct dirent *e;
	int fd = -1;

	while (d && fd < 0 && (e = readdir(d))) {
		char path[300], buf[64];
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/class/virtio-ports/%s/name", e->d_name);
		int nfd = open(path, O_RDONLY | O_CLOEXEC);
		if (nfd < 0)
			continue;
		ssize_t len = read(nfd, buf, sizeof(buf) - 1);
		close(nfd);
		buf[len > 0 ? len : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
		if (strcmp(buf, name) == 0) {
			snprintf(path, sizeof(path), "/dev/%s", e->d_name);
			fd = open(path, O_WRONLY | O_CLOEXEC);
		}
	}
	if (d)
		closedir(d);
	return fd;
}

/* For the console when ports are missing: what the kernel did find. */
static void list_dir(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;

	fprintf(stderr, "testbed init: %s:", path);
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.')
			fprintf(stderr, " %s", e->d_name);
	fprintf(stderr, d ? "\n" : " (absent)\n");
	if (d)
		closedir(d);
}

/* Value of key=... on the kernel command line, copied into buf. */
static const char *cmdline_value(const char *cmdline, const char *key, char *buf, size_t size)
{
	size_t klen = strlen(key);

	for (const char *p = cmdline; *p; ) {
		p += strspn(p, " \n");
		size_t len = strcspn(p, " \n");
		if (len > klen && strncmp(p, key, klen) == 0 && p[klen] == '=') {
			snprintf(buf, size, "%.*s", (int)(len - klen - 1), p + klen + 1);
			return buf;
		}
		p += len;
	}
	return NULL;
}

static void mount_or_fail(int status_fd, const char *src, const char *dst, const char *type,
			  unsigned long flags, const char *data)
{
	mkdir(dst, 0755);
	if (mount(src, dst, type, flags, data) < 0)
		fail(status_fd, "mount %s on %s (%s)", src, dst, type);
}

static void mount_world(int status_fd, const char *checkout)
{
	char path[4096];

	mount_or_fail(status_fd, "hostroot", "/lower", "9p", MS_RDONLY,
		      "trans=virtio,version=9p2000.L,msize=512000,cache=loose");
	mount_or_fail(status_fd, "tmpfs", "/rw", "tmpfs", 0, "mode=0755");
	mkdir("/rw/upper", 0755);
	mkdir("/rw/work", 0755);
	mount_or_fail(status_fd, "overlay", NEWROOT, "overlay", 0,
		      "lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work");
	snprintf(path, sizeof(path), NEWROOT "%s", checkout);
	mount_or_fail(status_fd, "checkout", path, "9p", 0,
		      "trans=virtio,version=9p2000.L,msize=512000,cache=mmap");
	mount_or_fail(status_fd, "proc", NEWROOT "/proc", "proc", 0, NULL);
	mount_or_fail(status_fd, "sysfs", NEWROOT "/sys", "sysfs", 0, NULL);
	mount_or_fail(status_fd, "devtmpfs", NEWROOT "/dev", "devtmpfs", 0, NULL);
	mount_or_fail(status_fd, "devpts", NEWROOT "/dev/pts", "devpts", 0,
		      "newinstance,ptmxmode=0666");
	mount_or_fail(status_fd, "tmpfs", NEWROOT "/dev/shm", "tmpfs", 0, NULL);
	/* The host's /run holds its own state (runvm's among it): start L2 clean. */
	mount_or_fail(status_fd, "tmpfs", NEWROOT "/run", "tmpfs", 0, "mode=0755");
	mount_or_fail(status_fd, "cgroup2", NEWROOT "/sys/fs/cgroup", "cgroup2", 0, NULL);
}

static void loopback_up(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (s < 0)
		return;
	if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(s, SIOCSIFFLAGS, &ifr);
	}
	close(s);
}

static pid_t spawn(const struct ports *p, const char *script)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	int null = open("/dev/null", O_RDONLY);
	if (null < 0 || dup2(null, 0) < 0 || dup2(p->out, 1) < 0 || dup2(p->err, 2) < 0 ||
	    chroot(NEWROOT) < 0 || chdir("/") < 0 || setsid() < 0)
		_exit(125);
	char *const argv[] = { "sh", (char *)script, NULL };
	char *const envp[] = { "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			       NULL };
	execve("/bin/sh", argv, envp);
	dprintf(2, "testbed init: exec /bin/sh: %s\n", strerror(errno));
	_exit(127);
}

/* As PID 1 we inherit every orphan: reap them all until the command itself ends. */
static int wait_for(pid_t child)
{
	int status;

	for (;;) {
		pid_t pid = waitpid(-1, &status, 0);
		if (pid == child)
			return status;
		if (pid < 0 && errno != EINTR)
			return -1;
	}
}

int main(void)
{
	char cmdline[CMDLINE_BYTES] = "", script[1024], checkout[1024], uptime[64] = "?";
	struct ports p;

	mount("proc", "/proc", "proc", 0, NULL);
	mount("sysfs", "/sys", "sysfs", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	/* The console is where we can still complain when the ports are missing. */
	int console = open("/dev/console", O_RDWR);
	if (console >= 0) {
		dup2(console, 1);
		dup2(console, 2);
		if (console > 2)
			close(console);
	}
	/* virtio-console adds ports from a workqueue after the host announces them,
	 * so they can appear after init starts. */
	for (int tries = 0; tries < PORT_WAIT_TRIES; tries++) {
		p.status = open_port("status");
		p.out = open_port("stdout");
		p.err = open_port("stderr");
		if (p.status >= 0 && p.out >= 0 && p.err >= 0)
			break;
		close(p.status);
		close(p.out);
		close(p.err);
		usleep(PORT_WAIT_US);
	}
	if (p.status < 0 || p.out < 0 || p.err < 0) {
		fprintf(stderr, "testbed init: virtio-serial ports status/stdout/stderr missing\n");
		list_dir("/sys/bus/pci/devices");
		list_dir("/sys/bus/virtio/devices");
		list_dir("/sys/class/virtio-ports");
		finish(2);      /* the host sees no "booted" and prints this console */
	}

	int fd = open("/proc/uptime", O_RDONLY);
	if (fd >= 0) {
		ssize_t n = read(fd, uptime, sizeof(uptime) - 1);
		uptime[n > 0 ? n : 0] = '\0';
		uptime[strcspn(uptime, " ")] = '\0';
		close(fd);
	}
	dprintf(p.status, "booted %s\n", uptime);

	fd = open("/proc/cmdline", O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, cmdline, sizeof(cmdline) - 1);
	cmdline[n > 0 ? n : 0] = '\0';
	if (!cmdline_value(cmdline, "runvm.run", script, sizeof(script)) ||
	    !cmdline_value(cmdline, "runvm.checkout", checkout, sizeof(checkout))) {
		errno = EINVAL;
		fail(p.status, "kernel cmdline lacks runvm.run= or runvm.checkout=");
	}
	mount_world(p.status, checkout);
	loopback_up();

	pid_t child = spawn(&p, script);
	if (child < 0)
		fail(p.status, "fork");
	int status = wait_for(child);
	kill(-1, SIGKILL);  /* what the command left running dies with the machine */
	if (status < 0)
		fail(p.status, "wait for the command");
	if (WIFSIGNALED(status))
		dprintf(p.status, "signal %d\n", WTERMSIG(status));
	else
		dprintf(p.status, "exit %d\n", WEXITSTATUS(status));
	finish(p.status);
}
