/* The host side of the agent protocol: one process per agent_run, on one
 * control connection plus one stream connection per relayed stdio stream.
 * Everything lives on the caller's stack; the only shared state is the
 * agent's own (exec ids are random, and a clash is retried). */
#include "vmm/agent_client.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/proto.h"
#include "vmm/agent_client_priv.h"

#define DIAL_RETRY_MS 10
#define EXEC_ID_TRIES 8
#define RELAY_BUF_BYTES (64u * 1024)
#define FRAME_MAX_BYTES (PROTO_HDR_BYTES + PROTO_MAX_PAYLOAD_BYTES)

_Static_assert(AGENT_SIGNO_MAX == PROTO_MAX_SIGNO && AGENT_PS_MAX == PROTO_MAX_PROCS &&
	       AGENT_COMM_BYTES == PROTO_MAX_COMM_BYTES + 1 && AGENT_MAX_CPUS == PROTO_MAX_CPUS,
	       "agent_client.h's limits are the protocol's");

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int send_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_msg(int fd, const struct proto_msg *m, struct rv_err *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (proto_encode(m, &buf, &len, &cap, err) < 0)
		return rv_wrap(err, "encode %s", proto_type_name(m->type));
	int rc = send_all(fd, buf, len) < 0 ? rv_fail(err, errno, "send %s to the agent",
						     proto_type_name(m->type)) : 0;
	/* RESEED carries the clone's entropy: no copy of it outlives the send. */
	if (m->type == PROTO_RESEED)
		explicit_bzero(buf, len);
	return rc;
}

/* An agent error, in the caller's words: "exec 'x': No such file or directory"
 * becomes "exec 'x' in the guest: No such file or directory". */
static int guest_error(struct rv_err *err, const struct proto_msg *m)
{
	int code = m->error.code > 0 && m->error.code < 4096 ? (int)m->error.code : EPROTO;
	const char *msg = m->error.message, *why = strerror(code);
	size_t n = strlen(msg), wn = strlen(why);

	if (n > wn + 2 && strcmp(msg + n - wn, why) == 0 && memcmp(msg + n - wn - 2, ": ", 2) == 0)
		return rv_failx(err, code, "%.*s in the guest: %s", (int)(n - wn - 2), msg, why);
	return rv_failx(err, code, "%s (in the guest)", msg);
}

/* Sends req and reads its reply into *reply (the caller frees it). Returns -1
 * when the connection failed (EOF too: that is how a lost agent looks), -2
 * when the agent answered ERROR; err says which. */
static int request(int fd, const struct proto_msg *req, struct proto_msg *reply,
		   struct rv_err *err)
{
	if (send_msg(fd, req, err) < 0)
		return -1;
	int r = proto_recv(fd, reply, err);
	if (r == 1)
		return rv_failx(err, ECONNRESET, "the agent closed the connection after %s",
				proto_type_name(req->type));
	if (r < 0)
		return rv_wrap(err, "read the agent's reply to %s", proto_type_name(req->type));
	if (reply->type == PROTO_ERROR) {
		guest_error(err, reply);
		proto_msg_free(reply);
		return -2;
	}
	return 0;
}

/* Whether a failed HELLO looks like an agent that is not listening yet. */
static bool not_up_yet(int code)
{
	return code == ECONNREFUSED || code == ECONNRESET || code == ENOENT || code == EPIPE ||
	       code == EAGAIN || code == ENOTCONN;
}

/* One dial + HELLO. Returns the fd, -1 to retry, -2 to give up. */
static int try_hello(const struct agent_client *c, struct rv_err *err)
{
	struct proto_msg hello = { .type = PROTO_HELLO, .hello.version = PROTO_VERSION }, reply;
	_cleanup_close_ int fd = c->dial(c->ctx, err);

	if (fd < 0)
		return not_up_yet(err->code) ? -1 : -2;
	int r = request(fd, &hello, &reply, err);
	if (r < 0)
		return r == -1 && not_up_yet(err->code) ? -1 : -2;
	bool ok = reply.type == PROTO_HELLO && reply.hello.version == PROTO_VERSION;
	if (!ok)
		rv_failx(err, EPROTO, "the agent answered HELLO with %s (version %u)",
			 proto_type_name(reply.type), reply.hello.version);
	proto_msg_free(&reply);
	return ok ? rv_steal_fd(&fd) : -2;
}

