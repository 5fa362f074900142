#include "devices/virtio/mmio.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Register offsets, virtio 1.x §4.2.2. */
enum {
	REG_MAGIC = 0x000, REG_VERSION = 0x004, REG_DEVICE_ID = 0x008, REG_VENDOR_ID = 0x00c,
	REG_DEVICE_FEATURES = 0x010, REG_DEVICE_FEATURES_SEL = 0x014,
	REG_DRIVER_FEATURES = 0x020, REG_DRIVER_FEATURES_SEL = 0x024,
	REG_QUEUE_SEL = 0x030, REG_QUEUE_NUM_MAX = 0x034, REG_QUEUE_NUM = 0x038,
	REG_QUEUE_READY = 0x044, REG_QUEUE_NOTIFY = VIRTIO_MMIO_QUEUE_NOTIFY,
	REG_INTERRUPT_STATUS = 0x060, REG_INTERRUPT_ACK = 0x064, REG_STATUS = 0x070,
	REG_QUEUE_DESC_LOW = 0x080, REG_QUEUE_DESC_HIGH = 0x084,
	REG_QUEUE_DRIVER_LOW = 0x090, REG_QUEUE_DRIVER_HIGH = 0x094,
	REG_QUEUE_DEVICE_LOW = 0x0a0, REG_QUEUE_DEVICE_HIGH = 0x0a4,
	REG_SHM_SEL = 0x0ac, REG_SHM_LEN_LOW = 0x0b0, REG_SHM_LEN_HIGH = 0x0b4,
	REG_SHM_BASE_LOW = 0x0b8, REG_SHM_BASE_HIGH = 0x0bc,
	REG_CONFIG_GENERATION = 0x0fc, REG_CONFIG = 0x100,
};

#define VIRTIO_MMIO_MAGIC 0x74726976u     /* "virt" */
#define VIRTIO_MMIO_VERSION 2u
#define VIRTIO_MMIO_VENDOR 0x4d56524eu    /* "RNVM" */

static struct virtq *selected(struct virtio_mmio *m)
{
	return m->queue_sel < m->dev->ops->num_queues ? &m->dev->queues[m->queue_sel] : NULL;
}

static uint32_t read_reg(struct virtio_mmio *m, uint64_t off)
{
	struct virtio_dev *d = m->dev;
	struct virtq *q = selected(m);
	uint64_t features = virtio_dev_features(d);

	switch (off) {
	case REG_MAGIC: return VIRTIO_MMIO_MAGIC;
	case REG_VERSION: return VIRTIO_MMIO_VERSION;
	case REG_DEVICE_ID: return d->ops->device_id;
	case REG_VENDOR_ID: return VIRTIO_MMIO_VENDOR;
	case REG_DEVICE_FEATURES:
		return m->dev_features_sel < 2 ? (uint32_t)(features >> (32 * m->dev_features_sel)) : 0;
	case REG_QUEUE_NUM_MAX: return q ? d->ops->queue_max_size : 0;
	case REG_QUEUE_READY: return q ? q->ready : 0;
	case REG_INTERRUPT_STATUS: return d->isr;
	case REG_STATUS: return d->status;
	case REG_SHM_LEN_LOW: case REG_SHM_LEN_HIGH: return 0xffffffffu;   /* no shared memory */
	case REG_SHM_BASE_LOW: case REG_SHM_BASE_HIGH: return 0xffffffffu;
	case REG_CONFIG_GENERATION: return d->config_generation;
	}
	return 0;
}

static void set_half(uint64_t *v, bool high, uint32_t val)
{
	*v = high ? (*v & 0xffffffffull) | ((uint64_t)val << 32) : (*v & ~0xffffffffull) | val;
}

static void kick(struct virtio_mmio *m, uint32_t queue)
{
	struct virtio_dev *d = m->dev;

	if (queue < d->ops->num_queues && virtio_dev_active(d) && d->queues[queue].ready &&
	    d->ops->queue_notify(d, queue))
		virtio_dev_defer(d, queue);     /* budget spent: come back after other events */
}

static void queue_ready(struct virtio_mmio *m, struct virtq *q, uint32_t val)
{
	struct virtio_dev *d = m->dev;

	if (!val) {
		q->ready = false;
		return;
	}
	q->ready = true;
	/* A queue enabled after DRIVER_OK is activated on the spot. */
	if (d->status & VIRTIO_STATUS_DRIVER_OK) {
		struct rv_err err;
		q->event_idx = d->driver_features & VIRTIO_F_RING_EVENT_IDX;
		if (virtq_activate(q, d->mem, d->ops->queue_max_size, &err) < 0)
			virtio_dev_fail(d, &err);
	}
}

/* Ring addresses and size are fixed while a queue is ready (§4.2.2). */
static void queue_write(struct virtio_mmio *m, struct virtq *q, uint64_t off, uint32_t val)
{
	if (off == REG_QUEUE_READY) {
		queue_ready(m, q, val);
		return;
	}
	if (q->ready)
		return;
	switch (off) {
	case REG_QUEUE_NUM: q->size = val <= VIRTQ_MAX_SIZE ? (uint16_t)val : 0; break;
	case REG_QUEUE_DESC_LOW: case REG_QUEUE_DESC_HIGH:
		set_half(&q->desc_gpa, off == REG_QUEUE_DESC_HIGH, val); break;
	case REG_QUEUE_DRIVER_LOW: case REG_QUEUE_DRIVER_HIGH:
		set_half(&q->avail_gpa, off == REG_QUEUE_DRIVER_HIGH, val); break;
	case REG_QUEUE_DEVICE_LOW: case REG_QUEUE_DEVICE_HIGH:
		set_half(&q->used_gpa, off == REG_QUEUE_DEVICE_HIGH, val); break;
	}
}

