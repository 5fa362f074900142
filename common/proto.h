/* The host <-> agent protocol (DESIGN §4): one definition, one encoder and one
 * strict decoder, used by the VMM and by the in-guest agent alike.
 *
 * Wire format, all integers little-endian:
 *   frame   = header payload
 *   header  = u32 payload_len, u16 type, u16 reserved (must be 0), u32 id
 *   payload = the fields of `type`, in order, nothing after them:
 *     u16     2 bytes
 *     u32     4 bytes
 *     u64     8 bytes
 *     str     u32 length, then that many bytes, none of them NUL
 *     strv    u32 count, then count strs
 *     u32v    u32 count, then count u32s
 *     u64v    u32 count, then count u64s
 *     procv   u32 count, then count processes (struct proto_proc, in its order)
 *     bytes   u32 length, then that many bytes of any value; each such field
 *             has one length it must be (RESEED's seed: PROTO_RESEED_SEED_BYTES)
 *
 * Every connection to the agent (vsock port PROTO_AGENT_PORT) starts with
 * HELLO from the host; the agent answers HELLO with the version it speaks, or
 * ERROR. A control connection then carries requests (id chosen by the host,
 * echoed in the reply). A stream connection sends ATTACH, gets OK, and from
 * then on carries raw bytes of one stdio stream of one process.
 *
 * Exec: EXEC -> OK; ATTACH each wanted stream on its own connection; START ->
 * STARTED (or ERROR with the exec errno); later the agent sends EXIT, with the
 * request id of the EXEC, once the process is reaped and its stdout and stderr
 * have been written out and shut down.
 *
 * Terminal: an EXEC with PROTO_EXEC_TTY runs its process on a terminal the
 * agent allocates in the guest (its stdin, stdout and stderr, and its
 * controlling terminal). The stdin stream carries the keyboard's bytes to
 * the terminal (Ctrl-C is the byte 0x03), the stdout stream everything the
 * terminal shows; such an EXEC wants stdout and no stderr. RESIZE sets the
 * terminal's size (the process gets SIGWINCH) -> OK, or ERROR: ENOENT for
 * an unknown exec id, EINVAL for a process without a terminal, ESRCH once
 * the terminal is closed. Before START it sets the size the terminal starts
 * with.
 *
 * Mount: MOUNT -> OK, or ERROR with the errno of what failed. The container's
 * root and volumes (DESIGN §5) are mounts the host asks for before its EXEC.
 * The root is a MOUNT with PROTO_MOUNT_ROOT: the agent gives it a mount
 * namespace of its own, where every later MOUNT or MKNOD below it is made,
 * and an EXEC whose root it is runs there, pivoted into it.
 *
 * The container as a whole (`runvm kill --all`, `ps`, `events --stats`):
 * SIGNAL_ALL -> OK; PS -> PS_REPLY; STATS -> STATS_REPLY. "The container's
 * processes" are the agent's descendants: in the guest, every process but
 * PID 1 (the agent) and the kernel's threads.
 *
 * Clones (many VMs started from one saved memory image, and the VM that
 * image was taken from): RESEED -> RESEED_REPLY, or ERROR naming the call
 * that failed and its errno (the host then counts the clone as failed).
 * The agent adds the seed to the guest kernel's entropy pool, credited in
 * full, and has the kernel reseed its CRNG at once, so that no two clones
 * go on drawing the same random numbers; then, unless realtime_ns is 0,
 * sets the guest's wall clock, which the image froze. The host-mode test
 * agent (--unix) touches neither the host's RNG nor its clock: it only
 * replies, with cid 0.
 *
 * Version 2 added MOUNT and EXEC's root; version 3 SIGNAL_ALL, PS and STATS;
 * version 4 EXEC's flags and terminal size (after its groups) and RESIZE;
 * version 5 EXEC's OCI process attributes after the size: umask,
 * oom_score_adj, capabilities, rlimits, the hostname, domainname,
 * sysctls and a seccomp filter; and MOUNT's opts after its data; version 6
 * EXEC's user namespace maps after the seccomp filter, MOUNT's propagation
 * after its opts, and MKNOD; version 7 NETCONF; version 8 MOUNT's ROOT opt,
 * EXEC's root then naming such a root (its mount namespace, pivoted into
 * it) where it used to be any directory to chroot into, EXEC's path
 * after the user namespace maps, MOUNT's PIDNS opt (with ROOT) and EXEC's
 * INIT flag; version 9 RESEED and RESEED_REPLY. */
