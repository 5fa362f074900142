/* virtio-net (virtio 1.x §5.1) over a tap device: one receive and one
 * transmit queue, mergeable receive buffers, and the checksum and TSO
 * offloads, which the tap takes and gives in the same virtio_net_hdr the
 * guest uses (IFF_VNET_HDR), so frames cross without being touched.
 * Everything the guest supplies is checked here: chain sizes, the header's
 * offload fields against what was negotiated; the host kernel checks the
 * rest of a frame as it does for vhost-net. */
#ifndef RV_NET_H
#define RV_NET_H

#include <stdint.h>

#include "common/evloop.h"
#include "devices/virtio/virtio.h"

#define VIRTIO_ID_NET 1u

#define VIRTIO_NET_F_CSUM (1ull << 0)
#define VIRTIO_NET_F_GUEST_CSUM (1ull << 1)
#define VIRTIO_NET_F_MTU (1ull << 3)
#define VIRTIO_NET_F_MAC (1ull << 5)
#define VIRTIO_NET_F_GUEST_TSO4 (1ull << 7)
#define VIRTIO_NET_F_GUEST_TSO6 (1ull << 8)
#define VIRTIO_NET_F_HOST_TSO4 (1ull << 11)
#define VIRTIO_NET_F_HOST_TSO6 (1ull << 12)
#define VIRTIO_NET_F_MRG_RXBUF (1ull << 15)
#define VIRTIO_NET_F_STATUS (1ull << 16)

#define VIRTIO_NET_HDR_F_NEEDS_CSUM 1u
#define VIRTIO_NET_HDR_GSO_NONE 0u
#define VIRTIO_NET_HDR_GSO_TCPV4 1u
#define VIRTIO_NET_HDR_GSO_TCPV6 4u
#define VIRTIO_NET_HDR_GSO_ECN 0x80u

/* The header in front of every frame, both ways (virtio_net_hdr_v1). */
struct virtio_net_hdr {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len;
	uint16_t gso_size;
	uint16_t csum_start;
	uint16_t csum_offset;
	uint16_t num_buffers;
} __attribute__((packed));

#define NET_HDR_BYTES ((uint32_t)sizeof(struct virtio_net_hdr))
#define NET_QUEUE_SIZE 1024u
/* The largest frame either way: a 64 KiB TSO segment with its headers. */
#define NET_MAX_FRAME_BYTES (65535u + 14u + 4u)
/* The least either way: the header and an Ethernet header. */
#define NET_MIN_FRAME_BYTES (NET_HDR_BYTES + 14u)
#define NET_DEFAULT_MTU 1500u

enum { NET_RXQ = 0, NET_TXQ = 1 };

struct net_stats {
	uint64_t rx_frames, rx_bytes, rx_dropped;
	uint64_t rx_direct;              /* of rx_frames, read straight into guest buffers */
	uint64_t tx_frames, tx_bytes, tx_dropped;
};

/* A frame this large or larger (header included) sends the next one
 * straight into guest buffers (rx_direct in net.c). */
#define NET_RX_DIRECT_MIN_BYTES 4096u
/* readv's limit (UIO_MAXIOV). */
#define NET_RX_MAX_IOV 1024u

/* Receive scratch, too big for a stack: the chains a frame is going into. */
struct vnet_rx {
	struct virtq_chain first, c;
	uint16_t heads[VIRTQ_MAX_SIZE];
	uint32_t lens[VIRTQ_MAX_SIZE];
	struct virtio_net_hdr hdr;       /* the tap's, read aside to be checked */
	unsigned taken, niov;
	struct iovec iov[NET_RX_MAX_IOV];
};

struct vnet {
	struct virtio_dev dev;
	struct evloop *loop;
	int tap_fd;                  /* owned; packet-at-a-time, non-blocking */
	struct ev_handler tap_h;
	bool tap_watched;            /* on the loop for EPOLLIN (rx buffers to fill) */
	uint8_t mac[6];
	uint16_t mtu;
	uint8_t *frame;              /* a frame read from the tap the guest has no room for yet */
	uint32_t frame_len;          /* 0: none pending */
	struct vnet_rx *rx;
	bool rx_large;               /* the last frame was: read the next straight in */
	uint16_t rx_seen;            /* the rx avail index the frame found too little below */
	struct net_stats stats;
};

/* A tap in the caller's network namespace, named after `name` (a "%d" in it
 * picks the first free number), with IFF_VNET_HDR and 12-byte headers,
 * non-blocking. Its name in out_name. Returns the fd, or -1 with err. The
 * tap goes away with its last fd. */
int net_tap_open(const char *name, char out_name[16], struct rv_err *err);

/* tap_fd: a tap opened with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR (net_tap_open),
 * or for tests anything that reads and writes one frame, with its header, per
 * call (a SOCK_SEQPACKET socket). The device owns it from here, also on
 * failure. */
int vnet_init(struct vnet *n, int tap_fd, const uint8_t mac[6], uint16_t mtu,
	      const struct guest_mem *mem, struct evloop *loop, const struct rv_log *log,
	      struct rv_err *err);
void vnet_destroy(struct vnet *n);

/* Takes the lock. */
void vnet_stats(struct vnet *n, struct net_stats *out);

#endif
