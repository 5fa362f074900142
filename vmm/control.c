#include "vmm/control.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/ctl.h"

struct control_server {
	int listen_fd;
	control_handler_fn fn;
	control_closed_fn closed;
	void *arg;
	pthread_t acceptor;
	pthread_mutex_t lock;
	pthread_cond_t idle;
	bool stopping;
	unsigned nconns;
	int conns[CONTROL_MAX_CONNS];   /* -1: free slot */
};

struct conn {
	struct control_server *s;
	unsigned slot;
};

static void send_reply(int fd, int rc, const char *payload, int reply_fd,
		       const struct rv_err *err)
{
	char head[sizeof(err->msg) + 32];

	if (rc == 0) {
		struct iovec iov[2] = { { .iov_base = "ok ", .iov_len = payload[0] ? 3 : 2 },
					{ .iov_base = (void *)payload, .iov_len = strlen(payload) } };
		ctl_sendv_fd(fd, iov, 2, reply_fd);
		return;
	}
	int n = snprintf(head, sizeof(head), "error %d %s", err->code, err->msg);
	send(fd, head, (size_t)n < sizeof(head) ? (size_t)n : sizeof(head) - 1, MSG_NOSIGNAL);
}

/* Receives one packet and the fds that came with it (any beyond
 * CONTROL_MAX_FDS, or a cut control message, fail the request). */
static ssize_t recv_request(struct control_call *call, char *req, bool *bad_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * CONTROL_MAX_FDS)];
	} cbuf;
	struct iovec iov = { .iov_base = req, .iov_len = CONTROL_REQ_MAX_BYTES + 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	ssize_t n;

	do
		n = recvmsg(call->fd, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	*bad_fds = mh.msg_flags & MSG_CTRUNC;
	for (struct cmsghdr *c = n >= 0 ? CMSG_FIRSTHDR(&mh) : NULL; c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		int *fds = (int *)CMSG_DATA(c);
		for (size_t i = 0; i < k; i++) {
			if (call->nfds < CONTROL_MAX_FDS)
				call->fds[call->nfds++] = fds[i];
			else {
				close(fds[i]);
				*bad_fds = true;
			}
		}
	}
	return n;
}

static void close_call_fds(struct control_call *call)
{
	for (unsigned i = 0; i < call->nfds; i++)
		if (call->fds[i] >= 0)
			close(call->fds[i]);
	call->nfds = 0;
}

bool control_peer_allowed(uid_t peer, uid_t owner)
{
	return peer == 0 || peer == owner;
}

/* The socket's mode (0600 in a 0700 dir) already keeps others out; the peer's
 * credentials hold even where a mode cannot (a socket passed on by fd, a
 * state dir whose mode someone loosened). */
static int check_peer(int fd, struct rv_err *err)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return rv_fail(err, errno, "control socket: the caller's credentials");
	if (!control_peer_allowed(cred.uid, geteuid()))
		return rv_failx(err, EACCES, "control socket: uid %u may not drive this sandbox "
				"(only uid %u and root may)", (unsigned)cred.uid, (unsigned)geteuid());
	return 0;
}

/* One connection: requests until the client hangs up or we stop. A caller
 * refused by check_peer gets that error for every request. */
static void serve(struct control_server *s, int fd, char *req, char *reply)
{
	struct rv_err refused = { 0 };
	bool stranger = check_peer(fd, &refused) < 0;

	for (;;) {
		struct control_call call = { .fd = fd, .fds = { -1, -1, -1 }, .reply_fd = -1 };
		bool bad_fds;
		ssize_t n = recv_request(&call, req, &bad_fds);
		if (n <= 0) {
			close_call_fds(&call);
			return;
		}
		struct rv_err err = { 0 };
		int rc;
		if (stranger) {
			err = refused;
			rc = -1;
		} else if ((size_t)n > CONTROL_REQ_MAX_BYTES || memchr(req, '\0', (size_t)n)) {
			rc = rv_failx(&err, EINVAL, "malformed control request");
		} else if (bad_fds) {
			rc = rv_failx(&err, EINVAL, "a control request carries at most %u fds",
				      CONTROL_MAX_FDS);
		} else {
			req[n] = '\0';
			reply[0] = '\0';
			rc = s->fn(s->arg, &call, req, reply, CONTROL_REPLY_MAX_BYTES, &err);
		}
		close_call_fds(&call);
		send_reply(fd, rc, reply, call.reply_fd, &err);
		if (call.reply_fd >= 0)
			close(call.reply_fd);
	}
}