#ifndef RV_PROTO_H
#define RV_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define PROTO_VERSION 9
#define PROTO_AGENT_PORT 1024u          /* agent listens here (guest side) */
#define PROTO_READY_PORT 1024u          /* host port the agent dials once listening */
#define PROTO_HDR_BYTES 12u
#define PROTO_MAX_PAYLOAD_BYTES (256u * 1024)
#define PROTO_MAX_STRV 4096u            /* args, env entries, groups */
#define PROTO_MAX_STR_BYTES (128u * 1024)
#define PROTO_MAX_PATH_BYTES 4095u      /* PATH_MAX less its NUL: EXEC's path */
/* The PATH of a process whose EXEC carries no environment (the agent gives
 * it this one), which runvm create's lookup of the executable also takes. */
#define PROTO_DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define PROTO_MAX_SIGNO 64u             /* Linux's signals are 1..64 */
#define PROTO_MAX_PROCS 4096u           /* PS_REPLY entries */
#define PROTO_MAX_COMM_BYTES 15u        /* the kernel's TASK_COMM_LEN - 1 */
#define PROTO_MAX_CMDLINE_BYTES 4096u
#define PROTO_MAX_CPUS 64u              /* STATS_REPLY per-CPU entries */
/* The fixed part of one PS_REPLY entry on the wire: 4 u32s, 3 u64s and two
 * string lengths; the reply's own fields before the entries. */
#define PROTO_PROC_FIXED_BYTES 48u
#define PROTO_PS_HEAD_BYTES 28u
_Static_assert(PROTO_PS_HEAD_BYTES +
	       PROTO_MAX_PROCS * (PROTO_PROC_FIXED_BYTES + PROTO_MAX_COMM_BYTES) <=
	       PROTO_MAX_PAYLOAD_BYTES, "PROTO_MAX_PROCS entries fit a frame, cmdlines left out");

enum proto_type {
	PROTO_HELLO = 1,     /* both ways: version */
	PROTO_OK,            /* reply: no fields */
	PROTO_ERROR,         /* reply: errno, message */
	PROTO_EXEC,          /* host: prepare a process (not started yet) */
	PROTO_ATTACH,        /* host, first on a stream connection: exec id, stream */
	PROTO_START,         /* host: exec id */
	PROTO_STARTED,       /* agent: guest pid */
	PROTO_SIGNAL,        /* host: exec id, signal */
	PROTO_EXIT,          /* agent: exec id, how it ended */
	PROTO_SHUTDOWN,      /* host: power the VM off (agent replies OK first) */
	PROTO_MOUNT,         /* host: mount a filesystem in the guest */
	PROTO_SIGNAL_ALL,    /* host: signal every process of the container */
	PROTO_PS,            /* host: list the container's processes */
	PROTO_PS_REPLY,      /* agent: the list */
	PROTO_STATS,         /* host: cpu, memory and pids usage */
	PROTO_STATS_REPLY,   /* agent: the figures */
	PROTO_RESIZE,        /* host: exec id, rows, cols of its terminal */
	PROTO_MKNOD,         /* host: make a device node (OCI linux.devices) */
	PROTO_NETCONF,       /* host: address the guest's network interface */
	PROTO_RESEED,        /* host: fresh entropy and the wall clock for a clone */
	PROTO_RESEED_REPLY,  /* agent: its vsock CID */
	PROTO_TYPE_MAX = PROTO_RESEED_REPLY,
};

enum proto_stream { PROTO_STDIN = 0, PROTO_STDOUT = 1, PROTO_STDERR = 2 };

