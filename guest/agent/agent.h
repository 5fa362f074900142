/* runvm-agent: the guest's PID 1 (DESIGN §4). One single-threaded epoll loop
 * serves connections from the host (common/proto.h): control connections
 * (EXEC, START, SIGNAL, RESIZE, MOUNT, SHUTDOWN, SIGNAL_ALL, PS, STATS) and
 * stream connections (one stdio stream of one process each), and relays
 * bytes between those and the processes' pipes, or their terminal's master.
 *
 * The state is plain data owned by struct agent, which lives in main. */
#ifndef RV_AGENT_H
#define RV_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/types.h>

#include "common/proto.h"

#define AGENT_MAX_CONNS 1024u
#define AGENT_MAX_EXECS 1024u
#define AGENT_STREAM_BUF_BYTES (64u * 1024)      /* per stdio stream and direction */
#define AGENT_OUT_HIGH_BYTES (256u * 1024)       /* unsent replies before we stop reading requests */

/* What an epoll registration points at. */
enum ep_kind { EP_LISTEN, EP_SIGNAL, EP_CONN, EP_PIPE };

struct ep_item {
	enum ep_kind kind;
	int fd;                       /* -1 once closed */
	uint32_t mask;                /* registered events; 0 = not in the epoll set */
};

enum conn_state {
	CONN_NEW,                     /* waiting for HELLO */
	CONN_READY,                   /* HELLO done: control requests or ATTACH */
	CONN_CONTROL,                 /* has sent a control request */
	CONN_STREAM,                  /* attached: raw bytes of one stream */
};

struct conn {
	struct ep_item ep;
	enum conn_state state;
	uint8_t *in;                  /* received bytes not yet parsed */
	size_t in_len, in_cap;
	uint8_t *out;                 /* encoded frames, out[out_off..out_len) unsent */
	size_t out_len, out_cap, out_off;
	bool closing;                 /* close once out is flushed */
	bool shutdown_after;          /* SHUTDOWN acknowledged: stop once out is flushed */
	struct stream *stream;        /* CONN_STREAM: what it carries */
	struct conn *prev, *next;
};

/* One stdio stream of one process: a pipe on the process side, a stream
 * connection on the host side, and a bounded buffer between them. A process
 * on a terminal has stdin and stdout streams only, and their "pipes" are
 * two fds of the terminal's master (an fd can be in an epoll set only once). */
struct stream {
	struct proc *proc;
	enum proto_stream which;
	struct conn *conn;            /* NULL: not attached, or released */
	struct ep_item pipe;          /* the agent's end of the process's pipe */
	uint8_t *buf;                 /* pending bytes buf[off..len), AGENT_STREAM_BUF_BYTES */
	size_t off, len;
	bool eof;                     /* the source has ended */
	bool done;                    /* nothing more will flow (unwanted streams start done) */
};

struct proc {
	uint32_t exec_id;
	uint32_t req_id;              /* the EXEC's request id: EXIT carries it */
	struct conn *ctl;             /* where EXIT goes; NULL once that connection is gone */
	struct proto_msg spec;        /* the EXEC itself (its arena owns the strings) */
	pid_t pid;
	bool started, reaped;
	bool tty;                     /* on a terminal (PROTO_EXEC_TTY) */
	uint16_t rows, cols;          /* the terminal's size, last asked for */
	int wstatus;
	struct stream st[3];          /* indexed by enum proto_stream */
	struct proc *prev, *next;
};

struct agent {
	int epfd;
	struct ep_item listen, sig;
	bool pid1;                    /* the guest's init, not the --unix test mode */
	bool guest;                   /* in a guest (PID 1 or --vsock-child): the kernel's RNG,
				       * clock and vsock are the guest's, not the host's (--unix) */
	bool listen_paused;           /* out of fds: stop accepting until one closes */
	bool quit;                    /* SHUTDOWN acknowledged */
	struct rlimit nofile;         /* RLIMIT_NOFILE as we found it: children get it back */
	struct conn *conns;
	unsigned nconns;
	struct proc *procs;
	unsigned nprocs;
	int userns_fd;                /* the user namespace of userns_maps, -1: none yet */
	uint32_t *userns_maps;        /* its uid map's values, then its gid map's */
	uint32_t userns_nuid, userns_ngid;
	struct root *roots;           /* containers' roots (roots.c) */
	unsigned nroots;
	int pidns_self;               /* the agent's own PID namespace (pidns.c), -1: none */
	bool pidns_stuck;             /* could not return to it: it forks no more */
};