long control_recv(struct control_call *call, void *buf, size_t size, struct rv_err *err)
{
	ssize_t n;

	do
		n = recv(call->fd, buf, size, MSG_TRUNC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return rv_fail(err, errno, "control socket");
	if (n == 0)
		return rv_failx(err, ECONNRESET, "the caller hung up");
	if ((size_t)n > size)
		return rv_failx(err, EMSGSIZE, "a packet of %zd bytes (at most %zu)", n, size);
	return n;
}

int control_send(struct control_call *call, const char *text, struct rv_err *err)
{
	if (send(call->fd, text, strlen(text), MSG_NOSIGNAL) < 0)
		return rv_fail(err, errno, "control socket");
	return 0;
}

static void *conn_thread(void *arg)
{
	struct conn *c = arg;
	struct control_server *s = c->s;
	char *req = malloc(CONTROL_REQ_MAX_BYTES + 2), *reply = malloc(CONTROL_REPLY_MAX_BYTES);

	if (req && reply)
		serve(s, s->conns[c->slot], req, reply);
	free(req);
	free(reply);
	if (s->closed)
		s->closed(s->arg, s->conns[c->slot]);
	pthread_mutex_lock(&s->lock);
	close(s->conns[c->slot]);
	s->conns[c->slot] = -1;
	if (--s->nconns == 0)
		pthread_cond_broadcast(&s->idle);
	pthread_mutex_unlock(&s->lock);
	free(c);
	return NULL;
}

/* Takes fd into a free slot and serves it on a detached thread; a full table
 * or a failed thread closes it (the client sees its call fail). */
static void spawn_conn(struct control_server *s, int fd)
{
	struct conn *c = malloc(sizeof(*c));
	pthread_attr_t attr;
	pthread_t t;
	unsigned slot = CONTROL_MAX_CONNS;

	pthread_mutex_lock(&s->lock);
	for (unsigned i = 0; i < CONTROL_MAX_CONNS && !s->stopping; i++)
		if (s->conns[i] < 0) {
			slot = i;
			break;
		}
	if (!c || slot == CONTROL_MAX_CONNS) {
		pthread_mutex_unlock(&s->lock);
		free(c);
		close(fd);
		return;
	}
	s->conns[slot] = fd;
	s->nconns++;
	*c = (struct conn){ .s = s, .slot = slot };
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t, &attr, conn_thread, c) != 0) {
		s->conns[slot] = -1;
		s->nconns--;
		close(fd);
		free(c);
	}
	pthread_attr_destroy(&attr);
	pthread_mutex_unlock(&s->lock);
}

static void *accept_thread(void *arg)
{
	struct control_server *s = arg;

	for (;;) {
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return NULL;     /* shut down by control_server_stop */
		}
		spawn_conn(s, fd);
	}
}

int control_server_start(int listen_fd, control_handler_fn fn, control_closed_fn closed,
			 void *arg, struct control_server **out, struct rv_err *err)
{
	struct control_server *s = calloc(1, sizeof(*s));

	if (!s) {
		close(listen_fd);
		return rv_fail(err, ENOMEM, "control socket");
	}
	*s = (struct control_server){ .listen_fd = listen_fd, .fn = fn, .closed = closed, .arg = arg };
	for (unsigned i = 0; i < CONTROL_MAX_CONNS; i++)
		s->conns[i] = -1;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->idle, NULL);
	int rc = pthread_create(&s->acceptor, NULL, accept_thread, s);
	if (rc) {
		close(listen_fd);
		free(s);
		return rv_fail(err, rc, "start the control socket thread");
	}
	*out = s;
	return 0;
}

void control_server_stop(struct control_server *s)
{
	if (!s)
		return;
	/* shutdown() on a listening socket makes a blocked accept() return. */
	shutdown(s->listen_fd, SHUT_RDWR);
	pthread_join(s->acceptor, NULL);
	close(s->listen_fd);
	pthread_mutex_lock(&s->lock);
	s->stopping = true;
	for (unsigned i = 0; i < CONTROL_MAX_CONNS; i++)
		if (s->conns[i] >= 0)
			shutdown(s->conns[i], SHUT_RDWR);
	while (s->nconns)
		pthread_cond_wait(&s->idle, &s->lock);
	pthread_mutex_unlock(&s->lock);
	pthread_cond_destroy(&s->idle);
	pthread_mutex_destroy(&s->lock);
	free(s);
}
