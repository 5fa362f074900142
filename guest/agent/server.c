/* The agent's event loop and its connections: accept, read frames, dispatch
 * requests, queue and flush replies. Requests about processes go to exec.c;
 * the bytes of attached streams go to relay.c. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "guest/agent/agent.h"

#define CONN_IN_MAX_BYTES (PROTO_HDR_BYTES + PROTO_MAX_PAYLOAD_BYTES)
#define CONN_IN_FIRST_BYTES 4096u
#define ACCEPT_BATCH 64

/* Registers, changes or removes it so that exactly `mask` is watched. An fd
 * with nothing to wait for leaves the set: a pipe or socket that hung up
 * would otherwise report EPOLLHUP forever while we wait for buffer space. */
void ep_set(struct agent *a, struct ep_item *it, uint32_t mask)
{
	struct epoll_event ev = { .events = mask, .data.ptr = it };
	int op;

	if (it->fd < 0 || mask == it->mask)
		return;
	op = !it->mask ? EPOLL_CTL_ADD : !mask ? EPOLL_CTL_DEL : EPOLL_CTL_MOD;
	if (epoll_ctl(a->epfd, op, it->fd, &ev) < 0) {
		agent_warn("epoll_ctl(%d) on fd %d: %s", op, it->fd, strerror(errno));
		return;
	}
	it->mask = mask;
}

void ep_close(struct agent *a, struct ep_item *it)
{
	if (it->fd < 0)
		return;
	ep_set(a, it, 0);
	close(it->fd);
	it->fd = -1;
}

/* --- replies ------------------------------------------------------------------ */

void conn_send(struct conn *c, const struct proto_msg *m)
{
	struct rv_err err;

	if (c->closing)
		return;
	if (proto_encode(m, &c->out, &c->out_len, &c->out_cap, &err) < 0) {
		agent_warn("encode %s: %s", proto_type_name(m->type), err.msg);
		c->closing = true;
	}
}

void conn_reply_ok(struct conn *c, uint32_t id)
{
	struct proto_msg m = { .type = PROTO_OK, .id = id };

	conn_send(c, &m);
}

void conn_reply_error(struct conn *c, uint32_t id, int code, const char *fmt, ...)
{
	struct proto_msg m = { .type = PROTO_ERROR, .id = id };
	char msg[RV_ERR_MSG_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	m.error.code = (uint32_t)code;
	m.error.message = msg;
	conn_send(c, &m);
}

/* --- connection lifetime -------------------------------------------------------- */

static void accept_resume(struct agent *a)
{
	if (a->listen_paused && a->nconns < AGENT_MAX_CONNS) {
		a->listen_paused = false;
		ep_set(a, &a->listen, EPOLLIN);
	}
}

void conn_close(struct agent *a, struct conn *c)
{
	struct stream *s = c->stream;

	if (s) {
		s->conn = NULL;
		c->stream = NULL;
	}
	ep_close(a, &c->ep);
	exec_conn_closed(a, c);
	if (c->prev)
		c->prev->next = c->next;
	else
		a->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	a->nconns--;
	free(c->in);
	free(c->out);
	free(c);
	accept_resume(a);
	if (s)
		relay_conn_lost(a, s);
}

/* Sends what is queued; false when the connection is beyond use. */
bool conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->ep.fd, c->out + c->out_off, c->out_len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN;
		c->out_off += (size_t)n;
	}
	c->out_off = c->out_len = 0;
	return true;
}

/* After anything happened on a control connection: flush, then close it,
 * stop the agent, or watch for what it waits on next. May free c. */
void conn_settle(struct agent *a, struct conn *c)
{
	bool alive = conn_flush(c);
	bool pending = alive && c->out_off < c->out_len;
	uint32_t mask = 0;

	if (c->shutdown_after && !pending)
		a->quit = true;
	if (!alive || (c->closing && !pending)) {
		conn_close(a, c);
		return;
	}
	if (!c->closing && c->out_len - c->out_off < AGENT_OUT_HIGH_BYTES)
		mask |= EPOLLIN;
	if (pending)
		mask |= EPOLLOUT;
	ep_set(a, &c->ep, mask);
}

