/* The host side of the agent protocol (common/proto.h): run one process in the
 * guest with the caller's stdio and get its exit status back. Transport-blind:
 * a dial callback opens a fresh stream connection to the agent's control port,
 * a vsock connection through the VMM's muxer in a VM, a Unix socket in tests. */
#ifndef RV_AGENT_CLIENT_H
#define RV_AGENT_CLIENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/proto.h"

/* Returns a connected, blocking stream fd (O_CLOEXEC), or -1 with err. An
 * err->code of ECONNREFUSED, ECONNRESET or ENOENT means "not up yet": redialled. */
typedef int (*agent_dial_fn)(void *ctx, struct rv_err *err);

struct agent_client {
	agent_dial_fn dial;
	void *ctx;
	unsigned connect_timeout_ms;   /* keep redialling a not-yet-listening agent this long,
					* every 10 ms (0: one try) */
	/* Optional. Once set, a write to a host fd that a signal interrupts gives
	 * up (that output is dropped): the VMM sets it at teardown and signals the
	 * thread, so a host reader that stopped reading cannot hold the VM up. */
	const atomic_bool *cancel;
	/* agent_session_open: MOUNT, MKNOD, NETCONF and SHUTDOWN go on this one
	 * connection, in turn, instead of a connection (dial, HELLO, close)
	 * each: a container's twenty-odd mounts cost that many round trips to
	 * the guest, not four times as many. */
	bool in_session;
	int session_fd;
};

/* The OCI process attributes the agent applies before the exec (protocol
 * v5). All zero: umask 022 (runc's default), the caps the uid gives, no
 * limits, oom_score_adj and hostname left as they are. */
struct agent_attrs {
	bool has_umask;
	uint32_t umask;
	bool no_new_privs;
	bool has_oom_score_adj;
	int32_t oom_score_adj;         /* -1000..1000 */
	bool has_caps;
	uint64_t caps[PROTO_CAP_SETS]; /* bounding, effective, inheritable, permitted, ambient */
	uint32_t nrlimits;
	uint64_t rlimits[3 * PROTO_MAX_RLIMITS];   /* resource (RLIMIT_*), soft, hard */
	const char *hostname;          /* NULL: leave it */
	const char *domainname;        /* NULL: leave it */
	const char *const *sysctls;    /* "key=value" (nsysctls of them), linux.sysctl */
	uint32_t nsysctls;
	const uint64_t *seccomp;       /* linux.seccomp compiled (nseccomp insns), or NULL */
	uint32_t nseccomp, seccomp_flags;
	/* The container's user namespace (linux.uidMappings, gidMappings) as
	 * (inside, outside, count) triples, nuid_map/ngid_map u32 each; 0: none. */
	const uint32_t *uid_map, *gid_map;
	uint32_t nuid_map, ngid_map;
};

struct agent_exec {
	const char *const *argv;       /* NULL-terminated, argv[0] required */
	const char *path;              /* NULL or "": argv[0] is what runs, looked up in the
					* PATH of envp; else the absolute path (inside root)
					* of what runs, argv[0] only its name (an OCI hook) */
	const char *const *envp;       /* NULL-terminated; NULL = the agent's default, PATH
					* (/usr/local/sbin:...:/bin) and HOME=/root */
	const char *root;              /* NULL or "" = the guest's own root; else a container
					* root (a MOUNT with PROTO_MOUNT_ROOT made it): the
					* process runs in its mount namespace, pivoted there */
	const char *cwd;               /* NULL = "/"; inside root when one is set */
	bool init;                     /* the container's init: PID 1 of a PID namespace of its
					* own (root's MOUNT asked for one: PROTO_MOUNT_PIDNS) */
	uint32_t uid, gid;
	const uint32_t *groups;        /* supplementary groups (ngroups of them) */
	uint32_t ngroups;
	int stdin_fd, stdout_fd, stderr_fd;   /* host fds to relay; -1: /dev/null in the guest */
	struct agent_attrs attrs;
	/* On a terminal in the guest (OCI process.terminal): the process's stdin,
	 * stdout and stderr are a guest pty, its controlling terminal, whose line
	 * discipline echoes and turns Ctrl-C (0x03 on stdin_fd) into SIGINT.
	 * stdout_fd (required) gets everything the terminal shows, stderr
	 * included; stderr_fd is ignored. The host fds are typically a host pty's
	 * slave that the caller has put in raw mode; agent_run never touches their
	 * termios. The end of stdin_fd ends the input only: a terminal reads no
	 * EOF from it (send ^D for that); a stdout_fd that fails (its reader is
	 * gone) hangs the terminal up, and the process gets SIGHUP. */
	bool tty;
	uint16_t rows, cols;           /* its size to start with; 0, 0 = the kernel's default */
	/* Optional: told the exec id and guest pid once the process runs, so
	 * another thread can agent_signal() it. Called on agent_run's thread
	 * before the relay starts: it must not block. */
	void (*started)(void *arg, uint32_t exec_id, uint32_t guest_pid);
	void *started_arg;
	/* Optional: told the exec id once the process is prepared in the guest
	 * and its streams attached, right before before_start: from then on
	 * agent_resize() may size its terminal (before the start, the size it
	 * starts with; `runvm create` ... `start` may see the console resized in
	 * between). Must not block. */
	void (*prepared)(void *arg, uint32_t exec_id);
	void *prepared_arg;
	/* Optional: called once the process is prepared in the guest and its
	 * streams attached, before it is started; it may block (`runvm create`
	 * holds the process here until `start`). An error ends agent_run with
	 * that error, the process never started. */
	int (*before_start)(void *arg, struct rv_err *err);
	void *before_start_arg;
};

