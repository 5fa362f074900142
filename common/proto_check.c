/* The protocol's value checks (common/proto.h): what the decoder refuses and
 * the encoder will not make, beyond the layout proto.c walks. */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#include "common/netaddr.h"
#include "common/proto_priv.h"

/* Figures that cannot be: the host prints them, divides by clk_tck. */
static int check_figures(const struct codec *c, const struct proto_msg *m, int code)
{
	const struct proto_stats *s = &m->stats;
	uint32_t want = s->ncpus < PROTO_MAX_CPUS ? s->ncpus : PROTO_MAX_CPUS;

	if (m->type == PROTO_PS_REPLY && m->ps.clk_tck == 0)
		return codec_fail(c, code, "clk_tck is 0");
	if (m->type == PROTO_PS_REPLY && m->ps.nprocs > m->ps.total)
		return codec_fail(c, code, "%u processes listed, but only %u found", m->ps.nprocs,
			          m->ps.total);
	if (m->type != PROTO_STATS_REPLY)
		return 0;
	if (s->ncpus == 0 || s->npercpu != want)
		return codec_fail(c, code, "%u per-CPU figures for %u CPUs (want %u)", s->npercpu,
			          s->ncpus, want);
	if (s->cpu_user_ns > s->cpu_total_ns || s->cpu_kernel_ns > s->cpu_total_ns - s->cpu_user_ns)
		return codec_fail(c, code, "cpu user %llu + kernel %llu ns are more than the total %llu",
			          (unsigned long long)s->cpu_user_ns, (unsigned long long)s->cpu_kernel_ns,
			          (unsigned long long)s->cpu_total_ns);
	if (s->mem_used_bytes > s->mem_total_bytes || s->mem_cache_bytes > s->mem_total_bytes)
		return codec_fail(c, code, "memory used %llu or cache %llu is more than the total %llu",
			          (unsigned long long)s->mem_used_bytes,
			          (unsigned long long)s->mem_cache_bytes,
			          (unsigned long long)s->mem_total_bytes);
	return 0;
}

/* A terminal's streams are its keyboard (stdin) and its screen (stdout,
 * where the process's stderr shows too); a size is a terminal's only. */
static int check_terminal(const struct codec *c, const struct proto_exec *x, int code)
{
	bool tty = x->flags & PROTO_EXEC_TTY;

	if (x->flags & ~PROTO_EXEC_FLAGS)
		return codec_fail(c, code, "flags 0x%x has unknown bits (known: 0x%x)", x->flags,
			          PROTO_EXEC_FLAGS);
	if (tty && (x->streams & PROTO_WANT_STDERR))
		return codec_fail(c, code, "a process on a terminal has no stderr stream");
	if (tty && !(x->streams & PROTO_WANT_STDOUT))
		return codec_fail(c, code, "a process on a terminal needs its stdout stream");
	if (!tty && (x->rows || x->cols))
		return codec_fail(c, code, "a terminal size (%ux%u) without a terminal", x->rows,
			          x->cols);
	return 0;
}

/* "net.ipv4.ip_forward=1": a key that names a file below /proc/sys and
 * nothing else (no '/', no "..", no empty component). */
static bool sysctl_ok(const char *kv)
{
	const char *eq = strchr(kv, '=');
	size_t n = eq ? (size_t)(eq - kv) : 0;

	if (n == 0 || n > PROTO_MAX_SYSCTL_KEY_BYTES || kv[0] == '.' || kv[n - 1] == '.')
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = kv[i];
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '.';
		if (!ok || (ch == '.' && kv[i + 1] == '.'))
			return false;
	}
	return true;
}

/* A user namespace map as the kernel takes it: whole lines, none empty or
 * past the last id, at most PROTO_MAX_ID_MAP_LINES (overlaps are the
 * kernel's to refuse, with EINVAL the agent reports). */