static void on_listen(struct agent *a)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(a->listen.fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
				agent_warn("accept: %s; pausing until a connection closes", strerror(errno));
				a->listen_paused = true;
				ep_set(a, &a->listen, 0);
			}
			return;   /* EAGAIN, or a connection that died in the queue */
		}
		if (a->nconns >= AGENT_MAX_CONNS) {
			close(fd);   /* the host sees EOF before HELLO: it may retry */
			continue;
		}
		struct conn *c = calloc(1, sizeof(*c));
		if (!c) {
			close(fd);
			continue;
		}
		c->ep = (struct ep_item){ .kind = EP_CONN, .fd = fd };
		c->next = a->conns;
		if (a->conns)
			a->conns->prev = c;
		a->conns = c;
		a->nconns++;
		ep_set(a, &c->ep, EPOLLIN);
	}
}

/* --- requests ---------------------------------------------------------------- */

static void on_hello(struct conn *c, const struct proto_msg *m)
{
	struct proto_msg reply = { .type = PROTO_HELLO, .id = m->id };

	if (m->type != PROTO_HELLO) {
		conn_reply_error(c, m->id, EPROTO, "expected HELLO first, got %s",
				 proto_type_name(m->type));
		c->closing = true;
		return;
	}
	if (m->hello.version != PROTO_VERSION) {
		conn_reply_error(c, m->id, EPROTONOSUPPORT,
				 "unsupported protocol version %u, this agent speaks %u",
				 m->hello.version, PROTO_VERSION);
		c->closing = true;
		return;
	}
	reply.hello.version = PROTO_VERSION;
	conn_send(c, &reply);
	c->state = CONN_READY;
}

static void on_shutdown(struct conn *c, const struct proto_msg *m)
{
	conn_reply_ok(c, m->id);
	c->shutdown_after = true;
	c->closing = true;
}

/* Returns true when the handler took ownership of m. */
static bool on_request(struct agent *a, struct conn *c, struct proto_msg *m)
{
	if (c->state == CONN_NEW) {
		on_hello(c, m);
		return false;
	}
	if (c->state == CONN_READY && m->type != PROTO_ATTACH)
		c->state = CONN_CONTROL;
	switch (m->type) {
	case PROTO_EXEC:
		return exec_on_exec(a, c, m);
	case PROTO_ATTACH:
		exec_on_attach(a, c, m);
		break;
	case PROTO_START:
		exec_on_start(a, c, m);
		break;
	case PROTO_SIGNAL:
		exec_on_signal(a, c, m);
		break;
	case PROTO_RESIZE:
		exec_on_resize(a, c, m);
		break;
	case PROTO_MOUNT:
		return mounts_on_mount(a, c, m);
	case PROTO_MKNOD:
		mounts_on_mknod(a, c, m);
		break;
	case PROTO_NETCONF:
		netif_on_netconf(c, m);
		break;
	case PROTO_SHUTDOWN:
		on_shutdown(c, m);
		break;
	case PROTO_SIGNAL_ALL:
		procs_on_signal_all(a, c, m);
		break;
	case PROTO_PS:
		procs_on_ps(c, m);
		break;
	case PROTO_STATS:
		procs_on_stats(c, m);
		break;
	case PROTO_RESEED:
		reseed_on_reseed(a, c, m);
		break;
	case PROTO_HELLO:
		conn_reply_error(c, m->id, EPROTO, "HELLO twice on one connection");
		break;
	default:
		conn_reply_error(c, m->id, EPROTO, "%s is not a request the host sends",
				 proto_type_name(m->type));
		break;
	}
	return false;
}

