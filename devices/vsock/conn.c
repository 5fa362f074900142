/* One vsock stream connection: the host socket on one side, the guest's
 * packets on the other, and the credit that keeps both bounded. */
#include "devices/vsock/vsock_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Tell the guest how far we got once this much was forwarded since last time. */
#define CREDIT_UPDATE_BYTES (VSOCK_CONN_BUF_BYTES / 4)

static unsigned bucket(uint32_t host_port, uint32_t guest_port)
{
	return (host_port * 2654435761u ^ guest_port) % VSOCK_HASH_BUCKETS;
}

struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t host_port, uint32_t guest_port)
{
	struct vsock_conn *c = v->buckets[bucket(host_port, guest_port)];
	while (c && (c->host_port != host_port || c->guest_port != guest_port))
		c = c->hash_next;
	return c;
}

uint32_t vsock_conn_peer_credit(const struct vsock_conn *c)
{
	uint32_t in_flight = c->tx_cnt - c->peer_fwd_cnt;
	return in_flight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - in_flight;
}

bool vsock_conn_has_output(const struct vsock_conn *c)
{
	if (c->owed)
		return true;
	return c->established && c->host_readable && !c->guest_no_rcv && vsock_conn_peer_credit(c) > 0;
}

void vsock_conn_update_events(struct vsock_conn *c)
{
	uint32_t ev = 0;

	if (c->established && !c->host_readable && !c->host_eof && !c->guest_no_rcv && !c->draining)
		ev |= EPOLLIN;
	if (c->pend_len)
		ev |= EPOLLOUT;
	if (ev != c->events && c->fd >= 0 && !c->hup) {
		struct rv_err err;
		if (evloop_mod(c->v->loop, c->fd, ev, &c->h, &err) == 0)
			c->events = ev;
	}
}

/* Guest-to-host bytes: straight into the host socket, the rest parked in
 * c->pend (bounded by our buf_alloc, which the guest must respect). */
static int forward(struct vsock_conn *c, const struct iovec *iov, int n, uint32_t len)
{
	ssize_t w = 0;

	if (c->pend_len == 0) {
		struct msghdr mh = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n };
		w = sendmsg(c->fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (w < 0 && errno != EAGAIN)
			return -1;
		if (w < 0)
			w = 0;
	}
	uint32_t rest = len - (uint32_t)w;
	if (rest) {
		if (!c->pend && !(c->pend = malloc(VSOCK_CONN_BUF_BYTES)))
			return -1;
		if (c->pend_off + c->pend_len + rest > VSOCK_CONN_BUF_BYTES) {
			memmove(c->pend, c->pend + c->pend_off, c->pend_len);
			c->pend_off = 0;
		}
		size_t skip = (size_t)w, at = c->pend_off + c->pend_len;
		for (int i = 0; i < n; i++) {
			if (skip >= iov[i].iov_len) {
				skip -= iov[i].iov_len;
				continue;
			}
			memcpy(c->pend + at, (uint8_t *)iov[i].iov_base + skip, iov[i].iov_len - skip);
			at += iov[i].iov_len - skip;
			skip = 0;
		}
		c->pend_len += rest;
	}
	c->fwd_cnt += (uint32_t)w;
	return 0;
}

static void owe_credit_update_if_due(struct vsock_conn *c)
{
	if (c->fwd_cnt - c->fwd_reported >= CREDIT_UPDATE_BYTES) {
		c->owed |= CONN_SEND_CREDIT_UPDATE;
		vsock_ready(c->v, c);
	}
}

/* The guest's shutdowns take effect. A guest that closed both ways waits for
 * our RST (Linux gives up after 8 s and then drops what we hold): it gets it
 * now, and what it sent still reaches the host. */
static void finish_guest_side(struct vsock_conn *c)
{
	if (c->guest_closed) {
		struct vsock_hdr h;
		vsock_hdr_for(c, VSOCK_OP_RST, 0, &h);
		vsock_queue_ctl(c->v, &h);
		vsock_conn_drain(c);
		return;
	}
	if (!c->pend_len && c->guest_eof)
		shutdown(c->fd, SHUT_WR);
}

