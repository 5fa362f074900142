/* The main thread's event loop: epoll with one callback per fd. Devices add
 * their ioeventfds and host sockets; vm.c adds its stop, signal and timer fds. */
#ifndef RV_EVLOOP_H
#define RV_EVLOOP_H

#include <pthread.h>
#include <stdint.h>

#include "common/err.h"

struct ev_handler {
	void (*fn)(struct ev_handler *h, uint32_t events);
};

struct evloop {
	int epfd;
	pthread_mutex_t grave_lock;  /* retire() may run on any thread */
	void **graveyard;            /* freed after the batch that retired them */
	unsigned ngrave, grave_cap;
};

int evloop_init(struct evloop *l, struct rv_err *err);
void evloop_destroy(struct evloop *l);

/* events are EPOLL* bits; level-triggered. h must outlive its registration. */
int evloop_add(struct evloop *l, int fd, uint32_t events, struct ev_handler *h, struct rv_err *err);
int evloop_mod(struct evloop *l, int fd, uint32_t events, struct ev_handler *h, struct rv_err *err);
void evloop_del(struct evloop *l, int fd);

/* Frees p, whose handler may still sit in this batch's ready list, once the
 * batch is done. Any thread may call it, after evloop_del of p's fd. */
void evloop_retire(struct evloop *l, void *p);

/* Waits once (timeout_ms -1: forever) and runs the handlers of ready fds.
 * Returns the number handled, or -1 with err (EINTR is not an error: 0). */
int evloop_run_once(struct evloop *l, int timeout_ms, struct rv_err *err);

#endif
