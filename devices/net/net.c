#include "devices/net/net.h"

#include <endian.h>
#include <errno.h>
#include <linux/if_tun.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#define CONFIG_BYTES 12u             /* mac, status, max_virtqueue_pairs, mtu */
#define VIRTIO_NET_S_LINK_UP 1u

#define NET_FEATURES (VIRTIO_NET_F_CSUM | VIRTIO_NET_F_GUEST_CSUM | VIRTIO_NET_F_MTU | \
		      VIRTIO_NET_F_MAC | VIRTIO_NET_F_GUEST_TSO4 | VIRTIO_NET_F_GUEST_TSO6 | \
		      VIRTIO_NET_F_HOST_TSO4 | VIRTIO_NET_F_HOST_TSO6 | VIRTIO_NET_F_MRG_RXBUF | \
		      VIRTIO_NET_F_STATUS)

static bool negotiated(const struct vnet *n, uint64_t f)
{
	return (n->dev.driver_features & f) == f;
}

/* --- transmit: guest -> tap ------------------------------------------------------ */

/* The header's offload requests must be ones the driver negotiated, and
 * point inside the frame: the host kernel checks them again, but a frame
 * we pass on is one we vouch for. */
static bool tx_header_ok(const struct vnet *n, const struct virtio_net_hdr *h, uint64_t frame_len)
{
	uint8_t gso = h->gso_type;

	/* No ECN bit: HOST_ECN is not offered. */
	if (h->flags & ~VIRTIO_NET_HDR_F_NEEDS_CSUM)
		return false;
	if ((h->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) &&
	    (!negotiated(n, VIRTIO_NET_F_CSUM) ||
	     (uint64_t)le16toh(h->csum_start) + le16toh(h->csum_offset) + 2 > frame_len))
		return false;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV4)
		return negotiated(n, VIRTIO_NET_F_HOST_TSO4) && h->gso_size != 0;
	if (gso == VIRTIO_NET_HDR_GSO_TCPV6)
		return negotiated(n, VIRTIO_NET_F_HOST_TSO6) && h->gso_size != 0;
	return false;
}

static uint32_t tx_one(struct virtio_dev *d, const struct virtq_chain *c)
{
	struct vnet *n = d->priv;
	struct virtio_net_hdr h;

	if (c->nwrite || c->read_bytes < NET_MIN_FRAME_BYTES ||
	    c->read_bytes > NET_HDR_BYTES + NET_MAX_FRAME_BYTES) {
		virtio_dev_warn(d, "tx: dropped a buffer of %llu bytes (%u writable segments)",
				(unsigned long long)c->read_bytes, c->nwrite);
		n->stats.tx_dropped++;
		return 0;
	}
	virtq_chain_read(c, 0, &h, sizeof(h));
	if (!tx_header_ok(n, &h, c->read_bytes - NET_HDR_BYTES)) {
		virtio_dev_warn(d, "tx: dropped a frame whose header asks for offloads not "
				"negotiated or out of the frame (flags 0x%x gso 0x%x)", h.flags,
				h.gso_type);
		n->stats.tx_dropped++;
		return 0;
	}
	/* Straight from guest memory: the tap copies it once, into its skb. A
	 * full tap queue drops the frame, as a wire would. */
	ssize_t w = writev(n->tap_fd, c->iov, (int)c->nread);
	if (w < 0) {
		n->stats.tx_dropped++;
		return 0;
	}
	n->stats.tx_frames++;
	n->stats.tx_bytes += c->read_bytes - NET_HDR_BYTES;
	return 0;
}

/* --- receive: tap -> guest ------------------------------------------------------- */

static void watch_tap(struct vnet *n, bool on)
{
	struct rv_err err;

	if (n->tap_watched == on || n->tap_fd < 0)
		return;
	if (evloop_mod(n->loop, n->tap_fd, on ? EPOLLIN : 0, &n->tap_h, &err) < 0) {
		virtio_dev_warn(&n->dev, "rx: %s", err.msg);
		return;
	}
	n->tap_watched = on;
}