struct agent_status {
	bool signaled;
	int code;                      /* exit code when !signaled */
	int signo;                     /* signal when signaled */
};

/* Runs x in the guest: EXEC, ATTACH streams, START, relays stdio both ways
 * until the process has exited and its output has arrived, then fills st.
 * Blocking; safe to call from many threads at once (exec ids are random and a
 * clash is retried, so separate processes can share one agent too). A process
 * that cannot be started is an error with the guest's errno ("exec 'x' in the
 * guest: No such file or directory"); a connection lost mid-run is an error
 * ("lost the agent connection before 'x' exited"), never a hang.
 *
 * The host fds are never made nonblocking (they may be a shared terminal);
 * output is written to them with blocking writes. The caller must ignore
 * SIGPIPE: a host fd whose reader is gone then fails with EPIPE, and agent_run
 * closes that stream so that the guest process gets SIGPIPE in turn. Sockets
 * are written with MSG_NOSIGNAL. */
int agent_run(const struct agent_client *c, const struct agent_exec *x, struct agent_status *st,
	      struct rv_err *err);

/* Sends a signal to a running process started by agent_run (by its exec id);
 * ETIMEDOUT after AGENT_QUERY_TIMEOUT_MS without an answer. */
int agent_signal(const struct agent_client *c, uint32_t exec_id, int signo, struct rv_err *err);

/* Sets the size of the terminal of a process agent_run started with tty (by
 * its exec id); the guest kernel sends SIGWINCH to the terminal's foreground
 * process group. Errors: ENOENT when there is no such exec (it has ended),
 * EINVAL when it has no terminal, ESRCH when its terminal is closed already,
 * ETIMEDOUT as for the queries below. */
int agent_resize(const struct agent_client *c, uint32_t exec_id, uint16_t rows, uint16_t cols,
		 struct rv_err *err);

/* *s becomes a copy of c whose one-request calls (below) share one
 * connection; agent_session_close closes it. Not for another thread: the
 * requests of a session go in turn. */
int agent_session_open(const struct agent_client *c, struct agent_client *s, struct rv_err *err);
void agent_session_close(struct agent_client *s);

/* Mounts in the guest, as mount(2) with these arguments would (fstype "" or
 * NULL for a bind, data NULL for none; common/proto.h, struct proto_mount, says
 * how the agent applies a bind's options). target is an absolute guest path;
 * the agent creates it when missing. The guest's failure comes back as an
 * error with its errno ("bind '/x' on /y: ... in the guest: No such file or
 * directory"). */
int agent_mount(const struct agent_client *c, const char *source, const char *target,
		const char *fstype, uint32_t flags, const char *data, struct rv_err *err);
/* The same with PROTO_MOUNT_* opts: IF_EXISTS (a missing target is skipped)
 * or MASK (hide target as OCI maskedPaths do). */
int agent_mount_opts(const struct agent_client *c, const char *source, const char *target,
		     const char *fstype, uint32_t flags, const char *data, uint32_t opts,
		     struct rv_err *err);
/* The whole MOUNT, propagation too; NULL strings are sent as "". */
int agent_mount_msg(const struct agent_client *c, const struct proto_mount *m, struct rv_err *err);

/* A device node in the guest (OCI linux.devices), resolved inside d->root;
 * a node or FIFO already there gives way, anything else is an error. */
int agent_mknod(const struct agent_client *c, const struct proto_mknod *d, struct rv_err *err);
/* NETCONF: the guest's interface with n->mac gets n's MTU, addresses and routes. */
int agent_netconf(const struct agent_client *c, const struct proto_netconf *n, struct rv_err *err);

/* Asks the agent to power the VM off. Returns once the agent acknowledged. */
int agent_shutdown(const struct agent_client *c, struct rv_err *err);