static void rw_packet(struct vsock_conn *c, const struct vsock_hdr *h, const struct virtq_chain *chain)
{
	struct iovec iov[VIRTQ_MAX_CHAIN_SEGS];
	int n = 0;
	size_t skip = VSOCK_HDR_BYTES, left = h->len;

	if (!c->established || c->guest_eof || c->guest_closed) {
		vsock_conn_drop(c, true, "data after shutdown or before the connection was up");
		return;
	}
	if (c->rx_cnt - c->fwd_cnt + h->len > VSOCK_CONN_BUF_BYTES) {
		vsock_conn_drop(c, true, "guest sent beyond the credit it was given");
		return;
	}
	for (unsigned i = 0; i < chain->nread && left; i++) {
		size_t seg = chain->iov[i].iov_len;
		if (skip >= seg) {
			skip -= seg;
			continue;
		}
		size_t take = seg - skip < left ? seg - skip : left;
		iov[n++] = (struct iovec){ (uint8_t *)chain->iov[i].iov_base + skip, take };
		left -= take;
		skip = 0;
	}
	c->rx_cnt += h->len;
	if (forward(c, iov, n, h->len) < 0) {
		vsock_conn_drop(c, true, NULL);    /* the host end is gone: EPIPE */
		return;
	}
	owe_credit_update_if_due(c);
	vsock_conn_update_events(c);
}

static void shutdown_packet(struct vsock_conn *c, uint32_t flags)
{
	if (flags & VSOCK_SHUTDOWN_RCV)
		c->guest_no_rcv = true;
	if (flags & VSOCK_SHUTDOWN_SEND)
		c->guest_eof = true;
	if ((flags & VSOCK_SHUTDOWN_RCV) && (flags & VSOCK_SHUTDOWN_SEND))
		c->guest_closed = true;
	vsock_conn_update_events(c);
	finish_guest_side(c);
}

void vsock_conn_guest_packet(struct vsock_conn *c, const struct vsock_hdr *h,
			     const struct virtq_chain *chain)
{
	uint32_t credit_before = vsock_conn_peer_credit(c);

	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	/* Every header carries the guest's credit, not only CREDIT_UPDATE (Linux
	 * sends none when its data packets said it already): data held back for
	 * lack of credit may flow again. Before the switch, which may free c. */
	if (credit_before == 0 && vsock_conn_has_output(c))
		vsock_ready(c->v, c);
	switch (h->op) {
	case VSOCK_OP_REQUEST:
		vsock_conn_drop(c, true, "REQUEST on a connection that exists");
		return;
	case VSOCK_OP_RESPONSE:
		if (c->established) {
			vsock_conn_drop(c, true, "RESPONSE on an established connection");
			return;
		}
		c->established = true;
		vsock_conn_update_events(c);
		break;
	case VSOCK_OP_RST:
		vsock_conn_drain(c);
		return;
	case VSOCK_OP_SHUTDOWN:
		shutdown_packet(c, h->flags);
		return;
	case VSOCK_OP_RW:
		rw_packet(c, h, chain);
		return;
	case VSOCK_OP_CREDIT_REQUEST:
		c->owed |= CONN_SEND_CREDIT_UPDATE;
		break;
	}
	if (vsock_conn_has_output(c) && (c->owed || credit_before == 0))
		vsock_ready(c->v, c);
}

static void flush_pending(struct vsock_conn *c)
{
	ssize_t w = send(c->fd, c->pend + c->pend_off, c->pend_len, MSG_DONTWAIT | MSG_NOSIGNAL);

	if (w < 0 && errno == EAGAIN)
		return;
	if (w < 0) {
		vsock_conn_drop(c, !c->draining, NULL);
		return;
	}
	c->pend_off += (uint32_t)w;
	c->pend_len -= (uint32_t)w;
	c->fwd_cnt += (uint32_t)w;
	if (c->pend_len == 0)
		c->pend_off = 0;
	if (c->draining) {
		if (c->pend_len == 0)
			vsock_conn_drop(c, false, NULL);
		return;
	}
	owe_credit_update_if_due(c);
	vsock_conn_update_events(c);
	finish_guest_side(c);
}

/* A hang-up stays ready forever under level-triggered epoll, so the fd leaves
 * epoll on the first one; what is left to read is read from the rx pass. A
 * guest that shut its receive side reads nothing more: it gets the RST now,
 * else nothing would ever free the connection. */