/* The next chain: 1 with *c taken and fit to fill, 0 when the ring has
 * none, -1 when it is broken, -2 when c is one the device cannot fill
 * (readable segments, no room for the header in a first one), taken. */
static int rx_take(struct vnet *n, struct virtq_chain *c, bool first)
{
	struct virtq *q = &n->dev.queues[NET_RXQ];
	struct rv_err err;
	int rc = virtq_pop(q, c, &err);

	if (rc < 0 && q->broken) {
		virtio_dev_fail(&n->dev, &err);
		return -1;
	}
	if (rc == 0 || (rc == 1 && !c->nread && c->write_bytes >= (first ? NET_HDR_BYTES : 1)))
		return rc;
	virtio_dev_warn(&n->dev, "rx: a buffer the device cannot fill: %s",
			rc < 0 ? err.msg : "readable, or no room for the header");
	return -2;
}

static uint32_t room_of(const struct virtq_chain *c, uint32_t left)
{
	return c->write_bytes < left ? (uint32_t)c->write_bytes : left;
}

/* The pending frame into as many chains as it takes (one without
 * MRG_RXBUF, whose driver posts 64 KiB ones). The first chain is written
 * last, once its header can say how many chains the frame took. 1:
 * delivered, or dropped (it cannot fit, or met a bad buffer); 0: not
 * enough buffers yet, none consumed; -1: the ring is broken. */
static int rx_deliver(struct vnet *n)
{
	struct virtq *q = &n->dev.queues[NET_RXQ];
	struct vnet_rx *rx = n->rx;
	bool mergeable = negotiated(n, VIRTIO_NET_F_MRG_RXBUF);
	int rc;

	while ((rc = rx_take(n, &rx->first, true)) == -2)
		virtq_push(q, rx->first.head, 0);
	n->rx_seen = q->last_avail;
	if (rc <= 0)
		return rc;
	rx->heads[0] = rx->first.head;
	rx->lens[0] = room_of(&rx->first, n->frame_len);
	uint32_t done = rx->lens[0];
	unsigned used = 1;
	while (done < n->frame_len) {
		if (!mergeable || used == q->size) {
			/* It will never fit: the buffers stay the driver's, the
			 * frame is lost, as on a wire with a smaller MTU. */
			virtq_unpop(q, (uint16_t)used);
			n->stats.rx_dropped++;
			n->frame_len = 0;
			return 1;
		}
		if ((rc = rx_take(n, &rx->c, false)) == 0) {
			n->rx_seen = q->last_avail;
			virtq_unpop(q, (uint16_t)used);     /* the driver's still: no room yet */
			return 0;
		}
		if (rc == -1)
			return -1;
		if (rc == -2) {
			/* Everything taken goes back empty, the frame is lost: the
			 * driver counts a length error for each and reposts. */
			for (unsigned i = 0; i < used; i++)
				virtq_push(q, rx->heads[i], 0);
			virtq_push(q, rx->c.head, 0);
			n->stats.rx_dropped++;
			n->frame_len = 0;
			return 1;
		}
		uint32_t take = room_of(&rx->c, n->frame_len - done);
		virtq_chain_write(&rx->c, 0, n->frame + done, take);
		rx->heads[used] = rx->c.head;
		rx->lens[used++] = take;
		done += take;
	}
	struct virtio_net_hdr *h = (struct virtio_net_hdr *)n->frame;
	h->num_buffers = htole16((uint16_t)used);
	virtq_chain_write(&rx->first, 0, n->frame, rx->lens[0]);
	for (unsigned i = 0; i < used; i++)
		virtq_push(q, rx->heads[i], rx->lens[i]);
	n->stats.rx_frames++;
	n->stats.rx_bytes += n->frame_len - NET_HDR_BYTES;
	n->frame_len = 0;
	return 1;
}

/* The tap's header as the driver may see it: offload flags only where it
 * negotiated them (the tap marks DATA_VALID whatever it was told); a GSO
 * frame it cannot take is dropped (false). */
