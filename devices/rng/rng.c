#include "devices/rng/rng.h"

#include <sys/random.h>

static size_t fill(const struct virtq_chain *c)
{
	size_t done = 0;

	for (unsigned i = c->nread; i < c->nread + c->nwrite && done < RNG_MAX_REQUEST_BYTES; i++) {
		size_t want = c->iov[i].iov_len;
		if (want > RNG_MAX_REQUEST_BYTES - done)
			want = RNG_MAX_REQUEST_BYTES - done;
		ssize_t n = getrandom(c->iov[i].iov_base, want, GRND_NONBLOCK);
		if (n <= 0)
			break;
		done += (size_t)n;
		if ((size_t)n < want)
			break;
	}
	return done;
}

static bool rng_notify(struct virtio_dev *d, unsigned qi)
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
				virtio_dev_warn(d, "dropped a request: %s", err.msg);
			virtq_push(q, c.head, rc < 0 ? 0 : (uint32_t)fill(&c));
			if (--budget == 0) {
				virtio_dev_used(d, q);
				return true;
			}
		}
		virtio_dev_used(d, q);
	} while (virtq_enable_notify(q));
	return false;
}

static const struct virtio_dev_ops rng_ops = {
	.name = "rng",
	.device_id = VIRTIO_ID_RNG,
	.num_queues = 1,
	.queue_max_size = RNG_QUEUE_SIZE,
	.queue_notify = rng_notify,
};

void rng_init(struct rng *r, const struct guest_mem *mem, const struct rv_log *log)
{
	virtio_dev_init(&r->dev, &rng_ops, r, mem, log);
}

void rng_destroy(struct rng *r)
{
	virtio_dev_destroy(&r->dev);
}
