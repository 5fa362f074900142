/* The process table: EXEC records a spec under the host's exec id, ATTACH
 * binds stream connections to it, START spawns it, SIGNAL signals it, RESIZE
 * sizes its terminal, and once it is reaped and its output is out, EXIT goes
 * back on the control connection that sent the EXEC. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "guest/agent/agent.h"

static const char *const stream_names[] = { "stdin", "stdout", "stderr" };

static struct proc *proc_find(const struct agent *a, uint32_t exec_id)
{
	for (struct proc *p = a->procs; p; p = p->next)
		if (p->exec_id == exec_id)
			return p;
	return NULL;
}

static struct proc *proc_by_pid(const struct agent *a, pid_t pid)
{
	for (struct proc *p = a->procs; p; p = p->next)
		if (p->started && p->pid == pid)
			return p;
	return NULL;
}

/* Releases everything the proc holds: its stream connections and pipes. */
static void proc_free(struct agent *a, struct proc *p)
{
	for (int i = 0; i < 3; i++) {
		relay_release(a, &p->st[i]);
		ep_close(a, &p->st[i].pipe);
		free(p->st[i].buf);
	}
	if (p->prev)
		p->prev->next = p->next;
	else
		a->procs = p->next;
	if (p->next)
		p->next->prev = p->prev;
	a->nprocs--;
	proto_msg_free(&p->spec);
	free(p);
}

static struct proc *proc_new(struct agent *a, struct conn *c, struct proto_msg *m)
{
	struct proc *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->exec_id = m->exec.exec_id;
	p->req_id = m->id;
	p->ctl = c;
	p->spec = *m;
	p->tty = m->exec.flags & PROTO_EXEC_TTY;
	p->rows = m->exec.rows;
	p->cols = m->exec.cols;
	for (int i = 0; i < 3; i++) {
		struct stream *s = &p->st[i];
		s->proc = p;
		s->which = (enum proto_stream)i;
		s->pipe = (struct ep_item){ .kind = EP_PIPE, .fd = -1 };
		s->done = !(m->exec.streams & (1u << i));
	}
	p->next = a->procs;
	if (a->procs)
		a->procs->prev = p;
	a->procs = p;
	a->nprocs++;
	return p;
}

bool exec_on_exec(struct agent *a, struct conn *c, struct proto_msg *m)
{
	const struct proto_exec *x = &m->exec;

	if (proc_find(a, x->exec_id)) {
		conn_reply_error(c, m->id, EEXIST, "exec id %u is already in use", x->exec_id);
		return false;
	}
	if (x->streams & ~(PROTO_WANT_STDIN | PROTO_WANT_STDOUT | PROTO_WANT_STDERR)) {
		conn_reply_error(c, m->id, EINVAL, "unknown stream bits 0x%x in EXEC", x->streams);
		return false;
	}
	if (a->nprocs >= AGENT_MAX_EXECS) {
		conn_reply_error(c, m->id, EAGAIN, "too many processes (the limit is %u)",
				 AGENT_MAX_EXECS);
		return false;
	}
	if (!proc_new(a, c, m)) {
		conn_reply_error(c, m->id, ENOMEM, "no memory for exec %u", x->exec_id);
		return false;
	}
	conn_reply_ok(c, m->id);
	return true;
}

/* The stream an ATTACH may bind, or NULL after answering why not. */
static struct stream *attach_target(struct agent *a, struct conn *c, const struct proto_msg *m)
{
	uint32_t id = m->attach.exec_id, which = m->attach.stream;
	struct proc *p = proc_find(a, id);

	if (c->state != CONN_READY)
		conn_reply_error(c, m->id, EPROTO, "ATTACH on a control connection: a stream "
				 "connection sends ATTACH right after HELLO");
	else if (which > PROTO_STDERR)
		conn_reply_error(c, m->id, EINVAL, "ATTACH of unknown stream %u", which);
	else if (!p)
		conn_reply_error(c, m->id, ENOENT, "ATTACH to exec %u, which does not exist", id);
	else if (p->started)
		conn_reply_error(c, m->id, EALREADY, "ATTACH to exec %u, which has started", id);
	else if (!(p->spec.exec.streams & (1u << which)))
		conn_reply_error(c, m->id, EINVAL, "exec %u did not ask for %s", id,
				 stream_names[which]);
	else if (p->st[which].conn)
		conn_reply_error(c, m->id, EBUSY, "%s of exec %u is already attached",
				 stream_names[which], id);
	else
		return &p->st[which];
	return NULL;
}

void exec_on_attach(struct agent *a, struct conn *c, const struct proto_msg *m)
{
	struct stream *s = attach_target(a, c, m);

	if (!s)
		return;
	s->conn = c;
	c->stream = s;
	c->state = CONN_STREAM;
	conn_reply_ok(c, m->id);
}

static void started(struct agent *a, struct conn *c, struct proc *p, uint32_t req_id)
{
	struct proto_msg reply = { .type = PROTO_STARTED, .id = req_id };

	p->started = true;
	reply.started.pid = (uint32_t)p->pid;
	conn_send(c, &reply);
	for (int i = 0; i < 3; i++)
		if (!p->st[i].done)
			relay_start(a, &p->st[i]);   /* cannot finish p: it is not reaped */
}

