/* libFuzzer target for the agent protocol decoder (common/proto.c): the bytes
 * a hostile guest can send the host. Beyond "no crash, no leak, no UB" it
 * checks that the codec agrees with itself:
 *   - a frame followed by extra bytes is refused (decode takes exactly one);
 *   - anything the decoder accepts, the encoder encodes back byte for byte;
 *   - that re-encoded frame decodes to the same message. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "common/netaddr.h"
#include "common/proto.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_strv(uint32_t n, const char **a, const char **b)
{
	for (uint32_t i = 0; i < n; i++)
		CHECK(strcmp(a[i], b[i]) == 0);
	CHECK(a[n] == NULL && b[n] == NULL);
}

static void check_exec_same(const struct proto_exec *a, const struct proto_exec *b)
{
	CHECK(a->exec_id == b->exec_id && a->streams == b->streams);
	CHECK(a->uid == b->uid && a->gid == b->gid);
	CHECK(strcmp(a->root, b->root) == 0 && (a->root[0] == '\0' || a->root[0] == '/'));
	CHECK(strcmp(a->cwd, b->cwd) == 0);
	CHECK(a->argc == b->argc && a->argc >= 1);
	check_strv(a->argc, a->argv, b->argv);
	CHECK(a->envc == b->envc);
	check_strv(a->envc, a->envp, b->envp);
	CHECK(a->ngroups == b->ngroups);
	CHECK(memcmp(a->groups, b->groups, a->ngroups * sizeof(uint32_t)) == 0);
	CHECK(a->flags == b->flags && (a->flags & ~PROTO_EXEC_FLAGS) == 0);
	CHECK(a->rows == b->rows && a->cols == b->cols);
	CHECK(a->umask == b->umask && a->umask <= 0777);
	CHECK(a->oom_score_adj == b->oom_score_adj && a->oom_score_adj >= -1000 &&
	      a->oom_score_adj <= 1000);
	CHECK(a->ncaps == b->ncaps && (a->ncaps == 0 || a->ncaps == PROTO_CAP_SETS));
	CHECK(memcmp(a->caps, b->caps, a->ncaps * sizeof(uint64_t)) == 0);
	CHECK(a->nrlimit_vals == b->nrlimit_vals && a->nrlimit_vals % 3 == 0);
	CHECK(memcmp(a->rlimit_vals, b->rlimit_vals, a->nrlimit_vals * sizeof(uint64_t)) == 0);
	for (uint32_t i = 0; i < a->nrlimit_vals; i += 3)   /* what setrlimit() is given */
		CHECK(a->rlimit_vals[i] < PROTO_MAX_RLIMITS &&
		      a->rlimit_vals[i + 1] <= a->rlimit_vals[i + 2]);
	CHECK(strcmp(a->hostname, b->hostname) == 0 &&
	      strlen(a->hostname) <= PROTO_MAX_HOSTNAME_BYTES);
	CHECK(strcmp(a->domainname, b->domainname) == 0);
	CHECK(a->nsysctls == b->nsysctls);
	CHECK(a->seccomp_flags == b->seccomp_flags && (a->seccomp_flags & ~PROTO_SECCOMP_FLAGS) == 0);
	CHECK(a->nseccomp == b->nseccomp && a->nseccomp <= PROTO_MAX_SECCOMP_INSNS);
	CHECK(memcmp(a->seccomp, b->seccomp, a->nseccomp * sizeof(uint64_t)) == 0);
	/* What the agent writes to uid_map and gid_map: whole, non-empty lines. */
	CHECK(a->nuid_map == b->nuid_map && a->ngid_map == b->ngid_map);
	CHECK(a->nuid_map % 3 == 0 && a->ngid_map % 3 == 0 && !a->nuid_map == !a->ngid_map);
	CHECK(a->nuid_map <= 3 * PROTO_MAX_ID_MAP_LINES && a->ngid_map <= 3 * PROTO_MAX_ID_MAP_LINES);
	CHECK(memcmp(a->uid_map, b->uid_map, a->nuid_map * sizeof(uint32_t)) == 0);
	CHECK(memcmp(a->gid_map, b->gid_map, a->ngid_map * sizeof(uint32_t)) == 0);
	for (uint32_t i = 0; i < a->nuid_map; i += 3)
		CHECK(a->uid_map[i + 2] > 0);
	/* What the agent execs apart from argv[0]: none, or an absolute path. */
	CHECK(strcmp(a->path, b->path) == 0 && strlen(a->path) <= PROTO_MAX_PATH_BYTES &&
	      (a->path[0] == '\0' || a->path[0] == '/'));
	check_strv(a->nsysctls, a->sysctls, b->sysctls);
	for (uint32_t i = 0; i < a->nsysctls; i++)   /* a key names a file below /proc/sys */
		CHECK(!strchr(a->sysctls[i], '/') || strchr(a->sysctls[i], '/') >
		      strchr(a->sysctls[i], '='));
	/* The container's init only ever in a container's root. */
	CHECK(!(a->flags & PROTO_EXEC_INIT) || a->root[0] == '/');
	if (a->flags & PROTO_EXEC_TTY)   /* a terminal: stdout, no stderr */
		CHECK((a->streams & PROTO_WANT_STDOUT) && !(a->streams & PROTO_WANT_STDERR));
	else
		CHECK(a->rows == 0 && a->cols == 0);
}

