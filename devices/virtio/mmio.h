/* The virtio-mmio transport, version 2 (virtio 1.x §4.2): a 4 KiB register
 * window on the MMIO bus, an IRQ line driven through irqfd, and one ioeventfd
 * per queue so that a driver's kick reaches the main loop without a vCPU exit
 * to userspace. The device behind it is any struct virtio_dev. */
#ifndef RV_VIRTIO_MMIO_H
#define RV_VIRTIO_MMIO_H

#include <stddef.h>
#include <stdint.h>

#include "common/evloop.h"
#include "devices/virtio/virtio.h"

#define VIRTIO_MMIO_WINDOW_BYTES 0x1000u
#define VIRTIO_MMIO_QUEUE_NOTIFY 0x50u

struct virtio_mmio;

struct virtio_mmio_kick {
	struct ev_handler h;
	struct virtio_mmio *m;
	unsigned queue;
	int fd;
};

struct virtio_mmio {
	struct virtio_dev *dev;
	uint64_t base;
	unsigned irq;
	int vm_fd;
	struct evloop *loop;
	uint32_t dev_features_sel, drv_features_sel, queue_sel;
	struct virtio_mmio_kick kicks[VIRTIO_MAX_QUEUES];
};

/* Wires d to a window at base and to IRQ irq. With vm_fd < 0 (device tests)
 * there is no irqfd or ioeventfd: d->irq_fd is a plain eventfd the test reads,
 * and kicks arrive as register writes; the per-queue eventfds still serve
 * virtio_dev_defer through the loop. */
int virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *d, uint64_t base, unsigned irq,
		     int vm_fd, struct evloop *loop, struct rv_err *err);
void virtio_mmio_destroy(struct virtio_mmio *m);

/* Bus callbacks (opaque = struct virtio_mmio *). */
void virtio_mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len);
void virtio_mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len);

/* "virtio_mmio.device=4K@0xd0000000:5": how Linux learns of a window. */
int virtio_mmio_cmdline(uint64_t base, unsigned irq, char *buf, size_t size);

#endif
