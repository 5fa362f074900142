/* A virtio device's transport-independent state (features, status, interrupt,
 * each queue's rings and indices) saved and restored for template clones
 * (vmm/template.h), as Firecracker's persist modules do. A device's own state
 * beyond this is its own module's business. */
#ifndef RV_VIRTIO_PERSIST_H
#define RV_VIRTIO_PERSIST_H

#include "common/snapbuf.h"
#include "devices/virtio/virtio.h"

/* With every vCPU parked and d->lock held (the caller saves the guest's
 * memory under the same lock, so no ring changes in between). */
void virtio_dev_save_locked(struct virtio_dev *d, struct snapbuf *b);
/* Into a device just made (never driven): the saved values are checked as a
 * driver's writes would be (features offered, rings inside guest memory,
 * indices within a queue's reach), the queues activated and, for a device
 * the driver had started, its activate hook run. An interrupt the guest had
 * not acknowledged yet is raised again once it runs (virtio_dev_kick_saved). */
int virtio_dev_restore(struct virtio_dev *d, struct snapreader *r, struct rv_err *err);
/* After the restored guest's vCPUs run: an interrupt pending at the save is
 * raised again (the eventfd write may not have reached KVM's irqchip then),
 * and a queue with buffers waiting is served (its kick went to the template's
 * device). */
void virtio_dev_kick_saved(struct virtio_dev *d);

#endif