/* A connection that has said HELLO, redialling an agent that is not up yet
 * every DIAL_RETRY_MS until connect_timeout_ms. */
static int dial_hello(const struct agent_client *c, struct rv_err *err)
{
	uint64_t deadline = now_ms() + c->connect_timeout_ms;

	for (;;) {
		int fd = try_hello(c, err);
		if (fd >= 0)
			return fd;
		if (fd == -2 || now_ms() >= deadline)
			return rv_wrap(err, "connect to the agent");
		sleep_ms(DIAL_RETRY_MS);
	}
}

static uint32_t random_exec_id(void)
{
	uint32_t id = 0;

	if (getrandom(&id, sizeof(id), GRND_NONBLOCK) != sizeof(id)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		id = (uint32_t)ts.tv_nsec ^ ((uint32_t)gettid() << 12);
	}
	return id ? id : 1;
}

/* --- agent_run ---------------------------------------------------------------- */

struct run {
	const struct agent_exec *x;
	int ctl;
	int sock[3];                  /* stream connections; -1 when unwanted or finished */
	uint32_t exec_id;
	uint8_t *in;                  /* host stdin bytes not yet sent: in[in_off..in_len) */
	size_t in_off, in_len;
	bool stdin_eof;               /* host stdin ended; shut down once in is sent */
	uint8_t *frames;              /* control connection bytes not yet parsed */
	size_t frames_len, frames_cap;
	bool exited;
	bool lost;                    /* the control connection ended before EXIT */
	struct agent_status status;
	const atomic_bool *cancel;
};

static void run_close(struct run *r)
{
	rv_closep(&r->ctl);
	for (int i = 0; i < 3; i++)
		rv_closep(&r->sock[i]);
	free(r->in);
	free(r->frames);
}

static int send_exec(struct run *r, struct rv_err *err)
{
	const struct agent_exec *x = r->x;
	const struct agent_attrs *a = &x->attrs;
	struct proto_msg m = { .type = PROTO_EXEC, .id = REQ_EXEC }, reply;
	uint32_t argc = 0, envc = 0;

	while (x->argv[argc])
		argc++;
	while (x->envp && x->envp[envc])
		envc++;
	m.exec = (struct proto_exec){
		.streams = (x->stdin_fd >= 0 ? PROTO_WANT_STDIN : 0) |
			   (x->stdout_fd >= 0 ? PROTO_WANT_STDOUT : 0) |
			   (x->stderr_fd >= 0 && !x->tty ? PROTO_WANT_STDERR : 0),
		.uid = x->uid, .gid = x->gid, .root = x->root ? x->root : "",
		.cwd = x->cwd ? x->cwd : "/",
		.argc = argc, .argv = (const char **)x->argv,
		.envc = envc, .envp = (const char **)x->envp,
		.ngroups = x->ngroups, .groups = x->groups,
		.flags = (x->tty ? PROTO_EXEC_TTY : 0) |
			 (a->no_new_privs ? PROTO_EXEC_NO_NEW_PRIVS : 0) |
			 (a->has_oom_score_adj ? PROTO_EXEC_OOM_SCORE : 0) |
			 (x->init ? PROTO_EXEC_INIT : 0),
		.rows = x->tty ? x->rows : 0, .cols = x->tty ? x->cols : 0,
		.umask = a->has_umask ? a->umask : 022,
		.oom_score_adj = a->has_oom_score_adj ? a->oom_score_adj : 0,
		.ncaps = a->has_caps ? PROTO_CAP_SETS : 0, .caps = a->caps,
		.nrlimit_vals = 3 * a->nrlimits, .rlimit_vals = a->rlimits,
		.hostname = a->hostname ? a->hostname : "",
		.domainname = a->domainname ? a->domainname : "",
		.nsysctls = a->nsysctls, .sysctls = (const char **)a->sysctls,
		.seccomp_flags = a->seccomp_flags, .nseccomp = a->nseccomp, .seccomp = a->seccomp,
		.nuid_map = a->nuid_map, .uid_map = a->uid_map,
		.ngid_map = a->ngid_map, .gid_map = a->gid_map,
		.path = x->path ? x->path : "",
	};
	for (int tries = 0; tries < EXEC_ID_TRIES; tries++) {
		m.exec.exec_id = r->exec_id = random_exec_id();
		int ret = request(r->ctl, &m, &reply, err);
		if (ret == 0) {
			bool ok = reply.type == PROTO_OK;
			proto_msg_free(&reply);
			return ok ? 0 : rv_failx(err, EPROTO, "the agent answered EXEC with %s",
						 proto_type_name(reply.type));
		}
		if (ret == -1 || err->code != EEXIST)
			return -1;   /* EEXIST: another client holds that exec id; pick another */
	}
	return -1;
}