static bool rx_header_fix(const struct vnet *n, struct virtio_net_hdr *h)
{
	uint8_t gso = h->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (!negotiated(n, VIRTIO_NET_F_GUEST_CSUM))
		h->flags = 0;
	if (gso == VIRTIO_NET_HDR_GSO_NONE)
		return true;
	return (gso == VIRTIO_NET_HDR_GSO_TCPV4 && negotiated(n, VIRTIO_NET_F_GUEST_TSO4)) ||
	       (gso == VIRTIO_NET_HDR_GSO_TCPV6 && negotiated(n, VIRTIO_NET_F_GUEST_TSO6));
}

static bool rx_frame_ok(const struct vnet *n, ssize_t r, struct virtio_net_hdr *h)
{
	return r >= (ssize_t)NET_MIN_FRAME_BYTES && r <= (ssize_t)(NET_HDR_BYTES + NET_MAX_FRAME_BYTES) &&
	       rx_header_fix(n, h);
}

/* After a read of the tap: false when nothing came, the tap being empty
 * (watched for more) or gone (warned of, unwatched). Else notes whether the
 * frame was large, which picks how the next one is read (rx_pump). */
static bool rx_read_done(struct vnet *n, ssize_t r)
{
	if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
		watch_tap(n, true);
		return false;
	}
	if (r <= 0) {       /* the tap is gone (0: a test's socket closed) */
		virtio_dev_warn(&n->dev, "rx: tap read: %s", r ? strerror(errno) : "end of file");
		watch_tap(n, false);
		return false;
	}
	n->rx_large = r >= (ssize_t)NET_RX_DIRECT_MIN_BYTES;
	return true;
}

/* Appends a chain's writable segments to the read vector, less their
 * first `skip` bytes. False when the vector is full. */
static bool rx_iov_append(struct vnet_rx *rx, const struct virtq_chain *c, size_t skip)
{
	for (unsigned i = c->nread; i < c->nread + c->nwrite; i++) {
		size_t len = c->iov[i].iov_len;
		if (skip >= len) {
			skip -= len;
			continue;
		}
		if (rx->niov == NET_RX_MAX_IOV)
			return false;
		rx->iov[rx->niov++] = (struct iovec){ (uint8_t *)c->iov[i].iov_base + skip, len - skip };
		skip = 0;
	}
	return true;
}

/* Takes chains until they hold the largest frame the tap may hand. True
 * with rx->taken of them; false with none taken (too few buffers, or a
 * bad one after good ones, which the aside path deals with). */
static bool rx_gather(struct vnet *n)
{
	struct virtq *q = &n->dev.queues[NET_RXQ];
	struct vnet_rx *rx = n->rx;
	uint64_t room = 0;

	rx->taken = 0;
	rx->niov = 1;                      /* iov[0]: the header, read aside */
	while (room < NET_HDR_BYTES + NET_MAX_FRAME_BYTES) {
		struct virtq_chain *c = rx->taken ? &rx->c : &rx->first;
		int rc = rx->taken == q->size ? 0 : rx_take(n, c, rx->taken == 0);
		if (rc == -2 && !rx->taken) {
			virtq_push(q, c->head, 0);
			continue;
		}
		if (rc != 1 || !rx_iov_append(rx, c, rx->taken ? 0 : NET_HDR_BYTES)) {
			virtq_unpop(q, (uint16_t)(rx->taken + (rc == -2 || rc == 1)));
			return false;
		}
		rx->heads[rx->taken] = c->head;
		rx->lens[rx->taken++] = c->write_bytes > UINT32_MAX ? UINT32_MAX : (uint32_t)c->write_bytes;
		room += c->write_bytes;
	}
	return true;
}

/* With MRG_RXBUF and room in the ring for the largest frame, the tap reads
 * straight into the guest's buffers: one copy, the tap's, instead of a
 * second one out of n->frame. The header goes aside, to be checked and
 * written after, so the guest neither sees the tap's unchecked one nor
 * changes ours under the check. 1: a frame delivered or dropped; 0: stop
 * (the tap is empty or gone, or the ring broken); 2: nothing taken, read
 * the frame aside instead. Taken only while frames come large: gathering
 * room for 64 KiB costs more than copying a small one, and a
 * request/response exchange finds the tap empty after each. */
