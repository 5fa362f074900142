/* agent-run: the host client (vmm/agent_client.c) against a test agent on a
 * Unix socket (runvm-agent --unix PATH), for tests/integration/test_agent_host.sh.
 *
 *   agent-run --unix PATH [options] -- CMD ARGS...   run CMD with our stdio; exit
 *                                                     with its status (128+N: signal N)
 *     --env K=V (repeatable)  --cwd DIR  --user UID[:GID]  --timeout-ms MS (connect)
 *     --exec-path PATH        run PATH with CMD ARGS as its argv (CMD: argv[0] only)
 *     --root DIR              in the container root DIR (a MOUNT with the ROOT opt
 *                             made it; --raw sends that)
 *     --init                  as the init of that root (its PID namespace's PID 1)
 *     --signal-after MS:SIG   send SIG through agent_signal MS after the start
 *     --tty                   on a terminal in the guest: our stdin to it, all it
 *                             shows to our stdout (our stderr gets nothing)
 *     --size RxC              the terminal's size to start with (rows x cols)
 *     --resize-after MS:RxC   agent_resize to RxC MS after the start
 *     --resize-first RxC      agent_resize to RxC before the start
 *     --parallel N            N runs at once, stdout captured, RUNVM_TEST_INDEX=i
 *                             in the env; prints "i: LINE" for every output line
 *                             and exits 0 only when every run exited 0
 *   agent-run --unix PATH --raw        send stdin's bytes as they are on one
 *                                      connection, print each frame that comes back
 *   agent-run --unix PATH --shutdown   agent_shutdown
 *   agent-run --unix PATH --signal-all SIG   agent_signal_all
 *   agent-run --unix PATH --ps         agent_ps: a "clock" line, then one line a process:
 *                                      PID PPID UID STATE UTIME STIME START COMM|CMDLINE
 *   agent-run --unix PATH --stats      agent_stats, one "name value" line each
 *   agent-run --unix PATH --reseed     agent_reseed with a getrandom() seed and our
 *                                      CLOCK_REALTIME; prints "cid N"
 *
 * Errors print "agent-run: MESSAGE" once and exit 125 (a command that cannot
 * be started in the guest included). */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/proto.h"
#include "vmm/agent_client.h"

#define EXIT_AGENT_RUN_ERROR 125
#define MAX_ENV 64
#define MAX_PARALLEL 1000

struct opts {
	const char *path;
	unsigned timeout_ms;
	unsigned parallel;
	const char *env[MAX_ENV + 2];  /* + RUNVM_TEST_INDEX + NULL */
	unsigned nenv;
	const char *cwd, *root;
	bool init;
	const char *exec_path;         /* NULL: CMD is what runs */
	uint32_t uid, gid;
	unsigned signal_after_ms;
	int signal;
	bool tty;
	unsigned rows, cols;
	unsigned resize_after_ms, resize_rows, resize_cols;
	unsigned first_rows, first_cols;
	bool resize_first;
	bool raw, shutdown, ps, stats, signal_all, reseed;
	int signal_all_signo;
	uint32_t userns[3];            /* one line of both maps, count 0: none */
	char **argv;
};

static int dial_unix(void *ctx, struct rv_err *err)
{
	const char *path = ctx;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return rv_fail(err, errno, "socket");
	if (strlen(path) >= sizeof(sa.sun_path))
		return rv_failx(err, ENAMETOOLONG, "socket path '%s' is too long", path);
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return rv_fail(err, errno, "connect to '%s'", path);
	return rv_steal_fd(&fd);
}

static __attribute__((noreturn)) void die(const struct rv_err *err)
{
	fprintf(stderr, "agent-run: %s\n", err->msg);
	exit(EXIT_AGENT_RUN_ERROR);
}