static void host_hung_up(struct vsock_conn *c)
{
	c->hup = true;
	evloop_del(c->v->loop, c->fd);
	c->events = 0;
	if (c->established && !c->host_eof && !c->guest_no_rcv) {
		c->host_readable = true;
		vsock_ready(c->v, c);
	} else {
		vsock_conn_drop(c, true, NULL);
	}
}

static void on_host_event(struct ev_handler *h, uint32_t events)
{
	struct vsock_conn *c = (struct vsock_conn *)h;
	struct vsock *v = c->v;

	pthread_mutex_lock(&v->dev.lock);
	if (c->fd >= 0 && c->draining && (events & (EPOLLHUP | EPOLLERR))) {
		vsock_conn_drop(c, false, NULL);     /* nobody left to read what we hold */
	} else if (c->fd >= 0 && !c->hup) {  /* else dropped while this event was queued */
		if ((events & EPOLLOUT) && c->pend_len)
			flush_pending(c);
		if (c->fd >= 0 && (events & (EPOLLHUP | EPOLLERR))) {
			host_hung_up(c);
		} else if (c->fd >= 0 && !c->draining && (events & EPOLLIN)) {
			c->host_readable = true;
			vsock_conn_update_events(c);
			vsock_ready(v, c);
		}
		vsock_rx_flush(v);
	}
	pthread_mutex_unlock(&v->dev.lock);
}

struct vsock_conn *vsock_conn_new(struct vsock *v, uint32_t host_port, uint32_t guest_port,
				  int *peer_fd, struct rv_err *err)
{
	int sv[2];

	if (v->nconns >= VSOCK_MAX_CONNS)
		return rv_failx(err, EMFILE, "vsock: %u connections are open, the limit", v->nconns), NULL;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return rv_fail(err, errno, "vsock: socketpair"), NULL;
	struct vsock_conn *c = calloc(1, sizeof(*c));
	if (!c || fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 ||
	    evloop_add(v->loop, sv[0], 0, &c->h, err) < 0) {
		if (!c)
			rv_fail(err, ENOMEM, "vsock: new connection");
		free(c);
		close(sv[0]);
		close(sv[1]);
		return NULL;
	}
	*c = (struct vsock_conn){ .h.fn = on_host_event, .v = v, .host_port = host_port,
				  .guest_port = guest_port, .fd = sv[0] };
	unsigned b = bucket(host_port, guest_port);
	c->hash_next = v->buckets[b];
	v->buckets[b] = c;
	v->nconns++;
	*peer_fd = sv[1];
	return c;
}

/* Out of the rx list and out of the table (or the draining list). */
static void unlink_conn(struct vsock_conn *c)
{
	struct vsock *v = c->v;
	struct vsock_conn **pp = c->draining ? &v->draining
					     : &v->buckets[bucket(c->host_port, c->guest_port)];

	vsock_unready(v, c);
	while (*pp && *pp != c)
		pp = &(*pp)->hash_next;
	if (*pp)
		*pp = c->hash_next;
	c->hash_next = NULL;
}

void vsock_conn_drain(struct vsock_conn *c)
{
	struct vsock *v = c->v;

	if (c->pend_len == 0 || c->hup) {
		vsock_conn_drop(c, false, NULL);
		return;
	}
	unlink_conn(c);
	c->draining = true;
	c->hash_next = v->draining;
	v->draining = c;
	c->owed = 0;
	c->host_readable = false;
	vsock_conn_update_events(c);
}

void vsock_conn_drop(struct vsock_conn *c, bool rst, const char *why)
{
	struct vsock *v = c->v;

	if (why)
		virtio_dev_warn(&v->dev, "reset connection host:%u <-> guest:%u: %s", c->host_port,
				c->guest_port, why);
	if (rst) {
		struct vsock_hdr h;
		vsock_hdr_for(c, VSOCK_OP_RST, 0, &h);
		vsock_queue_ctl(v, &h);
	}
	unlink_conn(c);
	v->nconns--;
	evloop_del(v->loop, c->fd);
	close(c->fd);
	c->fd = -1;
	free(c->pend);
	c->pend = NULL;
	evloop_retire(v->loop, c);
}

