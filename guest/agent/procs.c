/* The container as a whole: SIGNAL_ALL, PS and STATS (common/proto.h).
 *
 * The container's processes are the agent's descendants. As the guest's
 * PID 1 that is every process but the agent itself and the kernel's threads
 * (kthreadd, pid 2, has parent 0; the other kthreads have parent 2), and
 * SIGNAL_ALL is kill(-1, sig), which the kernel applies to exactly those in
 * one step, so no process can fork its way out. In the host-mode test agent
 * (--unix) and under another init (--vsock-child) kill(-1) would reach the
 * whole machine: there the descendants are found by walking /proc, and a
 * process forked during the walk may be missed. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define PROCS_SCAN_MAX (1u << 17)          /* /proc entries read; a guest has far fewer */
#define STAT_LINE_BYTES 2048u
#define STATUS_BYTES 8192u
#define NS_PER_S 1000000000ull

enum { MINE_UNKNOWN, MINE_YES, MINE_NO };

struct pentry {
	pid_t pid, ppid;
	uint8_t mine;
	char state;
	uint64_t utime, stime, start;
	char comm[PROTO_MAX_COMM_BYTES + 1];
};

struct scan {
	struct pentry *e;                  /* ascending pid */
	size_t n;
	pid_t self;
	unsigned mine;                     /* how many are the container's */
};

/* Reads a small /proc file whole (up to size - 1 bytes), NUL-terminated.
 * Returns its length, or -1 when it is gone. */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t size)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t r;

	if (fd < 0)
		return -1;
	while (got + 1 < size && (r = read(fd, buf + got, size - 1 - got)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		got += (size_t)r;
	}
	buf[got] = '\0';
	return (ssize_t)got;
}

/* /proc/PID/stat: "pid (comm) S ppid ... utime stime ... starttime ...".
 * comm may hold spaces and parentheses: it ends at the last ')'. */
static int parse_stat(const char *buf, struct pentry *e)
{
	const char *open = strchr(buf, '('), *close = strrchr(buf, ')');
	unsigned long long f[19];          /* fields 4 (ppid) to 22 (starttime) */

	if (!open || !close || close < open || close[1] != ' ')
		return -1;
	size_t n = (size_t)(close - open - 1);
	n = n < PROTO_MAX_COMM_BYTES ? n : PROTO_MAX_COMM_BYTES;
	memcpy(e->comm, open + 1, n);
	e->comm[n] = '\0';
	e->state = close[2];
	if (!((e->state >= 'A' && e->state <= 'Z') || (e->state >= 'a' && e->state <= 'z')))
		return -1;
	const char *p = close + 3;
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
		char *end;
		f[i] = strtoull(p, &end, 10);   /* nice and priority may be negative: skipped */
		if (end == p)
			return -1;
		p = end;
	}
	e->ppid = (pid_t)f[0];
	e->utime = f[10];
	e->stime = f[11];
	e->start = f[18];
	return 0;
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = ((const struct pentry *)a)->pid, y = ((const struct pentry *)b)->pid;
	return (x > y) - (x < y);
}

static struct pentry *find(const struct scan *s, pid_t pid)
{
	struct pentry key = { .pid = pid };
	return pid > 0 ? bsearch(&key, s->e, s->n, sizeof(key), by_pid) : NULL;
}

/* Walks up from e to the agent (mine), to a root or a gone parent (not
 * mine), or to an entry already decided, then marks the way it came. The
 * walk is bounded: pids reused while /proc was read could make a loop. */
static void decide(struct scan *s, struct pentry *e)
{
	uint8_t verdict = MINE_NO;
	pid_t p = e->ppid;

	for (size_t steps = 0; steps <= s->n; steps++) {
		struct pentry *up = p == s->self ? NULL : find(s, p);
		if (p == s->self)
			verdict = MINE_YES;
		else if (up && up->mine != MINE_UNKNOWN)
			verdict = up->mine;
		if (p == s->self || !up || up->mine != MINE_UNKNOWN)
			break;
		p = up->ppid;
	}
	for (struct pentry *cur = e; cur && cur->mine == MINE_UNKNOWN;) {
		cur->mine = verdict;
		s->mine += verdict == MINE_YES;
		cur = cur->ppid == s->self ? NULL : find(s, cur->ppid);
	}
}

static int scan_add(struct scan *s, size_t *cap, const struct pentry *e)
{
	if (s->n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 256;
		struct pentry *ne = realloc(s->e, ncap * sizeof(*ne));
		if (!ne)
			return -1;
		s->e = ne;
		*cap = ncap;
	}
	s->e[s->n++] = *e;
	return 0;
}

