/* Absolute deadlines for the timed waits (pthread_cond_timedwait,
 * pthread_timedjoin_np), which take a point in time on a given clock. */
#ifndef RV_CLOCK_H
#define RV_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline struct timespec rv_deadline_in(clockid_t clock, unsigned ms)
{
	struct timespec t;

	clock_gettime(clock, &t);
	t.tv_sec += ms / 1000;
	t.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t.tv_nsec >= 1000000000L) {
		t.tv_sec++;
		t.tv_nsec -= 1000000000L;
	}
	return t;
}

/* Now on `clock`, in milliseconds: for durations in diagnostics. */
static inline uint64_t rv_now_ms(clockid_t clock)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (uint64_t)t.tv_sec * 1000u + (uint64_t)t.tv_nsec / 1000000u;
}

#endif
