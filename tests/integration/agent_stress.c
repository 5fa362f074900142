/* Many processes at once in one VM: boots our kernel with the agent, starts N
 * agent_run calls concurrently (N x 4 vsock connections), and checks that every
 * one printed its own lines on stdout and stderr and exited with its own code.
 *
 * --pause instead: the container as a whole in one VM (vm_pause, vm_resume,
 * agent_ps, agent_stats, agent_signal_all) under a guest process that prints
 * a line every 100 ms: ps and stats see it; its output stops while the VM is
 * paused and goes on after resume; signal-all ends it; and a VM stopped
 * (SIGTERM to this VMM) while paused still ends, vm_run returning.
 *
 * usage: agent-stress --kernel K --initrd I [--cpus N] [--parallel N | --pause] [--timeout S] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "vmm/vm.h"

#define MAX_PARALLEL 512
#define OUT_BYTES 256
#define TICK_SCRIPT "while :; do echo tick; usleep 100000; done"
#define PAUSE_SETTLE_MS 2000      /* output the guest queued before the pause still arrives */
#define PAUSE_HOLD_MS 5000        /* then none may for this long */
#define GUEST_WAIT_MS 120000      /* the testbed's emulated guest is slow */

struct job {
	const struct agent_client *agent;
	unsigned index;
	int rc;
	struct agent_status st;
	char out[OUT_BYTES], errout[OUT_BYTES];
	struct rv_err err;
};

static void read_all(int fd, char *buf, size_t size)
{
	size_t n = 0;
	ssize_t r;

	while (n + 1 < size && (r = read(fd, buf + n, size - 1 - n)) > 0)
		n += (size_t)r;
	buf[n] = '\0';
}

/* Output stays far below a pipe's capacity, so the pipes need no reader
 * while the process runs. */
static void *run_job(void *arg)
{
	struct job *j = arg;
	char script[160];
	int out[2], errp[2];

	snprintf(script, sizeof(script), "echo out-%u; echo err-%u >&2; exit %u", j->index, j->index,
		 j->index % 7);
	const char *argv[] = { "sh", "-c", script, NULL };
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(errp, O_CLOEXEC) < 0) {
		j->rc = rv_fail(&j->err, errno, "pipe");
		return NULL;
	}
	struct agent_exec x = { .argv = argv, .stdin_fd = -1, .stdout_fd = out[1], .stderr_fd = errp[1] };
	j->rc = agent_run(j->agent, &x, &j->st, &j->err);
	close(out[1]);
	close(errp[1]);
	read_all(out[0], j->out, sizeof(j->out));
	read_all(errp[0], j->errout, sizeof(j->errout));
	close(out[0]);
	close(errp[0]);
	return NULL;
}

static int check_job(const struct job *j)
{
	char want_out[32], want_err[32];

	snprintf(want_out, sizeof(want_out), "out-%u\n", j->index);
	snprintf(want_err, sizeof(want_err), "err-%u\n", j->index);
	if (j->rc < 0) {
		fprintf(stderr, "agent-stress: process %u: %s\n", j->index, j->err.msg);
		return -1;
	}
	if (j->st.signaled || j->st.code != (int)(j->index % 7) || strcmp(j->out, want_out) ||
	    strcmp(j->errout, want_err)) {
		fprintf(stderr, "agent-stress: process %u: status %s%d, stdout '%s', stderr '%s'\n",
			j->index, j->st.signaled ? "signal " : "", j->st.signaled ? j->st.signo : j->st.code,
			j->out, j->errout);
		return -1;
	}
	return 0;
}

struct stress {
	unsigned parallel;
	unsigned failed;
	bool pause;
	unsigned cpus;                /* --pause: what stats must report */
};

static int controller(void *arg, struct vm *vm, const struct agent_client *agent, uint32_t *status,
		      struct rv_err *err)
{
	(void)vm;
	struct stress *s = arg;
	struct job *jobs = calloc(s->parallel, sizeof(*jobs));
	pthread_t *threads = calloc(s->parallel, sizeof(*threads));
	unsigned started = 0;

	if (!jobs || !threads) {
		free(jobs);
		free(threads);
		return rv_fail(err, ENOMEM, "allocate jobs");
	}
	for (; started < s->parallel; started++) {
		jobs[started] = (struct job){ .agent = agent, .index = started };
		if (pthread_create(&threads[started], NULL, run_job, &jobs[started]) != 0)
			break;
	}
	for (unsigned i = 0; i < started; i++) {
		pthread_join(threads[i], NULL);
		if (check_job(&jobs[i]) < 0)
			s->failed++;
	}
	s->failed += s->parallel - started;
	free(jobs);
	free(threads);
	*status = s->failed ? 1 : 0;
	return 0;
}

/* --- --pause ------------------------------------------------------------------ */

struct ticker {
	const struct agent_client *agent;
	int out[2];
	atomic_uint lines;
	pthread_t run_thread, read_thread;
	bool run_joined;
	int rc;
	struct agent_status st;
	struct rv_err err;
};