static int rx_direct(struct vnet *n)
{
	struct virtq *q = &n->dev.queues[NET_RXQ];
	struct vnet_rx *rx = n->rx;

	if (!rx_gather(n)) {
		if (!q->broken)
			return 2;
		watch_tap(n, false);
		return 0;
	}
	rx->iov[0] = (struct iovec){ &rx->hdr, NET_HDR_BYTES };
	ssize_t r = readv(n->tap_fd, rx->iov, (int)rx->niov);
	if (!rx_read_done(n, r)) {
		virtq_unpop(q, (uint16_t)rx->taken);
		return 0;
	}
	if (!rx_frame_ok(n, r, &rx->hdr)) {
		virtq_unpop(q, (uint16_t)rx->taken);   /* the buffers' bytes are still the driver's */
		n->stats.rx_dropped++;
		return 1;
	}
	uint64_t left = (uint64_t)r;
	unsigned used = 0;
	while (left) {
		uint32_t take = rx->lens[used] < left ? rx->lens[used] : (uint32_t)left;
		rx->lens[used++] = take;
		left -= take;
	}
	rx->hdr.num_buffers = htole16((uint16_t)used);
	virtq_chain_write(&rx->first, 0, &rx->hdr, NET_HDR_BYTES);
	for (unsigned i = 0; i < used; i++)
		virtq_push(q, rx->heads[i], rx->lens[i]);
	virtq_unpop(q, (uint16_t)(rx->taken - used));
	n->stats.rx_frames++;
	n->stats.rx_direct++;
	n->stats.rx_bytes += (uint64_t)r - NET_HDR_BYTES;
	return 1;
}

/* Lock held. Frames from the tap into the guest until either runs dry or
 * the budget does (true: more to do). With no buffers left, the tap is
 * left unwatched until the driver adds some (rx queue notify). */
static bool rx_pump(struct vnet *n)
{
	struct virtq *q = &n->dev.queues[NET_RXQ];
	unsigned budget = VIRTIO_NOTIFY_BUDGET;
	bool more = false;

	if (!virtio_dev_active(&n->dev) || !q->ready) {
		watch_tap(n, false);    /* level-triggered: nobody would read it */
		return false;
	}
	while (budget--) {
		if (!n->frame_len && n->rx_large && negotiated(n, VIRTIO_NET_F_MRG_RXBUF)) {
			int rc = rx_direct(n);
			if (rc == 0)
				break;
			if (rc == 1) {
				more = budget == 0;
				continue;
			}
		}
		if (!n->frame_len) {
			ssize_t r = read(n->tap_fd, n->frame, NET_HDR_BYTES + NET_MAX_FRAME_BYTES);
			if (!rx_read_done(n, r))
				break;
			if (!rx_frame_ok(n, r, (struct virtio_net_hdr *)n->frame)) {
				n->stats.rx_dropped++;
				continue;
			}
			n->frame_len = (uint32_t)r;
		}
		int rc = rx_deliver(n);
		if (rc <= 0) {
			/* No room: the driver's next rx kick brings us back. */
			watch_tap(n, false);
			if (rc == 0 && virtq_enable_notify_at(q, n->rx_seen))
				continue;
			break;
		}
		more = budget == 0;
	}
	virtio_dev_used(&n->dev, q);
	return more;
}

static void on_tap(struct ev_handler *h, uint32_t events)
{
	struct vnet *n = (struct vnet *)((char *)h - offsetof(struct vnet, tap_h));

	(void)events;
	pthread_mutex_lock(&n->dev.lock);
	if (rx_pump(n))
		virtio_dev_defer(&n->dev, NET_RXQ);
	pthread_mutex_unlock(&n->dev.lock);
}

/* --- the device ------------------------------------------------------------------ */