/* --- the container as a whole (runvm kill --all, ps, events --stats) ---------------
 * "The container's processes" are the agent's descendants: in the guest every
 * process but PID 1 (the agent) and the kernel's threads. Each call waits at
 * most AGENT_QUERY_TIMEOUT_MS for the agent's answer (ETIMEDOUT): a paused VM
 * or a stuck agent cannot hold the caller up for ever. */
#define AGENT_QUERY_TIMEOUT_MS 30000u
#define AGENT_SIGNO_MAX 64
#define AGENT_PS_MAX 4096u             /* = PROTO_MAX_PROCS */
#define AGENT_COMM_BYTES 16u
#define AGENT_MAX_CPUS 64u

/* Sends signo (1..AGENT_SIGNO_MAX, else EINVAL before anything is sent) to
 * every process of the container. As PID 1 the agent uses kill(-1, signo),
 * which no process can fork its way out of; the host-mode test agent signals
 * its own descendants instead. */
int agent_signal_all(const struct agent_client *c, int signo, struct rv_err *err);

/* One process of the container. Ticks are the guest's clock ticks, clk_tck
 * a second (struct agent_ps_info). comm and cmdline are the guest's words:
 * control bytes in them arrive as '?' so they can be printed as they are. */
struct agent_proc {
	uint32_t pid, ppid, uid;       /* uid: effective */
	uint64_t utime_ticks, stime_ticks;
	uint64_t start_ticks;          /* after the guest booted */
	char state;                    /* R, S, D, Z, T, ... */
	char comm[AGENT_COMM_BYTES];
	char *cmdline;                 /* args joined by spaces, at most 4 KiB (less when
					* the list is long); "" for a zombie */
};

/* The guest's clock, for a `ps -ef` table: TIME = (utime + stime) / clk_tck;
 * a process started (uptime_ns / 1e9 - start_ticks / clk_tck) seconds before
 * the list was made, so STIME is now minus that (boot_time_s + start_ticks /
 * clk_tck is the same by the guest's own wall clock); C = 100 * TIME / age. */
struct agent_ps_info {
	uint32_t clk_tck;              /* >= 1 */
	uint64_t boot_time_s;          /* the guest's wall clock at boot */
	uint64_t uptime_ns;            /* the guest's time since boot when it listed */
	uint32_t total;                /* processes found; *n is less past AGENT_PS_MAX */
};

/* Lists the container's processes, ascending pid, into *procs (*n of them;
 * agent_ps_free releases them). info may be NULL. */
int agent_ps(const struct agent_client *c, struct agent_proc **procs, size_t *n,
	     struct agent_ps_info *info, struct rv_err *err);
void agent_ps_free(struct agent_proc *procs, size_t n);

/* The guest's usage, for runc's stats: cpu.usage.{total,percpu,kernel,user}
 * in ns, memory.usage.{usage,limit}, pids.current. CPU time is busy time
 * (idle and iowait left out): total = user (with nice) + kernel (with irq and
 * softirq) + steal. */
struct agent_stats {
	uint64_t cpu_total_ns, cpu_user_ns, cpu_kernel_ns;
	uint32_t ncpus;                /* online; percpu_ns holds the first AGENT_MAX_CPUS,
					* in the guest's /proc/stat order (cpu0, cpu1, ...) */
	uint64_t percpu_ns[AGENT_MAX_CPUS];
	uint64_t mem_total_bytes;
	uint64_t mem_used_bytes;       /* MemTotal - MemAvailable */
	uint64_t mem_cache_bytes;      /* Cached + Buffers */
	uint32_t pids_current;         /* the container's processes */
};

int agent_stats(const struct agent_client *c, struct agent_stats *st, struct rv_err *err);

/* --- clones of a saved VM (vmm/agent_reseed.c) -------------------------------------
 * Every clone of one memory image wakes up with the same guest CRNG state and
 * the wall clock of the moment the image was taken. RESEED adds seed (the
 * host's getrandom() bytes, credited in full) to the guest kernel's entropy
 * pool and has its CRNG reseed at once, then sets the guest's CLOCK_REALTIME
 * to realtime_ns (0: leaves it). *guest_cid is the vsock CID the guest itself
 * sees (0: none, as for the host-mode test agent, which touches neither the
 * host's RNG nor its clock). A failure in the guest is an error naming the
 * call and its errno: the clone is not fit to run. Timed as the queries are
 * (ETIMEDOUT after AGENT_QUERY_TIMEOUT_MS). */
int agent_reseed(const struct agent_client *c, const uint8_t seed[PROTO_RESEED_SEED_BYTES],
		 uint64_t realtime_ns, uint32_t *guest_cid, struct rv_err *err);

/* The exit status a host process should end with for st (runc's rules):
 * the code, or 128 + signal. */
int agent_status_to_exit_code(const struct agent_status *st);

#endif
