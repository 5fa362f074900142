#include "vmm/pod_host.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices/fs/server.h"
#include "vmm/vm_priv.h"

struct export_job {
	bool remove;                 /* else add fd as a new export */
	int fd;
	bool readonly;
	char name[FS_EXPORT_NAME_MAX];
	int rc;
	struct rv_err err;
	bool done;
};

struct pod_host {
	struct vm *vm;
	struct fs_server *fs;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop;
	bool jailed;                 /* the thread's filter is loaded */
	struct export_job *job;      /* the one being served; one at a time */
	unsigned next;               /* the next export's number */
	/* What each caller's connection was given, removed when it ends. */
	struct {
		int conn;
		char name[FS_EXPORT_NAME_MAX];
	} given[FS_MAX_EXPORTS];
	unsigned ngiven;
};

static void serve(struct pod_host *h, struct export_job *job)
{
	struct fs_export_cfg cfg = { .name = job->name, .path = "a pod container's files",
				     .readonly = job->readonly, .cache = FS_CACHE_AUTO };

	if (!h->jailed)
		job->rc = rv_failx(&job->err, EPERM, "the pod's exporter could not load its filter");
	else if (job->remove)
		job->rc = fs_server_remove_export(h->fs, job->name, &job->err);
	else
		job->rc = fs_server_add_export_fd(h->fs, &cfg, job->fd, &job->err);
}

static void *exporter(void *arg)
{
	struct pod_host *h = arg;

	h->jailed = vm_jail_thread(h->vm, JAIL_FS_WORKER) == 0;
	/* A job posted is served, also once stop is asked: its poster waits. */
	pthread_mutex_lock(&h->lock);
	for (;;) {
		struct export_job *job = h->job;
		if (!job || job->done) {
			if (h->stop)
				break;
			pthread_cond_wait(&h->cond, &h->lock);
			continue;
		}
		pthread_mutex_unlock(&h->lock);
		serve(h, job);
		pthread_mutex_lock(&h->lock);
		job->done = true;
		pthread_cond_broadcast(&h->cond);
	}
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

int pod_host_start(struct vm *vm, struct fs_server *fs, struct pod_host **out,
		   struct rv_err *err)
{
	struct pod_host *h = calloc(1, sizeof(*h));

	if (!h)
		return rv_fail(err, ENOMEM, "the pod's exporter");
	h->vm = vm;
	h->fs = fs;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->cond, NULL);
	int rc = pthread_create(&h->thread, NULL, exporter, h);
	if (rc) {
		free(h);
		return rv_fail(err, rc, "start the pod's exporter");
	}
	*out = h;
	return 0;
}

void pod_host_stop(struct pod_host *h)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->stop = true;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	pthread_join(h->thread, NULL);
	pthread_cond_destroy(&h->cond);
	pthread_mutex_destroy(&h->lock);
	free(h);
}

/* Runs job on the exporter thread; one at a time. */
static int run_job(struct pod_host *h, struct export_job *job, struct rv_err *err)
{
	pthread_mutex_lock(&h->lock);
	while (h->job && !h->stop)
		pthread_cond_wait(&h->cond, &h->lock);
	if (h->stop) {
		pthread_mutex_unlock(&h->lock);
		return rv_failx(err, ECANCELED, "the pod's VM is stopping");
	}
	if (!job->remove)
		snprintf(job->name, sizeof(job->name), "pod%u", h->next++);
	h->job = job;
	pthread_cond_broadcast(&h->cond);
	while (!job->done)
		pthread_cond_wait(&h->cond, &h->lock);
	h->job = NULL;
	pthread_cond_broadcast(&h->cond);
	pthread_mutex_unlock(&h->lock);
	if (job->rc < 0) {
		*err = job->err;
		return -1;
	}
	return 0;
}

int pod_host_export(struct pod_host *h, int conn, int fd, bool readonly, char *name, size_t size,
		    struct rv_err *err)
{
	struct export_job job = { .fd = fd, .readonly = readonly };

	if (run_job(h, &job, err) < 0)
		return -1;
	pthread_mutex_lock(&h->lock);
	/* The server holds at most FS_MAX_EXPORTS, the sandbox's among them. */
	h->given[h->ngiven].conn = conn;
	snprintf(h->given[h->ngiven].name, sizeof(h->given[h->ngiven].name), "%s", job.name);
	h->ngiven++;
	pthread_mutex_unlock(&h->lock);
	snprintf(name, size, "%s", job.name);
	return 0;
}

void pod_host_conn_closed(struct pod_host *h, int conn)
{
	for (;;) {
		struct export_job job = { .remove = true, .fd = -1 };
		struct rv_err err;
		pthread_mutex_lock(&h->lock);
		unsigned i = 0;
		while (i < h->ngiven && h->given[i].conn != conn)
			i++;
		if (i < h->ngiven) {
			snprintf(job.name, sizeof(job.name), "%s", h->given[i].name);
			h->given[i] = h->given[--h->ngiven];
		}
		pthread_mutex_unlock(&h->lock);
		if (!job.name[0] || run_job(h, &job, &err) < 0)
			return;     /* none left, or the VM is stopping: all go with it */
	}
}

