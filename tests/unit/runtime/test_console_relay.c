/* The foreground `run`'s terminal (runtime/console_relay.h) against a real
 * host pty: a child holding its slave as its controlling terminal stands in
 * for the VMM. And the console's pty and the user's raw terminal
 * (runtime/console.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "runtime/console.h"
#include "runtime/console_relay.h"

struct pty {
	int master, slave;
};

static struct pty make_pty(unsigned rows, unsigned cols)
{
	struct rv_err err = { 0 };
	struct pty p;

	cr_assert_eq(console_make(rows, cols, &p.master, &p.slave, &err), 0, "%s", err.msg);
	return p;
}

/* sh -c script on the slave, as its session's terminal; ours closed. */
static pid_t start_on(int slave, const char *script)
{
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		signal(SIGHUP, SIG_DFL);
		signal(SIGPIPE, SIG_DFL);
		setsid();
		if (dup2(slave, 0) < 0 || dup2(slave, 1) < 0 || dup2(slave, 2) < 0 ||
		    ioctl(0, TIOCSCTTY, 0) < 0)
			_exit(120);
		execl("/bin/sh", "sh", "-c", script, (char *)NULL);
		_exit(121);
	}
	close(slave);
	return pid;
}

/* The signals console_relay's caller blocks, as a signalfd. */
static int signals(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGWINCH);
	sigaddset(&set, SIGUSR1);
	cr_assert_eq(sigprocmask(SIG_BLOCK, &set, NULL), 0);
	int fd = signalfd(-1, &set, SFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	return fd;
}

/* A pipe already holding text, its write end closed. */
static int input(const char *text)
{
	int p[2];

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(write(p[1], text, strlen(text)), (ssize_t)strlen(text));
	close(p[1]);
	return p[0];
}

static int output_file(void)
{
	int fd = memfd_create("relay-out", MFD_CLOEXEC);

	cr_assert_geq(fd, 0);
	return fd;
}

static char *contents(int fd)
{
	static char buf[1 << 20];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	cr_assert_geq(n, 0);
	buf[n] = '\0';
	return buf;
}

static int sigs_seen[65];

static void note_signal(void *arg, int sig)
{
	(void)arg;
	sigs_seen[sig]++;
}

static int relay(struct pty p, pid_t child, int in, int out, int size_fd, int sfd)
{
	struct console_relay r = { .in_fd = in, .out_fd = out, .master = p.master,
				   .size_fd = size_fd, .sig_fd = sfd, .child = child,
				   .on_signal = note_signal };
	struct rv_err err = { 0 };
	int status = -1;

	cr_assert_eq(console_relay(&r, &status, &err), 0, "%s", err.msg);
	cr_assert_eq(r.master, -1, "console_relay closes the master");
	return status;
}

Test(console_relay, input_in_output_out_and_the_childs_status)
{
	int sfd = signals(), out = output_file();
	struct pty p = make_pty(0, 0);
	pid_t child = start_on(p.slave, "read l; echo \"got=$l\"; exit 7");
	int status = relay(p, child, input("hello\n"), out, -1, sfd);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 7, "status 0x%x", status);
	/* The console's slave is raw: no echo, no \r before \n; the guest's
	 * terminal does all that. */
	cr_expect_str_eq(contents(out), "got=hello\n");
}

Test(console_relay, all_the_output_is_out_when_the_child_has_exited)
{
	int sfd = signals(), out = output_file();
	struct pty p = make_pty(0, 0);
	pid_t child = start_on(p.slave, "head -c 300000 /dev/zero | tr '\\0' x");
	int status = relay(p, child, -1, out, -1, sfd);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	const char *got = contents(out);
	cr_assert_eq(strlen(got), 300000);
	cr_expect_eq(strspn(got, "x"), 300000);
}

Test(console_relay, what_an_exited_child_left_in_the_master_is_read_out)
{
	int sfd = signals(), out = output_file();
	struct pty p = make_pty(0, 0);
	pid_t child = start_on(p.slave, "echo last words; exit 3");
	siginfo_t si;

	/* Exited, not reaped: the relay's first look finds it gone. */
	cr_assert_eq(waitid(P_PID, (id_t)child, &si, WEXITED | WNOWAIT), 0);
	int status = relay(p, child, -1, out, -1, sfd);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 3, "status 0x%x", status);
	cr_expect_str_eq(contents(out), "last words\n");
}

Test(console_relay, the_end_of_stdin_ends_nothing)
{
	int sfd = signals(), out = output_file();
	struct pty p = make_pty(0, 0);
	pid_t child = start_on(p.slave, "sleep 0.3; echo still-here");
	int status = relay(p, child, input(""), out, -1, sfd);

	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	cr_expect_str_eq(contents(out), "still-here\n");
}