static void write_reg(struct virtio_mmio *m, uint64_t off, uint32_t val)
{
	struct virtio_dev *d = m->dev;
	struct virtq *q = selected(m);

	switch (off) {
	case REG_DEVICE_FEATURES_SEL: m->dev_features_sel = val; return;
	case REG_DRIVER_FEATURES_SEL: m->drv_features_sel = val; return;
	case REG_DRIVER_FEATURES:
		if (m->drv_features_sel < 2 && !(d->status & VIRTIO_STATUS_FEATURES_OK))
			set_half(&d->driver_features, m->drv_features_sel == 1, val);
		return;
	case REG_QUEUE_SEL: m->queue_sel = val; return;
	case REG_QUEUE_NOTIFY: kick(m, val); return;
	case REG_INTERRUPT_ACK: d->isr &= ~val; return;
	case REG_STATUS:
		virtio_dev_set_status(d, val);
		if (val == 0)
			m->dev_features_sel = m->drv_features_sel = m->queue_sel = 0;
		return;
	}
	if (q && off >= REG_QUEUE_NUM && off <= REG_QUEUE_DEVICE_HIGH)
		queue_write(m, q, off, val);
}

void virtio_mmio_read(void *opaque, uint64_t off, uint8_t *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;

	memset(data, 0, len);
	pthread_mutex_lock(&m->dev->lock);
	if (off >= REG_CONFIG) {
		if (m->dev->ops->config_read)
			m->dev->ops->config_read(m->dev, off - REG_CONFIG, data, len);
	} else if (len == 4 && off % 4 == 0) {
		uint32_t v = read_reg(m, off);
		memcpy(data, &v, 4);
	}
	pthread_mutex_unlock(&m->dev->lock);
}

void virtio_mmio_write(void *opaque, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct virtio_mmio *m = opaque;
	uint32_t v;

	/* Registers are 32-bit only; the devices here have read-only config. */
	if (off >= REG_CONFIG || len != 4 || off % 4)
		return;
	memcpy(&v, data, 4);
	pthread_mutex_lock(&m->dev->lock);
	write_reg(m, off, v);
	pthread_mutex_unlock(&m->dev->lock);
}

static void on_kick(struct ev_handler *h, uint32_t events)
{
	struct virtio_mmio_kick *k = (struct virtio_mmio_kick *)h;
	uint64_t n;

	(void)events;
	if (read(k->fd, &n, sizeof(n)) != sizeof(n))
		return;
	pthread_mutex_lock(&k->m->dev->lock);
	kick(k->m, k->queue);
	pthread_mutex_unlock(&k->m->dev->lock);
}

static int wire_kick(struct virtio_mmio *m, unsigned q, struct rv_err *err)
{
	struct virtio_mmio_kick *k = &m->kicks[q];

	*k = (struct virtio_mmio_kick){ .h.fn = on_kick, .m = m, .queue = q,
					.fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK) };
	if (k->fd < 0)
		return rv_fail(err, errno, "eventfd for queue %u", q);
	m->dev->defer_fd[q] = k->fd;
	struct kvm_ioeventfd io = { .datamatch = q, .addr = m->base + REG_QUEUE_NOTIFY, .len = 4,
				    .fd = k->fd, .flags = KVM_IOEVENTFD_FLAG_DATAMATCH };
	if (m->vm_fd >= 0 && ioctl(m->vm_fd, KVM_IOEVENTFD, &io) < 0)
		return rv_fail(err, errno, "KVM_IOEVENTFD for queue %u at 0x%llx", q,
			       (unsigned long long)io.addr);
	return m->loop ? evloop_add(m->loop, k->fd, EPOLLIN, &k->h, err) : 0;
}

int virtio_mmio_init(struct virtio_mmio *m, struct virtio_dev *d, uint64_t base, unsigned irq,
		     int vm_fd, struct evloop *loop, struct rv_err *err)
{
	*m = (struct virtio_mmio){ .dev = d, .base = base, .irq = irq, .vm_fd = vm_fd, .loop = loop };
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		m->kicks[q].fd = -1;
	d->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->irq_fd < 0)
		return rv_fail(err, errno, "virtio-%s: interrupt eventfd", d->ops->name);
	struct kvm_irqfd irqfd = { .fd = (uint32_t)d->irq_fd, .gsi = irq };
	if (vm_fd >= 0 && ioctl(vm_fd, KVM_IRQFD, &irqfd) < 0)
		return rv_fail(err, errno, "virtio-%s: KVM_IRQFD for IRQ %u", d->ops->name, irq);
	for (unsigned q = 0; q < d->ops->num_queues; q++)
		if (wire_kick(m, q, err) < 0)
			return rv_wrap(err, "virtio-%s", d->ops->name);
	return 0;
}

void virtio_mmio_destroy(struct virtio_mmio *m)
{
	if (!m->dev)
		return;                 /* never initialised */
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		m->dev->defer_fd[q] = -1;
		if (m->kicks[q].fd < 0)
			continue;
		if (m->loop)
			evloop_del(m->loop, m->kicks[q].fd);
		close(m->kicks[q].fd);
		m->kicks[q].fd = -1;
	}
	if (m->dev && m->dev->irq_fd >= 0) {
		close(m->dev->irq_fd);
		m->dev->irq_fd = -1;
	}
}

int virtio_mmio_cmdline(uint64_t base, unsigned irq, char *buf, size_t size)
{
	int n = snprintf(buf, size, "virtio_mmio.device=4K@0x%llx:%u", (unsigned long long)base, irq);
	return n > 0 && (size_t)n < size ? 0 : -1;
}
