/* Split virtqueues (virtio 1.x §2.7) as seen from the device: pop a descriptor
 * chain the driver made available, push it back as used, decide whether the
 * driver wants an interrupt. Every address and length comes from the guest and
 * is checked: rings and buffers through guest_mem_slice(), chains for loops,
 * length and direction order, indirect tables for size and nesting. */
#ifndef RV_VIRTIO_QUEUE_H
#define RV_VIRTIO_QUEUE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "common/err.h"
#include "vmm/guest_mem.h"

#define VIRTQ_MAX_SIZE 1024u          /* largest QueueNumMax any device offers */
#define VIRTQ_MAX_CHAIN_SEGS 256u     /* segments one chain may have, indirect included */
#define VIRTQ_MAX_CHAIN_BYTES (1ull << 31)

#define VIRTQ_DESC_F_NEXT 1u
#define VIRTQ_DESC_F_WRITE 2u
#define VIRTQ_DESC_F_INDIRECT 4u
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1u
#define VIRTQ_USED_F_NO_NOTIFY 1u

struct virtq {
	/* Set by the driver through the transport, fixed once ready. */
	uint16_t size;
	bool ready;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;                /* VIRTIO_RING_F_EVENT_IDX negotiated */
	/* Device state. */
	const struct guest_mem *mem;
	uint8_t *desc, *avail, *used;  /* host views of the rings, checked at activation */
	uint16_t last_avail;           /* next avail entry to take */
	uint16_t used_idx;             /* our copy of used->idx */
	uint16_t signalled_used;       /* used_idx when we last interrupted */
	bool broken;                   /* driver broke the ring: no more processing */
};

/* One chain: readable segments first, then writable ones. */
struct virtq_chain {
	uint16_t head;
	unsigned nread, nwrite;        /* iov[0..nread) readable, then nwrite writable */
	uint64_t read_bytes, write_bytes;
	struct iovec iov[VIRTQ_MAX_CHAIN_SEGS];
};

/* Validates the ring addresses for q->size against guest memory and maps them.
 * The driver's values are rejected (EINVAL) when a ring leaves RAM, is
 * misaligned or the size is not a power of two up to max_size. */
int virtq_activate(struct virtq *q, const struct guest_mem *mem, uint16_t max_size,
		   struct rv_err *err);
void virtq_reset(struct virtq *q);

/* 1: a chain was taken into c; 0: nothing available; -1: the chain (or the
 * ring) is malformed: err says why. After a bad chain whose head was valid,
 * c->head is set and the caller should push it back with length 0; when the
 * ring itself is broken (q->broken) the queue is dead until reset. */
int virtq_pop(struct virtq *q, struct virtq_chain *c, struct rv_err *err);

/* Gives back the last n chains taken and not pushed: the next pops take
 * them again (a receive that found too few buffers for a frame). */
void virtq_unpop(struct virtq *q, uint16_t n);

/* Returns a chain to the driver with `written` bytes put in its writable part. */
void virtq_push(struct virtq *q, uint16_t head, uint32_t written);

/* After pushes: does the driver want an interrupt now (EVENT_IDX or the
 * NO_INTERRUPT flag)? Updates the bookkeeping when it returns true. */
bool virtq_should_interrupt(struct virtq *q);

/* With EVENT_IDX, asks for a notification when anything new is made available.
 * Returns true if something is available already (re-check after enabling, so
 * a racing kick is never lost). */
bool virtq_enable_notify(struct virtq *q);
/* The same for a device that took what was there and gave it back (unpop)
 * for want of more: a notification once the avail index passes `seen`, the
 * one it had reached. */
bool virtq_enable_notify_at(struct virtq *q, uint16_t seen);

/* The ring's driver-written indices, for diagnostics. */
uint16_t virtq_avail_idx(const struct virtq *q);
uint16_t virtq_used_event(const struct virtq *q);
uint16_t virtq_avail_event(const struct virtq *q);

/* The driver has made buffers available that we have not taken yet. */
bool virtq_has_avail(const struct virtq *q);

/* Bytes copied between a chain's segments and a flat buffer, starting at byte
 * `off` of the readable (or writable) part. Return how many were copied. */
size_t virtq_chain_read(const struct virtq_chain *c, size_t off, void *buf, size_t len);
size_t virtq_chain_write(const struct virtq_chain *c, size_t off, const void *buf, size_t len);

#endif
