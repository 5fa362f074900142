/* virtio-vsock (virtio 1.x §5.10) with its connection muxer inside the VMM:
 * no /dev/vhost-vsock needed. Each guest stream connection is one end of a
 * host socketpair; the other end goes to whoever opened or accepted it, which
 * then reads and writes it like any socket. Flow control both ways: the guest
 * may only send what our buf_alloc allows (more is a protocol violation and
 * resets the connection), and we read a host socket only while the guest has
 * credit and rx buffers, so neither side makes the VMM buffer without bound. */
#ifndef RV_VSOCK_H
#define RV_VSOCK_H

#include <stdint.h>

#include "common/evloop.h"
#include "devices/virtio/virtio.h"

#define VSOCK_GUEST_CID 3u
#define VSOCK_QUEUE_SIZE 256u
#define VSOCK_CONN_BUF_BYTES (256u * 1024)   /* our buf_alloc per connection */
#define VSOCK_MAX_CONNS 1024u
#define VSOCK_MAX_LISTENERS 8u
#define VSOCK_CTL_QUEUE 128u                 /* RSTs owed to connections already gone */
#define VSOCK_HASH_BUCKETS 256u

/* A guest connected to a host port we listen on: fd (blocking, CLOEXEC) is
 * the callee's to keep or close. Runs with the device lock held: it must hand
 * the fd on (queue, eventfd) and not call back into vsock_*. */
typedef void (*vsock_accept_fn)(void *ctx, int fd);

struct vsock_conn;

struct vsock {
	struct virtio_dev dev;
	uint64_t guest_cid;
	struct evloop *loop;
	struct vsock_conn *buckets[VSOCK_HASH_BUCKETS];
	unsigned nconns;
	struct vsock_conn *ready_head, *ready_tail;   /* have something for the guest */
	struct { uint32_t port; vsock_accept_fn fn; void *ctx; } listeners[VSOCK_MAX_LISTENERS];
	unsigned nlisteners;
	uint8_t ctl_queue[VSOCK_CTL_QUEUE][44];
	unsigned ctl_head, ctl_len;
	uint32_t next_host_port;
	struct vsock_conn *draining;    /* out of the table, flushing to the host */
	bool closed;                    /* vsock_close: no new connections */
	uint16_t reset_avail;           /* event queue's avail index at a transport reset */
};

void vsock_init(struct vsock *v, uint64_t guest_cid, const struct guest_mem *mem,
		struct evloop *loop, const struct rv_log *log);
void vsock_destroy(struct vsock *v);

/* Before the guest runs: accept guest connections to host port `port`. */
int vsock_listen(struct vsock *v, uint32_t port, vsock_accept_fn fn, void *ctx, struct rv_err *err);

/* Any thread: open a connection to guest port `port`. Returns the host end
 * (blocking, CLOEXEC). A refused or reset connection reads as EOF; after
 * vsock_close it fails with ESHUTDOWN. */
int vsock_connect(struct vsock *v, uint32_t port, struct rv_err *err);

/* Teardown, before the threads that hold host ends are joined: every
 * connection ends (its host end reads EOF) and no new one opens. */
void vsock_close(struct vsock *v);

/* Template clones (vmm/template.h). Idle: no connection, nothing owed to
 * the guest, nothing it sent left untaken; a template is saved only then,
 * so that a clone's device starts with no state beyond its queues. Takes
 * the lock. */
bool vsock_idle(struct vsock *v);
bool vsock_idle_locked(const struct vsock *v);
/* A clone's device, once its vCPUs run: the guest gets a transport-reset
 * event and reads its new CID from the config space (what Linux's driver
 * does on that event; any connection it had would be reset too). */
int vsock_transport_reset(struct vsock *v, uint64_t guest_cid, struct rv_err *err);
/* The guest has handled that event: its driver gives the buffer back (the
 * event queue's avail index moves) only after it took the new CID, so a
 * connection opened after this is not reset by the event. */
bool vsock_transport_reset_seen(struct vsock *v);

/* Debug level: queue indices and every connection's flow-control state, for
 * a VM that stopped making progress (--timeout). */
void vsock_dump(struct vsock *v, const struct rv_log *log);

#endif