static __attribute__((noreturn)) void usage(const char *why)
{
	fprintf(stderr, "agent-run: %s\nusage: agent-run --unix PATH [--parallel N] [--timeout-ms MS] "
		"[--env K=V] [--cwd DIR] [--user UID[:GID]] [--signal-after MS:SIG]\n"
		"       [--root DIR [--init]] [--userns INSIDE:OUTSIDE:COUNT] [--exec-path PATH]\n"
		"       [--tty [--size RxC] [--resize-after MS:RxC] [--resize-first RxC]] -- CMD ARGS...\n"
		"       agent-run --unix PATH --raw | --shutdown | --ps | --stats | --reseed |"
		" --signal-all SIG\n",
		why);
	exit(EXIT_AGENT_RUN_ERROR);
}

static void parse_user(struct opts *o, const char *arg)
{
	char *end;

	o->uid = o->gid = (uint32_t)strtoul(arg, &end, 10);
	if (*end == ':')
		o->gid = (uint32_t)strtoul(end + 1, &end, 10);
	if (*end || end == arg)
		usage("--user wants UID[:GID]");
}

static void parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option longopts[] = {
		{ "unix", required_argument, NULL, 'u' }, { "parallel", required_argument, NULL, 'p' },
		{ "timeout-ms", required_argument, NULL, 't' }, { "env", required_argument, NULL, 'e' },
		{ "cwd", required_argument, NULL, 'c' }, { "user", required_argument, NULL, 'U' },
		{ "signal-after", required_argument, NULL, 's' }, { "raw", no_argument, NULL, 'r' },
		{ "shutdown", no_argument, NULL, 'S' }, { "ps", no_argument, NULL, 'P' },
		{ "stats", no_argument, NULL, 'T' }, { "signal-all", required_argument, NULL, 'A' },
		{ "tty", no_argument, NULL, 'y' }, { "size", required_argument, NULL, 'z' },
		{ "resize-after", required_argument, NULL, 'R' },
		{ "resize-first", required_argument, NULL, 'F' },
		{ "userns", required_argument, NULL, 'N' }, { "root", required_argument, NULL, 'o' },
		{ "exec-path", required_argument, NULL, 'X' }, { "init", no_argument, NULL, 'I' },
		{ "reseed", no_argument, NULL, 'E' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "+", longopts, NULL)) != -1) {
		switch (c) {
		case 'u': o->path = optarg; break;
		case 'p': o->parallel = (unsigned)atoi(optarg); break;
		case 't': o->timeout_ms = (unsigned)atoi(optarg); break;
		case 'e':
			if (o->nenv == MAX_ENV)
				usage("too many --env");
			o->env[o->nenv++] = optarg;
			break;
		case 'c': o->cwd = optarg; break;
		case 'X': o->exec_path = optarg; break;
		case 'o': o->root = optarg; break;
		case 'I': o->init = true; break;
		case 'U': parse_user(o, optarg); break;
		case 's':
			if (sscanf(optarg, "%u:%d", &o->signal_after_ms, &o->signal) != 2)
				usage("--signal-after wants MS:SIG");
			break;
		case 'y': o->tty = true; break;
		case 'z':
			if (sscanf(optarg, "%ux%u", &o->rows, &o->cols) != 2)
				usage("--size wants RxC");
			break;
		case 'R':
			if (sscanf(optarg, "%u:%ux%u", &o->resize_after_ms, &o->resize_rows,
				   &o->resize_cols) != 3)
				usage("--resize-after wants MS:RxC");
			break;
		case 'F':
			o->resize_first = true;
			if (sscanf(optarg, "%ux%u", &o->first_rows, &o->first_cols) != 2)
				usage("--resize-first wants RxC");
			break;
		case 'N':
			if (sscanf(optarg, "%u:%u:%u", &o->userns[0], &o->userns[1], &o->userns[2]) != 3)
				usage("--userns wants INSIDE:OUTSIDE:COUNT");
			break;
		case 'r': o->raw = true; break;
		case 'S': o->shutdown = true; break;
		case 'P': o->ps = true; break;
		case 'T': o->stats = true; break;
		case 'E': o->reseed = true; break;
		case 'A':   /* 0 and junk go through: the client must refuse them */
			o->signal_all = true;
			o->signal_all_signo = atoi(optarg);
			break;
		default: usage("unknown option");
		}
	}
	if (!o->path)
		usage("--unix PATH is required");
	if (o->parallel > MAX_PARALLEL)
		usage("--parallel is at most 1000");
	o->argv = argv + optind;
	if (!o->raw && !o->shutdown && !o->ps && !o->stats && !o->signal_all && !o->reseed &&
	    !o->argv[0])
		usage("no command");
}

