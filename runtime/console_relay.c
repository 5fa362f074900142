/* The foreground `run`'s terminal (console_relay.h): one poll loop over the
 * signalfd, our stdin and the console's master, until the VMM is reaped;
 * then what the master still holds is read out (its slave is closed by then,
 * so the read ends with EIO). */
#include "runtime/console_relay.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

struct relay {
	struct console_relay *r;
	uint8_t in[CONSOLE_RELAY_BUF_BYTES];   /* in_fd's bytes not in master yet: [in_off, in_len) */
	size_t in_off, in_len;
	bool in_open;                  /* in_fd is still read */
	bool shows;                    /* master is still read: its slave is open somewhere */
};

/* All of buf, waiting when fd is nonblocking (a shared terminal may be). */
static int write_all(int fd, const uint8_t *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			poll(&pf, 1, -1);
			continue;
		}
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Nothing goes in or comes out any more; what holds the slave gets SIGHUP. */
static void hang_up(struct relay *s)
{
	if (s->r->master >= 0)
		close(s->r->master);
	s->r->master = -1;
	s->shows = false;
	s->in_open = false;
	s->in_off = s->in_len = 0;
}

/* What master shows, to out_fd: one read's worth, or all it holds (drain). */
static void show(struct relay *s, bool drain)
{
	uint8_t buf[CONSOLE_RELAY_BUF_BYTES];

	while (s->shows) {
		ssize_t n = read(s->r->master, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {          /* EIO: no slave is open any more */
			s->shows = false;
			return;
		}
		if (write_all(s->r->out_fd, buf, (size_t)n) < 0) {
			hang_up(s);
			return;
		}
		if (!drain)
			return;
	}
}

/* The pending input into master, as far as it takes it now. */
static void push(struct relay *s)
{
	while (s->in_off < s->in_len) {
		ssize_t w = write(s->r->master, s->in + s->in_off, s->in_len - s->in_off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;            /* the rest once master polls writable */
		if (w <= 0) {          /* EIO: nobody reads the terminal any more */
			s->in_open = false;
			break;
		}
		s->in_off += (size_t)w;
	}
	s->in_off = s->in_len = 0;
}

static void feed(struct relay *s)
{
	ssize_t n = read(s->r->in_fd, s->in, sizeof(s->in));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return;
	if (n <= 0) {                  /* its end, or it failed: no more input */
		s->in_open = false;
		return;
	}
	s->in_off = 0;
	s->in_len = (size_t)n;
	push(s);
}

static void follow_size(const struct console_relay *r)
{
	struct winsize ws;

	if (r->size_fd >= 0 && r->master >= 0 && ioctl(r->size_fd, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_row && ws.ws_col)
		ioctl(r->master, TIOCSWINSZ, &ws);
}

static void on_signals(struct relay *s)
{
	struct signalfd_siginfo si[8];
	ssize_t n;

	do
		n = read(s->r->sig_fd, si, sizeof(si));
	while (n < 0 && errno == EINTR);
	for (ssize_t i = 0; n > 0 && i < n / (ssize_t)sizeof(si[0]); i++) {
		int sig = (int)si[i].ssi_signo;
		if (sig == SIGWINCH)
			follow_size(s->r);
		else if (sig != SIGCHLD && s->r->on_signal)
			s->r->on_signal(s->r->arg, sig);
	}
}

int console_relay(struct console_relay *r, int *status, struct rv_err *err)
{
	struct relay s = { .r = r, .in_open = r->in_fd >= 0, .shows = r->master >= 0 };
	int fl = r->master >= 0 ? fcntl(r->master, F_GETFL) : -1;

	/* Nonblocking, so that reading it out at the end stops when it is empty. */
	if (fl < 0 || fcntl(r->master, F_SETFL, fl | O_NONBLOCK) < 0)
		hang_up(&s);
	follow_size(r);                /* a resize before our signals were blocked */
	for (;;) {
		pid_t w = waitpid(r->child, status, WNOHANG);
		if (w == r->child)
			break;
		if (w < 0 && errno != EINTR) {
			int e = errno;
			hang_up(&s);
			return rv_fail(err, e, "wait for the VMM (pid %d)", (int)r->child);
		}
		struct pollfd pf[3] = {
			{ r->sig_fd, POLLIN, 0 },
			{ s.in_open && !s.in_len ? r->in_fd : -1, POLLIN, 0 },
			{ -1, (short)((s.shows ? POLLIN : 0) | (s.in_len ? POLLOUT : 0)), 0 },
		};
		if (pf[2].events)
			pf[2].fd = r->master;
		if (poll(pf, 3, -1) < 0 && errno != EINTR) {
			int e = errno;
			hang_up(&s);
			return rv_fail(err, e, "poll the console");
		}
		if (pf[0].revents & POLLIN)
			on_signals(&s);
		if (pf[1].revents)
			feed(&s);
		if (s.in_len && (pf[2].revents & (POLLOUT | POLLHUP | POLLERR)))
			push(&s);
		if (pf[2].revents & (POLLIN | POLLHUP | POLLERR))
			show(&s, false);
	}
	show(&s, true);
	hang_up(&s);
	return 0;
}