/* Handles every whole frame buffered. A framing error is answered and ends
 * the connection; after ATTACH the rest of the buffer is stream data. */
static void parse_frames(struct agent *a, struct conn *c)
{
	size_t off = 0;

	while (!c->closing && c->state != CONN_STREAM) {
		struct proto_msg m;
		struct rv_err err;
		long n = proto_frame_check(c->in + off, c->in_len - off, &err);

		if (n == 0)
			break;
		if (n < 0 || proto_decode(c->in + off, (size_t)n, &m, &err) < 0) {
			conn_reply_error(c, 0, err.code ? err.code : EPROTO,
					 "bad frame, closing the connection: %s", err.msg);
			c->closing = true;
			break;
		}
		bool reseed = m.type == PROTO_RESEED;
		if (reseed)   /* the decoded copy is all the handler needs */
			explicit_bzero(c->in + off, (size_t)n);
		off += (size_t)n;
		bool kept = on_request(a, c, &m);
		/* Used or refused (before HELLO), a seed must not linger in the
		 * agent's memory for a later snapshot to copy into clones. */
		if (reseed)
			explicit_bzero(m.reseed.seed, sizeof(m.reseed.seed));
		if (!kept)
			proto_msg_free(&m);
	}
	memmove(c->in, c->in + off, c->in_len - off);
	c->in_len -= off;
}

static bool in_reserve(struct conn *c)
{
	if (c->in_len < c->in_cap)
		return true;
	if (c->in_cap >= CONN_IN_MAX_BYTES)
		return false;   /* cannot happen: frame_check bounds a frame */
	size_t cap = c->in_cap ? c->in_cap * 2 : CONN_IN_FIRST_BYTES;
	if (cap > CONN_IN_MAX_BYTES)
		cap = CONN_IN_MAX_BYTES;
	uint8_t *in = realloc(c->in, cap);
	if (!in)
		return false;
	c->in = in;
	c->in_cap = cap;
	return true;
}

static void on_conn_readable(struct agent *a, struct conn *c)
{
	if (!in_reserve(c)) {
		c->closing = true;
		return;
	}
	ssize_t n = recv(c->ep.fd, c->in + c->in_len, c->in_cap - c->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		/* The host is done sending (or gone): answer what it sent, then close. */
		c->closing = true;
		if (n < 0)
			c->out_off = c->out_len = 0;
		return;
	}
	c->in_len += (size_t)n;
	parse_frames(a, c);
}

static void on_conn(struct agent *a, struct conn *c, uint32_t events)
{
	if (c->state == CONN_STREAM) {
		relay_on_conn(a, c->stream);
		return;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		on_conn_readable(a, c);
	if (c->state == CONN_STREAM) {
		relay_start(a, c->stream);   /* flushes the OK; relays once started */
		return;
	}
	conn_settle(a, c);
}

static void on_signalfd(struct agent *a)
{
	struct signalfd_siginfo si[16];

	while (read(a->sig.fd, si, sizeof(si)) > 0)
		;
	exec_on_sigchld(a);
}

/* One event per epoll_wait: a handler may free what another pending event
 * of the same batch points at (a proc and its streams, a connection). */
int agent_loop(struct agent *a)
{
	while (!a->quit) {
		struct epoll_event ev;
		int n = epoll_wait(a->epfd, &ev, 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			agent_warn("epoll_wait: %s", strerror(errno));
			return -1;
		}
		if (n == 0)
			continue;
		struct ep_item *it = ev.data.ptr;
		switch (it->kind) {
		case EP_LISTEN:
			on_listen(a);
			break;
		case EP_SIGNAL:
			on_signalfd(a);
			break;
		case EP_CONN:
			on_conn(a, container_of(it, struct conn, ep), ev.events);
			break;
		case EP_PIPE:
			relay_on_pipe(a, container_of(it, struct stream, pipe));
			break;
		}
	}
	return 0;
}
