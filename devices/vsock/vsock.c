/* The virtio-vsock device: tx queue (guest -> host packets), rx queue
 * (host -> guest), event queue (held, unused: we never migrate). */
#include "devices/vsock/vsock_priv.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>


/* Host ports we pick for connections we open; guests use their own range. */
#define HOST_EPHEMERAL_PORT_FIRST 0x40000000u

void vsock_hdr_for(const struct vsock_conn *c, uint16_t op, uint32_t flags, struct vsock_hdr *h)
{
	*h = (struct vsock_hdr){ .src_cid = VSOCK_HOST_CID, .dst_cid = c->v->guest_cid,
				 .src_port = c->host_port, .dst_port = c->guest_port,
				 .type = VSOCK_TYPE_STREAM, .op = op, .flags = flags,
				 .buf_alloc = VSOCK_CONN_BUF_BYTES, .fwd_cnt = c->fwd_cnt };
}

void vsock_ready(struct vsock *v, struct vsock_conn *c)
{
	if (c->on_ready_list)
		return;
	c->on_ready_list = true;
	c->ready_next = NULL;
	c->ready_prev = v->ready_tail;
	if (v->ready_tail)
		v->ready_tail->ready_next = c;
	else
		v->ready_head = c;
	v->ready_tail = c;
}

void vsock_unready(struct vsock *v, struct vsock_conn *c)
{
	if (!c->on_ready_list)
		return;
	if (c->ready_prev)
		c->ready_prev->ready_next = c->ready_next;
	else
		v->ready_head = c->ready_next;
	if (c->ready_next)
		c->ready_next->ready_prev = c->ready_prev;
	else
		v->ready_tail = c->ready_prev;
	c->on_ready_list = false;
	c->ready_prev = c->ready_next = NULL;
}

void vsock_queue_ctl(struct vsock *v, const struct vsock_hdr *h)
{
	if (v->ctl_len == VSOCK_CTL_QUEUE) {
		virtio_dev_warn(&v->dev, "control queue full, %s to guest port %u dropped",
				vsock_op_name(h->op), h->dst_port);
		return;
	}
	vsock_hdr_encode(h, v->ctl_queue[(v->ctl_head + v->ctl_len++) % VSOCK_CTL_QUEUE]);
}

/* The connection-less answer to a packet that names no connection. */
static void reply_rst(struct vsock *v, const struct vsock_hdr *in)
{
	struct vsock_hdr h = { .src_cid = VSOCK_HOST_CID, .dst_cid = v->guest_cid,
			       .src_port = in->dst_port, .dst_port = in->src_port,
			       .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_RST };
	if (in->op != VSOCK_OP_RST)
		vsock_queue_ctl(v, &h);
}

/* One rx chain for the next thing owed to the guest. 1: used; 0: nothing owed. */
static int fill_one(struct vsock *v, const struct virtq_chain *chain, uint32_t *written)
{
	if (v->ctl_len) {
		if (chain->write_bytes < VSOCK_HDR_BYTES)
			return 0;
		virtq_chain_write(chain, 0, v->ctl_queue[v->ctl_head], VSOCK_HDR_BYTES);
		v->ctl_head = (v->ctl_head + 1) % VSOCK_CTL_QUEUE;
		v->ctl_len--;
		*written = VSOCK_HDR_BYTES;
		return 1;
	}
	while (v->ready_head) {
		struct vsock_conn *c = v->ready_head;
		vsock_unready(v, c);
		if (!vsock_conn_fill_rx(c, chain, written))
			continue;
		if (c->drop_after_send)
			vsock_conn_drop(c, false, NULL);
		else if (vsock_conn_has_output(c))
			vsock_ready(v, c);    /* to the back: connections take turns */
		return 1;
	}
	return 0;
}

/* Linux only ever posts rx buffers with room for a header: anything else is
 * a driver we do not trust any further. */
static bool rx_chain_ok(const struct virtq_chain *c, int rc, struct rv_err *err)
{
	if (rc > 0 && c->write_bytes < VSOCK_HDR_BYTES)
		rv_failx(err, EPROTO, "rx chain %u has %llu writable bytes, less than a header", c->head,
			 (unsigned long long)c->write_bytes);
	return rc > 0 && c->write_bytes >= VSOCK_HDR_BYTES;
}