static int attach(const struct agent_client *c, struct run *r, int which, struct rv_err *err)
{
	static const char *const names[] = { "stdin", "stdout", "stderr" };
	struct proto_msg m = { .type = PROTO_ATTACH, .id = REQ_ATTACH }, reply;

	m.attach.exec_id = r->exec_id;
	m.attach.stream = (uint32_t)which;
	r->sock[which] = dial_hello(c, err);
	if (r->sock[which] < 0 || request(r->sock[which], &m, &reply, err) < 0)
		return rv_wrap(err, "attach %s", names[which]);
	bool ok = reply.type == PROTO_OK;
	proto_msg_free(&reply);
	return ok ? 0 : rv_failx(err, EPROTO, "the agent answered ATTACH with %s",
				 proto_type_name(reply.type));
}

static int start(struct run *r, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_START, .id = REQ_START }, reply;

	m.start.exec_id = r->exec_id;
	int ret = request(r->ctl, &m, &reply, err);
	if (ret == -1)
		return rv_wrap(err, "start '%s'", r->x->argv[0]);
	if (ret < 0)
		return -1;   /* the guest's own words: "exec 'x' in the guest: ..." */
	bool ok = reply.type == PROTO_STARTED;
	uint32_t pid = reply.started.pid;
	proto_msg_free(&reply);
	if (!ok)
		return rv_failx(err, EPROTO, "the agent answered START with %s",
				proto_type_name(reply.type));
	if (r->x->started)
		r->x->started(r->x->started_arg, r->exec_id, pid);
	return 0;
}

/* Every control frame that arrived: only our EXIT is expected. */
static int parse_control(struct run *r, struct rv_err *err)
{
	size_t off = 0;
	long n;

	while ((n = proto_frame_check(r->frames + off, r->frames_len - off, err)) > 0) {
		struct proto_msg m;
		if (proto_decode(r->frames + off, (size_t)n, &m, err) < 0)
			return rv_wrap(err, "bad frame from the agent");
		bool ours = m.type == PROTO_EXIT && m.id == REQ_EXEC && m.exit.exec_id == r->exec_id;
		if (ours) {
			r->exited = true;
			r->status.signaled = m.exit.signo != 0;
			r->status.code = (int)m.exit.code;
			r->status.signo = (int)m.exit.signo;
		}
		enum proto_type type = m.type;
		proto_msg_free(&m);
		if (!ours)
			return rv_failx(err, EPROTO, "unexpected %s from the agent",
					proto_type_name(type));
		off += (size_t)n;
	}
	if (n < 0)
		return rv_wrap(err, "bad frame from the agent");
	memmove(r->frames, r->frames + off, r->frames_len - off);
	r->frames_len -= off;
	return 0;
}

/* The agent closed stdin (the process is gone or closed its end): stop. */
static void stdin_closed(struct run *r)
{
	rv_closep(&r->sock[PROTO_STDIN]);
	r->sock[PROTO_STDIN] = -1;
	r->in_off = r->in_len = 0;
	r->stdin_eof = true;
}

