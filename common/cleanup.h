/* Scope-bound release of fds, heap buffers and streams (see STYLE.md, Resources). */
#ifndef RV_CLEANUP_H
#define RV_CLEANUP_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Closes *fd when open and leaves -1 there, so that a field closed early
 * reads as closed. */
static inline void rv_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;   /* cleanup runs on error paths; keep their errno */
		close(*fd);
		errno = saved;
		*fd = -1;
	}
}

static inline void rv_freep(void *p)
{
	free(*(void **)p);
}

static inline void rv_fclosep(FILE **f)
{
	if (*f) {
		int saved = errno;
		fclose(*f);
		errno = saved;
	}
}

/* Hand an fd out of a cleanup scope. */
static inline int rv_steal_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}

#define _cleanup_close_ __attribute__((cleanup(rv_closep)))
#define _cleanup_free_ __attribute__((cleanup(rv_freep)))
#define _cleanup_fclose_ __attribute__((cleanup(rv_fclosep)))

#endif