/* Which stdio streams the host will attach; an unattached one is /dev/null. */
#define PROTO_WANT_STDIN  (1u << PROTO_STDIN)
#define PROTO_WANT_STDOUT (1u << PROTO_STDOUT)
#define PROTO_WANT_STDERR (1u << PROTO_STDERR)

/* EXEC's flags. */
#define PROTO_EXEC_TTY    (1u << 0)   /* on a terminal: wants stdout, no stderr */
#define PROTO_EXEC_NO_NEW_PRIVS (1u << 1)   /* prctl(PR_SET_NO_NEW_PRIVS) before exec */
#define PROTO_EXEC_OOM_SCORE (1u << 2)      /* set oom_score_adj */
/* The container's init: PID 1 of a PID namespace of its own. Only with a
 * root whose MOUNT had PROTO_MOUNT_PIDNS (else ERROR EINVAL at START), once
 * per root (EBUSY for another); it makes the MOUNTs that root held back
 * before its exec (a failure is START's ERROR). */
#define PROTO_EXEC_INIT (1u << 3)
#define PROTO_EXEC_FLAGS (PROTO_EXEC_TTY | PROTO_EXEC_NO_NEW_PRIVS | PROTO_EXEC_OOM_SCORE | \
			  PROTO_EXEC_INIT)

/* EXEC's capability sets, in this order (OCI process.capabilities). */
enum { PROTO_CAP_BOUNDING, PROTO_CAP_EFFECTIVE, PROTO_CAP_INHERITABLE, PROTO_CAP_PERMITTED,
       PROTO_CAP_AMBIENT, PROTO_CAP_SETS };
#define PROTO_CAP_MAX 63u               /* a capability is a bit of a u64 */
#define PROTO_MAX_RLIMITS 16u           /* Linux's RLIM_NLIMITS */
#define PROTO_MAX_HOSTNAME_BYTES 64u    /* HOST_NAME_MAX */

struct proto_exec {
	uint32_t exec_id;            /* chosen by the host, unique per VM */
	uint32_t streams;            /* PROTO_WANT_* */
	uint32_t uid, gid;
	const char *root;            /* "" = none: the agent's own root and mount namespace;
				      * else the target of a MOUNT with PROTO_MOUNT_ROOT:
				      * the process runs in that root's mount namespace,
				      * pivoted into it (ERROR ENOENT at START for another) */
	const char *cwd;             /* "" = agent's cwd ("/"); inside root when one is set */
	uint32_t argc;               /* >= 1 */
	const char **argv;
	uint32_t envc;
	const char **envp;
	uint32_t ngroups;            /* supplementary groups */
	const uint32_t *groups;
	uint32_t flags;              /* PROTO_EXEC_* */
	uint16_t rows, cols;         /* the terminal's size; 0, 0 = the kernel's default.
				      * Both 0 without PROTO_EXEC_TTY */
	uint32_t umask;              /* at most 0777 */
	int32_t oom_score_adj;       /* -1000..1000, applied with PROTO_EXEC_OOM_SCORE, else 0 */
	uint32_t ncaps;              /* 0: the process keeps what its uid gives it; else
				      * PROTO_CAP_SETS masks, bit N = capability N */
	const uint64_t *caps;
	uint32_t nrlimit_vals;       /* 3 per limit: resource (RLIMIT_*), soft, hard (soft <=
				      * hard; RLIM_INFINITY is ~0), each resource once */
	const uint64_t *rlimit_vals;
	const char *hostname;        /* "" = leave it; else set the guest's */
	const char *domainname;      /* "" = leave it; else set the guest's NIS domain */
	uint32_t nsysctls;           /* "key=value" (net.ipv4.ip_forward=1): written to
				      * /proc/sys/net/ipv4/ip_forward before the exec */
	const char **sysctls;
	uint32_t seccomp_flags;      /* PROTO_SECCOMP_FLAGS bits; 0 without a filter */
	uint32_t nseccomp;           /* 0: no filter; else the classic BPF program the
				      * process runs under, one struct sock_filter per u64
				      * (code | jt << 16 | jf << 24 | k << 32) */
	const uint64_t *seccomp;
	uint32_t nuid_map, ngid_map; /* both 0: the agent's user namespace. Else the
				      * process runs in a user namespace with these maps,
				      * 3 u32 per line as /proc/PID/uid_map has them
				      * (inside, outside, count); uid and gid are inside */
	const uint32_t *uid_map, *gid_map;
	const char *path;            /* what is executed: "" = argv[0], looked up in the
				      * PATH of envp; else an absolute path (inside root),
				      * and argv[0] is only the name the process sees (an
				      * OCI hook's path and args[0]) */
};