static int on_control(struct run *r, struct rv_err *err)
{
	if (r->frames_len == r->frames_cap) {
		size_t cap = r->frames_cap ? r->frames_cap * 2 : 4096;
		uint8_t *p = cap <= FRAME_MAX_BYTES ? realloc(r->frames, cap) : NULL;
		if (!p)
			return rv_failx(err, EPROTO, "oversized frame from the agent");
		r->frames = p;
		r->frames_cap = cap;
	}
	ssize_t n = recv(r->ctl, r->frames + r->frames_len, r->frames_cap - r->frames_len,
			 MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		rv_closep(&r->ctl);
		r->ctl = -1;
		/* What the process wrote before the agent went away still arrives
		 * (the relay drains stdout and stderr to EOF), then this is the error. */
		if (!r->exited) {
			r->lost = true;
			stdin_closed(r);
		}
		return 0;
	}
	r->frames_len += (size_t)n;
	return parse_control(r, err);
}

static void stdin_send(struct run *r)
{
	int fd = r->sock[PROTO_STDIN];

	if (r->in_off < r->in_len) {
		ssize_t n = send(fd, r->in + r->in_off, r->in_len - r->in_off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			stdin_closed(r);
			return;
		}
		if (n > 0)
			r->in_off += (size_t)n;
	}
	if (r->in_off == r->in_len) {
		r->in_off = r->in_len = 0;
		if (r->stdin_eof)
			shutdown(fd, SHUT_WR);   /* the process reads EOF; the agent then closes */
	}
}

static void on_host_stdin(struct run *r)
{
	ssize_t n = read(r->x->stdin_fd, r->in, RELAY_BUF_BYTES);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0)
		r->stdin_eof = true;
	else
		r->in_len = (size_t)n;
	stdin_send(r);
}

/* Anything readable on the stdin connection means the agent closed it. */
static void on_stdin_sock(struct run *r)
{
	uint8_t scratch[256];
	ssize_t n = recv(r->sock[PROTO_STDIN], scratch, sizeof(scratch), MSG_DONTWAIT);

	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
		stdin_closed(r);
}

static int write_all(int fd, const uint8_t *buf, size_t len, const atomic_bool *cancel)
{
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR && cancel && atomic_load(cancel)) {
			errno = ECANCELED;
			return -1;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Guest output to the host fd. A host fd that fails (EPIPE: its reader is
 * gone) closes the stream, and the guest process gets SIGPIPE in turn. */
static void on_output(struct run *r, int which, uint8_t *buf)
{
	int host_fd = which == PROTO_STDOUT ? r->x->stdout_fd : r->x->stderr_fd;
	ssize_t n = recv(r->sock[which], buf, RELAY_BUF_BYTES, MSG_DONTWAIT);

	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0 || write_all(host_fd, buf, (size_t)n, r->cancel) < 0) {
		rv_closep(&r->sock[which]);
		r->sock[which] = -1;
	}
}

enum { PFD_CTL, PFD_HOST_IN, PFD_STDIN, PFD_STDOUT, PFD_STDERR, PFD_COUNT };

static void poll_setup(const struct run *r, struct pollfd *p)
{
	bool want_host_in = r->sock[PROTO_STDIN] >= 0 && !r->stdin_eof && r->in_len == 0;

	p[PFD_CTL] = (struct pollfd){ .fd = r->ctl, .events = POLLIN };
	p[PFD_HOST_IN] = (struct pollfd){ .fd = want_host_in ? r->x->stdin_fd : -1, .events = POLLIN };
	p[PFD_STDIN] = (struct pollfd){ .fd = r->sock[PROTO_STDIN],
		.events = POLLIN | (r->in_off < r->in_len ? POLLOUT : 0) };
	p[PFD_STDOUT] = (struct pollfd){ .fd = r->sock[PROTO_STDOUT], .events = POLLIN };
	p[PFD_STDERR] = (struct pollfd){ .fd = r->sock[PROTO_STDERR], .events = POLLIN };
}