/* --- --raw: hostile input, and what the agent answers --------------------------- */

static void print_frame(const struct proto_msg *m)
{
	printf("%s id=%u", proto_type_name(m->type), m->id);
	if (m->type == PROTO_HELLO)
		printf(" version=%u", m->hello.version);
	if (m->type == PROTO_ERROR)
		printf(" code=%u %s", m->error.code, m->error.message);
	if (m->type == PROTO_RESEED_REPLY)
		printf(" cid=%u", m->reseed_reply.cid);
	printf("\n");
	fflush(stdout);    /* tests wait for a reply line before their next step */
}

static int raw(const struct opts *o)
{
	static uint8_t buf[1 << 20];
	struct rv_err err;
	_cleanup_close_ int fd = dial_unix((void *)o->path, &err);
	ssize_t n;

	if (fd < 0)
		die(&err);
	while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0)
		if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) != n)
			break;
	shutdown(fd, SHUT_WR);
	for (;;) {
		struct proto_msg m;
		int r = proto_recv(fd, &m, &err);
		if (r == 1) {
			printf("EOF\n");
			return 0;
		}
		if (r < 0) {
			printf("closed: %s\n", err.msg);
			return 0;
		}
		print_frame(&m);
		proto_msg_free(&m);
	}
}

/* --- the container as a whole ---------------------------------------------------- */

static int ps(const struct agent_client *client)
{
	struct agent_proc *procs;
	struct agent_ps_info info;
	struct rv_err err;
	size_t n;

	if (agent_ps(client, &procs, &n, &info, &err) < 0)
		die(&err);
	printf("clock clk_tck=%u boot_time_s=%llu uptime_ns=%llu total=%u listed=%zu\n",
	       info.clk_tck, (unsigned long long)info.boot_time_s,
	       (unsigned long long)info.uptime_ns, info.total, n);
	for (size_t i = 0; i < n; i++) {
		const struct agent_proc *p = &procs[i];
		printf("%u %u %u %c %llu %llu %llu %s|%s\n", p->pid, p->ppid, p->uid, p->state,
		       (unsigned long long)p->utime_ticks, (unsigned long long)p->stime_ticks,
		       (unsigned long long)p->start_ticks, p->comm, p->cmdline);
	}
	agent_ps_free(procs, n);
	return 0;
}

static int stats(const struct agent_client *client)
{
	struct agent_stats st;
	struct rv_err err;

	if (agent_stats(client, &st, &err) < 0)
		die(&err);
	printf("cpu_total_ns %llu\ncpu_user_ns %llu\ncpu_kernel_ns %llu\nncpus %u\n",
	       (unsigned long long)st.cpu_total_ns, (unsigned long long)st.cpu_user_ns,
	       (unsigned long long)st.cpu_kernel_ns, st.ncpus);
	for (uint32_t i = 0; i < st.ncpus && i < AGENT_MAX_CPUS; i++)
		printf("cpu%u_ns %llu\n", i, (unsigned long long)st.percpu_ns[i]);
	printf("mem_total_bytes %llu\nmem_used_bytes %llu\nmem_cache_bytes %llu\n"
	       "pids_current %u\n", (unsigned long long)st.mem_total_bytes,
	       (unsigned long long)st.mem_used_bytes, (unsigned long long)st.mem_cache_bytes,
	       st.pids_current);
	return 0;
}

/* Our time, which even an agent that wrongly set the host's clock would
 * leave as it is: the test agent must touch neither clock nor RNG. */
