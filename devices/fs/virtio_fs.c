/* The virtio-fs device and its workers. The main loop's queue_notify only
 * wakes the workers; each worker pops one chain under the device lock, serves
 * it with the lock dropped (the server is thread-safe and guest memory stays
 * mapped while the VM lives), and pushes the reply under the lock again. A
 * reset bumps the generation so that a reply served for the old rings is never
 * pushed into the new ones. */
#include "common/clock.h"
#include "devices/fs/virtio_fs.h"

#include <endian.h>
#include <linux/fuse.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { HIPRIO_QUEUE = 0, REQUEST_QUEUE = 1, FS_NUM_QUEUES = 2 };

/* Config space, §5.11.4. */
#define CONFIG_BYTES (VIRTIO_FS_TAG_BYTES + 4u)

struct virtio_fs_worker {
	struct virtio_fs *f;
	pthread_t thread;
	/* ~4 KiB of segments: here rather than on the stack of a thread whose
	 * depth the server decides. */
	struct virtq_chain chain;
	/* For virtio_fs_dump, under dev.lock: what it serves and since when. */
	uint32_t opcode;
	uint64_t unique, since_ms;
	bool serving;
};

/* Pops the next chain into c, hiprio first (FORGETs free host inodes and
 * should not wait behind a queue of READs). Lock held. Returns the queue it
 * came from, or -1 when there is nothing to serve now. A malformed chain is
 * returned empty on the spot; a broken ring fails the device. */
static int take(struct virtio_fs *f, struct virtq_chain *c)
{
	struct virtio_dev *d = &f->dev;

	for (;;) {
		bool retry = false;
		if (f->stop || f->resetting || !virtio_dev_active(d))
			return -1;
		for (unsigned qi = 0; qi < FS_NUM_QUEUES && !retry; qi++) {
			struct virtq *q = &d->queues[qi];
			struct rv_err err;
			int rc = virtq_pop(q, c, &err);
			if (rc > 0)
				return (int)qi;
			if (rc == 0)
				continue;
			if (q->broken) {
				virtio_dev_fail(d, &err);
				return -1;
			}
			virtio_dev_warn(d, "queue %u: dropped a buffer: %s", qi, err.msg);
			virtq_push(q, c->head, 0);
			virtio_dev_used(d, q);
			retry = true;
		}
		if (retry)
			continue;
		/* Both empty: ask for kicks, then look once more, so that a chain
		 * made available before the driver saw our request is not left
		 * waiting for a kick that will never come. Both queues, always. */
		bool more = virtq_enable_notify(&d->queues[HIPRIO_QUEUE]);
		more |= virtq_enable_notify(&d->queues[REQUEST_QUEUE]);
		if (!more)
			return -1;
	}
}

/* Lock not held. Returns the bytes written into the chain's writable part. */
static uint32_t serve(struct virtio_fs *f, const struct virtq_chain *c)
{
	struct fs_iov in = { c->iov, c->nread, c->read_bytes };
	struct fs_iov out = { c->iov + c->nread, c->nwrite, c->write_bytes };
	size_t n = fs_server_handle(f->server, in, out);

	return (uint32_t)(n < c->write_bytes ? n : c->write_bytes);
}

/* Lock held again after serve(). */
static void finish(struct virtio_fs *f, unsigned qi, uint64_t generation, uint16_t head,
		   uint32_t written)
{
	struct virtio_dev *d = &f->dev;

	if (generation == f->generation) {
		virtq_push(&d->queues[qi], head, written);
		virtio_dev_used(d, &d->queues[qi]);
	}
	if (--f->busy == 0 && f->resetting)
		pthread_cond_broadcast(&f->idle);
}

/* Lock held. The request's header, read for diagnostics only (the server
 * reads its own copy): a worker stuck in a request says which. */
static void note_serving(struct virtio_fs_worker *w)
{
	struct fuse_in_header h = { 0 };

	virtq_chain_read(&w->chain, 0, &h, sizeof(h));
	w->opcode = h.opcode;
	w->unique = h.unique;
	w->since_ms = rv_now_ms(CLOCK_MONOTONIC);
	w->serving = true;
}

