/* What template clones need of the vsock device (vsock.h). */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "devices/vsock/vsock_priv.h"

#define VSOCK_EVENT_TRANSPORT_RESET 0u

bool vsock_idle_locked(const struct vsock *v)
{
	return v->nconns == 0 && !v->draining && v->ctl_len == 0 && !v->ready_head &&
	       !(virtio_dev_active(&v->dev) && virtq_has_avail(&v->dev.queues[TX_QUEUE]));
}

bool vsock_idle(struct vsock *v)
{
	pthread_mutex_lock(&v->dev.lock);
	bool idle = vsock_idle_locked(v);
	pthread_mutex_unlock(&v->dev.lock);
	return idle;
}

int vsock_transport_reset(struct vsock *v, uint64_t guest_cid, struct rv_err *err)
{
	struct virtq *q = &v->dev.queues[EVENT_QUEUE];
	struct virtq_chain chain;
	uint32_t event = htole32(VSOCK_EVENT_TRANSPORT_RESET), written = 0;
	int rc = -1;

	pthread_mutex_lock(&v->dev.lock);
	v->guest_cid = guest_cid;
	if (!virtio_dev_active(&v->dev) || !q->ready) {
		rv_failx(err, EIO, "the guest's vsock driver is not running");
		goto out;
	}
	v->reset_avail = virtq_avail_idx(q);
	int got = virtq_pop(q, &chain, err);
	if (got == 0) {
		rv_failx(err, ENOBUFS, "the guest gave no vsock event buffer");
		goto out;
	}
	if (got < 0 && q->broken) {
		virtio_dev_fail(&v->dev, err);     /* as virtio_dev_serve: NEEDS_RESET */
		goto out;
	}
	/* A malformed or short buffer goes back empty (virtq_pop), so that the
	 * driver does not lose it. */
	if (got > 0 && chain.write_bytes < sizeof(event))
		rv_failx(err, EPROTO, "vsock event buffer %u has %llu writable bytes", chain.head,
			 (unsigned long long)chain.write_bytes);
	else if (got > 0)
		written = (uint32_t)virtq_chain_write(&chain, 0, &event, sizeof(event));
	rc = written ? 0 : -1;
	virtq_push(q, chain.head, written);
	virtio_dev_used(&v->dev, q);
out:
	pthread_mutex_unlock(&v->dev.lock);
	return rc < 0 ? rv_wrap(err, "vsock transport reset") : 0;
}

bool vsock_transport_reset_seen(struct vsock *v)
{
	pthread_mutex_lock(&v->dev.lock);
	const struct virtq *q = &v->dev.queues[EVENT_QUEUE];
	bool seen = q->avail && virtq_avail_idx(q) != v->reset_avail;
	pthread_mutex_unlock(&v->dev.lock);
	return seen;
}