/* mount(2)'s arguments. A bind (flags & MS_BIND) ignores fstype and data and
 * applies MS_RDONLY, MS_NOSUID, MS_NODEV and MS_NOEXEC by a remount, as the
 * kernel needs; the agent creates target (a directory, or an empty file for
 * a bind of a file) when it is missing. */
struct proto_mount {
	const char *source;
	const char *target;          /* absolute guest path, no ".." component */
	const char *fstype;          /* "" for a bind */
	uint32_t flags;              /* MS_* bits of <sys/mount.h> */
	const char *data;            /* filesystem options, "" for none */
	uint32_t opts;               /* PROTO_MOUNT_* */
	uint32_t propagation;        /* 0, or one of MS_PRIVATE, MS_SLAVE, MS_SHARED,
				      * MS_UNBINDABLE, maybe with MS_REC: applied to
				      * target once mounted */
};

/* MOUNT's opts. IF_EXISTS: a missing target is no error and nothing is
 * mounted (nor created). MASK (OCI linux.maskedPaths): target, when it
 * exists, is hidden: /dev/null bound over a file, an empty read-only tmpfs
 * over a directory; source, fstype, flags and data are ignored. DEVICES:
 * once mounted (a tmpfs for a container's /dev), target gets the standard
 * device nodes (null, zero, full, random, urandom, tty, all 0666) and the
 * links fd, stdin, stdout, stderr and ptmx (to pts/ptmx).
 * ROOT (alone, or with PIDNS): target becomes a container's root, as runc
 * makes one. The agent makes a mount namespace for it, a copy of the
 * guest's with every mount a slave, and mounts target there (a bind of it
 * onto itself, or an overlay); every later MOUNT whose target, or MKNOD
 * whose root, is target or below it is made in that namespace, never in the
 * agent's. The first process an EXEC with this root starts pivots the
 * namespace into it (pivot_root, the old root detached), then gives "/" the
 * propagation (linux.rootfsPropagation: a shared root could not be
 * pivoted); from then on the root's mounts are fixed (MOUNT or MKNOD below
 * it: ERROR EBUSY). Target must not be "/", nor be or lie below another
 * root (EINVAL, EBUSY).
 * PIDNS (with ROOT only; OCI linux.namespaces' "pid" without a path): the
 * root's processes get a PID namespace of their own, as runc's do. Its
 * init is the EXEC with PROTO_EXEC_INIT: PID 1 there, so that from outside
 * only SIGKILL and SIGSTOP reach it unless it handles the signal, and its
 * end kills every other process in the namespace. A proc mount shows the
 * PID namespace of whoever mounts it: a MOUNT of a "proc" below the root,
 * and every later one whose target is that mount's target or lies below
 * it (maskedPaths and readonlyPaths in /proc), is answered OK and held
 * back for the init, which makes them, in order, before its exec, inside
 * the pivoted root (paths lose the root's prefix); a failure there is its
 * START's ERROR. A held-back bind's source must lie in the root (EINVAL:
 * nothing else is in sight of the init). Other EXECs with this root run,
 * before the init starts (createContainer and startContainer hooks), in
 * the agent's PID namespace, with /proc not yet mounted; while it runs, in
 * its namespace; once it has ended, START is ERROR ESRCH. */