void vsock_conn_drop_all(struct vsock *v)
{
	while (v->draining)
		vsock_conn_drop(v->draining, false, NULL);
	for (unsigned b = 0; b < VSOCK_HASH_BUCKETS; b++)
		while (v->buckets[b])
			vsock_conn_drop(v->buckets[b], false, NULL);
}

/* Payload straight from the host socket into the guest's buffer. */
static ssize_t read_into_chain(struct vsock_conn *c, const struct virtq_chain *chain, uint32_t max)
{
	struct iovec iov[VIRTQ_MAX_CHAIN_SEGS];
	const struct iovec *w = chain->iov + chain->nread;
	size_t skip = VSOCK_HDR_BYTES, left = max;
	int n = 0;

	for (unsigned i = 0; i < chain->nwrite && left; i++) {
		if (skip >= w[i].iov_len) {
			skip -= w[i].iov_len;
			continue;
		}
		size_t take = w[i].iov_len - skip < left ? w[i].iov_len - skip : left;
		iov[n++] = (struct iovec){ (uint8_t *)w[i].iov_base + skip, take };
		left -= take;
		skip = 0;
	}
	return n ? readv(c->fd, iov, n) : 0;
}

static uint16_t take_owed(struct vsock_conn *c, uint32_t *flags)
{
	static const struct { uint32_t bit; uint16_t op; } order[] = {
		{ CONN_SEND_REQUEST, VSOCK_OP_REQUEST }, { CONN_SEND_RESPONSE, VSOCK_OP_RESPONSE },
		{ CONN_SEND_CREDIT_UPDATE, VSOCK_OP_CREDIT_UPDATE },
		{ CONN_SEND_CREDIT_REQUEST, VSOCK_OP_CREDIT_REQUEST },
	};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!(c->owed & order[i].bit))
			continue;
		c->owed &= ~order[i].bit;
		*flags = 0;
		return order[i].op;
	}
	return VSOCK_OP_INVALID;
}

int vsock_conn_fill_rx(struct vsock_conn *c, const struct virtq_chain *chain, uint32_t *written)
{
	struct vsock_hdr h;
	uint8_t raw[VSOCK_HDR_BYTES];
	uint32_t flags = 0;

	if (chain->write_bytes < VSOCK_HDR_BYTES)
		return 0;
	uint16_t op = take_owed(c, &flags);
	if (op == VSOCK_OP_INVALID) {
		uint32_t max = vsock_conn_peer_credit(c);
		if (max > VSOCK_MAX_PKT_BYTES)
			max = VSOCK_MAX_PKT_BYTES;
		if (max > chain->write_bytes - VSOCK_HDR_BYTES)
			max = (uint32_t)(chain->write_bytes - VSOCK_HDR_BYTES);
		if (!c->host_readable || c->guest_no_rcv || max == 0)
			return 0;
		ssize_t n = read_into_chain(c, chain, max);
		if (n < 0 && errno == EAGAIN) {
			c->host_readable = false;
			vsock_conn_update_events(c);
			return 0;
		}
		if (n <= 0) {
			/* EOF (or an error, which we treat as one): no more data to the guest. */
			c->host_readable = false;
			c->host_eof = true;
			vsock_conn_update_events(c);
			op = VSOCK_OP_SHUTDOWN;
			flags = VSOCK_SHUTDOWN_SEND;
			/* Closed for good: the guest may drop its side at once. */
			if (c->hup) {
				flags |= VSOCK_SHUTDOWN_RCV;
				c->drop_after_send = true;
			}
		} else {
			vsock_hdr_for(c, VSOCK_OP_RW, 0, &h);
			h.len = (uint32_t)n;
			c->tx_cnt += (uint32_t)n;
			if (vsock_conn_peer_credit(c) == 0)
				c->owed |= CONN_SEND_CREDIT_REQUEST;
			goto send;
		}
	}
	vsock_hdr_for(c, op, flags, &h);
send:
	c->fwd_reported = c->fwd_cnt;
	vsock_hdr_encode(&h, raw);
	virtq_chain_write(chain, 0, raw, sizeof(raw));
	*written = VSOCK_HDR_BYTES + h.len;
	return 1;
}