/* Until the process exited and all of its output has arrived. */
static int relay(struct run *r, struct rv_err *err)
{
	_cleanup_free_ uint8_t *out = malloc(RELAY_BUF_BYTES);

	r->in = malloc(RELAY_BUF_BYTES);
	if (!out || !r->in)
		return rv_fail(err, ENOMEM, "relay buffers");
	while ((!r->exited && !r->lost) || r->sock[PROTO_STDOUT] >= 0 || r->sock[PROTO_STDERR] >= 0) {
		struct pollfd p[PFD_COUNT];
		poll_setup(r, p);
		if (poll(p, PFD_COUNT, -1) < 0) {
			if (errno == EINTR)
				continue;
			return rv_fail(err, errno, "poll");
		}
		if (p[PFD_CTL].revents && on_control(r, err) < 0)
			return -1;
		if (p[PFD_STDIN].revents & POLLOUT)
			stdin_send(r);
		if (r->sock[PROTO_STDIN] >= 0 && (p[PFD_STDIN].revents & (POLLIN | POLLHUP | POLLERR)))
			on_stdin_sock(r);
		if (p[PFD_HOST_IN].revents && r->sock[PROTO_STDIN] >= 0)
			on_host_stdin(r);
		for (int i = PROTO_STDOUT; i <= PROTO_STDERR; i++)
			if (p[PFD_STDOUT + i - 1].revents)
				on_output(r, i, out);
	}
	if (r->lost)
		return rv_failx(err, ECONNRESET, "lost the agent connection before '%s' exited",
				r->x->argv[0]);
	return 0;
}

int agent_run(const struct agent_client *c, const struct agent_exec *x, struct agent_status *st,
	      struct rv_err *err)
{
	struct run r = { .x = x, .ctl = -1, .sock = { -1, -1, -1 }, .cancel = c->cancel };
	/* A terminal's stderr shows on its stdout: there is no stream of its own. */
	int host_fds[3] = { x->stdin_fd, x->stdout_fd, x->tty ? -1 : x->stderr_fd };
	int ret = -1;

	if (!x->argv || !x->argv[0])
		return rv_failx(err, EINVAL, "no command to run in the guest");
	if (x->tty && x->stdout_fd < 0)
		return rv_failx(err, EINVAL, "run '%s' on a terminal: the terminal needs a stdout_fd",
				x->argv[0]);
	r.ctl = dial_hello(c, err);
	if (r.ctl < 0 || send_exec(&r, err) < 0)
		goto prepare_failed;
	for (int i = 0; i < 3; i++)
		if (host_fds[i] >= 0 && attach(c, &r, i, err) < 0)
			goto prepare_failed;
	if (x->prepared)
		x->prepared(x->prepared_arg, r.exec_id);
	if (x->before_start && x->before_start(x->before_start_arg, err) < 0) {
		run_close(&r);
		return -1;
	}
	/* From here on, errors name the command themselves. */
	if (start(&r, err) == 0 && relay(&r, err) == 0) {
		*st = r.status;
		ret = 0;
	}
	run_close(&r);
	return ret;
prepare_failed:
	run_close(&r);
	return rv_wrap(err, "run '%s'", x->argv[0]);
}

/* --- one-shot requests ----------------------------------------------------------- */

int agent_session_open(const struct agent_client *c, struct agent_client *s, struct rv_err *err)
{
	*s = *c;
	s->in_session = false;
	s->session_fd = dial_hello(c, err);
	if (s->session_fd < 0)
		return -1;
	s->in_session = true;
	return 0;
}

void agent_session_close(struct agent_client *s)
{
	if (s->in_session)
		close(s->session_fd);
	s->in_session = false;
	s->session_fd = -1;
}

static int one_request(const struct agent_client *c, const struct proto_msg *req,
		       struct rv_err *err)
{
	struct proto_msg reply;
	_cleanup_close_ int own = c->in_session ? -1 : dial_hello(c, err);
	int fd = c->in_session ? c->session_fd : own;

	if (fd < 0 || request(fd, req, &reply, err) < 0)
		return -1;
	uint32_t type = reply.type;   /* proto_msg_free clears the reply */
	proto_msg_free(&reply);
	return type == PROTO_OK ? 0 : rv_failx(err, EPROTO, "the agent answered %s with %s",
					       proto_type_name(req->type), proto_type_name(type));
}


int agent_mount_opts(const struct agent_client *c, const char *source, const char *target,
		     const char *fstype, uint32_t flags, const char *data, uint32_t opts,
		     struct rv_err *err)
{
	struct proto_mount m = { .source = source, .target = target, .fstype = fstype,
				 .flags = flags, .data = data, .opts = opts };

