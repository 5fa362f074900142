/* runvm-agent: the guest's /init (DESIGN §4), or a test agent on the host.
 *
 *   runvm-agent              as PID 1: a root of its own over the initramfs,
 *                            mount /proc /sys /dev /dev/pts /tmp /run,
 *                            listen on vsock port PROTO_AGENT_PORT, tell the host
 *                            we are ready, serve it, power off on SHUTDOWN
 *   runvm-agent --unix PATH  the same service on a Unix socket, without mounts or
 *                            readiness dial, as a child subreaper (DESIGN §10, layer 4)
 *   runvm-agent --vsock-child  as PID 1 does, but as a child subreaper of another
 *                            init that exits on SHUTDOWN: whole-VM tests kill it
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define READY_DIAL_TIMEOUT_SECS 1
#define NOFILE_CEILING 65536u

void agent_warn(const char *fmt, ...)
{
	char msg[RV_ERR_MSG_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	dprintf(STDERR_FILENO, "runvm-agent: %s\n", msg);
}

static int listen_unix(const char *path, struct rv_err *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path))
		return rv_failx(err, ENAMETOOLONG, "socket path '%s' is longer than %zu bytes", path,
				sizeof(sa.sun_path) - 1);
	if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
		return rv_failx(err, EEXIST, "'%s' exists and is not a socket", path);
	unlink(path);   /* a stale socket of an earlier agent */
	strcpy(sa.sun_path, path);

	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return rv_fail(err, errno, "socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return rv_fail(err, errno, "bind '%s'", path);
	if (listen(fd, SOMAXCONN) < 0)
		return rv_fail(err, errno, "listen on '%s'", path);
	return rv_steal_fd(&fd);
}

static int listen_vsock(struct rv_err *err)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = PROTO_AGENT_PORT,
	};
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return rv_fail(err, errno, "vsock socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return rv_fail(err, errno, "bind vsock port %u", PROTO_AGENT_PORT);
	if (listen(fd, SOMAXCONN) < 0)
		return rv_fail(err, errno, "listen on vsock port %u", PROTO_AGENT_PORT);
	return rv_steal_fd(&fd);
}

/* One HELLO to the host's ready port saves it from redialling us. Failure is
 * fine: the host then keeps dialling until we answer. */
static void announce_ready(void)
{
	struct sockaddr_vm sa = {
		.svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_HOST, .svm_port = PROTO_READY_PORT,
	};
	struct timeval tv = { .tv_sec = READY_DIAL_TIMEOUT_SECS };
	struct proto_msg hello = { .type = PROTO_HELLO, .hello.version = PROTO_VERSION };
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	struct rv_err err;
	_cleanup_close_ int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || proto_encode(&hello, &buf, &len, &cap, &err) < 0)
		return;
	setsockopt(fd, AF_VSOCK, SO_VM_SOCKETS_CONNECT_TIMEOUT, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		send(fd, buf, len, MSG_NOSIGNAL);
}

/* fds 0-2 open (so pipes never land there), every inherited fd CLOEXEC. */
static void tidy_fds(void)
{
	for (int i = 0; i < 3; i++) {
		if (fcntl(i, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
			agent_warn("open /dev/null: %s", strerror(errno));
	}
	close_range(3, ~0U, CLOSE_RANGE_CLOEXEC);
}

/* Up to 4 fds per exec (3 streams + control) plus 3 pipes: raise the soft
 * limit to the hard one; children get the original back. */
static void raise_nofile(struct agent *a)
{
	struct rlimit r;

	if (getrlimit(RLIMIT_NOFILE, &a->nofile) < 0)
		return;
	r = a->nofile;
	r.rlim_cur = r.rlim_max < NOFILE_CEILING ? r.rlim_max : NOFILE_CEILING;
	if (r.rlim_cur > a->nofile.rlim_cur)
		setrlimit(RLIMIT_NOFILE, &r);
}

static int watch_signals(struct agent *a, struct rv_err *err)
{
	sigset_t chld;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &chld, NULL) < 0)
		return rv_fail(err, errno, "block SIGCHLD");
	a->sig = (struct ep_item){ .kind = EP_SIGNAL };
	a->sig.fd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
	if (a->sig.fd < 0)
		return rv_fail(err, errno, "signalfd");
	ep_set(a, &a->sig, EPOLLIN);
	return 0;
}

static int setup(struct agent *a, const char *unix_path, struct rv_err *err)
{
	if (a->pid1)
		console_setup();
	if (!unix_path) {
		mounts_setup();
		netif_loopback_up();
	}
	pidns_setup(a);   /* after mounts_setup: as PID 1, /proc is ours from there on */
	if (!a->pid1 && prctl(PR_SET_CHILD_SUBREAPER, 1) < 0)
		return rv_fail(err, errno, "become a child subreaper");
	tidy_fds();
	raise_nofile(a);
	a->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (a->epfd < 0)
		return rv_fail(err, errno, "epoll");
	if (watch_signals(a, err) < 0)
		return -1;
	a->listen = (struct ep_item){ .kind = EP_LISTEN };
	a->listen.fd = unix_path ? listen_unix(unix_path, err) : listen_vsock(err);
	if (a->listen.fd < 0)
		return -1;
	ep_set(a, &a->listen, EPOLLIN);
	if (!unix_path)
		announce_ready();
	return 0;
}

/* PID 1 must never exit: end every process and reset the VM (reboot=k). */
static __attribute__((noreturn)) void power_off(void)
{
	kill(-1, SIGKILL);
	sync();
	reboot(RB_AUTOBOOT);
	reboot(RB_POWER_OFF);
	agent_warn("reboot: %s", strerror(errno));
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	struct agent a = { .epfd = -1, .userns_fd = -1, .pidns_self = -1 };
	const char *unix_path = NULL;
	struct rv_err err;

	bool vsock_child = argc == 2 && strcmp(argv[1], "--vsock-child") == 0;
	if (argc == 3 && strcmp(argv[1], "--unix") == 0) {
		unix_path = argv[2];
	} else if (getpid() != 1 && !vsock_child) {
		/* As PID 1, words of the kernel cmdline may arrive as arguments: ignored. */
		fprintf(stderr, "usage: runvm-agent (as the guest's PID 1) | runvm-agent --unix PATH"
			" | runvm-agent --vsock-child\n");
		return 2;
	}
	a.pid1 = getpid() == 1;
	a.guest = !unix_path;
	if (setup(&a, unix_path, &err) < 0) {
		agent_warn("%s", err.msg);
		if (a.pid1)
			power_off();
		return 1;
	}
	int r = agent_loop(&a);
	userns_release(&a);
	roots_release(&a);
	pidns_release(&a);
	if (a.pid1)
		power_off();
	if (unix_path)
		unlink(unix_path);
	return r < 0 ? 1 : 0;
}