static void check_mount_same(const struct proto_mount *a, const struct proto_mount *b)
{
	CHECK(strcmp(a->source, b->source) == 0 && strcmp(a->target, b->target) == 0);
	CHECK(a->target[0] == '/');
	CHECK(strcmp(a->fstype, b->fstype) == 0 && a->flags == b->flags);
	CHECK(strcmp(a->data, b->data) == 0);
	CHECK(a->opts == b->opts && (a->opts & ~PROTO_MOUNT_OPTS) == 0);
	/* A root takes no other option but its PID namespace; that one no mount but a root. */
	CHECK(!(a->opts & PROTO_MOUNT_ROOT) ||
	      (a->opts & ~(uint32_t)(PROTO_MOUNT_ROOT | PROTO_MOUNT_PIDNS)) == 0);
	CHECK(!(a->opts & PROTO_MOUNT_PIDNS) || (a->opts & PROTO_MOUNT_ROOT));
	/* What mount(2) is given as a propagation: one type, maybe MS_REC. */
	uint32_t type = a->propagation & ~(uint32_t)MS_REC;
	CHECK(a->propagation == b->propagation);
	CHECK(a->propagation == 0 || type == MS_PRIVATE || type == MS_SHARED || type == MS_SLAVE ||
	      type == MS_UNBINDABLE);
}

static void check_ps_same(const struct proto_ps *a, const struct proto_ps *b)
{
	CHECK(a->clk_tck == b->clk_tck && a->clk_tck >= 1);
	CHECK(a->boot_time_s == b->boot_time_s && a->uptime_ns == b->uptime_ns);
	CHECK(a->total == b->total && a->nprocs == b->nprocs && a->nprocs <= a->total);
	CHECK(a->nprocs <= PROTO_MAX_PROCS);
	for (uint32_t i = 0; i < a->nprocs; i++) {
		const struct proto_proc *x = &a->procs[i], *y = &b->procs[i];
		CHECK(x->pid == y->pid && x->ppid == y->ppid && x->uid == y->uid);
		CHECK(x->state == y->state && x->state < 128);
		CHECK(x->utime_ticks == y->utime_ticks && x->stime_ticks == y->stime_ticks);
		CHECK(x->start_ticks == y->start_ticks);
		CHECK(strcmp(x->comm, y->comm) == 0 && strlen(x->comm) <= PROTO_MAX_COMM_BYTES);
		CHECK(strcmp(x->cmdline, y->cmdline) == 0);
		CHECK(strlen(x->cmdline) <= PROTO_MAX_CMDLINE_BYTES);
	}
}

