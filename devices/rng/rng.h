/* virtio-rng (virtio 1.x §5.4): fills the guest's buffers from getrandom(), so
 * the guest kernel has entropy at boot instead of waiting for jitter. */
#ifndef RV_RNG_H
#define RV_RNG_H

#include "devices/virtio/virtio.h"

#define RNG_QUEUE_SIZE 64u
#define RNG_MAX_REQUEST_BYTES (64u * 1024)

struct rng {
	struct virtio_dev dev;
};

void rng_init(struct rng *r, const struct guest_mem *mem, const struct rv_log *log);
void rng_destroy(struct rng *r);

#endif