static int reseed(const struct agent_client *client)
{
	uint8_t seed[PROTO_RESEED_SEED_BYTES];
	struct timespec now;
	struct rv_err err;
	uint32_t cid;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed)) {
		rv_fail(&err, errno, "getrandom");
		die(&err);
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (agent_reseed(client, seed, (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec,
			 &cid, &err) < 0)
		die(&err);
	explicit_bzero(seed, sizeof(seed));
	printf("cid %u\n", cid);
	return 0;
}

/* --- one run, or many at once ----------------------------------------------------- */

struct job {
	const struct opts *o;
	struct agent_client client;
	unsigned index;
	const char *env[MAX_ENV + 2];
	char index_env[32];
	int out_fd;                   /* --parallel: a memfd for stdout */
	uint32_t exec_id;
	struct agent_status status;
	struct rv_err err;
	int rc;
};

/* --signal-after: agent_signal from another thread, as a runtime's kill would. */
static void *signal_later(void *arg)
{
	struct job *j = arg;
	struct timespec ts = { .tv_sec = j->o->signal_after_ms / 1000,
			       .tv_nsec = (long)(j->o->signal_after_ms % 1000) * 1000000 };
	struct rv_err err;

	nanosleep(&ts, NULL);
	if (agent_signal(&j->client, j->exec_id, j->o->signal, &err) < 0)
		die(&err);
	return NULL;
}

/* --resize-after: agent_resize from another thread, as a SIGWINCH forwarder would. */
static void *resize_later(void *arg)
{
	struct job *j = arg;
	const struct opts *o = j->o;
	struct timespec ts = { .tv_sec = o->resize_after_ms / 1000,
			       .tv_nsec = (long)(o->resize_after_ms % 1000) * 1000000 };
	struct rv_err err;

	nanosleep(&ts, NULL);
	if (agent_resize(&j->client, j->exec_id, (uint16_t)o->resize_rows,
			 (uint16_t)o->resize_cols, &err) < 0)
		die(&err);
	return NULL;
}

static void on_prepared(void *arg, uint32_t exec_id)
{
	struct job *j = arg;

	j->exec_id = exec_id;
}

/* --resize-first: between EXEC and START, as after `runvm create`. */
static int before_start(void *arg, struct rv_err *err)
{
	struct job *j = arg;
	const struct opts *o = j->o;

	if (!o->resize_first)
		return 0;
	return agent_resize(&j->client, j->exec_id, (uint16_t)o->first_rows,
			    (uint16_t)o->first_cols, err);
}

static void on_started(void *arg, uint32_t exec_id, uint32_t guest_pid)
{
	struct job *j = arg;
	pthread_t t;

	(void)guest_pid;
	j->exec_id = exec_id;
	if (j->o->signal_after_ms && pthread_create(&t, NULL, signal_later, j) == 0)
		pthread_detach(t);
	if (j->o->resize_after_ms && pthread_create(&t, NULL, resize_later, j) == 0)
		pthread_detach(t);
}

static void *job_run(void *arg)
{
	struct job *j = arg;
	const struct opts *o = j->o;
	bool parallel = o->parallel > 0;
	unsigned n = 0;

	for (; n < o->nenv; n++)
		j->env[n] = o->env[n];
	if (parallel) {
		snprintf(j->index_env, sizeof(j->index_env), "RUNVM_TEST_INDEX=%u", j->index);
		if (!o->nenv)
			j->env[n++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
		j->env[n++] = j->index_env;
	}
	j->env[n] = NULL;
	struct agent_exec x = {
		.argv = (const char *const *)o->argv, .path = o->exec_path,
		.envp = n ? j->env : NULL, .cwd = o->cwd,
		.root = o->root, .init = o->init, .uid = o->uid, .gid = o->gid,
		.stdin_fd = parallel ? -1 : STDIN_FILENO,
		.stdout_fd = parallel ? j->out_fd : STDOUT_FILENO, .stderr_fd = STDERR_FILENO,
		.tty = o->tty, .rows = (uint16_t)o->rows, .cols = (uint16_t)o->cols,
		.started = on_started, .started_arg = j,
		.prepared = on_prepared, .prepared_arg = j,
		.before_start = before_start, .before_start_arg = j,
	};
	if (o->userns[2]) {   /* the count: 0 makes no namespace */
		x.attrs.uid_map = x.attrs.gid_map = o->userns;
		x.attrs.nuid_map = x.attrs.ngid_map = 3;
	}
	j->rc = agent_run(&j->client, &x, &j->status, &j->err);
	return NULL;
}

/* Prints job i's output as "i: LINE" lines. */
static void print_output(const struct job *j)
{
	off_t size = lseek(j->out_fd, 0, SEEK_END);
	char *p = size > 0 ? mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, j->out_fd, 0) : NULL;

	if (!p || p == MAP_FAILED)
		return;
	for (off_t off = 0; off < size;) {
		const char *nl = memchr(p + off, '\n', (size_t)(size - off));
		size_t len = nl ? (size_t)(nl - (p + off)) : (size_t)(size - off);
		printf("%u: %.*s\n", j->index, (int)len, p + off);
		off += (off_t)len + 1;
	}
	munmap(p, (size_t)size);
}

static int parallel(const struct opts *o, struct agent_client client)
{
	struct job *jobs = calloc(o->parallel, sizeof(*jobs));
	pthread_t *threads = calloc(o->parallel, sizeof(*threads));
	int bad = 0;

	if (!jobs || !threads)
		return EXIT_AGENT_RUN_ERROR;
	for (unsigned i = 0; i < o->parallel; i++) {
		jobs[i] = (struct job){ .o = o, .client = client, .index = i };
		jobs[i].out_fd = memfd_create("agent-run-out", MFD_CLOEXEC);
		if (jobs[i].out_fd < 0 || pthread_create(&threads[i], NULL, job_run, &jobs[i]) != 0) {
			fprintf(stderr, "agent-run: start run %u: %s\n", i, strerror(errno));
			exit(EXIT_AGENT_RUN_ERROR);
		}
	}
	for (unsigned i = 0; i < o->parallel; i++) {
		struct job *j = &jobs[i];
		pthread_join(threads[i], NULL);
		if (j->rc < 0)
			fprintf(stderr, "agent-run: run %u: %s\n", i, j->err.msg);
		else if (agent_status_to_exit_code(&j->status) != 0)
			fprintf(stderr, "agent-run: run %u: exit status %d\n", i,
				agent_status_to_exit_code(&j->status));
		bad += j->rc < 0 || agent_status_to_exit_code(&j->status) != 0;
		print_output(j);
		close(j->out_fd);
	}
	free(jobs);
	free(threads);
	if (bad)
		fprintf(stderr, "agent-run: %d of %u runs failed\n", bad, o->parallel);
	return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct opts o = { .timeout_ms = 5000 };
	struct rv_err err;

	signal(SIGPIPE, SIG_IGN);   /* agent_run: a closed host fd is EPIPE, not death */
	parse_opts(argc, argv, &o);
	struct agent_client client = { .dial = dial_unix, .ctx = (void *)o.path,
				       .connect_timeout_ms = o.timeout_ms };
	if (o.raw)
		return raw(&o);
	if (o.shutdown) {
		if (agent_shutdown(&client, &err) < 0)
			die(&err);
		return 0;
	}
	if (o.signal_all) {
		if (agent_signal_all(&client, o.signal_all_signo, &err) < 0)
			die(&err);
		return 0;
	}
	if (o.ps)
		return ps(&client);
	if (o.stats)
		return stats(&client);
	if (o.reseed)
		return reseed(&client);
	if (o.parallel)
		return parallel(&o, client);
	struct job j = { .o = &o, .client = client };
	job_run(&j);
	if (j.rc < 0)
		die(&j.err);
	return agent_status_to_exit_code(&j.status);
}