void vsock_rx_flush(struct vsock *v)
{
	struct virtq *q = &v->dev.queues[RX_QUEUE];
	struct virtq_chain chain;
	struct rv_err err;
	unsigned budget = VIRTIO_NOTIFY_BUDGET;

	if (!virtio_dev_active(&v->dev))
		return;
	do {
		while (v->ctl_len || v->ready_head) {
			int rc = virtq_pop(q, &chain, &err);
			if (rc == 0)
				break;
			if (!rx_chain_ok(&chain, rc, &err)) {
				virtio_dev_fail(&v->dev, &err);
				return;
			}
			uint32_t written = 0;
			if (!fill_one(v, &chain, &written)) {
				q->last_avail--;   /* not consumed after all: the driver keeps it */
				continue;
			}
			virtq_push(q, chain.head, written);
			if (--budget == 0) {
				virtio_dev_used(&v->dev, q);
				virtio_dev_defer(&v->dev, RX_QUEUE);
				return;
			}
		}
		virtio_dev_used(&v->dev, q);
	} while ((v->ctl_len || v->ready_head) && virtq_enable_notify(q));
}

static void accept_request(struct vsock *v, const struct vsock_hdr *h)
{
	struct rv_err err;
	int peer = -1;

	for (unsigned i = 0; i < v->nlisteners && !v->closed; i++) {
		if (v->listeners[i].port != h->dst_port)
			continue;
		struct vsock_conn *c = vsock_conn_new(v, h->dst_port, h->src_port, &peer, &err);
		if (!c) {
			virtio_dev_warn(&v->dev, "%s", err.msg);
			break;
		}
		c->established = true;
		c->peer_buf_alloc = h->buf_alloc;
		c->peer_fwd_cnt = h->fwd_cnt;
		c->owed |= CONN_SEND_RESPONSE;
		vsock_conn_update_events(c);
		vsock_ready(v, c);
		v->listeners[i].fn(v->listeners[i].ctx, peer);
		return;
	}
	reply_rst(v, h);
}

static void tx_packet(struct vsock *v, const struct virtq_chain *chain)
{
	struct vsock_hdr h;
	struct rv_err err;

	if (vsock_pkt_parse(chain, v->guest_cid, &h, &err) < 0) {
		virtio_dev_warn(&v->dev, "dropped a packet: %s", err.msg);
		return;
	}
	struct vsock_conn *c = vsock_conn_find(v, h.dst_port, h.src_port);
	if (c)
		vsock_conn_guest_packet(c, &h, chain);
	else if (h.op == VSOCK_OP_REQUEST)
		accept_request(v, &h);
	else
		reply_rst(v, &h);
}

/* Guest packets are read-only buffers: nothing is written back. */
static uint32_t serve_tx(struct virtio_dev *d, const struct virtq_chain *chain)
{
	tx_packet(d->priv, chain);
	return 0;
}

static bool vsock_notify(struct virtio_dev *d, unsigned q)
{
	struct vsock *v = d->priv;
	bool more = false;

	if (q == TX_QUEUE)
		more = virtio_dev_serve(d, TX_QUEUE, serve_tx);
	if (q == TX_QUEUE || q == RX_QUEUE)
		vsock_rx_flush(v);
	return more;
}