/* Every process in /proc, each marked as the container's or not. */
static int scan_procs(struct scan *s, int procfd, struct rv_err *err)
{
	char path[32], buf[STAT_LINE_BYTES];
	size_t cap = 0;
	int dfd = fcntl(procfd, F_DUPFD_CLOEXEC, 0);   /* the DIR owns it; procfd stays ours */
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;

	*s = (struct scan){ .self = getpid() };
	if (!d) {
		rv_closep(&dfd);
		return rv_fail(err, errno, "read /proc");
	}
	while ((de = readdir(d)) && s->n < PROCS_SCAN_MAX) {
		struct pentry e = { 0 };
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "%ld/stat", pid);
		e.pid = (pid_t)pid;
		if (read_small(procfd, path, buf, sizeof(buf)) < 0 || parse_stat(buf, &e) < 0)
			continue;   /* gone meanwhile */
		e.mine = e.pid == s->self ? MINE_NO : MINE_UNKNOWN;
		if (scan_add(s, &cap, &e) < 0) {
			closedir(d);
			return rv_fail(err, ENOMEM, "list %zu processes", s->n);
		}
	}
	closedir(d);
	qsort(s->e, s->n, sizeof(*s->e), by_pid);
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].mine == MINE_UNKNOWN)
			decide(s, &s->e[i]);
	return 0;
}

static int open_proc(struct rv_err *err)
{
	int fd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? rv_fail(err, errno, "open /proc") : fd;
}

/* --- SIGNAL_ALL ------------------------------------------------------------------- */

static int signal_descendants(int signo, struct rv_err *err)
{
	_cleanup_close_ int procfd = open_proc(err);
	struct scan s = { 0 };
	int first = 0;

	if (procfd < 0 || scan_procs(&s, procfd, err) < 0) {
		free(s.e);
		return -1;
	}
	for (size_t i = 0; i < s.n; i++)
		if (s.e[i].mine == MINE_YES && kill(s.e[i].pid, signo) < 0 && errno != ESRCH &&
		    !first)
			first = errno;
	free(s.e);
	return first ? rv_fail(err, first, "signal %d to every process", signo) : 0;
}

void procs_on_signal_all(const struct agent *a, struct conn *c, const struct proto_msg *m)
{
	int signo = (int)m->signal_all.signo;   /* 1..PROTO_MAX_SIGNO: the decoder checked */
	struct rv_err err;
	int rc = 0;

	if (!a->pid1)
		rc = signal_descendants(signo, &err);
	else if (kill(-1, signo) < 0 && errno != ESRCH)   /* ESRCH: there was nobody */
		rc = rv_fail(&err, errno, "signal %d to every process", signo);
	if (rc < 0)
		conn_reply_error(c, m->id, err.code, "%s", err.msg);
	else
		conn_reply_ok(c, m->id);
}

/* --- PS ----------------------------------------------------------------------------- */

/* The effective uid from /proc/PID/status ("Uid: real effective saved fs"). */
static int read_euid(int procfd, pid_t pid, uint32_t *uid)
{
	char path[32], buf[STATUS_BYTES];
	unsigned long real, eff;

	snprintf(path, sizeof(path), "%d/status", (int)pid);
	if (read_small(procfd, path, buf, sizeof(buf)) < 0)
		return -1;
	const char *line = strstr(buf, "\nUid:");
	if (!line || sscanf(line + 5, "%lu %lu", &real, &eff) != 2)
		return -1;
	*uid = (uint32_t)eff;
	return 0;
}

/* The args joined by spaces, at most max bytes, into out (max + 1 bytes). */
static void read_cmdline(int procfd, pid_t pid, char *out, size_t max)
{
	char path[32];
	ssize_t n;

	snprintf(path, sizeof(path), "%d/cmdline", (int)pid);
	n = read_small(procfd, path, out, max + 1);
	if (n < 0)
		n = 0;
	while (n > 0 && out[n - 1] == '\0')
		n--;
	for (ssize_t i = 0; i < n; i++)
		if (out[i] == '\0')
			out[i] = ' ';
	out[n] = '\0';
}

struct ps_build {
	struct proto_proc *procs;
	char *scratch;                     /* one whole cmdline, PROTO_MAX_CMDLINE_BYTES + 1 */
	char *pool;                        /* every cmdline, NUL-terminated, back to back */
	size_t pool_used, pool_cap;
	size_t budget;                     /* cmdline bytes the frame still has room for */
};

