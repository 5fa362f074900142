/* Many processes at once in one VM: boots our kernel with the agent, starts N
 * agent_run calls concurrently (N x 4 vsock connections), and checks that every
 * one printed its own lines on stdout and stderr and exited with its own code.
 * usage: agent-stress --kernel K --initrd I [--cpus N] [--parallel N] [--timeout S] */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm/vm.h"

#define MAX_PARALLEL 512
#define OUT_BYTES 256

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

int main(int argc, char **argv)
{
	struct vm_config cfg = { .cpus = 2, .mem_bytes = 512ull << 20, .device_fd = -1,
				 .console_fd = -1, .timeout_ms = 300000,
				 .agent_timeout_ms = 300000 };
	struct stress s = { .parallel = 100 };
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "cpus", required_argument, NULL, 'c' }, { "parallel", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' }, { 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'c': cfg.cpus = (unsigned)atoi(optarg); break;
		case 'p': s.parallel = (unsigned)atoi(optarg); break;
		case 't': cfg.timeout_ms = (unsigned)atoi(optarg) * 1000; break;
		default: return 2;
		}
	}
	if (!cfg.kernel || !cfg.initrd || s.parallel == 0 || s.parallel > MAX_PARALLEL) {
		fprintf(stderr, "usage: agent-stress --kernel K --initrd I [--cpus N] [--parallel 1..%d]\n",
			MAX_PARALLEL);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	cfg.controller = controller;
	cfg.controller_arg = &s;
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