/* Whether p may start now, else the answer saying why not. */
static bool startable(struct conn *c, const struct proc *p, uint32_t id, uint32_t req_id)
{
	if (!p) {
		conn_reply_error(c, req_id, ENOENT, "START of exec %u, which does not exist "
				 "(EXEC comes first)", id);
		return false;
	}
	if (p->started) {
		conn_reply_error(c, req_id, EALREADY, "exec %u was already started", id);
		return false;
	}
	for (int i = 0; i < 3; i++) {
		if (!p->st[i].done && !p->st[i].conn) {
			conn_reply_error(c, req_id, EAGAIN, "START of exec %u before its %s was "
					 "attached", id, stream_names[i]);
			return false;
		}
	}
	return true;
}

void exec_on_start(struct agent *a, struct conn *c, const struct proto_msg *m)
{
	struct proc *p = proc_find(a, m->start.exec_id);
	struct rv_err err;

	if (!startable(c, p, m->start.exec_id, m->id))
		return;
	for (int i = 0; i < 3; i++) {
		if (!p->st[i].done && relay_prepare(&p->st[i], &err) < 0) {
			conn_reply_error(c, m->id, err.code, "%s", err.msg);
			return;
		}
	}
	if (spawn_proc(a, p, &err) < 0) {
		conn_reply_error(c, m->id, err.code, "%s", err.msg);
		proc_free(a, p);
		return;
	}
	started(a, c, p, m->id);
}

void exec_on_signal(struct agent *a, struct conn *c, const struct proto_msg *m)
{
	uint32_t id = m->signal.exec_id, signo = m->signal.signo;
	struct proc *p = proc_find(a, id);
	int code = 0;

	if (!p || !p->started || p->reaped) {
		conn_reply_error(c, m->id, ESRCH, "exec %u is not running", id);
		return;
	}
	if (signo >= (uint32_t)NSIG)
		code = EINVAL;
	else if (kill(p->pid, (int)signo) < 0)
		code = errno;
	if (code)
		conn_reply_error(c, m->id, code, "signal %u to exec %u: %s", signo, id,
				 strerror(code));
	else
		conn_reply_ok(c, m->id);
}

/* Before START the size is kept for the terminal to start with. */
void exec_on_resize(struct agent *a, struct conn *c, const struct proto_msg *m)
{
	uint32_t id = m->resize.exec_id;
	struct proc *p = proc_find(a, id);
	struct rv_err err;

	if (!p) {
		conn_reply_error(c, m->id, ENOENT, "RESIZE of exec %u, which does not exist", id);
		return;
	}
	if (!p->tty) {
		conn_reply_error(c, m->id, EINVAL, "RESIZE of exec %u, which has no terminal", id);
		return;
	}
	p->rows = m->resize.rows;
	p->cols = m->resize.cols;
	if (p->started && tty_resize(p, &err) < 0)
		conn_reply_error(c, m->id, err.code, "%s", err.msg);
	else
		conn_reply_ok(c, m->id);
}

/* EXIT goes out once the process is reaped and its stdout and stderr are
 * written out and shut down; without a control connection we just clean up. */
void exec_maybe_finish(struct agent *a, struct proc *p)
{
	struct proto_msg m = { .type = PROTO_EXIT, .id = p->req_id };
	struct conn *ctl = p->ctl;

	if (!p->started || !p->reaped || !p->st[PROTO_STDOUT].done || !p->st[PROTO_STDERR].done)
		return;
	m.exit.exec_id = p->exec_id;
	if (WIFSIGNALED(p->wstatus))
		m.exit.signo = (uint32_t)WTERMSIG(p->wstatus);
	else
		m.exit.code = (uint32_t)WEXITSTATUS(p->wstatus);
	proc_free(a, p);
	if (ctl) {
		conn_send(ctl, &m);
		conn_settle(a, ctl);
	}
}

/* Reaps every child that ended, ours or orphans that were handed to us. */
void exec_on_sigchld(struct agent *a)
{
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		struct proc *p = proc_by_pid(a, pid);
		roots_reaped(a, pid);   /* a container's init: its namespace is done */
		if (!p || p->reaped)
			continue;
		p->reaped = true;
		p->wstatus = status;
		relay_drop_stdin(a, &p->st[PROTO_STDIN]);   /* nobody reads it any more */
		exec_maybe_finish(a, p);
	}
}

/* A control connection is gone: its unstarted execs go with it; started
 * ones run on and are cleaned up without an EXIT, but a container's init
 * (PID 1 of its namespace) is killed, and its namespace with it: the host
 * process that stood for it has died (a pod's member, whose VM lives on,
 * SIGKILLed by `delete --force`), and nothing else would ever end it. */
void exec_conn_closed(struct agent *a, struct conn *c)
{
	struct proc *p = a->procs, *next;

	for (; p; p = next) {
		next = p->next;
		if (p->ctl != c)
			continue;
		p->ctl = NULL;
		if (!p->started)
			proc_free(a, p);
		else if (!p->reaped && (p->spec.exec.flags & PROTO_EXEC_INIT))
			kill(p->pid, SIGKILL);
	}
}
