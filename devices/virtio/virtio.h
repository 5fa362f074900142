/* A virtio device as the transport sees it (STYLE: Devices): a small table of
 * operations plus the common state — features, status, queues, interrupt.
 * A device never knows whether it sits on MMIO or PCI. All device state is
 * guarded by `lock`: register accesses come from vCPU threads, queue work
 * from the main thread's event loop. */
#ifndef RV_VIRTIO_H
#define RV_VIRTIO_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/log.h"
#include "devices/virtio/queue.h"
#include "vmm/guest_mem.h"

#define VIRTIO_ID_RNG 4u
#define VIRTIO_ID_VSOCK 19u

#define VIRTIO_F_RING_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_RING_EVENT_IDX (1ull << 29)
#define VIRTIO_F_VERSION_1 (1ull << 32)

#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

#define VIRTIO_INT_USED 1u
#define VIRTIO_INT_CONFIG 2u

#define VIRTIO_MAX_QUEUES 4u
#define VIRTIO_NOTIFY_BUDGET 256u

struct virtio_dev;

struct virtio_dev_ops {
	const char *name;
	uint32_t device_id;
	unsigned num_queues;
	uint16_t queue_max_size;
	uint64_t features;             /* offered on top of VERSION_1, EVENT_IDX, INDIRECT */
	/* Called with d->lock held, on the main thread (or a vCPU when a kick
	 * misses its ioeventfd). Errors are the device's own: it logs them and
	 * resets a connection or marks itself broken; the VMM goes on. Returns
	 * true when it stopped after VIRTIO_NOTIFY_BUDGET chains with more
	 * waiting: the transport calls again after the loop's other events, so a
	 * guest that keeps its queue full cannot starve the VMM. */
	bool (*queue_notify)(struct virtio_dev *d, unsigned q);
	void (*config_read)(struct virtio_dev *d, uint64_t off, void *buf, size_t len);
	/* DRIVER_OK: queues are ready. Lock held. */
	void (*activate)(struct virtio_dev *d);
	/* The driver wrote 0 to status, or the VMM is tearing down. Lock held. */
	void (*reset)(struct virtio_dev *d);
};

struct virtio_dev {
	const struct virtio_dev_ops *ops;
	void *priv;
	const struct guest_mem *mem;
	const struct rv_log *log;
	pthread_mutex_t lock;
	uint64_t driver_features;
	uint32_t status;
	uint32_t isr;
	uint32_t config_generation;
	struct virtq queues[VIRTIO_MAX_QUEUES];
	int irq_fd;                    /* eventfd wired to the guest IRQ (irqfd), -1: none */
	int defer_fd[VIRTIO_MAX_QUEUES];   /* the transport's kick eventfds: "run again later" */
	unsigned warnings;             /* logged so far: a guest cannot flood the log */
	uint64_t isr_since_ms;         /* CLOCK_MONOTONIC when isr was last raised (again) */
	unsigned isr_retries;          /* raised again since isr last went from 0 to set */
	unsigned irq_retries;          /* interrupts raised again by virtio_dev_watchdog */
	unsigned kick_polls;           /* buffers found waiting without a notification */
	uint16_t watchdog_avail[VIRTIO_MAX_QUEUES];   /* last_avail at the previous pass */
};

#define VIRTIO_MAX_WARNINGS 32u
/* An interrupt the driver has not acknowledged after this long is raised again. */
#define VIRTIO_IRQ_RETRY_MS 1000u
/* An interrupt unacknowledged this long means a guest that stopped taking
 * interrupts (seen only under nested emulation): said once, as a warning, so
 * that whoever waits on the guest learns why. */
#define VIRTIO_IRQ_STALL_MS 10000u

void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *mem, const struct rv_log *log);
void virtio_dev_destroy(struct virtio_dev *d);

uint64_t virtio_dev_features(const struct virtio_dev *d);
bool virtio_dev_active(const struct virtio_dev *d);   /* DRIVER_OK and not broken */

/* Asks for queue_notify(q) again after the loop's other events (the work
 * budget ran out). */
void virtio_dev_defer(struct virtio_dev *d, unsigned q);

/* A warning about what the guest did, at most VIRTIO_MAX_WARNINGS per device
 * (then one saying the rest are suppressed). */
void virtio_dev_warn(struct virtio_dev *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The pass over a queue the driver fills with requests (rng, vsock tx): each
 * good chain goes to handle(), which returns the bytes it wrote into it; a
 * malformed chain is returned empty with a warning, a broken ring fails the
 * device. Returns true when VIRTIO_NOTIFY_BUDGET ran out with more waiting
 * (what queue_notify returns). Lock held. */
bool virtio_dev_serve(struct virtio_dev *d, unsigned qi,
		      uint32_t (*handle)(struct virtio_dev *d, const struct virtq_chain *c));

/* Main loop, every VIRTIO_IRQ_RETRY_MS / 2: recovers notifications lost on
 * their way, in either direction (seen in nested virtualization under load,
 * where the guest or the device then waits forever). An interrupt raised
 * VIRTIO_IRQ_RETRY_MS ago and still not acknowledged is raised again; a queue
 * whose driver made buffers available that sat untaken since the previous
 * pass is served as if kicked. Takes the lock. */
void virtio_dev_watchdog(struct virtio_dev *d);

/* Debug level: status, interrupt state and every active queue's indices, for
 * a VM that stopped making progress (--timeout). Takes the lock. */
void virtio_dev_dump(struct virtio_dev *d, const struct rv_log *log);

/* After pushing used buffers on q: interrupt the guest if it wants one. */
void virtio_dev_used(struct virtio_dev *d, struct virtq *q);

/* The driver or ring is beyond repair: log why, set NEEDS_RESET, tell the
 * guest with a config interrupt; the device stops processing until reset. */
void virtio_dev_fail(struct virtio_dev *d, const struct rv_err *why);

/* Status register write (lock held): handles reset, FEATURES_OK checks and
 * activation of the queues at DRIVER_OK. */
void virtio_dev_set_status(struct virtio_dev *d, uint32_t status);

#endif
