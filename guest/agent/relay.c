/* Bytes between a process's pipes and the host's stream connections, through
 * one bounded buffer per stream. Back-pressure: a source is read only while
 * its buffer has room, so a slow reader on either side stalls only its own
 * stream. stdin flows host -> process; stdout and stderr process -> host.
 *
 * Early closes behave like local pipes: a process that closes its stdin makes
 * our pipe write fail with EPIPE, and we shut the host's stdin connection
 * down; a host that closes stdout makes our socket write fail, and we close
 * the pipe's read end so the process gets SIGPIPE on its next write.
 *
 * A process on a terminal (tty.c) has a stdin and a stdout stream on two fds
 * of its terminal's master, and they behave as a terminal does: the end of
 * the host's stdin ends the input but is no EOF (that is ^D, a byte the host
 * sends); reading the master fails with EIO once every fd of the slave is
 * closed, which ends stdout like a pipe's EOF, after the last byte. The
 * master stays open until the proc is freed, after its reaping: closing it
 * hangs the terminal up, and a process that closed its fds 0-2 but has not
 * exited yet (coreutils do that) would die of SIGHUP. A host that stops
 * reading stdout makes us close the whole master at once, which hangs the
 * terminal up: the process gets SIGHUP and EIO where a pipe gives SIGPIPE. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest/agent/agent.h"

static size_t pending(const struct stream *s)
{
	return s->len - s->off;
}

/* Room at the buffer's tail, compacting as needed. */
static size_t room(struct stream *s)
{
	if (s->off == s->len) {
		s->off = s->len = 0;
	} else if (s->len == AGENT_STREAM_BUF_BYTES && s->off > 0) {
		memmove(s->buf, s->buf + s->off, pending(s));
		s->len -= s->off;
		s->off = 0;
	}
	return AGENT_STREAM_BUF_BYTES - s->len;
}

static bool conn_out_pending(const struct conn *c)
{
	return c && c->out_off < c->out_len;
}

/* Watches exactly what the stream waits for next. */
static void update(struct agent *a, struct stream *s)
{
	struct conn *c = s->conn;
	uint32_t conn_mask = conn_out_pending(c) ? EPOLLOUT : 0, pipe_mask = 0;
	bool has_room = pending(s) < AGENT_STREAM_BUF_BYTES;

	if (s->proc->started && !s->done) {
		if (s->which == PROTO_STDIN) {
			conn_mask |= !s->eof && has_room ? EPOLLIN : 0;
			pipe_mask = pending(s) ? EPOLLOUT : 0;
		} else {
			pipe_mask = !s->eof && has_room ? EPOLLIN : 0;
			conn_mask |= pending(s) ? EPOLLOUT : 0;
		}
	}
	if (c)
		ep_set(a, &c->ep, conn_mask);
	ep_set(a, &s->pipe, pipe_mask);
}

/* Detaches and closes the stream's connection, if it still has one. */
void relay_release(struct agent *a, struct stream *s)
{
	struct conn *c = s->conn;

	if (!c)
		return;
	s->conn = NULL;
	c->stream = NULL;
	conn_close(a, c);
}

/* --- stdin: host -> process ------------------------------------------------------ */

/* The process will not read any more: drop what is buffered, close the pipe
 * and shut the host's stdin connection down so that it stops sending. */
void relay_drop_stdin(struct agent *a, struct stream *s)
{
	if (s->done)
		return;
	s->off = s->len = 0;
	s->eof = s->done = true;
	ep_close(a, &s->pipe);
	if (s->conn)
		shutdown(s->conn->ep.fd, SHUT_RDWR);
	relay_release(a, s);
}

/* Takes bytes from the connection: first those that came behind ATTACH in the
 * same read, then the socket. Host EOF or a reset both end stdin. */
static void stdin_fill(struct stream *s)
{
	struct conn *c = s->conn;
	size_t n = room(s);

	if (!c || s->eof || !n)
		return;
	if (c->in_len) {
		n = n < c->in_len ? n : c->in_len;
		memcpy(s->buf + s->len, c->in, n);
		memmove(c->in, c->in + n, c->in_len - n);
		c->in_len -= n;
		s->len += n;
		return;
	}
	ssize_t got = recv(c->ep.fd, s->buf + s->len, n, MSG_DONTWAIT);
	if (got > 0)
		s->len += (size_t)got;
	else if (got == 0 || (errno != EAGAIN && errno != EINTR))
		s->eof = true;
}