static void check_stats_same(const struct proto_stats *a, const struct proto_stats *b)
{
	CHECK(a->cpu_total_ns == b->cpu_total_ns && a->cpu_user_ns == b->cpu_user_ns);
	CHECK(a->cpu_kernel_ns == b->cpu_kernel_ns);
	CHECK(a->cpu_user_ns + a->cpu_kernel_ns <= a->cpu_total_ns);
	CHECK(a->ncpus == b->ncpus && a->ncpus >= 1 && a->npercpu == b->npercpu);
	CHECK(a->npercpu == (a->ncpus < PROTO_MAX_CPUS ? a->ncpus : PROTO_MAX_CPUS));
	CHECK(memcmp(a->percpu_ns, b->percpu_ns, a->npercpu * sizeof(uint64_t)) == 0);
	CHECK(a->mem_total_bytes == b->mem_total_bytes && a->mem_used_bytes == b->mem_used_bytes);
	CHECK(a->mem_cache_bytes == b->mem_cache_bytes);
	CHECK(a->mem_used_bytes <= a->mem_total_bytes && a->mem_cache_bytes <= a->mem_total_bytes);
	CHECK(a->pids_current == b->pids_current);
}

static void check_netconf_same(const struct proto_netconf *a, const struct proto_netconf *b)
{
	uint8_t mac[6];
	struct nl_addr addr;
	struct nl_route route;

	CHECK(strcmp(a->mac, b->mac) == 0 && net_parse_mac(a->mac, mac) == 0);
	CHECK(a->mtu == b->mtu && (a->mtu == 0 || (a->mtu >= 68 && a->mtu <= 65535)));
	CHECK(a->naddrs == b->naddrs && a->naddrs <= PROTO_MAX_NET_ADDRS);
	CHECK(a->nroutes == b->nroutes && a->nroutes <= PROTO_MAX_NET_ROUTES);
	for (uint32_t i = 0; i < a->naddrs; i++)
		CHECK(strcmp(a->addrs[i], b->addrs[i]) == 0 && net_parse_cidr(a->addrs[i], &addr) == 0);
	for (uint32_t i = 0; i < a->nroutes; i++)
		CHECK(strcmp(a->routes[i], b->routes[i]) == 0 &&
		      net_parse_route(a->routes[i], &route) == 0);
}

