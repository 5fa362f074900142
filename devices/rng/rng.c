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

static uint32_t serve_request(struct virtio_dev *d, const struct virtq_chain *c)
{
	(void)d;
	return (uint32_t)fill(c);
}

static bool rng_notify(struct virtio_dev *d, unsigned qi)
{
	return virtio_dev_serve(d, qi, serve_request);
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
