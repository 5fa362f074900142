/* vsock throughput and latency through the agent, over either transport:
 *   vsock-bench --runvm --kernel K --initrd I   boots runvm (userspace vsock muxer)
 *   vsock-bench --vhost-cid CID                 a guest already running under QEMU
 *                                               with vhost-vsock (in-kernel)
 * Both talk to the same agent with the same client code; only the transport
 * differs, so the ratio is the transport's. Prints one line:
 *   transport=… g2h_mibs=… h2g_mibs=… rtt_us=… */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/proto.h"
#include "vmm/vm.h"

#define RTT_BYTES 64

struct bench {
	unsigned mib, rounds;
	double g2h_mibs, h2g_mibs, rtt_us;
};

struct job {
	const struct agent_client *agent;
	struct agent_exec x;
	struct agent_status st;
	int rc;
	struct rv_err err;
	int close_after;             /* our end of the process's pipe, closed when it exits */
};

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *run_job(void *arg)
{
	struct job *j = arg;
	j->rc = agent_run(j->agent, &j->x, &j->st, &j->err);
	if (j->close_after >= 0)
		close(j->close_after);
	return NULL;
}

static int finish(pthread_t t, struct job *j, const char *what, struct rv_err *err)
{
	pthread_join(t, NULL);
	if (j->rc < 0) {
		*err = j->err;
		return rv_wrap(err, "%s", what);
	}
	if (j->st.signaled || j->st.code)
		return rv_failx(err, EIO, "%s: the guest process ended with status %d", what,
				agent_status_to_exit_code(&j->st));
	return 0;
}