static void check_same(const struct proto_msg *a, const struct proto_msg *b)
{
	CHECK(a->type == b->type && a->id == b->id);
	switch (a->type) {
	case PROTO_OK:
	case PROTO_SHUTDOWN:
	case PROTO_PS:
	case PROTO_STATS:
		break;
	case PROTO_HELLO:
		CHECK(a->hello.version == b->hello.version);
		break;
	case PROTO_ERROR:
		CHECK(a->error.code == b->error.code);
		CHECK(strcmp(a->error.message, b->error.message) == 0);
		break;
	case PROTO_EXEC:
		check_exec_same(&a->exec, &b->exec);
		break;
	case PROTO_ATTACH:
		CHECK(a->attach.exec_id == b->attach.exec_id && a->attach.stream == b->attach.stream);
		break;
	case PROTO_START:
		CHECK(a->start.exec_id == b->start.exec_id);
		break;
	case PROTO_STARTED:
		CHECK(a->started.pid == b->started.pid);
		break;
	case PROTO_SIGNAL:
		CHECK(a->signal.exec_id == b->signal.exec_id && a->signal.signo == b->signal.signo);
		break;
	case PROTO_EXIT:
		CHECK(a->exit.exec_id == b->exit.exec_id && a->exit.code == b->exit.code &&
		      a->exit.signo == b->exit.signo);
		break;
	case PROTO_MOUNT:
		check_mount_same(&a->mount, &b->mount);
		break;
	case PROTO_SIGNAL_ALL:
		CHECK(a->signal_all.signo == b->signal_all.signo);
		CHECK(a->signal_all.signo >= 1 && a->signal_all.signo <= PROTO_MAX_SIGNO);
		break;
	case PROTO_PS_REPLY:
		check_ps_same(&a->ps, &b->ps);
		break;
	case PROTO_STATS_REPLY:
		check_stats_same(&a->stats, &b->stats);
		break;
	case PROTO_RESIZE:
		CHECK(a->resize.exec_id == b->resize.exec_id && a->resize.rows == b->resize.rows &&
		      a->resize.cols == b->resize.cols);
		break;
	case PROTO_MKNOD:   /* what mknod(2) is given: a known kind, a permission mode */
		CHECK(strcmp(a->mknod.target, b->mknod.target) == 0 && a->mknod.target[0] == '/');
		CHECK(strcmp(a->mknod.root, b->mknod.root) == 0 && a->mknod.root[0] == '/');
		CHECK(a->mknod.kind == b->mknod.kind && a->mknod.major == b->mknod.major &&
		      a->mknod.minor == b->mknod.minor && a->mknod.mode == b->mknod.mode &&
		      a->mknod.uid == b->mknod.uid && a->mknod.gid == b->mknod.gid);
		CHECK(a->mknod.kind == 'c' || a->mknod.kind == 'b' || a->mknod.kind == 'p');
		CHECK(a->mknod.mode <= 07777 && a->mknod.major <= PROTO_MAX_DEV_MAJOR &&
		      a->mknod.minor <= PROTO_MAX_DEV_MINOR);
		break;
	case PROTO_NETCONF:   /* each line as common/netaddr parses it, the agent's input */
		check_netconf_same(&a->netconf, &b->netconf);
		break;
	case PROTO_RESEED:   /* the seed whole, byte for byte (any value: no strings) */
		CHECK(memcmp(a->reseed.seed, b->reseed.seed, PROTO_RESEED_SEED_BYTES) == 0);
		CHECK(a->reseed.realtime_ns == b->reseed.realtime_ns);
		break;
	case PROTO_RESEED_REPLY:
		CHECK(a->reseed_reply.cid == b->reseed_reply.cid);
		break;
	default:
		CHECK(!"decoded an unknown type");
	}
}

/* Re-encode m; the frame must be the input again and decode to m again. */
static void check_reencode(const struct proto_msg *m, const uint8_t *frame, size_t len)
{
	struct rv_err err;
	struct proto_msg again;
	uint8_t *buf = NULL;
	size_t blen = 0, cap = 0;

	CHECK(proto_encode(m, &buf, &blen, &cap, &err) == 0);
	CHECK(blen == len && memcmp(buf, frame, len) == 0);
	CHECK(proto_decode(buf, blen, &again, &err) == 0);
	check_same(m, &again);
	proto_msg_free(&again);
	proto_msg_free(&again);   /* freeing twice is allowed */
	free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct rv_err err;
	struct proto_msg m;

	long n = proto_frame_check(data, size, &err);
	if (n < 0) {
		CHECK(proto_decode(data, size, &m, &err) == -1 && m.arena == NULL);
		return 0;
	}
	if (n == 0)
		return 0;
	CHECK((size_t)n <= size && (size_t)n <= PROTO_HDR_BYTES + PROTO_MAX_PAYLOAD_BYTES);
	if ((size_t)n < size)
		CHECK(proto_decode(data, size, &m, &err) == -1 && m.arena == NULL);
	if (proto_decode(data, (size_t)n, &m, &err) < 0) {
		CHECK(m.arena == NULL && err.msg[0] != '\0');
		return 0;
	}
	check_reencode(&m, data, (size_t)n);
	proto_msg_free(&m);
	return 0;
}
