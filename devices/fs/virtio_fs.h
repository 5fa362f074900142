/* virtio-fs (virtio 1.x §5.11): the guest's FUSE requests arrive on virtqueues
 * and go to the request server (devices/fs/server.h). Queue 0 is hiprio
 * (FORGET, INTERRUPT), queue 1 the one request queue. A pool of worker threads
 * serves them, so a slow request (a big READ from a cold disk) does not stall
 * the others nor the main loop: queue_notify only wakes a worker. */
#ifndef RV_VIRTIO_FS_H
#define RV_VIRTIO_FS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "devices/fs/server.h"
#include "devices/virtio/virtio.h"

#define VIRTIO_ID_FS 26u
#define VIRTIO_FS_QUEUE_SIZE 256u
#define VIRTIO_FS_TAG_BYTES 36u            /* config tag: NUL-padded, not NUL-terminated */
#define VIRTIO_FS_DEFAULT_TAG "runvm"
#define VIRTIO_FS_DEFAULT_WORKERS 4u   /* one SETLKW wait leaves three (fs_server_set_workers) */
#define VIRTIO_FS_MAX_WORKERS 16u
/* How long a guest's reset waits for requests in flight to finish before it
 * lets them drop their replies into memory the guest may have reused. */
#define VIRTIO_FS_RESET_WAIT_MS 5000u

struct virtio_fs_config {
	const char *tag;        /* what the guest mounts (mount -t virtiofs TAG); NULL: "runvm" */
	unsigned workers;       /* threads serving requests; 0: VIRTIO_FS_DEFAULT_WORKERS */
	/* Optional: run first on each worker's own thread (the VMM loads the
	 * worker's seccomp filter there). A worker whose hook fails serves
	 * nothing; the hook reports why. */
	int (*worker_start)(void *arg);
	void *worker_start_arg;
};

struct virtio_fs_worker;

struct virtio_fs {
	struct virtio_dev dev;
	struct fs_server *server;          /* not owned */
	char tag[VIRTIO_FS_TAG_BYTES];
	/* Under dev.lock, like everything in dev. */
	pthread_cond_t work;               /* a kick, a reset finished, or stop */
	pthread_cond_t idle;               /* busy dropped to 0 (a reset waits for it) */
	uint64_t generation;               /* bumped by reset: older replies are dropped */
	unsigned busy;                     /* workers serving a request outside the lock */
	unsigned resetting;                /* resets waiting for busy: take no new chains */
	bool stop;
	unsigned nworkers, want_workers;   /* started, asked for */
	struct virtio_fs_worker *workers;
	int (*worker_start)(void *arg);    /* virtio_fs_config's */
	void *worker_start_arg;
};

/* Sets up the device serving srv, which must outlive it. EINVAL for a tag
 * of 0 or more than 36 bytes or more than VIRTIO_FS_MAX_WORKERS workers. On
 * failure nothing is left to destroy. No thread starts yet: see below. */
int virtio_fs_init(struct virtio_fs *f, const struct virtio_fs_config *cfg, struct fs_server *srv,
		   const struct guest_mem *mem, const struct rv_log *log, struct rv_err *err);

/* Starts cfg->workers threads. Apart from init, because the VMM starts them
 * only once it is inside its jail (vmm/jail.h), which threads started before
 * would not share; until then queued requests wait. Idempotent. On failure
 * the workers started serve until virtio_fs_destroy. */
int virtio_fs_start(struct virtio_fs *f, struct rv_err *err);

/* Logs (debug level) the device's queues and what each busy worker has
 * been serving for how long: for a guest that stopped making progress. */
void virtio_fs_dump(struct virtio_fs *f, const struct rv_log *log);

/* Stops and joins the workers (a request in progress finishes first), then
 * resets the device. A no-op on a zeroed struct or after a failed init. Call
 * before the transport is destroyed: workers raise its interrupt. */
void virtio_fs_destroy(struct virtio_fs *f);

#endif