#define PROTO_MOUNT_IF_EXISTS (1u << 0)
#define PROTO_MOUNT_MASK      (1u << 1)
#define PROTO_MOUNT_DEVICES   (1u << 2)
#define PROTO_MOUNT_ROOT      (1u << 3)
#define PROTO_MOUNT_PIDNS     (1u << 4)
#define PROTO_MOUNT_OPTS (PROTO_MOUNT_IF_EXISTS | PROTO_MOUNT_MASK | PROTO_MOUNT_DEVICES | \
			  PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS)
#define PROTO_MAX_SYSCTL_KEY_BYTES 256u
#define PROTO_MAX_SECCOMP_INSNS 4096u   /* the kernel's BPF_MAXINSNS */
#define PROTO_MAX_ID_MAP_LINES 340u     /* the kernel's limit per map */
#define PROTO_SECCOMP_FLAGS 7u          /* SECCOMP_FILTER_FLAG_TSYNC, LOG, SPEC_ALLOW */

/* The outside id a user namespace map (EXEC's uid_map or gid_map: n values,
 * 3 a line) gives inside id; false when no line maps it. */
bool proto_id_map_outside(const uint32_t *map, uint32_t n, uint32_t id, uint32_t *outside);

/* A device node of the guest's kernel (OCI linux.devices: the number names
 * the guest's device of that kind, never the host's). The agent resolves
 * path inside root as the container will (symlinks stay inside root), makes
 * the directories above it, replaces a device node or FIFO already there
 * (anything else there is an error), and gives the node mode (the umask
 * does not apply) and owner. MKNOD -> OK or ERROR. */
struct proto_mknod {
	const char *root;            /* absolute guest path: the container's root (made in
				      * its mount namespace when it is, or lies below, the
				      * target of a MOUNT with PROTO_MOUNT_ROOT) */
	const char *target;          /* absolute path inside root, no ".." component */
	uint32_t kind;               /* 'c' (character), 'b' (block) or 'p' (FIFO) */
	uint32_t major, minor;       /* 0 for a FIFO */
	uint32_t mode;               /* permission bits, at most 07777 */
	uint32_t uid, gid;
};
#define PROTO_MAX_DEV_MAJOR 4095u       /* the kernel's MAJOR() is 12 bits */
#define PROTO_MAX_DEV_MINOR 1048575u    /* and MINOR() 20 */

/* The guest's interface with this MAC (its virtio-net device) gets the
 * MTU (0: the device's), is brought up, and gets the addresses and routes,
 * written as ip(8) writes them (common/netaddr.h): "10.0.0.2/24",
 * "default via 10.0.0.1", "10.1.0.0/16". NETCONF -> OK or ERROR. */
struct proto_netconf {
	const char *mac;             /* "52:54:00:12:34:56" */
	uint32_t mtu;                /* 0, or 68..65535 */
	uint32_t naddrs;
	const char **addrs;
	uint32_t nroutes;
	const char **routes;
};
#define PROTO_MAX_NET_ADDRS 16u
#define PROTO_MAX_NET_ROUTES 32u

/* RESEED. The seed is the host's getrandom() bytes: credited to the
 * guest's pool as 8 bits a byte. */
#define PROTO_RESEED_SEED_BYTES 64u
struct proto_reseed {
	uint8_t seed[PROTO_RESEED_SEED_BYTES];   /* a bytes field of exactly this length */
	uint64_t realtime_ns;        /* the host's CLOCK_REALTIME; 0 = leave the guest's clock */
};

/* One process, as the guest's /proc/PID/{stat,status,cmdline} describe it. */
struct proto_proc {
	uint32_t pid, ppid;
	uint32_t uid;                /* effective */
	uint32_t state;              /* an ASCII letter: R, S, D, Z, T, ... */
	uint64_t utime_ticks, stime_ticks;
	uint64_t start_ticks;        /* after boot */
	const char *comm;            /* at most PROTO_MAX_COMM_BYTES */
	const char *cmdline;         /* args joined by spaces, at most PROTO_MAX_CMDLINE_BYTES,
				      * cut short to fit the frame; "" for a zombie */
};

/* Ticks are the guest's clock ticks (clk_tck a second); TIME is
 * (utime + stime) / clk_tck, a process's age uptime - start / clk_tck. */