Test(console_relay, other_signals_go_to_on_signal)
{
	int sfd = signals(), out = output_file();
	struct pty p = make_pty(0, 0);
	pid_t child = start_on(p.slave, "read l; exit 0");

	raise(SIGUSR1);            /* blocked: pending until the relay reads it */
	/* Signals are read before input in each round: the child cannot end
	 * before SIGUSR1 is handed on. */
	int status = relay(p, child, input("go\n"), out, -1, sfd);
	cr_assert(WIFEXITED(status), "status 0x%x", status);
	cr_expect_eq(sigs_seen[SIGUSR1], 1);
	cr_expect_eq(sigs_seen[SIGCHLD], 0, "SIGCHLD is the relay's own");
}

Test(console_relay, a_failed_output_hangs_the_terminal_up)
{
	int sfd = signals(), gone[2];
	struct pty p = make_pty(0, 0);

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe2(gone, O_CLOEXEC), 0);
	close(gone[0]);            /* nobody reads our stdout any more */
	pid_t child = start_on(p.slave, "while :; do echo output; done");
	int status = relay(p, child, -1, gone[1], -1, sfd);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP,
		  "the child gets SIGHUP, as from a hung-up terminal: status 0x%x", status);
}

/* The user's terminal is resized while the child runs: a thread reads the
 * relayed output, and once the first size is shown, resizes and signals
 * us as the kernel would, then lets the child go on. */
struct resizer {
	int out_rd, in_wr, user_master;
	char seen[256];
	size_t len;
};

static void *resize_when_asked(void *arg)
{
	struct resizer *z = arg;
	bool resized = false;
	ssize_t n;

	while ((n = read(z->out_rd, z->seen + z->len, sizeof(z->seen) - 1 - z->len)) > 0) {
		z->len += (size_t)n;
		z->seen[z->len] = '\0';
		if (!resized && strstr(z->seen, "30 99\n")) {
			struct winsize ws = { .ws_row = 40, .ws_col = 120 };
			ioctl(z->user_master, TIOCSWINSZ, &ws);
			kill(getpid(), SIGWINCH);
			if (write(z->in_wr, "next\n", 5) != 5)
				break;
			close(z->in_wr);
			resized = true;
		}
	}
	return NULL;
}

Test(console_relay, the_console_takes_the_user_terminals_size)
{
	int sfd = signals(), out[2], in[2];
	struct pty p = make_pty(0, 0), user = make_pty(30, 99);
	struct resizer z = { 0 };
	pthread_t t;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	z = (struct resizer){ .out_rd = out[0], .in_wr = in[1], .user_master = user.master };
	cr_assert_eq(pthread_create(&t, NULL, resize_when_asked, &z), 0);
	/* At the start the console takes the size the user's has now. */
	pid_t child = start_on(p.slave, "stty size; read l; stty size");
	int status = relay(p, child, in[0], out[1], user.slave, sfd);
	close(out[1]);
	pthread_join(t, NULL);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status 0x%x", status);
	cr_expect_str_eq(z.seen, "30 99\n40 120\n");
}

Test(console, make_gives_a_raw_slave_of_the_size_asked)
{
	struct pty p = make_pty(33, 101);
	struct winsize ws;
	struct termios t;

	cr_assert_eq(ioctl(p.slave, TIOCGWINSZ, &ws), 0);
	cr_expect_eq(ws.ws_row, 33);
	cr_expect_eq(ws.ws_col, 101);
	cr_assert_eq(tcgetattr(p.slave, &t), 0);
	cr_expect_eq(t.c_lflag & (ECHO | ICANON | ISIG), 0, "the guest's terminal does all that");
	cr_expect_eq(t.c_oflag & OPOST, 0);
	cr_expect(fcntl(p.master, F_GETFD) & FD_CLOEXEC);
	cr_expect(fcntl(p.slave, F_GETFD) & FD_CLOEXEC);
}

Test(console, raw_mode_is_given_back_as_it_was)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC), p[2];
	struct console_raw raw;
	struct termios t;

	cr_assert_geq(m, 0);
	cr_assert_eq(grantpt(m) | unlockpt(m), 0);
	int s = open(ptsname(m), O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert_geq(s, 0);
	cr_assert_eq(tcgetattr(s, &t), 0);
	cr_assert(t.c_lflag & ICANON, "a new pty is cooked");
	cr_assert(console_raw_begin(&raw, s));
	cr_assert_eq(tcgetattr(s, &t), 0);
	cr_expect_eq(t.c_lflag & (ECHO | ICANON | ISIG), 0);
	console_raw_end(&raw);
	cr_assert_eq(tcgetattr(s, &t), 0);
	cr_expect(t.c_lflag & ICANON && t.c_lflag & ECHO && t.c_lflag & ISIG);
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_expect_not(console_raw_begin(&raw, p[0]), "a pipe is no terminal");
	cr_expect_eq(raw.fd, -1);
	console_raw_end(&raw);     /* nothing to give back */
}