static void vsock_config_read(struct virtio_dev *d, uint64_t off, void *buf, size_t len)
{
	struct vsock *v = d->priv;
	uint8_t cfg[8];

	memcpy(cfg, &v->guest_cid, sizeof(cfg));
	if (off < sizeof(cfg))
		memcpy(buf, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

static void vsock_reset(struct virtio_dev *d)
{
	struct vsock *v = d->priv;

	vsock_conn_drop_all(v);
	v->ctl_head = v->ctl_len = 0;
}

static const struct virtio_dev_ops vsock_ops = {
	.name = "vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.num_queues = 3,
	.queue_max_size = VSOCK_QUEUE_SIZE,
	.queue_notify = vsock_notify,
	.config_read = vsock_config_read,
	.reset = vsock_reset,
};

void vsock_init(struct vsock *v, uint64_t guest_cid, const struct guest_mem *mem,
		struct evloop *loop, const struct rv_log *log)
{
	memset(v, 0, sizeof(*v));
	v->guest_cid = guest_cid;
	v->loop = loop;
	v->next_host_port = HOST_EPHEMERAL_PORT_FIRST;
	virtio_dev_init(&v->dev, &vsock_ops, v, mem, log);
}

void vsock_close(struct vsock *v)
{
	pthread_mutex_lock(&v->dev.lock);
	v->closed = true;
	vsock_conn_drop_all(v);
	pthread_mutex_unlock(&v->dev.lock);
}

void vsock_destroy(struct vsock *v)
{
	virtio_dev_destroy(&v->dev);
}

int vsock_listen(struct vsock *v, uint32_t port, vsock_accept_fn fn, void *ctx, struct rv_err *err)
{
	if (v->nlisteners == VSOCK_MAX_LISTENERS)
		return rv_failx(err, ENOSPC, "vsock: more than %u listening ports", VSOCK_MAX_LISTENERS);
	for (unsigned i = 0; i < v->nlisteners; i++)
		if (v->listeners[i].port == port)
			return rv_failx(err, EADDRINUSE, "vsock: host port %u already has a listener", port);
	v->listeners[v->nlisteners].port = port;
	v->listeners[v->nlisteners].fn = fn;
	v->listeners[v->nlisteners].ctx = ctx;
	v->nlisteners++;
	return 0;
}

static uint32_t pick_host_port(struct vsock *v, uint32_t guest_port)
{
	for (;;) {
		uint32_t p = v->next_host_port++;
		if (v->next_host_port == 0)
			v->next_host_port = HOST_EPHEMERAL_PORT_FIRST;
		if (!vsock_conn_find(v, p, guest_port))
			return p;
	}
}

int vsock_connect(struct vsock *v, uint32_t port, struct rv_err *err)
{
	int peer = -1;

	pthread_mutex_lock(&v->dev.lock);
	if (v->closed) {
		pthread_mutex_unlock(&v->dev.lock);
		return rv_failx(err, ESHUTDOWN, "vsock: the VM is shutting down");
	}
	if (!virtio_dev_active(&v->dev)) {
		pthread_mutex_unlock(&v->dev.lock);
		return rv_failx(err, ENOTCONN, "vsock: the guest has not set up its vsock device (yet)");
	}
	struct vsock_conn *c = vsock_conn_new(v, pick_host_port(v, port), port, &peer, err);
	if (c) {
		c->peer_buf_alloc = 0;
		c->owed |= CONN_SEND_REQUEST;
		vsock_ready(v, c);
		vsock_rx_flush(v);
	}
	pthread_mutex_unlock(&v->dev.lock);
	return c ? peer : -1;
}

static void dump_conn(const struct vsock_conn *c, const char *where, const struct rv_log *log)
{
	rv_logf(log, RV_LOG_DEBUG, "vsock %s host:%u <-> guest:%u: est %d owed 0x%x ready %d "
		"events 0x%x hup %d readable %d host_eof %d guest_eof %d no_rcv %d | g2h rx %u fwd %u "
		"reported %u pend %u | h2g tx %u peer_fwd %u peer_buf %u", where, c->host_port,
		c->guest_port, c->established, c->owed, c->on_ready_list, c->events, c->hup,
		c->host_readable, c->host_eof, c->guest_eof, c->guest_no_rcv, c->rx_cnt, c->fwd_cnt,
		c->fwd_reported, c->pend_len, c->tx_cnt, c->peer_fwd_cnt, c->peer_buf_alloc);
}

void vsock_dump(struct vsock *v, const struct rv_log *log)
{
	virtio_dev_dump(&v->dev, log);
	pthread_mutex_lock(&v->dev.lock);
	rv_logf(log, RV_LOG_DEBUG, "vsock: %u connections, %u control packets queued", v->nconns,
		v->ctl_len);
	for (unsigned b = 0; b < VSOCK_HASH_BUCKETS; b++)
		for (const struct vsock_conn *c = v->buckets[b]; c; c = c->hash_next)
			dump_conn(c, "conn", log);
	for (const struct vsock_conn *c = v->draining; c; c = c->hash_next)
		dump_conn(c, "draining", log);
	pthread_mutex_unlock(&v->dev.lock);
}
