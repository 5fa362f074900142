/* A test-side virtio driver (DESIGN §10, layer 2): the part of Linux's
 * virtio_mmio + virtio_ring that negotiates features through the MMIO
 * registers, lays split rings out in guest memory, adds descriptor chains
 * (direct and indirect), kicks, and reads used entries, with or without
 * EVENT_IDX. It reaches a device only through virtio_mmio_read/_write, as a
 * guest does. With mmio NULL it only builds rings, for struct virtq tests.
 * No Criterion here: the fuzz targets link it too. */
#ifndef RV_TEST_VDRIVER_H
#define RV_TEST_VDRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "devices/virtio/mmio.h"
#include "devices/virtio/queue.h"
#include "vmm/guest_mem.h"

/* virtio-mmio registers a driver uses (virtio 1.x §4.2.2). */
enum {
	VD_MAGIC = 0x000, VD_VERSION = 0x004, VD_DEVICE_ID = 0x008, VD_VENDOR_ID = 0x00c,
	VD_DEVICE_FEATURES = 0x010, VD_DEVICE_FEATURES_SEL = 0x014,
	VD_DRIVER_FEATURES = 0x020, VD_DRIVER_FEATURES_SEL = 0x024,
	VD_QUEUE_SEL = 0x030, VD_QUEUE_NUM_MAX = 0x034, VD_QUEUE_NUM = 0x038,
	VD_QUEUE_READY = 0x044, VD_QUEUE_NOTIFY = 0x050,
	VD_INTERRUPT_STATUS = 0x060, VD_INTERRUPT_ACK = 0x064, VD_STATUS = 0x070,
	VD_QUEUE_DESC_LOW = 0x080, VD_QUEUE_DESC_HIGH = 0x084,
	VD_QUEUE_DRIVER_LOW = 0x090, VD_QUEUE_DRIVER_HIGH = 0x094,
	VD_QUEUE_DEVICE_LOW = 0x0a0, VD_QUEUE_DEVICE_HIGH = 0x0a4,
	VD_CONFIG_GENERATION = 0x0fc, VD_CONFIG = 0x100,
};

#define VDRIVER_MAX_QUEUES VIRTIO_MAX_QUEUES
#define VDRIVER_MAX_INDIRECT 64u       /* entries in the indirect table each head owns */
#define VDRIVER_HEAP_GPA 0x10000ull    /* first address the bump allocator hands out */

struct vdriver_buf {
	uint64_t gpa;
	uint32_t len;
	bool writable;
};

struct vdriver_queue {
	uint16_t size;
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint8_t *desc, *avail, *used;
	uint64_t indirect_gpa;             /* size tables of VDRIVER_MAX_INDIRECT entries */
	uint16_t free_head, num_free;
	uint16_t avail_idx;                /* shadow of avail->idx */
	uint16_t num_added;                /* made available since the last kick decision */
	uint16_t last_used;
	uint16_t chain_descs[VIRTQ_MAX_SIZE];   /* descriptors each head holds */
	bool cb_disabled;                  /* avail->flags has NO_INTERRUPT */
};

struct vdriver {
	struct guest_mem *mem;
	struct virtio_mmio *mmio;
	uint64_t features;                 /* accepted by the device (FEATURES_OK) */
	uint64_t heap_next;
	struct vdriver_queue q[VDRIVER_MAX_QUEUES];
};

void vdriver_init(struct vdriver *d, struct guest_mem *mem, struct virtio_mmio *mmio);

/* Guest memory from a bump allocator; NULL/0 when it runs out. */
uint64_t vdriver_alloc(struct vdriver *d, uint64_t len, uint64_t align);
void *vdriver_host(struct vdriver *d, uint64_t gpa, uint64_t len);

/* Registers. */
uint32_t vdriver_read32(struct vdriver *d, uint32_t off);
void vdriver_write32(struct vdriver *d, uint32_t off, uint32_t val);
uint64_t vdriver_device_features(struct vdriver *d);
void vdriver_write_features(struct vdriver *d, uint64_t features);
uint32_t vdriver_status(struct vdriver *d);
void vdriver_reset(struct vdriver *d);

/* Linux's probe order: reset, ACKNOWLEDGE, DRIVER, the wanted features the
 * device offers, FEATURES_OK read back. 0, or -1 when FEATURES_OK did not stick. */
int vdriver_negotiate(struct vdriver *d, uint64_t want);

/* Rings for queue qi in guest memory (4 KiB aligned), nothing written to the
 * device: for tests that drive struct virtq directly. */
int vdriver_queue_alloc(struct vdriver *d, unsigned qi, uint16_t size);
/* The same, then QueueSel/QueueNum/addresses/QueueReady. -1 when size is above
 * QueueNumMax or QueueNumMax is 0 (no such queue). */
int vdriver_setup_queue(struct vdriver *d, unsigned qi, uint16_t size);
void vdriver_driver_ok(struct vdriver *d);

/* negotiate + every queue in [0, nqueues) at `size` + DRIVER_OK. */
int vdriver_start(struct vdriver *d, uint64_t want, unsigned nqueues, uint16_t size);

/* virtqueue_add: bufs in order as one chain (the caller puts readable ones
 * first; tests of bad order may not). indirect: one descriptor naming a table
 * of n entries. Publishes the head. Returns it, or -1 when out of descriptors. */
int vdriver_add(struct vdriver *d, unsigned qi, const struct vdriver_buf *bufs, unsigned n,
		bool indirect);
/* virtqueue_kick: notifies unless the device asked not to (EVENT_IDX avail_event,
 * or USED_F_NO_NOTIFY). Returns whether it notified. */
bool vdriver_kick(struct vdriver *d, unsigned qi);
void vdriver_notify(struct vdriver *d, unsigned qi);

/* virtqueue_get_buf: 1 with a used entry (its descriptors are free again), 0
 * when none is pending. With EVENT_IDX and callbacks on, asks for an interrupt
 * at the next entry, as Linux does. */
int vdriver_get_used(struct vdriver *d, unsigned qi, uint16_t *head, uint32_t *len);
/* virtqueue_enable_cb / disable_cb. enable returns false if used entries are
 * pending already (the caller should poll again). */
bool vdriver_enable_cb(struct vdriver *d, unsigned qi);
void vdriver_disable_cb(struct vdriver *d, unsigned qi);
/* used_event (EVENT_IDX): interrupt when the used index passes this. */
void vdriver_set_used_event(struct vdriver *d, unsigned qi, uint16_t idx);
uint16_t vdriver_avail_event(struct vdriver *d, unsigned qi);
uint16_t vdriver_used_idx(struct vdriver *d, unsigned qi);

/* Raw ring access, for rings a well-behaved driver would never write. */
void vdriver_set_desc(struct vdriver *d, unsigned qi, uint16_t i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next);
void vdriver_publish(struct vdriver *d, unsigned qi, uint16_t head);
void vdriver_set_avail_idx(struct vdriver *d, unsigned qi, uint16_t idx);

/* Interrupts: how many times the device signalled its irq eventfd since the
 * last call (0 when it did not), and the ISR read then acknowledged. */
uint64_t vdriver_irqs(struct vdriver *d);
uint32_t vdriver_isr_ack(struct vdriver *d);

#endif
