#include "common/evloop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define EVLOOP_BATCH 64

int evloop_init(struct evloop *l, struct rv_err *err)
{
	*l = (struct evloop){ .epfd = epoll_create1(EPOLL_CLOEXEC) };
	pthread_mutex_init(&l->grave_lock, NULL);
	return l->epfd < 0 ? rv_fail(err, errno, "create epoll instance") : 0;
}

static void bury(struct evloop *l)
{
	pthread_mutex_lock(&l->grave_lock);
	for (unsigned i = 0; i < l->ngrave; i++)
		free(l->graveyard[i]);
	l->ngrave = 0;
	pthread_mutex_unlock(&l->grave_lock);
}

void evloop_retire(struct evloop *l, void *p)
{
	pthread_mutex_lock(&l->grave_lock);
	if (l->ngrave == l->grave_cap) {
		unsigned cap = l->grave_cap ? l->grave_cap * 2 : 16;
		void **g = realloc(l->graveyard, cap * sizeof(*g));
		if (!g) {
			/* Leak rather than free memory a ready event may still name. */
			pthread_mutex_unlock(&l->grave_lock);
			return;
		}
		l->graveyard = g;
		l->grave_cap = cap;
	}
	l->graveyard[l->ngrave++] = p;
	pthread_mutex_unlock(&l->grave_lock);
}

void evloop_destroy(struct evloop *l)
{
	bury(l);
	free(l->graveyard);
	l->graveyard = NULL;
	l->grave_cap = 0;
	pthread_mutex_destroy(&l->grave_lock);
	if (l->epfd >= 0)
		close(l->epfd);
	l->epfd = -1;
}

static int ctl(struct evloop *l, int op, int fd, uint32_t events, struct ev_handler *h,
	       struct rv_err *err)
{
	struct epoll_event ev = { .events = events, .data.ptr = h };
	if (epoll_ctl(l->epfd, op, fd, &ev) < 0)
		return rv_fail(err, errno, "epoll_ctl fd %d", fd);
	return 0;
}

int evloop_add(struct evloop *l, int fd, uint32_t events, struct ev_handler *h, struct rv_err *err)
{
	return ctl(l, EPOLL_CTL_ADD, fd, events, h, err);
}

int evloop_mod(struct evloop *l, int fd, uint32_t events, struct ev_handler *h, struct rv_err *err)
{
	return ctl(l, EPOLL_CTL_MOD, fd, events, h, err);
}

void evloop_del(struct evloop *l, int fd)
{
	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int evloop_run_once(struct evloop *l, int timeout_ms, struct rv_err *err)
{
	struct epoll_event evs[EVLOOP_BATCH];
	int n = epoll_wait(l->epfd, evs, EVLOOP_BATCH, timeout_ms);

	if (n < 0)
		return errno == EINTR ? 0 : rv_fail(err, errno, "epoll_wait");
	for (int i = 0; i < n; i++) {
		struct ev_handler *h = evs[i].data.ptr;
		h->fn(h, evs[i].events);
	}
	bury(l);
	return n;
}