/* A share of what is left for each remaining cmdline: short ones leave more
 * for the rest; a long list cuts every one short rather than drop any. */
static void add_cmdline(struct ps_build *b, int procfd, const struct pentry *e, uint32_t left,
			struct proto_proc *p)
{
	size_t share = b->budget / left;
	size_t room = b->pool_cap - b->pool_used - 1;

	read_cmdline(procfd, e->pid, b->scratch, PROTO_MAX_CMDLINE_BYTES);
	size_t n = strlen(b->scratch);
	n = n < share ? n : share;
	n = n < room ? n : room;
	p->cmdline = b->pool + b->pool_used;
	memcpy(b->pool + b->pool_used, b->scratch, n);
	b->pool[b->pool_used + n] = '\0';
	b->pool_used += n + 1;
	b->budget -= n;
}

/* Fills the list from the scan; entries whose process is gone are left out. */
static uint32_t ps_fill(struct ps_build *b, int procfd, const struct scan *s, uint32_t want)
{
	uint32_t n = 0, seen = 0;

	/* What the entries need besides their cmdlines always fits (proto.h). */
	b->budget = PROTO_MAX_PAYLOAD_BYTES - PROTO_PS_HEAD_BYTES;
	for (size_t i = 0; i < s->n && seen < want; i++) {
		if (s->e[i].mine != MINE_YES)
			continue;
		b->budget -= PROTO_PROC_FIXED_BYTES + strlen(s->e[i].comm);
		seen++;
	}
	for (size_t i = 0; i < s->n && n < want; i++) {
		const struct pentry *e = &s->e[i];
		struct proto_proc *p = &b->procs[n];
		if (e->mine != MINE_YES)
			continue;
		*p = (struct proto_proc){ .pid = (uint32_t)e->pid, .ppid = (uint32_t)e->ppid,
					  .state = (uint32_t)e->state, .utime_ticks = e->utime,
					  .stime_ticks = e->stime, .start_ticks = e->start,
					  .comm = e->comm };
		if (read_euid(procfd, e->pid, &p->uid) < 0) {
			want--;   /* gone: its fixed bytes go to the cmdlines */
			b->budget += PROTO_PROC_FIXED_BYTES + strlen(e->comm);
			continue;
		}
		add_cmdline(b, procfd, e, want - n, p);
		n++;
	}
	return n;
}

static void ps_build_free(struct ps_build *b)
{
	free(b->procs);
	free(b->scratch);
	free(b->pool);
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static int ps_reply(struct conn *c, uint32_t id, int procfd, const struct scan *s,
		    struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_PS_REPLY, .id = id };
	uint32_t want = s->mine < PROTO_MAX_PROCS ? s->mine : PROTO_MAX_PROCS;
	struct ps_build b = { .pool_cap = PROTO_MAX_PAYLOAD_BYTES + PROTO_MAX_PROCS };
	long tck = sysconf(_SC_CLK_TCK);
	uint64_t up = clock_ns(CLOCK_BOOTTIME), now = clock_ns(CLOCK_REALTIME);

	b.procs = calloc(want ? want : 1, sizeof(*b.procs));
	b.scratch = malloc(PROTO_MAX_CMDLINE_BYTES + 1);
	b.pool = malloc(b.pool_cap);
	if (!b.procs || !b.scratch || !b.pool) {
		ps_build_free(&b);
		return rv_fail(err, ENOMEM, "list %u processes", want);
	}
	m.ps = (struct proto_ps){ .clk_tck = tck > 0 ? (uint32_t)tck : 100, .uptime_ns = up,
				  .boot_time_s = now > up ? (now - up) / NS_PER_S : 0,
				  .total = s->mine, .procs = b.procs };
	m.ps.nprocs = ps_fill(&b, procfd, s, want);
	conn_send(c, &m);
	ps_build_free(&b);
	return 0;
}

void procs_on_ps(struct conn *c, const struct proto_msg *m)
{
	_cleanup_close_ int procfd = -1;
	struct scan s = { 0 };
	struct rv_err err;

	procfd = open_proc(&err);
	if (procfd < 0 || scan_procs(&s, procfd, &err) < 0 || ps_reply(c, m->id, procfd, &s, &err) < 0)
		conn_reply_error(c, m->id, err.code, "ps: %s", err.msg);
	free(s.e);
}

/* --- STATS -------------------------------------------------------------------------- */

/* "cpu  user nice system idle iowait irq softirq steal ..." (clock ticks):
 * busy time in ns, and its user and kernel parts. */