static int check_id_map(const struct codec *c, const char *name, uint32_t n, const uint32_t *v,
			int code)
{
	if (n % 3 || n > 3 * PROTO_MAX_ID_MAP_LINES || (n && !v))
		return codec_fail(c, code, "%s: %u values, not up to %u (inside, outside, count) "
				  "lines", name, n, PROTO_MAX_ID_MAP_LINES);
	for (uint32_t i = 0; i < n; i += 3)
		if (v[i + 2] == 0 || (uint64_t)v[i] + v[i + 2] >= (1ull << 32) ||
		    (uint64_t)v[i + 1] + v[i + 2] >= (1ull << 32))
			return codec_fail(c, code, "%s[%u]: %u ids from %u or %u: empty, or past the "
					  "last id", name, i / 3, v[i + 2], v[i], v[i + 1]);
	return 0;
}

/* The OCI process attributes, in the ranges the kernel takes them. Runs
 * with check_paths: decoding fills the arrays on its second walk. */
static int check_attrs(const struct codec *c, const struct proto_exec *x, int code)
{
	uint32_t seen = 0;

	if (x->umask > 0777)
		return codec_fail(c, code, "umask 0%o is more than 0777", x->umask);
	if (x->oom_score_adj < -1000 || x->oom_score_adj > 1000 ||
	    (x->oom_score_adj && !(x->flags & PROTO_EXEC_OOM_SCORE)))
		return codec_fail(c, code, "oom_score_adj %d: -1000..1000, and only with its flag",
			          x->oom_score_adj);
	if (x->ncaps != 0 && x->ncaps != PROTO_CAP_SETS)
		return codec_fail(c, code, "caps: %u sets, want 0 or %u", x->ncaps, PROTO_CAP_SETS);
	if (x->nrlimit_vals % 3)
		return codec_fail(c, code, "rlimits: %u values, not resource/soft/hard triples",
			          x->nrlimit_vals);
	if ((x->seccomp_flags & ~PROTO_SECCOMP_FLAGS) || (x->seccomp_flags && !x->nseccomp))
		return codec_fail(c, code, "seccomp_flags 0x%x: unknown bits, or no filter",
				  x->seccomp_flags);
	if ((x->nrlimit_vals && !x->rlimit_vals) || (x->ncaps && !x->caps) ||
	    (x->nsysctls && !x->sysctls) || (x->nseccomp && !x->seccomp))
		return codec_fail(c, code, "rlimits, caps or sysctls are NULL, but counted");
	if (!x->nuid_map != !x->ngid_map)
		return codec_fail(c, code, "uid_map and gid_map: both or neither");
	if (check_id_map(c, "uid_map", x->nuid_map, x->uid_map, code) < 0 ||
	    check_id_map(c, "gid_map", x->ngid_map, x->gid_map, code) < 0)
		return -1;
	for (uint32_t i = 0; i < x->nsysctls; i++)
		if (!sysctl_ok(x->sysctls[i]))
			return codec_fail(c, code, "sysctls[%u] '%.64s': want key=value, the key "
				          "of [A-Za-z0-9_.-] with no '..', at most %u bytes", i,
				          x->sysctls[i], PROTO_MAX_SYSCTL_KEY_BYTES);
	for (uint32_t i = 0; i < x->nrlimit_vals; i += 3) {
		uint64_t res = x->rlimit_vals[i];
		if (res >= PROTO_MAX_RLIMITS || (seen & (1u << res)))
			return codec_fail(c, code, "rlimits[%u]: resource %llu unknown or repeated", i / 3,
				          (unsigned long long)res);
		seen |= 1u << res;
		if (x->rlimit_vals[i + 1] > x->rlimit_vals[i + 2])
			return codec_fail(c, code, "rlimits[%u]: soft limit over the hard one", i / 3);
	}
	return 0;
}

