/* What hostile.c and hostile_vsock.c share: virtio-mmio registers, split
 * rings, the console and the reserved RAM. */
#ifndef HOSTILE_H
#define HOSTILE_H

#include <stdint.h>

#define STATUS_PORT 0x4f0
#define RESERVED_BYTES (32u << 20)

/* virtio-mmio v2 registers (virtio 1.2 §4.2.2). */
enum {
	R_MAGIC = 0x000, R_VERSION = 0x004, R_DEVICE_ID = 0x008, R_DEV_FEAT = 0x010,
	R_DEV_FEAT_SEL = 0x014, R_DRV_FEAT = 0x020, R_DRV_FEAT_SEL = 0x024, R_QUEUE_SEL = 0x030,
	R_QUEUE_NUM_MAX = 0x034, R_QUEUE_NUM = 0x038, R_QUEUE_READY = 0x044,
	R_QUEUE_NOTIFY = 0x050, R_INT_STATUS = 0x060, R_INT_ACK = 0x064, R_STATUS = 0x070,
	R_DESC_LO = 0x080, R_DESC_HI = 0x084, R_AVAIL_LO = 0x090, R_AVAIL_HI = 0x094,
	R_USED_LO = 0x0a0, R_USED_HI = 0x0a4,
};
enum { S_ACK = 1, S_DRIVER = 2, S_DRIVER_OK = 4, S_FEATURES_OK = 8, S_NEEDS_RESET = 0x40 };
enum { D_NEXT = 1, D_WRITE = 2, D_INDIRECT = 4 };

#define QSIZE 16u
#define MAX_DEVICES 8
#define VIRTIO_ID_VSOCK 19u
#define VIRTIO_ID_FS 26u

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct avail { uint16_t flags, idx, ring[QSIZE]; };
struct used { uint16_t flags, idx; struct { uint32_t id, len; } ring[QSIZE]; };

struct dev {
	volatile uint32_t *regs;
	uint64_t gpa;
	uint32_t id;
};

static inline uint32_t rd(const struct dev *d, unsigned off) { return d->regs[off / 4]; }
static inline void wr(const struct dev *d, unsigned off, uint32_t v) { d->regs[off / 4] = v; }

/* Resets d and negotiates VIRTIO_F_VERSION_1 alone, up to FEATURES_OK. */
void negotiate(const struct dev *d);
/* Queue q of QSIZE on the rings at gpa: descriptors, avail ring 4 KiB on,
 * used ring 8 KiB on; ready. */
void queue_rings(const struct dev *d, unsigned q, uint64_t gpa);
void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void ms_sleep(unsigned ms);
/* The RAM above mem=, RESERVED_BYTES of it, and its guest-physical address. */
uint8_t *hostile_ram(uint64_t *gpa);
/* Attacks virtio-vsock among devs: 0, or -1 when there is none. */
int vsock_abuse(const struct dev *devs, unsigned n);
/* Sends d, a vsock device taken over with queue 1's rings at ring_va, a
 * request to a port nobody serves: the device then owes the guest a reset
 * packet, which it writes into the receive queue's next buffer. */
void vsock_owe_packet(const struct dev *d, uint8_t *ring_va, uint64_t ring_gpa, uint8_t *buf_va,
		      uint64_t buf_gpa);

#endif