	return agent_mount_msg(c, &m, err);
}

int agent_mount_msg(const struct agent_client *c, const struct proto_mount *mnt,
		    struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_MOUNT, .id = REQ_MOUNT, .mount = *mnt };

	m.mount.source = mnt->source ? mnt->source : "";
	m.mount.fstype = mnt->fstype ? mnt->fstype : "";
	m.mount.data = mnt->data ? mnt->data : "";
	return one_request(c, &m, err);   /* the agent's message names source and target */
}

int agent_mount(const struct agent_client *c, const char *source, const char *target,
		const char *fstype, uint32_t flags, const char *data, struct rv_err *err)
{
	return agent_mount_opts(c, source, target, fstype, flags, data, 0, err);
}

int agent_mknod(const struct agent_client *c, const struct proto_mknod *d, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_MKNOD, .id = REQ_MKNOD, .mknod = *d };

	return one_request(c, &m, err);   /* the agent's message names the node */
}

int agent_netconf(const struct agent_client *c, const struct proto_netconf *n, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_NETCONF, .id = REQ_NETCONF, .netconf = *n };

	return one_request(c, &m, err);   /* the agent's message names the line */
}

int agent_shutdown(const struct agent_client *c, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_SHUTDOWN, .id = REQ_SHUTDOWN };

	if (one_request(c, &m, err) < 0)
		return rv_wrap(err, "shut the guest down");
	return 0;
}

/* --- the container as a whole --------------------------------------------------- */

/* The caller's dialler, with a limit on how long each reply may take. */
static int dial_timed(void *ctx, struct rv_err *err)
{
	const struct agent_client *c = ctx;
	struct timeval tv = { .tv_sec = AGENT_QUERY_TIMEOUT_MS / 1000,
			      .tv_usec = (AGENT_QUERY_TIMEOUT_MS % 1000) * 1000 };
	int fd = c->dial(c->ctx, err);

	if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) {
		rv_fail(err, errno, "limit the wait for the agent's answers");
		close(fd);
		return -1;
	}
	return fd;
}

/* A reply that does not come in time is ETIMEDOUT (agent_client_priv.h). */
int agent_query(const struct agent_client *c, const struct proto_msg *req, enum proto_type want,
		struct proto_msg *reply, struct rv_err *err)
{
	struct agent_client timed = *c;

	timed.dial = dial_timed;
	timed.ctx = (void *)c;
	_cleanup_close_ int fd = dial_hello(&timed, err);
	int r = fd < 0 ? -1 : request(fd, req, reply, err);
	if (r == -1 && (err->code == EAGAIN || err->code == EWOULDBLOCK))   /* not the guest's */
		return rv_failx(err, ETIMEDOUT, "the agent did not answer %s within %u s (is the VM "
				"paused?)", proto_type_name(req->type), AGENT_QUERY_TIMEOUT_MS / 1000);
	if (r < 0)
		return -1;
	if (reply->type == want)
		return 0;
	rv_failx(err, EPROTO, "the agent answered %s with %s", proto_type_name(req->type),
		 proto_type_name(reply->type));
	proto_msg_free(reply);
	return -1;
}

/* Timed like the queries: the control socket's handlers call it holding the
 * sandbox's lock, which a guest that never answers must not keep. */
int agent_signal(const struct agent_client *c, uint32_t exec_id, int signo, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_SIGNAL, .id = REQ_SIGNAL }, reply;

	m.signal.exec_id = exec_id;
	m.signal.signo = (uint32_t)signo;
	if (agent_query(c, &m, PROTO_OK, &reply, err) < 0)
		return rv_wrap(err, "send signal %d to exec %u", signo, exec_id);
	proto_msg_free(&reply);
	return 0;
}

int agent_signal_all(const struct agent_client *c, int signo, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_SIGNAL_ALL, .id = REQ_SIGNAL_ALL }, reply;

	if (signo < 1 || signo > AGENT_SIGNO_MAX)
		return rv_failx(err, EINVAL, "signal %d is not one of 1..%d", signo, AGENT_SIGNO_MAX);
	m.signal_all.signo = (uint32_t)signo;
	if (agent_query(c, &m, PROTO_OK, &reply, err) < 0)
		return rv_wrap(err, "send signal %d to every process of the container", signo);
	proto_msg_free(&reply);
	return 0;
}