struct proto_ps {
	uint32_t clk_tck;            /* sysconf(_SC_CLK_TCK), >= 1 */
	uint64_t boot_time_s;        /* the guest's wall clock at boot (btime), seconds */
	uint64_t uptime_ns;          /* the guest's CLOCK_BOOTTIME when the list was made */
	uint32_t total;              /* processes found; nprocs is fewer past PROTO_MAX_PROCS */
	uint32_t nprocs;
	const struct proto_proc *procs;   /* ascending pid */
};

/* Busy time (idle and iowait left out): total = user + kernel + steal, where
 * user counts nice and kernel counts irq and softirq. */
struct proto_stats {
	uint64_t cpu_total_ns, cpu_user_ns, cpu_kernel_ns;
	uint32_t ncpus;              /* online, >= 1 */
	uint32_t npercpu;            /* min(ncpus, PROTO_MAX_CPUS) */
	const uint64_t *percpu_ns;   /* busy time of each online CPU, in /proc/stat's order */
	uint64_t mem_total_bytes;
	uint64_t mem_used_bytes;     /* MemTotal - MemAvailable */
	uint64_t mem_cache_bytes;    /* Cached + Buffers */
	uint32_t pids_current;       /* the container's processes, as PS counts them */
};

struct proto_msg {
	enum proto_type type;
	uint32_t id;
	union {
		struct { uint32_t version; } hello;
		struct { uint32_t code; const char *message; } error;
		struct proto_exec exec;
		struct { uint32_t exec_id, stream; } attach;
		struct { uint32_t exec_id; } start;
		struct { uint32_t pid; } started;
		struct { uint32_t exec_id, signo; } signal;
		/* exit: signo != 0 means killed by that signal, else code is the status */
		struct { uint32_t exec_id, code, signo; } exit;
		struct proto_mount mount;
		struct { uint32_t signo; } signal_all;   /* 1..PROTO_MAX_SIGNO */
		struct proto_ps ps;                      /* PS_REPLY */
		struct proto_stats stats;                /* STATS_REPLY */
		struct { uint32_t exec_id; uint16_t rows, cols; } resize;
		struct proto_mknod mknod;
		struct proto_netconf netconf;
		struct proto_reseed reseed;
		/* RESEED_REPLY: the guest's own view of its vsock CID (IOCTL_VM_SOCKETS_
		 * GET_LOCAL_CID), a clone's kernel may still hold the template's; 0: none */
		struct { uint32_t cid; } reseed_reply;
	};
	void *arena;                 /* decoder-owned strings and arrays */
};

/* Appends one whole frame for m to *buf (grown with realloc; *len and *cap track it).
 * Fails (EMSGSIZE) when the payload would exceed PROTO_MAX_PAYLOAD_BYTES or a
 * field breaks a limit above: the encoder never makes what the decoder refuses. */
int proto_encode(const struct proto_msg *m, uint8_t **buf, size_t *len, size_t *cap,
		 struct rv_err *err);

/* Looks at the bytes buffered so far. Returns the whole frame's length when
 * one is complete, 0 when more bytes are needed, -1 (err set) when the header
 * is already invalid: oversized length, unknown type, reserved bits set. */
long proto_frame_check(const uint8_t *buf, size_t len, struct rv_err *err);

/* Decodes exactly one complete frame of `len` bytes (as proto_frame_check
 * measured). Strict: every field present, no trailing bytes, strings without
 * NUL, counts within the limits. On success m owns an arena: proto_msg_free. */
int proto_decode(const uint8_t *frame, size_t len, struct proto_msg *m, struct rv_err *err);
void proto_msg_free(struct proto_msg *m);

/* Blocking helpers for a connected stream socket. proto_recv returns 0 with a
 * message, 1 on a clean EOF before any byte of a frame, -1 on error (a frame
 * cut short by EOF is an error). */
int proto_send(int fd, const struct proto_msg *m, struct rv_err *err);
int proto_recv(int fd, struct proto_msg *m, struct rv_err *err);

const char *proto_type_name(uint32_t type);

#endif