static int check_mknod(const struct codec *c, const struct proto_mknod *x, int code)
{
	if (x->kind != 'c' && x->kind != 'b' && x->kind != 'p')
		return codec_fail(c, code, "kind %u is none of 'c', 'b', 'p'", x->kind);
	if (x->mode > 07777)
		return codec_fail(c, code, "mode 0%o is more than 07777", x->mode);
	if (x->major > PROTO_MAX_DEV_MAJOR || x->minor > PROTO_MAX_DEV_MINOR ||
	    (x->kind == 'p' && (x->major || x->minor)))
		return codec_fail(c, code, "device %u:%u: beyond %u:%u, or given for a FIFO", x->major,
				  x->minor, PROTO_MAX_DEV_MAJOR, PROTO_MAX_DEV_MINOR);
	return 0;
}

/* Every line of a NETCONF as common/netaddr parses it: the agent then has
 * only the kernel's answers to handle. */
static int check_netconf(const struct codec *c, const struct proto_netconf *x, int code)
{
	uint8_t mac[6];
	struct nl_addr a;
	struct nl_route r;

	if (!x->mac || net_parse_mac(x->mac, mac) < 0)
		return codec_fail(c, code, "mac '%.32s' is not six hex bytes with ':'",
				  x->mac ? x->mac : "");
	if (x->mtu && (x->mtu < 68 || x->mtu > 65535))
		return codec_fail(c, code, "mtu %u is not 68..65535", x->mtu);
	if (x->naddrs > PROTO_MAX_NET_ADDRS || x->nroutes > PROTO_MAX_NET_ROUTES)
		return codec_fail(c, code, "%u addresses and %u routes: at most %u and %u", x->naddrs,
				  x->nroutes, PROTO_MAX_NET_ADDRS, PROTO_MAX_NET_ROUTES);
	for (uint32_t i = 0; x->addrs && i < x->naddrs; i++)
		if (net_parse_cidr(x->addrs[i], &a) < 0)
			return codec_fail(c, code, "addrs[%u] '%.64s' is not ADDRESS/PREFIX", i,
					  x->addrs[i]);
	for (uint32_t i = 0; x->routes && i < x->nroutes; i++)
		if (net_parse_route(x->routes[i], &r) < 0)
			return codec_fail(c, code, "routes[%u] '%.96s' is none of 'default via GW', "
					  "'DST/LEN via GW', 'DST/LEN'", i, x->routes[i]);
	return 0;
}

/* mount(2) takes one propagation type a call. */
static bool propagation_ok(uint32_t p)
{
	uint32_t type = p & ~(uint32_t)MS_REC;

	return p == 0 || type == MS_PRIVATE || type == MS_SLAVE || type == MS_SHARED ||
	       type == MS_UNBINDABLE;
}

/* ROOT takes no other opt but PIDNS, which is a root's only. */
static int check_root_opts(const struct codec *c, uint32_t opts, int code)
{
	if ((opts & PROTO_MOUNT_ROOT) && (opts & ~(PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS)))
		return codec_fail(c, code, "opts 0x%x: a container's root (0x%x) takes no other opt "
				  "than PIDNS (0x%x)", opts, PROTO_MOUNT_ROOT, PROTO_MOUNT_PIDNS);
	if ((opts & PROTO_MOUNT_PIDNS) && !(opts & PROTO_MOUNT_ROOT))
		return codec_fail(c, code, "opts 0x%x: PIDNS (0x%x) is a container root's (0x%x) "
				  "opt", opts, PROTO_MOUNT_PIDNS, PROTO_MOUNT_ROOT);
	return 0;
}

/* Values a receiver would otherwise have to check before using them as
 * indexes or masks; the same rules bind the encoder. */