void virtio_fs_dump(struct virtio_fs *f, const struct rv_log *log)
{
	struct virtio_dev *d = &f->dev;

	virtio_dev_dump(d, log);
	pthread_mutex_lock(&d->lock);
	uint64_t now = rv_now_ms(CLOCK_MONOTONIC);
	rv_logf(log, RV_LOG_DEBUG, "virtio-fs: %u of %u workers busy, generation %llu%s", f->busy,
		f->nworkers, (unsigned long long)f->generation, f->resetting ? ", resetting" : "");
	for (unsigned i = 0; i < f->nworkers; i++) {
		const struct virtio_fs_worker *w = &f->workers[i];
		if (w->serving)
			rv_logf(log, RV_LOG_DEBUG, "virtio-fs worker %u: opcode %u, unique %llu, for %llu ms", i,
				w->opcode, (unsigned long long)w->unique,
				(unsigned long long)(now - w->since_ms));
	}
	pthread_mutex_unlock(&d->lock);
}

static void *worker_main(void *arg)
{
	struct virtio_fs_worker *w = arg;
	struct virtio_fs *f = w->f;
	struct virtio_dev *d = &f->dev;

	char name[16];

	/* Named by itself: naming another thread writes to /proc, which the
	 * VMM's jail keeps read-only. */
	snprintf(name, sizeof(name), "virtio-fs/%u", (unsigned)(w - f->workers));
	pthread_setname_np(pthread_self(), name);
	if (f->worker_start && f->worker_start(f->worker_start_arg) < 0)
		return NULL;
	pthread_mutex_lock(&d->lock);
	while (!f->stop) {
		int qi = take(f, &w->chain);
		if (qi < 0) {
			if (!f->stop)
				pthread_cond_wait(&f->work, &d->lock);
			continue;
		}
		uint64_t generation = f->generation;
		f->busy++;
		note_serving(w);
		pthread_mutex_unlock(&d->lock);
		uint32_t written = serve(f, &w->chain);
		pthread_mutex_lock(&d->lock);
		w->serving = false;
		finish(f, (unsigned)qi, generation, w->chain.head, written);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Lock held, main thread: the workers do the work. Broadcast, not signal: one
 * kick may announce many chains, and each worker takes one at a time. */
static bool fs_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_fs *f = d->priv;

	(void)q;
	pthread_cond_broadcast(&f->work);
	return false;
}

/* Chains made available before DRIVER_OK had no kick a worker could act on. */
static void fs_activate(struct virtio_dev *d)
{
	struct virtio_fs *f = d->priv;

	pthread_cond_broadcast(&f->work);
}

static void fs_config_read(struct virtio_dev *d, uint64_t off, void *buf, size_t len)
{
	struct virtio_fs *f = d->priv;
	uint8_t cfg[CONFIG_BYTES];
	uint32_t num_request_queues = htole32(FS_NUM_QUEUES - 1);

	memcpy(cfg, f->tag, VIRTIO_FS_TAG_BYTES);
	memcpy(cfg + VIRTIO_FS_TAG_BYTES, &num_request_queues, sizeof(num_request_queues));
	if (off < sizeof(cfg))
		memcpy(buf, cfg + off, len < sizeof(cfg) - off ? len : sizeof(cfg) - off);
}

/* Lock held. After a reset the driver may free the buffers it gave us, so wait
 * (lock dropped, taking no new chains) for requests in flight to finish
 * writing into them. Bounded: a request stuck on a slow host file must not
 * hang the vCPU that wrote the status register; its reply is dropped by the
 * generation check whenever it ends. */
static void fs_reset(struct virtio_dev *d)
{
	struct virtio_fs *f = d->priv;

	f->generation++;
	if (f->busy == 0)
		return;
	fs_server_cancel_waits(f->server, false);   /* the waiters' processes are gone */
	struct timespec deadline = rv_deadline_in(CLOCK_MONOTONIC, VIRTIO_FS_RESET_WAIT_MS);
	f->resetting++;
	while (f->busy > 0 && pthread_cond_timedwait(&f->idle, &d->lock, &deadline) == 0)
		;
	if (f->busy > 0)
		virtio_dev_warn(d, "reset: %u requests still in progress after %u ms; their replies are dropped",
				f->busy, VIRTIO_FS_RESET_WAIT_MS);
	f->resetting--;
}

static const struct virtio_dev_ops fs_ops = {
	.name = "fs",
	.device_id = VIRTIO_ID_FS,
	.num_queues = FS_NUM_QUEUES,
	.queue_max_size = VIRTIO_FS_QUEUE_SIZE,
	.queue_notify = fs_notify,
	.config_read = fs_config_read,
	.activate = fs_activate,
	.reset = fs_reset,
};

/* Workers take no signals: the VMM's arrive on the main loop's signalfd, and
 * a vCPU kick is sent to a vCPU thread by id. */
static int start_workers(struct virtio_fs *f, unsigned n, struct rv_err *err)
{
	sigset_t all, old;
	int rc = 0;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; f->nworkers < n; f->nworkers++) {
		struct virtio_fs_worker *w = &f->workers[f->nworkers];
		w->f = f;
		rc = pthread_create(&w->thread, NULL, worker_main, w);
		if (rc)
			break;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc ? rv_fail(err, rc, "virtio-fs: start worker %u of %u", f->nworkers + 1, n) : 0;
}

int virtio_fs_init(struct virtio_fs *f, const struct virtio_fs_config *cfg, struct fs_server *srv,
		   const struct guest_mem *mem, const struct rv_log *log, struct rv_err *err)
{
	const char *tag = cfg && cfg->tag ? cfg->tag : VIRTIO_FS_DEFAULT_TAG;
	unsigned n = cfg && cfg->workers ? cfg->workers : VIRTIO_FS_DEFAULT_WORKERS;
	size_t tag_len = strlen(tag);
	pthread_condattr_t ca;

	memset(f, 0, sizeof(*f));
	if (tag_len == 0 || tag_len > VIRTIO_FS_TAG_BYTES)
		return rv_failx(err, EINVAL, "virtio-fs tag \"%s\": must be 1 to %u bytes", tag,
				VIRTIO_FS_TAG_BYTES);
	if (n > VIRTIO_FS_MAX_WORKERS)
		return rv_failx(err, EINVAL, "virtio-fs: %u workers: at most %u", n, VIRTIO_FS_MAX_WORKERS);
	f->workers = calloc(n, sizeof(*f->workers));
	f->want_workers = n;
	if (!f->workers)
		return rv_fail(err, ENOMEM, "virtio-fs: allocate %u workers", n);
	memcpy(f->tag, tag, tag_len);
	f->server = srv;
	if (cfg) {
		f->worker_start = cfg->worker_start;
		f->worker_start_arg = cfg->worker_start_arg;
	}
	virtio_dev_init(&f->dev, &fs_ops, f, mem, log);
	pthread_cond_init(&f->work, NULL);
	/* The reset wait is bounded in monotonic time: clock changes don't matter. */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->idle, &ca);
	pthread_condattr_destroy(&ca);
	fs_server_set_workers(srv, n);
	return 0;
}

int virtio_fs_start(struct virtio_fs *f, struct rv_err *err)
{
	return start_workers(f, f->want_workers, err);
}

void virtio_fs_destroy(struct virtio_fs *f)
{
	if (!f->workers)
		return;
	fs_server_cancel_waits(f->server, true);
	pthread_mutex_lock(&f->dev.lock);
	f->stop = true;
	pthread_cond_broadcast(&f->work);
	pthread_mutex_unlock(&f->dev.lock);
	for (unsigned i = 0; i < f->nworkers; i++)
		pthread_join(f->workers[i].thread, NULL);
	virtio_dev_destroy(&f->dev);
	pthread_cond_destroy(&f->work);
	pthread_cond_destroy(&f->idle);
	free(f->workers);
	f->workers = NULL;
	f->nworkers = 0;
}