#define container_of(ptr, type, member) ((type *)((char *)(ptr) - offsetof(type, member)))

/* main.c */
void agent_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* server.c: the loop and the connections */
int agent_loop(struct agent *a);
void ep_set(struct agent *a, struct ep_item *it, uint32_t mask);
void ep_close(struct agent *a, struct ep_item *it);
void conn_send(struct conn *c, const struct proto_msg *m);
void conn_reply_ok(struct conn *c, uint32_t id);
void conn_reply_error(struct conn *c, uint32_t id, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
bool conn_flush(struct conn *c);
void conn_settle(struct agent *a, struct conn *c);
void conn_close(struct agent *a, struct conn *c);

/* exec.c: the process table and the requests about processes. A handler that
 * returns true has taken ownership of m. */
bool exec_on_exec(struct agent *a, struct conn *c, struct proto_msg *m);
void exec_on_attach(struct agent *a, struct conn *c, const struct proto_msg *m);
void exec_on_start(struct agent *a, struct conn *c, const struct proto_msg *m);
void exec_on_signal(struct agent *a, struct conn *c, const struct proto_msg *m);
void exec_on_resize(struct agent *a, struct conn *c, const struct proto_msg *m);
void exec_on_sigchld(struct agent *a);
void exec_conn_closed(struct agent *a, struct conn *c);
void exec_maybe_finish(struct agent *a, struct proc *p);

/* privs.c: the OCI process attributes, applied by the child before its exec.
 * Each returns 0 or the PRIVS_* step that failed (errno set). */
enum { PRIVS_RLIMIT = 1, PRIVS_OOM, PRIVS_HOSTNAME, PRIVS_SYSCTL, PRIVS_CAPS, PRIVS_AMBIENT,
       PRIVS_NNP, PRIVS_SECCOMP };
int privs_last_cap(void);                 /* the guest kernel's */
int privs_limits(const struct proto_exec *x);   /* still root, in the guest's namespaces */
int privs_before_ids(const struct proto_exec *x, int last_cap);   /* bounding set */
int privs_after_ids(const struct proto_exec *x, int last_cap);    /* the rest */
const char *privs_step_name(int step);

/* spawn.c: fork + exec with the process spec; fills p->pid and the agent's
 * pipe ends in p->st[i].pipe.fd. err->msg is what START answers. */
int spawn_proc(struct agent *a, struct proc *p, struct rv_err *err);

/* tty.c: a process's terminal. tty_open allocates it before the fork, from
 * the ptmx of root_dir (the process's root, roots_enter), or the agent's
 * own with -1: the master's fds go to p's stdout (and stdin) streams, the
 * slave, three times, to child_fds. tty_master is an open fd of p's master,
 * or -1 once it is closed; tty_resize applies p->rows and p->cols to it. */
int tty_open(struct proc *p, int root_dir, int child_fds[3], struct rv_err *err);
int tty_master(const struct proc *p);
int tty_resize(const struct proc *p, struct rv_err *err);

/* relay.c: moving bytes; every function but relay_prepare may free the proc
 * (tail calls only). relay_prepare allocates a wanted stream's buffer. */
int relay_prepare(struct stream *s, struct rv_err *err);
void relay_start(struct agent *a, struct stream *s);
void relay_on_conn(struct agent *a, struct stream *s);
void relay_on_pipe(struct agent *a, struct stream *s);
void relay_drop_stdin(struct agent *a, struct stream *s);
void relay_release(struct agent *a, struct stream *s);
void relay_conn_lost(struct agent *a, struct stream *s);

/* procs.c: the container as a whole, the agent's descendants (SIGNAL_ALL,
 * PS, STATS), by their pids in the agent's PID namespace (those in a
 * container's own too); each handler answers on c. */
void procs_on_signal_all(const struct agent *a, struct conn *c, const struct proto_msg *m);
void procs_on_ps(struct conn *c, const struct proto_msg *m);
void procs_on_stats(struct conn *c, const struct proto_msg *m);

/* mounts.c: PID 1's root and filesystems, and console; MOUNT and MKNOD
 * requests, made where roots_run says, or held back (roots_hold: then
 * mounts_on_mount returns true, owning m). mounts_apply does one MOUNT's
 * work (no PROTO_MOUNT_ROOT) in the caller's mount namespace. */
void mounts_setup(void);
void console_setup(void);
bool mounts_on_mount(struct agent *a, struct conn *c, struct proto_msg *m);
void mounts_on_mknod(struct agent *a, struct conn *c, const struct proto_msg *m);
int mounts_apply(const struct proto_mount *m, struct rv_err *err);

/* roots.c: containers' roots (PROTO_MOUNT_ROOT), each a mount namespace of
 * its own that the agent never enters: a child does the work there.
 * roots_mount makes one for m (its namespace, m mounted there). roots_run
 * runs fn(arg) where path is: in a child in the namespace of the root it
 * is or lies below (EBUSY once that root is pivoted), else in the agent.
 * roots_hold takes m (returns 1; 0: not one for it) when it waits for the
 * init of a root with a PID namespace (PROTO_MOUNT_PIDNS). roots_enter is
 * for a process of x's root: pivots its namespace into it the first time,
 * and says in *j where the process goes. roots_init_started records j's
 * init (pid, and an fd of its PID namespace, which the root takes);
 * roots_reaped hears of every child reaped. roots_within: path is dir or
 * lies below it. */
struct root;
struct root_join {
	struct root *root;
	const char *path;             /* the root, as the agent names it */
	int mntns;                    /* its mount namespace, pivoted (the agent's fd) */
	int dir;                      /* its "/" (O_PATH, the agent's fd) */
	int pidns;                    /* the init's PID namespace to join (the agent's fd), -1:
				       * the agent's own */
	bool new_pidns;               /* the init: PID 1 of a namespace of its own */
	const struct proto_msg *mounts;   /* new_pidns: the MOUNTs held back for it */
	unsigned nmounts;
};
typedef int (*roots_fn)(const void *arg, struct rv_err *err);
int roots_mount(struct agent *a, const struct proto_mount *m, struct rv_err *err);
int roots_run(const struct agent *a, const char *path, roots_fn fn, const void *arg,
	      struct rv_err *err);
int roots_hold(struct agent *a, struct proto_msg *m, struct rv_err *err);
int roots_enter(struct agent *a, const struct proto_exec *x, struct root_join *j,
		struct rv_err *err);
void roots_init_started(struct root *r, pid_t pid, int pidns);
void roots_reaped(struct agent *a, pid_t pid);
bool roots_within(const char *path, const char *dir);
void roots_release(struct agent *a);

/* pidns.c: PID namespaces of containers' roots. pidns_setup opens the
 * agent's own. pidns_fork is fork() for a process of j's root (j NULL: of
 * none), which it puts where j says: 0 in the child, its pid in the agent,
 * -1 with err. pidns_forkable says whether the agent may fork at all.
 * pidns_open opens pid's PID namespace. pidns_replay, in the init, pivoted,
 * makes the MOUNTs held back for it. */
void pidns_setup(struct agent *a);
void pidns_release(struct agent *a);
int pidns_forkable(const struct agent *a, struct rv_err *err);
pid_t pidns_fork(struct agent *a, const struct root_join *j, struct rv_err *err);
int pidns_open(pid_t pid, struct rv_err *err);
int pidns_replay(const struct root_join *j, struct rv_err *err);

/* netif.c: lo up in PID 1's (the guest's) network namespace; NETCONF */
void netif_loopback_up(void);
void netif_on_netconf(struct conn *c, const struct proto_msg *m);

/* reseed.c: RESEED. In a guest (a->guest), the seed into the kernel's pool,
 * a CRNG reseed and the wall clock, then RESEED_REPLY with the guest's CID;
 * in --unix mode only the reply, with CID 0. (server.c wipes the seed from
 * the frame and from m.) */
void reseed_on_reseed(const struct agent *a, struct conn *c, const struct proto_msg *m);

/* userns.c: *fd is the user namespace x's maps ask for (made on first use,
 * then kept: the agent's until userns_release), -1 when x asks for none. */
int userns_get(struct agent *a, const struct proto_exec *x, int *fd, struct rv_err *err);
void userns_release(struct agent *a);

/* devnodes.c: the standard device nodes and links in the directory target
 * (a container's fresh /dev). On failure, errno and *what name the entry.
 * devnodes_make makes d's node as name in dir, with its exact mode and
 * owner, replacing a node or FIFO there (anything else: EEXIST); *step
 * names what failed. */
int devnodes_populate(const char *target, const char **what);
int devnodes_make(int dir, const char *name, const struct proto_mknod *d, const char **step);

#endif