static bool net_notify(struct virtio_dev *d, unsigned qi)
{
	struct vnet *n = d->priv;

	if (qi == NET_TXQ)
		return virtio_dev_serve(d, qi, tx_one);
	if (qi == NET_RXQ)
		return rx_pump(n);
	return false;
}

static void net_config_read(struct virtio_dev *d, uint64_t off, void *buf, size_t len)
{
	struct vnet *n = d->priv;
	uint8_t cfg[CONFIG_BYTES];
	uint16_t status = htole16(VIRTIO_NET_S_LINK_UP), pairs = htole16(1), mtu = htole16(n->mtu);

	memcpy(cfg, n->mac, 6);
	memcpy(cfg + 6, &status, 2);
	memcpy(cfg + 8, &pairs, 2);
	memcpy(cfg + 10, &mtu, 2);
	if (off < sizeof(cfg))
		memcpy(buf, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

/* The tap hands the guest only the offloads it said it can take. */
static void net_activate(struct virtio_dev *d)
{
	struct vnet *n = d->priv;
	unsigned off = 0;

	if (negotiated(n, VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (negotiated(n, VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (negotiated(n, VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
	}
	if (ioctl(n->tap_fd, TUNSETOFFLOAD, off) < 0 && errno != ENOTTY)
		virtio_dev_warn(d, "tap offloads 0x%x: %s", off, strerror(errno));
	n->rx_large = true;
	watch_tap(n, d->queues[NET_RXQ].ready);
}

static void net_reset(struct virtio_dev *d)
{
	struct vnet *n = d->priv;

	watch_tap(n, false);
	n->frame_len = 0;
}

static const struct virtio_dev_ops net_ops = {
	.name = "net",
	.device_id = VIRTIO_ID_NET,
	.num_queues = 2,
	.queue_max_size = NET_QUEUE_SIZE,
	.features = NET_FEATURES,
	.queue_notify = net_notify,
	.config_read = net_config_read,
	.activate = net_activate,
	.reset = net_reset,
};

int vnet_init(struct vnet *n, int tap_fd, const uint8_t mac[6], uint16_t mtu,
	      const struct guest_mem *mem, struct evloop *loop, const struct rv_log *log,
	      struct rv_err *err)
{
	memset(n, 0, sizeof(*n));
	n->tap_fd = tap_fd;
	n->loop = loop;
	n->tap_h.fn = on_tap;
	memcpy(n->mac, mac, 6);
	n->mtu = mtu ? mtu : NET_DEFAULT_MTU;
	n->frame = malloc(NET_HDR_BYTES + NET_MAX_FRAME_BYTES);
	n->rx = malloc(sizeof(*n->rx));
	if (!n->frame || !n->rx) {
		free(n->frame);
		free(n->rx);
		n->frame = NULL;
		n->rx = NULL;
		close(tap_fd);
		n->tap_fd = -1;
		return rv_fail(err, ENOMEM, "virtio-net");
	}
	/* On the loop from the start, with no events until DRIVER_OK: later it
	 * is only a mod. */
	if (evloop_add(loop, tap_fd, 0, &n->tap_h, err) < 0) {
		free(n->frame);
		free(n->rx);
		n->frame = NULL;
		n->rx = NULL;
		close(tap_fd);
		n->tap_fd = -1;
		return rv_wrap(err, "virtio-net: the tap");
	}
	virtio_dev_init(&n->dev, &net_ops, n, mem, log);
	return 0;
}

void vnet_destroy(struct vnet *n)
{
	if (n->tap_fd >= 0) {
		evloop_del(n->loop, n->tap_fd);
		close(n->tap_fd);
		n->tap_fd = -1;
	}
	if (n->dev.ops)         /* a failed vnet_init stops before it */
		virtio_dev_destroy(&n->dev);
	free(n->frame);
	free(n->rx);
	n->frame = NULL;
	n->rx = NULL;
}

void vnet_stats(struct vnet *n, struct net_stats *out)
{
	pthread_mutex_lock(&n->dev.lock);
	*out = n->stats;
	pthread_mutex_unlock(&n->dev.lock);
}