static int parse_cpu_line(const char *line, uint64_t tick_ns, uint64_t *busy, uint64_t *user,
			  uint64_t *kernel)
{
	unsigned long long t[8] = { 0 };
	const char *p = line + strcspn(line, " ");

	if (sscanf(p, "%llu %llu %llu %llu %llu %llu %llu %llu", &t[0], &t[1], &t[2], &t[3], &t[4],
		   &t[5], &t[6], &t[7]) < 7)
		return -1;
	*user = (t[0] + t[1]) * tick_ns;
	*kernel = (t[2] + t[5] + t[6]) * tick_ns;
	*busy = *user + *kernel + t[7] * tick_ns;
	return 0;
}

static int read_cpu(struct proto_stats *st, uint64_t *percpu, struct rv_err *err)
{
	_cleanup_fclose_ FILE *f = fopen("/proc/stat", "re");
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;
	long tck = sysconf(_SC_CLK_TCK);
	uint64_t tick_ns = NS_PER_S / (uint64_t)(tck > 0 ? tck : 100), u, k;
	bool total = false;

	if (!f)
		return rv_fail(err, errno, "open /proc/stat");
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "cpu", 3) != 0)
			continue;
		if (line[3] == ' ') {
			total = parse_cpu_line(line, tick_ns, &st->cpu_total_ns, &st->cpu_user_ns,
					       &st->cpu_kernel_ns) == 0;
		} else if (line[3] >= '0' && line[3] <= '9') {
			uint64_t busy = 0;
			if (parse_cpu_line(line, tick_ns, &busy, &u, &k) < 0)
				continue;
			if (st->ncpus < PROTO_MAX_CPUS)
				percpu[st->ncpus] = busy;
			st->ncpus++;
		}
	}
	if (!total || st->ncpus == 0)
		return rv_failx(err, EIO, "/proc/stat has no cpu lines");
	st->npercpu = st->ncpus < PROTO_MAX_CPUS ? st->ncpus : PROTO_MAX_CPUS;
	st->percpu_ns = percpu;
	return 0;
}

/* kB figures of /proc/meminfo, by name; a missing one stays unset. */
enum { MEM_TOTAL, MEM_AVAILABLE, MEM_CACHED, MEM_BUFFERS, MEM_FIELDS };

static int read_mem(struct proto_stats *st, struct rv_err *err)
{
	static const char *const names[MEM_FIELDS] = { "MemTotal:", "MemAvailable:", "Cached:",
							"Buffers:" };
	_cleanup_fclose_ FILE *f = fopen("/proc/meminfo", "re");
	unsigned long long kb[MEM_FIELDS] = { 0 };
	bool have[MEM_FIELDS] = { false };
	char line[256];

	if (!f)
		return rv_fail(err, errno, "open /proc/meminfo");
	while (fgets(line, sizeof(line), f)) {
		for (int i = 0; i < MEM_FIELDS; i++) {
			size_t n = strlen(names[i]);
			if (strncmp(line, names[i], n) == 0)
				have[i] = sscanf(line + n, "%llu", &kb[i]) == 1;
		}
	}
	if (!have[MEM_TOTAL] || !have[MEM_AVAILABLE])
		return rv_failx(err, EIO, "/proc/meminfo has no MemTotal or MemAvailable");
	uint64_t total = kb[MEM_TOTAL], avail = kb[MEM_AVAILABLE];
	uint64_t cache = kb[MEM_CACHED] + kb[MEM_BUFFERS];
	st->mem_total_bytes = total * 1024;
	st->mem_used_bytes = avail < total ? (total - avail) * 1024 : 0;
	st->mem_cache_bytes = (cache < total ? cache : total) * 1024;
	return 0;
}

void procs_on_stats(struct conn *c, const struct proto_msg *m)
{
	struct proto_msg reply = { .type = PROTO_STATS_REPLY, .id = m->id };
	uint64_t percpu[PROTO_MAX_CPUS] = { 0 };
	_cleanup_close_ int procfd = -1;
	struct scan s = { 0 };
	struct rv_err err;

	procfd = open_proc(&err);
	if (procfd < 0 || read_cpu(&reply.stats, percpu, &err) < 0 ||
	    read_mem(&reply.stats, &err) < 0 || scan_procs(&s, procfd, &err) < 0) {
		conn_reply_error(c, m->id, err.code, "stats: %s", err.msg);
	} else {
		reply.stats.pids_current = s.mine;
		conn_send(c, &reply);
	}
	free(s.e);
}