static int guest_to_host(const struct agent_client *agent, struct bench *b, struct rv_err *err)
{
	char count[48];
	int p[2];
	static char buf[1 << 16];

	snprintf(count, sizeof(count), "count=%u", b->mib);
	const char *argv[] = { "dd", "if=/dev/zero", "bs=1M", count, NULL };
	if (pipe2(p, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	struct job j = { .agent = agent, .x = { .argv = argv, .stdin_fd = -1, .stdout_fd = p[1],
						 .stderr_fd = -1 }, .close_after = p[1] };
	pthread_t t;
	double start = now_s();
	pthread_create(&t, NULL, run_job, &j);
	unsigned long long got = 0;
	ssize_t n;
	while ((n = read(p[0], buf, sizeof(buf))) > 0)
		got += (unsigned long long)n;
	double secs = now_s() - start;
	close(p[0]);
	if (finish(t, &j, "guest to host", err) < 0)
		return -1;
	if (got != (unsigned long long)b->mib << 20)
		return rv_failx(err, EIO, "guest to host: %llu bytes arrived, %u MiB sent", got, b->mib);
	b->g2h_mibs = b->mib / secs;
	return 0;
}

static void *feed(void *arg)
{
	int *fd = arg;
	static char zeros[1 << 16];
	unsigned long long left = (unsigned long long)fd[1] << 20;

	while (left) {
		ssize_t n = write(fd[0], zeros, left < sizeof(zeros) ? left : sizeof(zeros));
		if (n <= 0)
			break;
		left -= (unsigned long long)n;
	}
	close(fd[0]);
	return NULL;
}

static int host_to_guest(const struct agent_client *agent, struct bench *b, struct rv_err *err)
{
	const char *argv[] = { "cat", NULL };      /* stdout: /dev/null in the guest */
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "pipe");
	struct job j = { .agent = agent, .x = { .argv = argv, .stdin_fd = p[0], .stdout_fd = -1,
						 .stderr_fd = -1 }, .close_after = p[0] };
	int feed_arg[2] = { p[1], (int)b->mib };
	pthread_t t, f;
	double start = now_s();
	pthread_create(&f, NULL, feed, feed_arg);
	pthread_create(&t, NULL, run_job, &j);
	pthread_join(f, NULL);
	int rc = finish(t, &j, "host to guest", err);
	b->h2g_mibs = b->mib / (now_s() - start);
	return rc;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int read_exact(int fd, char *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int round_trips(const struct agent_client *agent, struct bench *b, struct rv_err *err)
{
	const char *argv[] = { "cat", NULL };
	int in[2], out[2];
	char msg[RTT_BYTES], back[RTT_BYTES];
	double *t = calloc(b->rounds, sizeof(*t));

	if (!t)
		return rv_fail(err, ENOMEM, "round-trip times");
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		free(t);
		return rv_fail(err, errno, "pipes");
	}
	memset(msg, 'r', sizeof(msg));
	struct job j = { .agent = agent, .x = { .argv = argv, .stdin_fd = in[0], .stdout_fd = out[1],
						 .stderr_fd = -1 }, .close_after = out[1] };
	pthread_t th;
	pthread_create(&th, NULL, run_job, &j);
	unsigned done = 0;
	for (; done < b->rounds; done++) {
		double s = now_s();
		if (write(in[1], msg, sizeof(msg)) != sizeof(msg) || read_exact(out[0], back, sizeof(back)) < 0)
			break;
		t[done] = now_s() - s;
	}
	close(in[1]);
	int rc = finish(th, &j, "round trips", err);
	close(in[0]);
	close(out[0]);
	if (rc == 0 && done < b->rounds)
		rc = rv_failx(err, EIO, "round trips: the echo stopped after %u", done);
	if (rc == 0) {
		qsort(t, done, sizeof(*t), cmp_double);
		b->rtt_us = t[done / 2] * 1e6;
	}
	free(t);
	return rc;
}

static int run_all(void *arg, struct vm *vm, const struct agent_client *agent,
		      uint32_t *status, struct rv_err *err)
{
	(void)vm;
	struct bench *b = arg;
	*status = 0;
	if (guest_to_host(agent, b, err) < 0 || host_to_guest(agent, b, err) < 0 ||
	    round_trips(agent, b, err) < 0)
		return -1;
	return 0;
}

static int dial_vhost(void *ctx, struct rv_err *err)
{
	unsigned cid = *(unsigned *)ctx;
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = PROTO_AGENT_PORT };
	int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return rv_fail(err, errno, "AF_VSOCK socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		/* No guest with that CID yet (still booting) reads as "not listening":
		 * the client redials. */
		int e = errno == ENODEV || errno == ETIMEDOUT || errno == EHOSTUNREACH ? ECONNREFUSED : errno;
		rv_fail(err, e, "connect to CID %u port %u", cid, PROTO_AGENT_PORT);
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	struct vm_config cfg = { .cpus = 2, .mem_bytes = 512ull << 20, .device_fd = -1,
				 .console_fd = -1, .timeout_ms = 900000,
				 .agent_timeout_ms = 300000 };
	struct bench b = { .mib = 256, .rounds = 1000 };
	unsigned cid = 0;
	bool runvm = false;
	static const struct option opts[] = {
		{ "runvm", no_argument, NULL, 'r' }, { "vhost-cid", required_argument, NULL, 'c' },
		{ "kernel", required_argument, NULL, 'k' }, { "initrd", required_argument, NULL, 'i' },
		{ "mib", required_argument, NULL, 'm' }, { "rounds", required_argument, NULL, 'n' }, { 0 },
	};
	int c;
	struct rv_err err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r': runvm = true; break;
		case 'c': cid = (unsigned)atoi(optarg); break;
		case 'k': cfg.kernel = optarg; break;
		case 'i': cfg.initrd = optarg; break;
		case 'm': b.mib = (unsigned)atoi(optarg); break;
		case 'n': b.rounds = (unsigned)atoi(optarg); break;
		default: return 2;
		}
	}
	if ((runvm && (!cfg.kernel || !cfg.initrd)) || (!runvm && !cid) || !b.mib || !b.rounds) {
		fprintf(stderr, "usage: vsock-bench (--runvm --kernel K --initrd I | --vhost-cid CID) "
			"[--mib N] [--rounds N]\n");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	if (runvm) {
		struct vm_result res;
		cfg.controller = run_all;
		cfg.controller_arg = &b;
		if (vm_run(&cfg, &res, &err) < 0)
			goto fail;
	} else {
		struct agent_client client = { .dial = dial_vhost, .ctx = &cid, .connect_timeout_ms = 120000 };
		uint32_t status;
		if (run_all(&b, NULL, &client, &status, &err) < 0)
			goto fail;
		agent_shutdown(&client, &err);
	}
	printf("transport=%s g2h_mibs=%.1f h2g_mibs=%.1f rtt_us=%.0f\n", runvm ? "runvm" : "vhost",
	       b.g2h_mibs, b.h2g_mibs, b.rtt_us);
	return 0;
fail:
	fprintf(stderr, "vsock-bench: %s\n", err.msg);
	return 1;
}
