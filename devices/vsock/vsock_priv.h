/* Shared by the vsock device (vsock.c: queues, packets) and its connections
 * (conn.c: host sockets, flow control). Everything here runs with dev.lock held. */
#ifndef RV_VSOCK_PRIV_H
#define RV_VSOCK_PRIV_H

#include <stdbool.h>

#include "devices/vsock/packet.h"
#include "devices/vsock/vsock.h"

enum { RX_QUEUE = 0, TX_QUEUE = 1, EVENT_QUEUE = 2 };

/* Control packets a live connection owes the guest, sent before its data. */
enum {
	CONN_SEND_REQUEST = 1u << 0,
	CONN_SEND_RESPONSE = 1u << 1,
	CONN_SEND_CREDIT_UPDATE = 1u << 2,
	CONN_SEND_CREDIT_REQUEST = 1u << 3,
};

struct vsock_conn {
	struct ev_handler h;
	struct vsock *v;
	struct vsock_conn *hash_next;
	struct vsock_conn *ready_prev, *ready_next;
	bool on_ready_list;
	uint32_t host_port, guest_port;
	int fd;                         /* our end of the socketpair, nonblocking */
	bool established;               /* RESPONSE seen (host-initiated) or sent */
	uint32_t owed;                  /* CONN_SEND_* */
	bool host_readable;             /* the host socket may have data for the guest */
	bool host_eof;                  /* read 0 from the host: SHUTDOWN(SEND) owed/sent */
	bool guest_eof;                 /* guest SHUTDOWN(SEND): shut our write side once flushed */
	bool guest_closed;              /* guest shut both ways: close once flushed */
	bool guest_no_rcv;              /* guest SHUTDOWN(RCV): stop reading the host */
	uint32_t events;                /* what epoll watches now */
	bool hup;                       /* host end closed: fd is out of epoll */
	bool draining;                  /* guest side gone; still flushing pend to the host */
	bool drop_after_send;           /* the packet just filled was its last */
	/* guest -> host */
	uint32_t rx_cnt, fwd_cnt, fwd_reported;
	uint8_t *pend;                  /* bytes the host socket did not take yet */
	uint32_t pend_off, pend_len;
	/* host -> guest */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
};

/* conn.c */
struct vsock_conn *vsock_conn_find(struct vsock *v, uint32_t host_port, uint32_t guest_port);
struct vsock_conn *vsock_conn_new(struct vsock *v, uint32_t host_port, uint32_t guest_port,
				  int *peer_fd, struct rv_err *err);
/* Removes and frees c; with rst, the guest is sent an RST for it. */
void vsock_conn_drop(struct vsock_conn *c, bool rst, const char *why);
/* The guest is done with c (RST, or closed both ways): c leaves the table at
 * once, but what the guest already sent still goes to the host, then c is freed. */
void vsock_conn_drain(struct vsock_conn *c);
void vsock_conn_drop_all(struct vsock *v);
void vsock_conn_guest_packet(struct vsock_conn *c, const struct vsock_hdr *h,
			     const struct virtq_chain *chain);
uint32_t vsock_conn_peer_credit(const struct vsock_conn *c);
/* Fills one rx chain for c: 1 when a packet went out (bytes in *written),
 * 0 when c had nothing after all. */
int vsock_conn_fill_rx(struct vsock_conn *c, const struct virtq_chain *chain, uint32_t *written);
bool vsock_conn_has_output(const struct vsock_conn *c);
void vsock_conn_update_events(struct vsock_conn *c);

/* vsock.c */
void vsock_ready(struct vsock *v, struct vsock_conn *c);     /* queue c for the rx pass */
void vsock_unready(struct vsock *v, struct vsock_conn *c);
void vsock_queue_ctl(struct vsock *v, const struct vsock_hdr *h);
void vsock_hdr_for(const struct vsock_conn *c, uint16_t op, uint32_t flags, struct vsock_hdr *h);
void vsock_rx_flush(struct vsock *v);

#endif
