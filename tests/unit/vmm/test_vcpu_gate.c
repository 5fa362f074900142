/* The pause gate of the vCPU threads (vmm/vcpu.c, vm_priv.h) with plain
 * threads in the vCPUs' place: each runs the vCPU loop's shape, its
 * "KVM_RUN" a wait on an eventfd that only a kick (or a short timeout, for a
 * busy guest) ends, and counts the rounds it ran. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "vmm/vm_priv.h"

#define MAX_FAKES 8
#define BUSY_RUN_MS 1          /* a busy guest's KVM_RUN returns this often */

struct fake {
	struct vcpu_gate *g;
	int kick_fd;
	int run_ms;                /* -1: KVM_RUN returns only when kicked (an idle guest) */
	bool deaf;                 /* never back at the gate until stopped: a vCPU stuck
				    * in a device handler */
	atomic_bool stop;
	atomic_ulong rounds;
	pthread_t thread;
};

struct rig {
	struct vcpu_gate g;
	struct fake f[MAX_FAKES];
	unsigned n;
	atomic_uint kicks;
};

static void *fake_vcpu(void *arg)
{
	struct fake *f = arg;
	uint64_t v;

	while (!atomic_load(&f->stop)) {
		if (f->deaf) {
			poll(NULL, 0, 1);
			continue;
		}
		if (vcpu_gate_should_park(f->g)) {
			vcpu_gate_park(f->g);
			continue;
		}
		struct pollfd p = { .fd = f->kick_fd, .events = POLLIN };
		if (poll(&p, 1, f->run_ms) > 0 && read(f->kick_fd, &v, sizeof(v)) < 0)
			break;
		atomic_fetch_add(&f->rounds, 1);
	}
	vcpu_gate_leave(f->g);
	return NULL;
}

static void kick_all(void *arg)
{
	struct rig *r = arg;
	uint64_t one = 1;

	atomic_fetch_add(&r->kicks, 1);
	for (unsigned i = 0; i < r->n; i++)
		if (write(r->f[i].kick_fd, &one, sizeof(one)) < 0) {
			/* the eventfd is readable anyway */
		}
}

static void rig_start(struct rig *r, unsigned n, int run_ms)
{
	vcpu_gate_init(&r->g);
	r->n = n;
	for (unsigned i = 0; i < n; i++) {
		struct fake *f = &r->f[i];
		f->g = &r->g;
		f->run_ms = run_ms;
		f->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		cr_assert_geq(f->kick_fd, 0);
		vcpu_gate_enter(&r->g);   /* as vcpu_start does */
		cr_assert_eq(pthread_create(&f->thread, NULL, fake_vcpu, f), 0);
	}
}

/* As vm_teardown: stopping, the gate closed, the threads joined. */
static void rig_stop(struct rig *r)
{
	for (unsigned i = 0; i < r->n; i++)
		atomic_store(&r->f[i].stop, true);
	vcpu_gate_quiesce(&r->g);
	kick_all(r);
	for (unsigned i = 0; i < r->n; i++) {
		pthread_join(r->f[i].thread, NULL);
		close(r->f[i].kick_fd);
	}
	vcpu_gate_destroy(&r->g);
}

static unsigned long total_rounds(struct rig *r)
{
	unsigned long t = 0;

	for (unsigned i = 0; i < r->n; i++)
		t += atomic_load(&r->f[i].rounds);
	return t;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

/* Waits up to 2 s for the threads to have run `more` rounds past `from`. */
static bool advances(struct rig *r, unsigned long from, unsigned long more)
{
	for (int i = 0; i < 2000; i++) {
		if (total_rounds(r) >= from + more)
			return true;
		sleep_ms(1);
	}
	return false;
}

static unsigned parked(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	unsigned n = g->parked;
	pthread_mutex_unlock(&g->lock);
	return n;
}

Test(vcpu_gate, pause_parks_every_thread_and_resume_lets_them_run, .timeout = 10)
{
	struct rig r = { 0 };
	struct rv_err err;

	rig_start(&r, 4, BUSY_RUN_MS);
	cr_assert(advances(&r, 0, 40));
	cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), 0, "%s", err.msg);
	cr_assert(vcpu_gate_paused(&r.g));
	cr_assert_eq(parked(&r.g), 4);
	unsigned long frozen = total_rounds(&r);
	sleep_ms(50);
	cr_assert_eq(total_rounds(&r), frozen, "the threads ran while paused");

	cr_assert_eq(vcpu_gate_resume(&r.g, &err), 0, "%s", err.msg);
	cr_assert_not(vcpu_gate_paused(&r.g));
	cr_assert(advances(&r, frozen, 40), "the threads did not run again after resume");
	rig_stop(&r);
}

Test(vcpu_gate, pause_kicks_threads_out_of_a_kvm_run_that_would_not_return, .timeout = 10)
{
	struct rig r = { 0 };
	struct rv_err err;

	rig_start(&r, 3, -1);   /* idle guests: only a kick ends their KVM_RUN */
	sleep_ms(20);
	cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(atomic_load(&r.kicks), 1);
	cr_assert_eq(parked(&r.g), 3);
	cr_assert_eq(vcpu_gate_resume(&r.g, &err), 0, "%s", err.msg);
	rig_stop(&r);
}

