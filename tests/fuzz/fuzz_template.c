/* libFuzzer target for a template's saved device state (common/snapbuf.c,
 * devices/virtio/persist.c): a state file can be cut short or edited by
 * anyone who can write the store, so its records are parsed as untrusted.
 *
 * Input: the records as a template's state holds them after the machine's
 * (one virtio device's: virtio-rng here, whose queue the restored device
 * then serves from guest memory, zero-filled: whatever indices the record
 * gave, nothing may be read or written outside RAM; a record refused leaves
 * the device as never driven). */
#include <stdint.h>
#include <string.h>

#include "common/snapbuf.h"
#include "devices/rng/rng.h"
#include "devices/virtio/persist.h"
#include "vmm/guest_mem.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define RAM_BYTES (256u * 1024)

static struct guest_mem mem;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rv_err err;
	struct rng rng;
	struct snapreader r = { data, size, 0 };

	if (!mem.base)
		CHECK(guest_mem_create(&mem, RAM_BYTES, &err) == 0);
	memset(mem.base, 0, RAM_BYTES);
	rng_init(&rng, &mem, NULL);
	if (virtio_dev_restore(&rng.dev, &r, &err) == 0) {
		CHECK(r.off <= size);
		snapreader_end(&r, &err);
		pthread_mutex_lock(&rng.dev.lock);
		if (virtio_dev_active(&rng.dev) && rng.dev.queues[0].ready)
			rng.dev.ops->queue_notify(&rng.dev, 0);
		pthread_mutex_unlock(&rng.dev.lock);
	} else {
		/* A refused record leaves a device as never driven: nothing
		 * half restored serves the rings it named. */
		CHECK(err.msg[0] != '\0');
		CHECK(rng.dev.status == 0 && !rng.dev.queues[0].ready && !rng.dev.queues[0].used);
	}
	rng_destroy(&rng);
	return 0;
}