/* Returns false when the process closed its stdin. */
static bool stdin_drain(struct stream *s)
{
	if (!pending(s) || s->pipe.fd < 0)
		return true;
	ssize_t n = write(s->pipe.fd, s->buf + s->off, pending(s));
	if (n > 0)
		s->off += (size_t)n;
	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

static void stdin_pump(struct agent *a, struct stream *s)
{
	if (s->conn && !conn_flush(s->conn))
		s->eof = true;   /* the host is gone; deliver what is buffered */
	if (s->proc->started && !s->done) {
		stdin_fill(s);
		if (!stdin_drain(s)) {
			relay_drop_stdin(a, s);
			return;
		}
		stdin_fill(s);   /* more of the bytes behind ATTACH, now that there is room */
		if (s->eof && !pending(s)) {
			ep_close(a, &s->pipe);   /* the process reads EOF */
			relay_release(a, s);
			s->done = true;
		}
	}
	update(a, s);
}

/* --- stdout, stderr: process -> host ---------------------------------------------- */

/* The host stopped reading: close our read end, so that the process's next
 * write gets SIGPIPE like a local pipe (or its terminal hangs up), and count
 * the stream as done. */
static void host_gone(struct agent *a, struct stream *s)
{
	ep_close(a, &s->pipe);
	s->off = s->len = 0;
	s->eof = s->done = true;
	relay_release(a, s);
	if (s->proc->tty)
		relay_drop_stdin(a, &s->proc->st[PROTO_STDIN]);   /* the master's other fd */
	exec_maybe_finish(a, s->proc);
}

static void out_fill(struct agent *a, struct stream *s)
{
	size_t n = room(s);

	if (s->eof || s->pipe.fd < 0 || !n)
		return;
	ssize_t got = read(s->pipe.fd, s->buf + s->len, n);
	if (got > 0) {
		s->len += (size_t)got;
	} else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
		s->eof = true;
		if (s->proc->tty)
			ep_set(a, &s->pipe, 0);   /* the master stays open: see above */
		else
			ep_close(a, &s->pipe);
	}
}

/* Returns false when the host closed the connection. */
static bool out_drain(struct stream *s)
{
	if (!pending(s))
		return true;
	ssize_t n = send(s->conn->ep.fd, s->buf + s->off, pending(s), MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0)
		s->off += (size_t)n;
	return n >= 0 || errno == EAGAIN || errno == EINTR;
}

static void out_pump(struct agent *a, struct stream *s)
{
	if (s->done)
		return;
	if (!s->proc->started) {
		/* Only ATTACH's OK to send; a host gone already leaves it unattached. */
		if (s->conn && !conn_flush(s->conn))
			relay_release(a, s);
		else
			update(a, s);
		return;
	}
	if (!s->conn || !conn_flush(s->conn)) {
		host_gone(a, s);
		return;
	}
	if (!conn_out_pending(s->conn)) {
		out_fill(a, s);
		if (!out_drain(s)) {
			host_gone(a, s);
			return;
		}
		if (s->eof && !pending(s)) {
			/* every byte is out: the host reads EOF, then may see EXIT */
			shutdown(s->conn->ep.fd, SHUT_WR);
			relay_release(a, s);
			s->done = true;
			exec_maybe_finish(a, s->proc);
			return;
		}
	}
	update(a, s);
}

/* --- entry points --------------------------------------------------------------- */

int relay_prepare(struct stream *s, struct rv_err *err)
{
	if (!s->buf && !(s->buf = malloc(AGENT_STREAM_BUF_BYTES)))
		return rv_fail(err, ENOMEM, "buffer for stream %d", (int)s->which);
	return 0;
}

static void pump(struct agent *a, struct stream *s)
{
	if (s->which == PROTO_STDIN)
		stdin_pump(a, s);
	else
		out_pump(a, s);
}

void relay_start(struct agent *a, struct stream *s)
{
	pump(a, s);
}

void relay_on_conn(struct agent *a, struct stream *s)
{
	pump(a, s);
}

void relay_on_pipe(struct agent *a, struct stream *s)
{
	pump(a, s);
}

/* Its connection was closed from elsewhere: stdin delivers what it has and
 * ends; an output stream has lost its reader. */
void relay_conn_lost(struct agent *a, struct stream *s)
{
	if (s->done || !s->proc->started)
		return;
	if (s->which == PROTO_STDIN) {
		s->eof = true;
		stdin_pump(a, s);
	} else {
		host_gone(a, s);
	}
}