Test(vcpu_gate, a_second_pause_and_a_resume_of_a_running_vm_are_ealready, .timeout = 10)
{
	struct rig r = { 0 };
	struct rv_err err;

	rig_start(&r, 2, BUSY_RUN_MS);
	cr_assert_eq(vcpu_gate_resume(&r.g, &err), -1);
	cr_assert_eq(err.code, EALREADY);
	cr_assert_str_eq(err.msg, "not paused");
	cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), -1);
	cr_assert_eq(err.code, EALREADY);
	cr_assert_str_eq(err.msg, "already paused");
	cr_assert_eq(atomic_load(&r.kicks), 1, "the second pause kicked again");
	cr_assert(vcpu_gate_paused(&r.g), "a refused pause changed the state");
	cr_assert_eq(vcpu_gate_resume(&r.g, &err), 0, "%s", err.msg);
	cr_assert_eq(vcpu_gate_resume(&r.g, &err), -1);
	cr_assert_eq(err.code, EALREADY);
	rig_stop(&r);
}

Test(vcpu_gate, pause_and_resume_can_repeat, .timeout = 20)
{
	struct rig r = { 0 };
	struct rv_err err;

	rig_start(&r, 3, BUSY_RUN_MS);
	for (int i = 0; i < 200; i++) {
		cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), 0, "round %d: %s", i, err.msg);
		cr_assert_eq(parked(&r.g), 3);
		cr_assert_eq(vcpu_gate_resume(&r.g, &err), 0, "round %d: %s", i, err.msg);
	}
	unsigned long now = total_rounds(&r);
	cr_assert(advances(&r, now, 30));
	rig_stop(&r);
}

Test(vcpu_gate, stopping_while_paused_releases_the_threads, .timeout = 10)
{
	struct rig r = { 0 };
	struct rv_err err;

	rig_start(&r, 4, -1);
	cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), 0, "%s", err.msg);
	for (unsigned i = 0; i < r.n; i++)
		atomic_store(&r.f[i].stop, true);
	vcpu_gate_close(&r.g);             /* vm_request_stop, from any thread */
	for (unsigned i = 0; i < r.n; i++)
		pthread_join(r.f[i].thread, NULL);   /* the timeout catches a thread left parked */
	r.n = 0;
	cr_assert_eq(vcpu_gate_resume(&r.g, &err), -1);
	cr_assert_eq(err.code, ECANCELED);
	cr_assert_eq(vcpu_gate_pause(&r.g, kick_all, &r, &err), -1);
	cr_assert_eq(err.code, ECANCELED);
	vcpu_gate_quiesce(&r.g);
	vcpu_gate_destroy(&r.g);
}

struct pauser {
	struct rig *r;
	int rc;
	struct rv_err err;
	atomic_bool done;
};

static void *pause_thread(void *arg)
{
	struct pauser *p = arg;

	p->rc = vcpu_gate_pause(&p->r->g, kick_all, p->r, &p->err);
	atomic_store(&p->done, true);
	return NULL;
}

Test(vcpu_gate, stopping_ends_a_pause_that_waits_for_a_stuck_vcpu, .timeout = 10)
{
	struct rig r = { 0 };
	struct pauser p = { .r = &r };
	pthread_t t;

	r.f[1].deaf = true;
	rig_start(&r, 2, -1);
	cr_assert_eq(pthread_create(&t, NULL, pause_thread, &p), 0);
	sleep_ms(100);
	cr_assert_not(atomic_load(&p.done), "pause returned with a vCPU not parked");
	cr_assert_eq(parked(&r.g), 1);
	rig_stop(&r);                      /* quiesce: the pause is woken and gone */
	pthread_join(t, NULL);
	cr_assert_eq(p.rc, -1);
	cr_assert_eq(p.err.code, ECANCELED);
}

Test(vcpu_gate, a_thread_that_ends_does_not_hold_a_pause_up, .timeout = 10)
{
	struct rig r = { 0 };
	struct pauser p = { .r = &r };
	pthread_t t;

	r.f[0].deaf = true;
	rig_start(&r, 2, -1);
	cr_assert_eq(pthread_create(&t, NULL, pause_thread, &p), 0);
	sleep_ms(50);
	cr_assert_not(atomic_load(&p.done));
	atomic_store(&r.f[0].stop, true);  /* as a vCPU that hit an error and ended */
	pthread_join(t, NULL);
	cr_assert_eq(p.rc, 0, "%s", p.err.msg);
	cr_assert(vcpu_gate_paused(&r.g));
	rig_stop(&r);
}

Test(vcpu_gate, concurrent_pauses_and_resumes_take_turns, .timeout = 10)
{
	struct rig r = { 0 };
	struct pauser p[6];
	pthread_t t[6];
	int ok = 0, already = 0;

	rig_start(&r, 3, -1);
	for (int i = 0; i < 6; i++) {
		p[i] = (struct pauser){ .r = &r };
		cr_assert_eq(pthread_create(&t[i], NULL, pause_thread, &p[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(t[i], NULL);
		ok += p[i].rc == 0;
		already += p[i].rc == -1 && p[i].err.code == EALREADY;
	}
	cr_assert_eq(ok, 1);
	cr_assert_eq(already, 5);
	cr_assert_eq(atomic_load(&r.kicks), 1);
	cr_assert_eq(parked(&r.g), 3);
	rig_stop(&r);
}

Test(vcpu_gate, pause_with_no_threads_running_is_immediate, .timeout = 10)
{
	struct vcpu_gate g;
	struct rv_err err;
	struct rig r = { 0 };

	vcpu_gate_init(&g);
	cr_assert_eq(vcpu_gate_pause(&g, kick_all, &r, &err), 0, "%s", err.msg);
	cr_assert(vcpu_gate_paused(&g));
	cr_assert_eq(vcpu_gate_resume(&g, &err), 0, "%s", err.msg);
	vcpu_gate_quiesce(&g);
	vcpu_gate_destroy(&g);
}