int proto_check_values(const struct codec *c, const struct proto_msg *m)
{
	int code = c->decode ? EPROTO : EINVAL;
	uint32_t all = PROTO_WANT_STDIN | PROTO_WANT_STDOUT | PROTO_WANT_STDERR;

	if (m->type == PROTO_EXEC && m->exec.argc == 0)
		return codec_fail(c, code, "argv is empty; a process needs at least argv[0]");
	if (m->type == PROTO_EXEC && (m->exec.streams & ~all))
		return codec_fail(c, code, "streams 0x%x has bits beyond stdin, stdout and stderr (0x%x)",
			          m->exec.streams, all);
	if (m->type == PROTO_EXEC && check_terminal(c, &m->exec, code) < 0)
		return -1;
	if (m->type == PROTO_ATTACH && m->attach.stream > PROTO_STDERR)
		return codec_fail(c, code, "stream %u is none of stdin (0), stdout (1), stderr (2)",
			          m->attach.stream);
	if (m->type == PROTO_MKNOD && check_mknod(c, &m->mknod, code) < 0)
		return -1;
	if (m->type == PROTO_SIGNAL_ALL &&
	    (m->signal_all.signo == 0 || m->signal_all.signo > PROTO_MAX_SIGNO))
		return codec_fail(c, code, "signal %u is not one of 1..%u", m->signal_all.signo,
			          PROTO_MAX_SIGNO);
	return check_figures(c, m, code);
}

/* Paths a receiver would otherwise resolve against its own cwd. Decoding,
 * this runs once the strings are in the arena. */
int proto_check_paths(const struct codec *c, const struct proto_msg *m)
{
	int code = c->decode ? EPROTO : EINVAL;
	const char *root = m->type == PROTO_EXEC ? m->exec.root :
			   m->type == PROTO_MKNOD ? m->mknod.root : NULL;
	const char *target = m->type == PROTO_MOUNT ? m->mount.target :
			     m->type == PROTO_MKNOD ? m->mknod.target : NULL;

	if (m->type == PROTO_NETCONF && check_netconf(c, &m->netconf, code) < 0)
		return -1;
	if (root && (root[0] || m->type == PROTO_MKNOD) && root[0] != '/')
		return codec_fail(c, code, "root '%.64s' is not an absolute path", root);
	if (m->type == PROTO_EXEC && (m->exec.flags & PROTO_EXEC_INIT) && !(root && root[0]))
		return codec_fail(c, code, "INIT (flag 0x%x) without a root: an init is a container "
				  "root's", PROTO_EXEC_INIT);
	if (m->type == PROTO_EXEC && m->exec.path && m->exec.path[0] && m->exec.path[0] != '/')
		return codec_fail(c, code, "path '%.64s' is neither \"\" nor an absolute path",
				  m->exec.path);
	/* Its arrays, which decoding fills on the same walk as the strings. */
	if (m->type == PROTO_EXEC && check_attrs(c, &m->exec, code) < 0)
		return -1;
	if ((m->type == PROTO_MOUNT || m->type == PROTO_MKNOD) && (!target || target[0] != '/'))
		return codec_fail(c, code, "target '%.64s' is not an absolute path",
			          target ? target : "");
	if (m->type == PROTO_MOUNT && (m->mount.opts & ~PROTO_MOUNT_OPTS))
		return codec_fail(c, code, "opts 0x%x has unknown bits (known: 0x%x)", m->mount.opts,
			          PROTO_MOUNT_OPTS);
	if (m->type == PROTO_MOUNT && check_root_opts(c, m->mount.opts, code) < 0)
		return -1;
	if (m->type == PROTO_MOUNT && !propagation_ok(m->mount.propagation))
		return codec_fail(c, code, "propagation 0x%x: want 0 or one of private, slave, shared, "
				  "unbindable (maybe recursive)", m->mount.propagation);
	return 0;
}

bool proto_id_map_outside(const uint32_t *map, uint32_t n, uint32_t id, uint32_t *outside)
{
	for (uint32_t i = 0; i + 2 < n; i += 3) {
		if (id >= map[i] && (uint64_t)id < (uint64_t)map[i] + map[i + 2]) {
			*outside = map[i + 1] + (id - map[i]);
			return true;
		}
	}
	return false;
}
