#include "tests/unit/devices/vdriver.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "devices/virtio/virtio.h"

#define DESC_BYTES 16u

static void put16(uint8_t *p, uint16_t v) { __atomic_store_n((uint16_t *)p, v, __ATOMIC_RELEASE); }
static uint16_t get16(const uint8_t *p) { return __atomic_load_n((const uint16_t *)p, __ATOMIC_ACQUIRE); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }

void vdriver_init(struct vdriver *d, struct guest_mem *mem, struct virtio_mmio *mmio)
{
	memset(d, 0, sizeof(*d));
	d->mem = mem;
	d->mmio = mmio;
	d->heap_next = VDRIVER_HEAP_GPA;
}

uint64_t vdriver_alloc(struct vdriver *d, uint64_t len, uint64_t align)
{
	uint64_t gpa = (d->heap_next + align - 1) & ~(align - 1);

	if (!guest_mem_slice(d->mem, gpa, len))
		return 0;
	d->heap_next = gpa + len;
	memset(guest_mem_slice(d->mem, gpa, len), 0, len);
	return gpa;
}

void *vdriver_host(struct vdriver *d, uint64_t gpa, uint64_t len)
{
	return guest_mem_slice(d->mem, gpa, len);
}

uint32_t vdriver_read32(struct vdriver *d, uint32_t off)
{
	uint32_t v;
	virtio_mmio_read(d->mmio, off, (uint8_t *)&v, 4);
	return v;
}

void vdriver_write32(struct vdriver *d, uint32_t off, uint32_t val)
{
	virtio_mmio_write(d->mmio, off, (const uint8_t *)&val, 4);
}