static void *ticker_run(void *arg)
{
	struct ticker *t = arg;
	const char *argv[] = { "sh", "-c", TICK_SCRIPT, NULL };
	struct agent_exec x = { .argv = argv, .stdin_fd = -1, .stdout_fd = t->out[1], .stderr_fd = -1 };

	t->rc = agent_run(t->agent, &x, &t->st, &t->err);
	rv_closep(&t->out[1]);             /* the reader sees EOF */
	t->out[1] = -1;
	return NULL;
}

static void *ticker_read(void *arg)
{
	struct ticker *t = arg;
	char buf[4096];
	ssize_t n;

	while ((n = read(t->out[0], buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] == '\n')
				atomic_fetch_add(&t->lines, 1);
	return NULL;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static bool wait_lines(struct ticker *t, unsigned want, unsigned ms)
{
	for (unsigned waited = 0; waited < ms; waited += 50) {
		if (atomic_load(&t->lines) >= want)
			return true;
		sleep_ms(50);
	}
	return atomic_load(&t->lines) >= want;
}

/* ps lists the ticker's shell under the agent; stats are those of this VM. */
static int check_ps_stats(const struct agent_client *agent, unsigned cpus, struct rv_err *err)
{
	struct agent_proc *procs;
	struct agent_ps_info info;
	struct agent_stats st;
	size_t n, found = 0;

	if (agent_ps(agent, &procs, &n, &info, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		found += procs[i].ppid == 1 && strcmp(procs[i].cmdline, "sh -c " TICK_SCRIPT) == 0;
	agent_ps_free(procs, n);
	if (found != 1 || info.clk_tck == 0)
		return rv_failx(err, EIO, "ps: the ticker's shell under PID 1 listed %zu times in %zu "
				"processes (clk_tck %u)", found, n, info.clk_tck);
	if (agent_stats(agent, &st, err) < 0)
		return -1;
	if (st.ncpus != cpus || st.cpu_total_ns == 0 || st.mem_total_bytes == 0 ||
	    st.mem_used_bytes == 0 || st.pids_current < 1)
		return rv_failx(err, EIO, "stats: %u CPUs (want %u), cpu %llu ns, memory %llu of %llu "
				"bytes, %u pids", st.ncpus, cpus, (unsigned long long)st.cpu_total_ns,
				(unsigned long long)st.mem_used_bytes,
				(unsigned long long)st.mem_total_bytes, st.pids_current);
	printf("agent-stress: ps and stats see the guest: %llu ms of CPU, %llu MiB used, %u pids\n",
	       (unsigned long long)(st.cpu_total_ns / 1000000),
	       (unsigned long long)(st.mem_used_bytes >> 20), st.pids_current);
	return 0;
}

/* Output stops while paused, and goes on after resume. */
static int check_pause(struct vm *vm, struct ticker *t, struct rv_err *err)
{
	struct rv_err again;

	if (vm_pause(vm, err) < 0)
		return -1;
	if (!vm_is_paused(vm))
		return rv_failx(err, EIO, "vm_pause returned, but vm_is_paused says no");
	if (vm_pause(vm, &again) == 0 || again.code != EALREADY)
		return rv_failx(err, EIO, "a second vm_pause: want EALREADY, got '%s'", again.msg);
	sleep_ms(PAUSE_SETTLE_MS);
	unsigned before = atomic_load(&t->lines);
	sleep_ms(PAUSE_HOLD_MS);
	unsigned after = atomic_load(&t->lines);
	if (after != before)
		return rv_failx(err, EIO, "the guest printed %u lines while paused", after - before);
	if (vm_resume(vm, err) < 0)
		return -1;
	if (vm_resume(vm, &again) == 0 || again.code != EALREADY)
		return rv_failx(err, EIO, "a second vm_resume: want EALREADY, got '%s'", again.msg);
	if (!wait_lines(t, after + 5, GUEST_WAIT_MS))
		return rv_failx(err, EIO, "no output within %u s of resume", GUEST_WAIT_MS / 1000);
	printf("agent-stress: paused %u ms without output; %u lines after resume\n",
	       PAUSE_HOLD_MS, atomic_load(&t->lines) - after);
	return 0;
}

/* SIGTERM to ourselves, the VMM, while paused: the VM must stop (the gate
 * then refuses pauses with ECANCELED) and vm_run return (main checks). */
static int stop_while_paused(struct vm *vm, struct rv_err *err)
{
	struct rv_err e;

	if (vm_pause(vm, err) < 0)
		return -1;
	kill(getpid(), SIGTERM);           /* blocked in every thread: the VMM's signalfd takes it */
	for (unsigned waited = 0; waited < GUEST_WAIT_MS; waited += 100) {
		if (vm_pause(vm, &e) < 0 && e.code == ECANCELED)
			return 0;
		sleep_ms(100);
	}
	return rv_failx(err, ETIMEDOUT, "the VM did not stop while paused");
}

static int run_pause_checks(struct vm *vm, struct ticker *t, unsigned cpus, struct rv_err *err)
{
	if (!wait_lines(t, 5, GUEST_WAIT_MS))
		return rv_failx(err, EIO, "the guest's ticker printed %u lines in %u s",
				atomic_load(&t->lines), GUEST_WAIT_MS / 1000);
	if (check_ps_stats(t->agent, cpus, err) < 0 || check_pause(vm, t, err) < 0)
		return -1;
	if (agent_signal_all(t->agent, SIGTERM, err) < 0)
		return -1;
	pthread_join(t->run_thread, NULL);
	t->run_joined = true;
	if (t->rc < 0 || !t->st.signaled || t->st.signo != SIGTERM)
		return rv_failx(err, EIO, "signal-all SIGTERM: the ticker ended with %s (%s %d)",
				t->rc < 0 ? t->err.msg : "a status", t->st.signaled ? "signal" : "code",
				t->st.signaled ? t->st.signo : t->st.code);
	printf("agent-stress: signal-all SIGTERM ended the ticker\n");
	return stop_while_paused(vm, err);
}

static int pause_controller(void *arg, struct vm *vm, const struct agent_client *agent,
			    uint32_t *status, struct rv_err *err)
{
	struct stress *s = arg;
	struct ticker t = { .agent = agent, .out = { -1, -1 } };
	struct rv_err ignored;

	if (pipe2(t.out, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	if (pthread_create(&t.run_thread, NULL, ticker_run, &t) != 0 ||
	    pthread_create(&t.read_thread, NULL, ticker_read, &t) != 0)
		return rv_failx(err, EAGAIN, "start the ticker threads");
	int rc = run_pause_checks(vm, &t, s->cpus, err);
	if (rc < 0 && !t.run_joined) {      /* end the ticker so that its threads can be joined */
		vm_resume(vm, &ignored);
		agent_signal_all(agent, SIGKILL, &ignored);
	}
	if (!t.run_joined)
		pthread_join(t.run_thread, NULL);
	pthread_join(t.read_thread, NULL);
	close(t.out[0]);
	s->failed = rc < 0;
	*status = rc < 0;
	return rc;
}

static int pause_main(struct vm_config *cfg, struct stress *s)
{
	struct vm_result res;
	struct rv_err err;

	s->cpus = cfg->cpus;
	cfg->controller = pause_controller;
	if (vm_run(cfg, &res, &err) < 0) {
		fprintf(stderr, "agent-stress: pause: %s\n", err.msg);
		return 1;
	}
	if (s->failed || res.reason != VM_STOP_HOST_SIGNAL || res.host_signal != SIGTERM) {
		fprintf(stderr, "agent-stress: pause: the VM ended with reason %d, signal %d\n",
			(int)res.reason, res.host_signal);
		return 1;
	}
	printf("agent-stress: a VM stopped while paused ended; pause, resume, ps, stats and "
	       "signal-all all did\n");
	return 0;
}

int main(int argc, char **argv)
{
	/* Warnings on stderr: a guest that stops taking interrupts says so (the VMM's
	 * words that tests/run-vm-tests.sh knows), not only a timeout 300 s later. */
	static const struct rv_log warnings = { .fd = STDERR_FILENO, .min_level = RV_LOG_WARN };
	struct vm_config cfg = { .cpus = 2, .mem_bytes = 512ull << 20, .device_fd = -1,
				 .console_fd = -1, .timeout_ms = 300000,
				 .agent_timeout_ms = 300000, .log = &warnings };
	struct stress s = { .parallel = 100 };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cpus", required_argument, NULL, 'c' }, { "parallel", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' }, { "pause", no_argument, NULL, 'P' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cpus = (unsigned)atoi(optarg); break;
		case 'p': s.parallel = (unsigned)atoi(optarg); break;
		case 't': cfg.timeout_ms = (unsigned)atoi(optarg) * 1000; break;
		case 'P': s.pause = true; break;
		default: return 2;
		}
	}
	if (!cfg.kernel || !cfg.initrd || s.parallel == 0 || s.parallel > MAX_PARALLEL) {
		fprintf(stderr, "usage: agent-stress --kernel K --initrd I [--cpus N] [--parallel 1..%d "
			"| --pause] [--timeout S]\n", MAX_PARALLEL);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	cfg.controller_arg = &s;
	if (s.pause)
		return pause_main(&cfg, &s);
	cfg.controller = controller;
	struct vm_result res;
	struct rv_err err;
	if (vm_run(&cfg, &res, &err) < 0) {
		fprintf(stderr, "agent-stress: %s\n", err.msg);
		return 1;
	}
	if (!res.has_status || res.status != 0 || s.failed) {
		fprintf(stderr, "agent-stress: %u of %u processes went wrong\n", s.failed, s.parallel);
		return 1;
	}
	printf("agent-stress: %u processes in one VM, all with the right output and status\n", s.parallel);
	return 0;
}
