#include "devices/virtio/virtio.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define VIRTIO_COMMON_FEATURES \
	(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX | VIRTIO_F_RING_INDIRECT_DESC)

void virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, void *priv,
		     const struct guest_mem *mem, const struct rv_log *log)
{
	*d = (struct virtio_dev){ .ops = ops, .priv = priv, .mem = mem, .log = log, .irq_fd = -1 };
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->defer_fd[q] = -1;
	pthread_mutex_init(&d->lock, NULL);
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->ops->reset)
		d->ops->reset(d);
	pthread_mutex_unlock(&d->lock);
	pthread_mutex_destroy(&d->lock);
}

uint64_t virtio_dev_features(const struct virtio_dev *d)
{
	return VIRTIO_COMMON_FEATURES | d->ops->features;
}

bool virtio_dev_active(const struct virtio_dev *d)
{
	return (d->status & VIRTIO_STATUS_DRIVER_OK) && (d->status & VIRTIO_STATUS_FEATURES_OK) &&
	       !(d->status & (VIRTIO_STATUS_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

static void pulse_irq(struct virtio_dev *d)
{
	uint64_t one = 1;

	if (d->irq_fd >= 0 && write(d->irq_fd, &one, sizeof(one)) < 0) {
		/* EAGAIN: the counter is saturated, an interrupt is pending anyway. */
	}
}

static void raise_irq(struct virtio_dev *d, uint32_t why)
{
	if (!d->isr) {
		d->isr_since_ms = rv_now_ms(CLOCK_MONOTONIC);
		d->isr_retries = 0;
	}
	d->isr |= why;
	pulse_irq(d);
}

static void retry_irq(struct virtio_dev *d)
{
	if (!d->isr || d->irq_fd < 0 ||
	    rv_now_ms(CLOCK_MONOTONIC) - d->isr_since_ms < VIRTIO_IRQ_RETRY_MS)
		return;
	if (d->irq_retries++ < VIRTIO_MAX_WARNINGS)
		rv_logf(d->log, RV_LOG_DEBUG, "virtio-%s: interrupt 0x%x not acknowledged for %u ms; "
			"raising it again", d->ops->name, d->isr, VIRTIO_IRQ_RETRY_MS);
	d->isr_since_ms = rv_now_ms(CLOCK_MONOTONIC);
	/* Counted in retries, which stop while the VM is paused, not in time. */
	if (++d->isr_retries == VIRTIO_IRQ_STALL_MS / VIRTIO_IRQ_RETRY_MS)
		virtio_dev_warn(d, "the guest has left interrupt 0x%x unacknowledged for %u s while "
				"its vCPUs ran; it has stopped taking interrupts", d->isr,
				VIRTIO_IRQ_STALL_MS / 1000);
	pulse_irq(d);
}

static void poll_queues(struct virtio_dev *d)
{
	for (unsigned qi = 0; qi < d->ops->num_queues && virtio_dev_active(d); qi++) {
		struct virtq *q = &d->queues[qi];
		uint16_t seen = d->watchdog_avail[qi];
		d->watchdog_avail[qi] = q->last_avail;
		if (!q->ready || !q->avail || q->broken || !virtq_has_avail(q) || seen != q->last_avail)
			continue;
		/* Some devices leave buffers waiting on purpose (vsock rx until
		 * there is data): asking them again costs nothing. */
		if (d->ops->queue_notify(d, qi))
			virtio_dev_defer(d, qi);
		if (q->last_avail != seen && d->kick_polls++ < VIRTIO_MAX_WARNINGS)
			rv_logf(d->log, RV_LOG_DEBUG, "virtio-%s: queue %u had buffers waiting without a "
				"notification; served %u", d->ops->name, qi, (uint16_t)(q->last_avail - seen));
		d->watchdog_avail[qi] = q->last_avail;
	}
}

void virtio_dev_dump(struct virtio_dev *d, const struct rv_log *log)
{
	pthread_mutex_lock(&d->lock);
	rv_logf(log, RV_LOG_DEBUG, "virtio-%s: status 0x%x isr 0x%x, %u interrupts raised again, "
		"%u queue polls served", d->ops->name, d->status, d->isr, d->irq_retries, d->kick_polls);
	for (unsigned qi = 0; qi < d->ops->num_queues; qi++) {
		const struct virtq *q = &d->queues[qi];
		if (!q->avail)
			continue;
		rv_logf(log, RV_LOG_DEBUG, "virtio-%s queue %u: avail %u, taken %u, used %u, signalled %u, "
			"used_event %u, avail_event %u%s", d->ops->name, qi, virtq_avail_idx(q), q->last_avail,
			q->used_idx, q->signalled_used, virtq_used_event(q), virtq_avail_event(q),
			q->broken ? ", broken" : "");
	}
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_watchdog(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	retry_irq(d);
	poll_queues(d);
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_defer(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;

	if (q < VIRTIO_MAX_QUEUES && d->defer_fd[q] >= 0 && write(d->defer_fd[q], &one, sizeof(one)) < 0) {
		/* Saturated: the eventfd is readable anyway. */
	}
}

void virtio_dev_warn(struct virtio_dev *d, const char *fmt, ...)
{
	char msg[RV_ERR_MSG_BYTES];
	va_list ap;

	if (d->warnings > VIRTIO_MAX_WARNINGS)
		return;
	if (d->warnings++ == VIRTIO_MAX_WARNINGS) {
		rv_logf(d->log, RV_LOG_WARN, "virtio-%s: more warnings suppressed", d->ops->name);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rv_logf(d->log, RV_LOG_WARN, "virtio-%s: %s", d->ops->name, msg);
}

void virtio_dev_used(struct virtio_dev *d, struct virtq *q)
{
	if (virtq_should_interrupt(q))
		raise_irq(d, VIRTIO_INT_USED);
}

bool virtio_dev_serve(struct virtio_dev *d, unsigned qi,
		      uint32_t (*handle)(struct virtio_dev *d, const struct virtq_chain *c))
{
	struct virtq *q = &d->queues[qi];
	struct virtq_chain c;
	struct rv_err err;
	unsigned budget = VIRTIO_NOTIFY_BUDGET;
	int rc;

	do {
		while ((rc = virtq_pop(q, &c, &err)) != 0) {
			if (rc < 0 && q->broken) {
				virtio_dev_fail(d, &err);
				return false;
			}
			if (rc < 0)
				virtio_dev_warn(d, "queue %u: dropped a buffer: %s", qi, err.msg);
			virtq_push(q, c.head, rc < 0 ? 0 : handle(d, &c));
			if (--budget == 0) {
				virtio_dev_used(d, q);
				return true;
			}
		}
		virtio_dev_used(d, q);
	} while (virtq_enable_notify(q));
	return false;
}

void virtio_dev_fail(struct virtio_dev *d, const struct rv_err *why)
{
	virtio_dev_warn(d, "%s; the device needs a reset", why->msg);
	d->status |= VIRTIO_STATUS_NEEDS_RESET;
	d->config_generation++;
	raise_irq(d, VIRTIO_INT_CONFIG);
}

static void reset(struct virtio_dev *d)
{
	if (d->ops->reset)
		d->ops->reset(d);
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		virtq_reset(&d->queues[i]);
	d->driver_features = 0;
	d->status = 0;
	d->isr = 0;
}

static bool activate_queues(struct virtio_dev *d)
{
	bool event_idx = d->driver_features & VIRTIO_F_RING_EVENT_IDX;

	for (unsigned i = 0; i < d->ops->num_queues; i++) {
		struct virtq *q = &d->queues[i];
		struct rv_err err;
		if (!q->ready)
			continue;
		q->event_idx = event_idx;
		if (virtq_activate(q, d->mem, d->ops->queue_max_size, &err) < 0) {
			rv_wrap(&err, "queue %u", i);
			virtio_dev_fail(d, &err);
			return false;
		}
	}
	return true;
}

void virtio_dev_set_status(struct virtio_dev *d, uint32_t status)
{
	if (status == 0) {
		reset(d);
		return;
	}
	uint32_t added = status & ~d->status;
	if ((added & VIRTIO_STATUS_FEATURES_OK) &&
	    ((d->driver_features & ~virtio_dev_features(d)) || !(d->driver_features & VIRTIO_F_VERSION_1))) {
		/* Leave FEATURES_OK clear: the driver reads it back and gives up. */
		virtio_dev_warn(d, "driver asked for features 0x%llx, offered 0x%llx",
			(unsigned long long)d->driver_features,
			(unsigned long long)virtio_dev_features(d));
		status &= ~VIRTIO_STATUS_FEATURES_OK;
	}
	/* Status bits only accumulate until a reset. */
	d->status |= status;
	if ((added & VIRTIO_STATUS_DRIVER_OK) && (d->status & VIRTIO_STATUS_FEATURES_OK) &&
	    activate_queues(d) && d->ops->activate)
		d->ops->activate(d);
}