uint64_t vdriver_device_features(struct vdriver *d)
{
	vdriver_write32(d, VD_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = vdriver_read32(d, VD_DEVICE_FEATURES);
	vdriver_write32(d, VD_DEVICE_FEATURES_SEL, 0);
	return hi << 32 | vdriver_read32(d, VD_DEVICE_FEATURES);
}

void vdriver_write_features(struct vdriver *d, uint64_t features)
{
	vdriver_write32(d, VD_DRIVER_FEATURES_SEL, 1);
	vdriver_write32(d, VD_DRIVER_FEATURES, (uint32_t)(features >> 32));
	vdriver_write32(d, VD_DRIVER_FEATURES_SEL, 0);
	vdriver_write32(d, VD_DRIVER_FEATURES, (uint32_t)features);
}

uint32_t vdriver_status(struct vdriver *d)
{
	return vdriver_read32(d, VD_STATUS);
}

void vdriver_reset(struct vdriver *d)
{
	vdriver_write32(d, VD_STATUS, 0);
	d->features = 0;
}

int vdriver_negotiate(struct vdriver *d, uint64_t want)
{
	vdriver_reset(d);
	vdriver_write32(d, VD_STATUS, VIRTIO_STATUS_ACKNOWLEDGE);
	vdriver_write32(d, VD_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	uint64_t features = want & vdriver_device_features(d);
	vdriver_write_features(d, features);
	vdriver_write32(d, VD_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
				      VIRTIO_STATUS_FEATURES_OK);
	if (!(vdriver_status(d) & VIRTIO_STATUS_FEATURES_OK))
		return -1;
	d->features = features;
	return 0;
}

int vdriver_queue_alloc(struct vdriver *d, unsigned qi, uint16_t size)
{
	struct vdriver_queue *q = &d->q[qi];

	if (qi >= VDRIVER_MAX_QUEUES || size == 0 || size > VIRTQ_MAX_SIZE)
		return -1;
	memset(q, 0, sizeof(*q));
	q->size = size;
	q->desc_gpa = vdriver_alloc(d, (uint64_t)DESC_BYTES * size, 4096);
	q->avail_gpa = vdriver_alloc(d, 6 + 2ull * size, 4096);
	q->used_gpa = vdriver_alloc(d, 6 + 8ull * size, 4096);
	q->indirect_gpa = vdriver_alloc(d, (uint64_t)size * VDRIVER_MAX_INDIRECT * DESC_BYTES, 4096);
	if (!q->desc_gpa || !q->avail_gpa || !q->used_gpa || !q->indirect_gpa)
		return -1;
	q->desc = vdriver_host(d, q->desc_gpa, (uint64_t)DESC_BYTES * size);
	q->avail = vdriver_host(d, q->avail_gpa, 6 + 2ull * size);
	q->used = vdriver_host(d, q->used_gpa, 6 + 8ull * size);
	/* The free list threads every descriptor through next, as Linux's does. */
	for (uint16_t i = 0; i < size; i++)
		vdriver_set_desc(d, qi, i, 0, 0, 0, (uint16_t)(i + 1));
	q->num_free = size;
	return 0;
}

int vdriver_setup_queue(struct vdriver *d, unsigned qi, uint16_t size)
{
	vdriver_write32(d, VD_QUEUE_SEL, qi);
	uint32_t max = vdriver_read32(d, VD_QUEUE_NUM_MAX);
	if (max == 0 || size > max || vdriver_read32(d, VD_QUEUE_READY))
		return -1;
	if (vdriver_queue_alloc(d, qi, size) < 0)
		return -1;
	struct vdriver_queue *q = &d->q[qi];
	vdriver_write32(d, VD_QUEUE_NUM, size);
	vdriver_write32(d, VD_QUEUE_DESC_LOW, (uint32_t)q->desc_gpa);
	vdriver_write32(d, VD_QUEUE_DESC_HIGH, (uint32_t)(q->desc_gpa >> 32));
	vdriver_write32(d, VD_QUEUE_DRIVER_LOW, (uint32_t)q->avail_gpa);
	vdriver_write32(d, VD_QUEUE_DRIVER_HIGH, (uint32_t)(q->avail_gpa >> 32));
	vdriver_write32(d, VD_QUEUE_DEVICE_LOW, (uint32_t)q->used_gpa);
	vdriver_write32(d, VD_QUEUE_DEVICE_HIGH, (uint32_t)(q->used_gpa >> 32));
	vdriver_write32(d, VD_QUEUE_READY, 1);
	return vdriver_read32(d, VD_QUEUE_READY) == 1 ? 0 : -1;
}

void vdriver_driver_ok(struct vdriver *d)
{
	vdriver_write32(d, VD_STATUS, vdriver_status(d) | VIRTIO_STATUS_DRIVER_OK);
}

int vdriver_start(struct vdriver *d, uint64_t want, unsigned nqueues, uint16_t size)
{
	if (vdriver_negotiate(d, want) < 0)
		return -1;
	for (unsigned i = 0; i < nqueues; i++)
		if (vdriver_setup_queue(d, i, size) < 0)
			return -1;
	vdriver_driver_ok(d);
	return 0;
}

void vdriver_set_desc(struct vdriver *d, unsigned qi, uint16_t i, uint64_t addr, uint32_t len,
		      uint16_t flags, uint16_t next)
{
	uint8_t *p = d->q[qi].desc + (size_t)i * DESC_BYTES;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static uint16_t desc_next(struct vdriver_queue *q, uint16_t i)
{
	uint16_t next;
	memcpy(&next, q->desc + (size_t)i * DESC_BYTES + 14, 2);
	return next;
}

void vdriver_publish(struct vdriver *d, unsigned qi, uint16_t head)
{
	struct vdriver_queue *q = &d->q[qi];

	put16(q->avail + 4 + 2u * (q->avail_idx % q->size), head);
	q->avail_idx++;
	q->num_added++;
	put16(q->avail + 2, q->avail_idx);
}

void vdriver_set_avail_idx(struct vdriver *d, unsigned qi, uint16_t idx)
{
	struct vdriver_queue *q = &d->q[qi];

	q->avail_idx = idx;
	put16(q->avail + 2, idx);
}

int vdriver_add(struct vdriver *d, unsigned qi, const struct vdriver_buf *bufs, unsigned n,
		bool indirect)
{
	struct vdriver_queue *q = &d->q[qi];
	unsigned need = indirect ? 1 : n;

	if (n == 0 || need > q->num_free || (indirect && n > VDRIVER_MAX_INDIRECT))
		return -1;
	uint16_t head = q->free_head;
	if (indirect) {
		uint64_t table = q->indirect_gpa + (uint64_t)head * VDRIVER_MAX_INDIRECT * DESC_BYTES;
		uint8_t *t = vdriver_host(d, table, (uint64_t)n * DESC_BYTES);
		for (unsigned i = 0; i < n; i++) {
			uint16_t flags = (bufs[i].writable ? VIRTQ_DESC_F_WRITE : 0) |
					 (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			uint16_t next = (uint16_t)(i + 1);
			memcpy(t + i * DESC_BYTES, &bufs[i].gpa, 8);
			memcpy(t + i * DESC_BYTES + 8, &bufs[i].len, 4);
			memcpy(t + i * DESC_BYTES + 12, &flags, 2);
			memcpy(t + i * DESC_BYTES + 14, &next, 2);
		}
		q->free_head = desc_next(q, head);
		vdriver_set_desc(d, qi, head, table, n * DESC_BYTES, VIRTQ_DESC_F_INDIRECT, 0);
	} else {
		uint16_t i = head;
		for (unsigned k = 0; k < n; k++) {
			uint16_t next = desc_next(q, i);
			uint16_t flags = (bufs[k].writable ? VIRTQ_DESC_F_WRITE : 0) |
					 (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			/* The last descriptor keeps its free-list link in next, as in Linux. */
			vdriver_set_desc(d, qi, i, bufs[k].gpa, bufs[k].len, flags, next);
			if (k + 1 < n)
				i = next;
			else
				q->free_head = next;
		}
	}
	q->num_free -= (uint16_t)need;
	q->chain_descs[head] = (uint16_t)need;
	vdriver_publish(d, qi, head);
	return head;
}

/* virtio 1.x §2.7.7.2, as vring_need_event. */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old_idx)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old_idx);
}

bool vdriver_kick(struct vdriver *d, unsigned qi)
{
	struct vdriver_queue *q = &d->q[qi];
	uint16_t new_idx = q->avail_idx, old_idx = (uint16_t)(q->avail_idx - q->num_added);
	bool kick;

	q->num_added = 0;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (d->features & VIRTIO_F_RING_EVENT_IDX)
		kick = need_event(vdriver_avail_event(d, qi), new_idx, old_idx);
	else
		kick = !(get16(q->used) & VIRTQ_USED_F_NO_NOTIFY);
	if (kick)
		vdriver_notify(d, qi);
	return kick;
}

void vdriver_notify(struct vdriver *d, unsigned qi)
{
	vdriver_write32(d, VD_QUEUE_NOTIFY, qi);
}

int vdriver_get_used(struct vdriver *d, unsigned qi, uint16_t *head, uint32_t *len)
{
	struct vdriver_queue *q = &d->q[qi];

	if (get16(q->used + 2) == q->last_used)
		return 0;
	const uint8_t *e = q->used + 4 + 8u * (q->last_used % q->size);
	uint32_t id = get32(e);
	*len = get32(e + 4);
	q->last_used++;
	if (id >= q->size)
		return -1;               /* the device named a descriptor we never gave it */
	*head = (uint16_t)id;
	/* Give the chain back to the free list. */
	uint16_t last = (uint16_t)id;
	for (unsigned k = 1; k < q->chain_descs[id]; k++)
		last = desc_next(q, last);
	uint8_t *ld = q->desc + (size_t)last * DESC_BYTES;
	memcpy(ld + 14, &q->free_head, 2);
	q->free_head = (uint16_t)id;
	q->num_free += q->chain_descs[id];
	q->chain_descs[id] = 0;
	if ((d->features & VIRTIO_F_RING_EVENT_IDX) && !q->cb_disabled)
		vdriver_set_used_event(d, qi, q->last_used);
	return 1;
}

bool vdriver_enable_cb(struct vdriver *d, unsigned qi)
{
	struct vdriver_queue *q = &d->q[qi];

	q->cb_disabled = false;
	put16(q->avail, 0);
	if (d->features & VIRTIO_F_RING_EVENT_IDX)
		vdriver_set_used_event(d, qi, q->last_used);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return get16(q->used + 2) == q->last_used;
}

void vdriver_disable_cb(struct vdriver *d, unsigned qi)
{
	struct vdriver_queue *q = &d->q[qi];

	q->cb_disabled = true;
	put16(q->avail, VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void vdriver_set_used_event(struct vdriver *d, unsigned qi, uint16_t idx)
{
	struct vdriver_queue *q = &d->q[qi];
	put16(q->avail + 4 + 2u * q->size, idx);
}

uint16_t vdriver_avail_event(struct vdriver *d, unsigned qi)
{
	struct vdriver_queue *q = &d->q[qi];
	return get16(q->used + 4 + 8u * q->size);
}

uint16_t vdriver_used_idx(struct vdriver *d, unsigned qi)
{
	return get16(d->q[qi].used + 2);
}

uint64_t vdriver_irqs(struct vdriver *d)
{
	uint64_t n = 0;

	if (d->mmio->dev->irq_fd < 0 || read(d->mmio->dev->irq_fd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

uint32_t vdriver_isr_ack(struct vdriver *d)
{
	uint32_t isr = vdriver_read32(d, VD_INTERRUPT_STATUS);
	vdriver_write32(d, VD_INTERRUPT_ACK, isr);
	return isr;
}