int agent_resize(const struct agent_client *c, uint32_t exec_id, uint16_t rows, uint16_t cols,
		 struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_RESIZE, .id = REQ_RESIZE }, reply;

	m.resize.exec_id = exec_id;
	m.resize.rows = rows;
	m.resize.cols = cols;
	if (agent_query(c, &m, PROTO_OK, &reply, err) < 0)
		return rv_wrap(err, "resize the terminal of exec %u to %ux%u", exec_id, rows, cols);
	proto_msg_free(&reply);
	return 0;
}

/* The guest's words, printable as they are: no terminal escapes. */
static void make_printable(char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = '?';
}

/* Into out, zeroed: on failure, agent_ps_free(out, nprocs) frees what was copied. */
static int copy_procs(const struct proto_ps *ps, struct agent_proc *out, struct rv_err *err)
{
	for (uint32_t i = 0; i < ps->nprocs; i++) {
		const struct proto_proc *p = &ps->procs[i];
		struct agent_proc *a = &out[i];
		*a = (struct agent_proc){ .pid = p->pid, .ppid = p->ppid, .uid = p->uid,
					  .utime_ticks = p->utime_ticks, .stime_ticks = p->stime_ticks,
					  .start_ticks = p->start_ticks, .state = (char)p->state };
		snprintf(a->comm, sizeof(a->comm), "%s", p->comm);   /* the decoder bounded it */
		make_printable(a->comm);
		a->cmdline = strdup(p->cmdline);
		if (!a->cmdline)
			return rv_fail(err, ENOMEM, "copy the process list");
		make_printable(a->cmdline);
	}
	return 0;
}

int agent_ps(const struct agent_client *c, struct agent_proc **procs, size_t *n,
	     struct agent_ps_info *info, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_PS, .id = REQ_PS }, reply;

	*procs = NULL;
	*n = 0;
	if (agent_query(c, &m, PROTO_PS_REPLY, &reply, err) < 0)
		return rv_wrap(err, "list the container's processes");
	const struct proto_ps *ps = &reply.ps;
	struct agent_proc *out = calloc(ps->nprocs ? ps->nprocs : 1, sizeof(*out));
	int rc = out ? copy_procs(ps, out, err) : rv_fail(err, ENOMEM, "copy the process list");
	if (rc == 0) {
		*procs = out;
		*n = ps->nprocs;
		if (info)
			*info = (struct agent_ps_info){ .clk_tck = ps->clk_tck,
							.boot_time_s = ps->boot_time_s,
							.uptime_ns = ps->uptime_ns, .total = ps->total };
	} else {
		agent_ps_free(out, out ? ps->nprocs : 0);
	}
	proto_msg_free(&reply);
	return rc;
}

void agent_ps_free(struct agent_proc *procs, size_t n)
{
	for (size_t i = 0; procs && i < n; i++)
		free(procs[i].cmdline);
	free(procs);
}

int agent_stats(const struct agent_client *c, struct agent_stats *st, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_STATS, .id = REQ_STATS }, reply;

	if (agent_query(c, &m, PROTO_STATS_REPLY, &reply, err) < 0)
		return rv_wrap(err, "read the guest's usage");
	const struct proto_stats *s = &reply.stats;
	*st = (struct agent_stats){ .cpu_total_ns = s->cpu_total_ns, .cpu_user_ns = s->cpu_user_ns,
				    .cpu_kernel_ns = s->cpu_kernel_ns, .ncpus = s->ncpus,
				    .mem_total_bytes = s->mem_total_bytes,
				    .mem_used_bytes = s->mem_used_bytes,
				    .mem_cache_bytes = s->mem_cache_bytes,
				    .pids_current = s->pids_current };
	memcpy(st->percpu_ns, s->percpu_ns, s->npercpu * sizeof(uint64_t));   /* <= 64: decoded */
	proto_msg_free(&reply);
	return 0;
}

int agent_status_to_exit_code(const struct agent_status *st)
{
	return st->signaled ? 128 + st->signo : st->code;
}
