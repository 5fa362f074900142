#include "devices/virtio/persist.h"

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define TAG_VIRTIO SNAP_TAG('v', 'i', 'r', 't')

#define KNOWN_STATUS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK | \
		      VIRTIO_STATUS_FEATURES_OK)

struct saved_queue {
	uint64_t desc_gpa, avail_gpa, used_gpa;
	uint16_t size, last_avail, used_idx, signalled_used;
	uint8_t ready, pad[7];
};

struct saved_dev {
	uint32_t device_id, nqueues;
	uint64_t driver_features;
	uint32_t status, isr, config_generation, pad;
	struct saved_queue q[VIRTIO_MAX_QUEUES];
};

void virtio_dev_save_locked(struct virtio_dev *d, struct snapbuf *b)
{
	struct saved_dev s = { 0 };

	s.device_id = d->ops->device_id;
	s.nqueues = d->ops->num_queues;
	s.driver_features = d->driver_features;
	s.status = d->status;
	s.isr = d->isr;
	s.config_generation = d->config_generation;
	for (unsigned i = 0; i < d->ops->num_queues; i++) {
		const struct virtq *q = &d->queues[i];
		s.q[i] = (struct saved_queue){ .desc_gpa = q->desc_gpa, .avail_gpa = q->avail_gpa,
					       .used_gpa = q->used_gpa, .size = q->size,
					       .last_avail = q->last_avail, .used_idx = q->used_idx,
					       .signalled_used = q->signalled_used, .ready = q->ready };
	}
	snapbuf_put(b, TAG_VIRTIO, &s, sizeof(s));
}

static int check_saved(const struct virtio_dev *d, const struct saved_dev *s, struct rv_err *err)
{
	if (s->device_id != d->ops->device_id || s->nqueues != d->ops->num_queues)
		return rv_failx(err, EPROTO, "saved state holds virtio device %u with %u queues "
				"where virtio-%s belongs", s->device_id, s->nqueues, d->ops->name);
	if (s->status & ~KNOWN_STATUS)
		return rv_failx(err, EPROTO, "saved virtio-%s status 0x%x: a failed or reset device "
				"is not saved", d->ops->name, s->status);
	/* What virtio_dev_set_status lets a driver reach, and nothing else. */
	if (((s->status & VIRTIO_STATUS_DRIVER_OK) && !(s->status & VIRTIO_STATUS_FEATURES_OK)) ||
	    ((s->status & VIRTIO_STATUS_FEATURES_OK) && !(s->driver_features & VIRTIO_F_VERSION_1)))
		return rv_failx(err, EPROTO, "saved virtio-%s status 0x%x with features 0x%llx: no "
				"driver gets there", d->ops->name, s->status,
				(unsigned long long)s->driver_features);
	if (s->driver_features & ~virtio_dev_features(d))
		return rv_failx(err, EPROTO, "saved virtio-%s features 0x%llx were never offered",
				d->ops->name, (unsigned long long)s->driver_features);
	return 0;
}

/* Indices within one ring's reach of each other: the driver cannot have
 * more in flight than the ring holds. */
static int restore_queue(struct virtio_dev *d, unsigned i, const struct saved_queue *sq,
			 struct rv_err *err)
{
	struct virtq *q = &d->queues[i];

	*q = (struct virtq){ .size = sq->size, .desc_gpa = sq->desc_gpa, .avail_gpa = sq->avail_gpa,
			     .used_gpa = sq->used_gpa, .ready = sq->ready != 0 };
	if (!q->ready || !(d->status & VIRTIO_STATUS_DRIVER_OK))
		return 0;
	q->event_idx = d->driver_features & VIRTIO_F_RING_EVENT_IDX;
	if (virtq_activate(q, d->mem, d->ops->queue_max_size, err) < 0)
		return rv_wrap(err, "saved virtio-%s queue %u", d->ops->name, i);
	if ((uint16_t)(sq->last_avail - sq->used_idx) > q->size ||
	    (uint16_t)(sq->used_idx - sq->signalled_used) > q->size)
		return rv_failx(err, EPROTO, "saved virtio-%s queue %u: indices %u/%u/%u are more "
				"than a ring apart", d->ops->name, i, sq->last_avail, sq->used_idx,
				sq->signalled_used);
	q->last_avail = sq->last_avail;
	q->used_idx = sq->used_idx;
	q->signalled_used = sq->signalled_used;
	return 0;
}

int virtio_dev_restore(struct virtio_dev *d, struct snapreader *r, struct rv_err *err)
{
	struct saved_dev s;

	if (snapreader_get(r, TAG_VIRTIO, &s, sizeof(s), err) < 0 || check_saved(d, &s, err) < 0)
		return rv_wrap(err, "virtio-%s", d->ops->name);
	pthread_mutex_lock(&d->lock);
	d->driver_features = s.driver_features;
	d->status = s.status;
	d->isr = s.isr & (VIRTIO_INT_USED | VIRTIO_INT_CONFIG);
	d->isr_since_ms = rv_now_ms(CLOCK_MONOTONIC);
	d->config_generation = s.config_generation;
	int rc = 0;
	for (unsigned i = 0; i < d->ops->num_queues && rc == 0; i++)
		rc = restore_queue(d, i, &s.q[i], err);
	if (rc == 0 && virtio_dev_active(d) && d->ops->activate)
		d->ops->activate(d);
	/* A queue refused after the status and the queues before it were set
	 * would leave a live device (indices from 0) over the template's rings:
	 * back to one never driven. */
	if (rc < 0)
		virtio_dev_set_status(d, 0);
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void virtio_dev_kick_saved(struct virtio_dev *d)
{
	uint64_t one = 1;

	pthread_mutex_lock(&d->lock);
	if (d->isr && d->irq_fd >= 0 && write(d->irq_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: saturated, an interrupt is pending anyway. */
	}
	/* A kick the template's guest made just before the save reached no
	 * clone's device: each live queue is looked at once. */
	for (unsigned q = 0; q < d->ops->num_queues && virtio_dev_active(d); q++)
		if (d->queues[q].ready && virtq_has_avail(&d->queues[q]))
			virtio_dev_defer(d, q);
	pthread_mutex_unlock(&d->lock);
}
