/* The host <-> agent protocol codec (common/proto.h).
 *
 * One walk over a message's fields, walk_fields(), serves both directions, so
 * the layout of every type is written down once. Each direction walks twice:
 *   encode: measure and check the limits (out == NULL), then write;
 *   decode: check everything and measure the arena (arena == NULL), then fill
 *           the arena. The second walk sees the same bytes and cannot fail;
 *           the paths are checked after it, once they are strings.
 *
 * Length arithmetic cannot overflow: the encoder stops as soon as the payload
 * passes PROTO_MAX_PAYLOAD_BYTES, every string is at most PROTO_MAX_STR_BYTES,
 * and the decoder only reserves arena bytes for counts and lengths it has
 * already checked against the limits and against the bytes left in the frame
 * (string copies, groups, u64s and process entries take at most 1.25 *
 * payload, plus two pointer arrays of at most PROTO_MAX_STRV + 1 entries). */
#include "common/proto.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/proto_priv.h"

#define FIELD_NAME_BYTES 48

static const char *const type_names[] = {
	[PROTO_HELLO] = "HELLO",     [PROTO_OK] = "OK",         [PROTO_ERROR] = "ERROR",
	[PROTO_EXEC] = "EXEC",       [PROTO_ATTACH] = "ATTACH", [PROTO_START] = "START",
	[PROTO_STARTED] = "STARTED", [PROTO_SIGNAL] = "SIGNAL", [PROTO_EXIT] = "EXIT",
	[PROTO_SHUTDOWN] = "SHUTDOWN", [PROTO_MOUNT] = "MOUNT", [PROTO_SIGNAL_ALL] = "SIGNAL_ALL",
	[PROTO_PS] = "PS",           [PROTO_PS_REPLY] = "PS_REPLY", [PROTO_STATS] = "STATS",
	[PROTO_STATS_REPLY] = "STATS_REPLY", [PROTO_RESIZE] = "RESIZE", [PROTO_MKNOD] = "MKNOD",
	[PROTO_NETCONF] = "NETCONF", [PROTO_RESEED] = "RESEED",
	[PROTO_RESEED_REPLY] = "RESEED_REPLY",
};

static bool type_known(uint32_t type)
{
	return type >= PROTO_HELLO && type <= PROTO_TYPE_MAX;
}

const char *proto_type_name(uint32_t type)
{
	return type_known(type) ? type_names[type] : "unknown";
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_le64(const uint8_t *p)
{
	return (uint64_t)get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	put_le32(p, (uint32_t)v);
	put_le32(p + 4, (uint32_t)(v >> 32));
}

/* --- header -------------------------------------------------------------------- */

/* Checks each header field as soon as its bytes are in, so a hostile peer is
 * refused before it has sent a whole header. */
long proto_frame_check(const uint8_t *buf, size_t len, struct rv_err *err)
{
	if (len >= 4 && get_le32(buf) > PROTO_MAX_PAYLOAD_BYTES)
		return rv_failx(err, EMSGSIZE, "frame header: payload of %u bytes, the limit is %u",
				get_le32(buf), PROTO_MAX_PAYLOAD_BYTES);
	if (len >= 6 && !type_known(get_le16(buf + 4)))
		return rv_failx(err, EPROTO, "frame header: unknown message type %u",
				get_le16(buf + 4));
	if (len >= 8 && get_le16(buf + 6) != 0)
		return rv_failx(err, EPROTO, "frame header: reserved field is 0x%04x, it must be 0",
				get_le16(buf + 6));
	if (len < PROTO_HDR_BYTES)
		return 0;
	size_t total = PROTO_HDR_BYTES + (size_t)get_le32(buf);   /* <= 12 + 256 KiB */
	return len < total ? 0 : (long)total;
}

/* --- one walk, both directions ----------------------------------------------------- */


/* Fails with "EXEC frame: ..." (decoding) or "EXEC message: ..." (encoding). */
int codec_fail(const struct codec *c, int code, const char *fmt, ...)
{
	char what[RV_ERR_MSG_BYTES];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return rv_failx(c->err, code, "%s %s: %s", c->type, c->decode ? "frame" : "message", what);
}

/* "argv[3]", or just "cwd" when idx < 0. */
static const char *field_name(char *buf, const char *field, long idx)
{
	if (idx < 0)
		return field;
	snprintf(buf, FIELD_NAME_BYTES, "%s[%ld]", field, idx);
	return buf;
}

static int c_need(struct codec *c, size_t n, const char *field, long idx)
{
	char name[FIELD_NAME_BYTES];

	if (n <= c->left)
		return 0;
	return codec_fail(c, EPROTO, "%s needs %zu bytes, only %zu are left",
		          field_name(name, field, idx), n, c->left);
}

static void c_advance(struct codec *c, size_t n)
{
	c->in += n;
	c->left -= n;
}

/* Encoding: stop as soon as the payload passes the limit. */
static int c_room(struct codec *c, const char *field, long idx)
{
	char name[FIELD_NAME_BYTES];

	if (c->used <= PROTO_MAX_PAYLOAD_BYTES)
		return 0;
	return codec_fail(c, EMSGSIZE, "the payload passes the limit of %u bytes at %s",
		          PROTO_MAX_PAYLOAD_BYTES, field_name(name, field, idx));
}

/* Decoding: room for n bytes in the arena; NULL while measuring. */
static void *c_reserve(struct codec *c, size_t n, size_t align)
{
	size_t at = (c->used + align - 1) & ~(align - 1);

	c->used = at + n;
	return c->arena ? c->arena + at : NULL;
}

static int c_u16(struct codec *c, uint16_t *v, const char *field, long idx)
{
	if (!c->decode) {
		if (c->out)
			put_le16(c->out + c->used, *v);
		c->used += 2;
		return c_room(c, field, idx);
	}
	if (c_need(c, 2, field, idx) < 0)
		return -1;
	*v = get_le16(c->in);
	c_advance(c, 2);
	return 0;
}

static int c_u32(struct codec *c, uint32_t *v, const char *field, long idx)
{
	if (!c->decode) {
		if (c->out)
			put_le32(c->out + c->used, *v);
		c->used += 4;
		return c_room(c, field, idx);
	}
	if (c_need(c, 4, field, idx) < 0)
		return -1;
	*v = get_le32(c->in);
	c_advance(c, 4);
	return 0;
}

static int c_u64(struct codec *c, uint64_t *v, const char *field, long idx)
{
	if (!c->decode) {
		if (c->out)
			put_le64(c->out + c->used, *v);
		c->used += 8;
		return c_room(c, field, idx);
	}
	if (c_need(c, 8, field, idx) < 0)
		return -1;
	*v = get_le64(c->in);
	c_advance(c, 8);
	return 0;
}

static int c_str_encode(struct codec *c, const char *s, uint32_t max, const char *field, long idx)
{
	char name[FIELD_NAME_BYTES];

	if (!s)
		s = "";   /* an unset cwd or message travels as "" */
	size_t n = strnlen(s, (size_t)max + 1);
	uint32_t len = (uint32_t)n;

	if (n > max)
		return codec_fail(c, EMSGSIZE, "%s is over the limit of %u bytes",
			          field_name(name, field, idx), max);
	if (c_u32(c, &len, field, idx) < 0)
		return -1;
	if (c->out)
		memcpy(c->out + c->used, s, n);
	c->used += n;
	return c_room(c, field, idx);
}

/* A str of at most max bytes. */
static int c_str_max(struct codec *c, const char **s, uint32_t max, const char *field, long idx)
{
	char name[FIELD_NAME_BYTES];
	uint32_t n;

	if (!c->decode)
		return c_str_encode(c, *s, max, field, idx);
	if (c_u32(c, &n, field, idx) < 0)
		return -1;
	if (n > max)
		return codec_fail(c, EMSGSIZE, "%s is %u bytes, the limit is %u",
			          field_name(name, field, idx), n, max);
	if (c_need(c, n, field, idx) < 0)
		return -1;
	const uint8_t *nul = memchr(c->in, 0, n);
	if (nul)
		return codec_fail(c, EPROTO, "%s has a NUL byte at offset %td",
			          field_name(name, field, idx), nul - c->in);
	char *d = c_reserve(c, (size_t)n + 1, 1);
	if (d) {
		memcpy(d, c->in, n);
		d[n] = '\0';
	}
	*s = d;
	c_advance(c, n);
	return 0;
}

static int c_str(struct codec *c, const char **s, const char *field, long idx)
{
	return c_str_max(c, s, PROTO_MAX_STR_BYTES, field, idx);
}

/* A bytes field of exactly n bytes, copied into dst (a fixed array of the
 * message, so no arena). The length travels anyway: a sender with another
 * idea of it is refused by name, not misread as the fields after it. */
static int c_bytes(struct codec *c, uint8_t *dst, uint32_t n, const char *field)
{
	uint32_t len = n;

	if (c_u32(c, &len, field, -1) < 0)
		return -1;
	if (!c->decode) {
		if (c->out)
			memcpy(c->out + c->used, dst, n);
		c->used += n;
		return c_room(c, field, -1);
	}
	if (len != n)
		return codec_fail(c, EPROTO, "%s is %u bytes, it must be exactly %u", field, len, n);
	if (c_need(c, n, field, -1) < 0)
		return -1;
	memcpy(dst, c->in, n);
	c_advance(c, n);
	return 0;
}

/* The count of a vector: within max, and (decoding) small enough that its
 * entries of at least min_bytes each fit in what is left. */
static int c_count(struct codec *c, uint32_t *count, uint32_t max, const char *field,
		   size_t min_bytes)
{
	if (c->decode && c_u32(c, count, field, -1) < 0)
		return -1;
	if (*count > max)
		return codec_fail(c, EMSGSIZE, "%s has %u entries, the limit is %u", field, *count, max);
	if (!c->decode)
		return c_u32(c, count, field, -1);
	if ((size_t)*count * min_bytes > c->left)
		return codec_fail(c, EPROTO, "%s has %u entries, but only %zu bytes are left", field,
			          *count, c->left);
	return 0;
}

/* Decoded vectors are also NULL-terminated, ready for execve. */
static int c_strv(struct codec *c, uint32_t *count, const char ***vec, const char *field)
{
	if (c_count(c, count, PROTO_MAX_STRV, field, 4) < 0)
		return -1;
	if (c->decode)
		*vec = c_reserve(c, ((size_t)*count + 1) * sizeof(char *), _Alignof(char *));
	else if (!*vec && *count)
		return codec_fail(c, EINVAL, "%s is NULL, but its count is %u", field, *count);
	for (uint32_t i = 0; i < *count; i++) {
		const char *measured = NULL;
		const char **s = *vec ? &(*vec)[i] : &measured;
		if (!c->decode && !*s)
			return codec_fail(c, EINVAL, "%s[%u] is NULL, but the count is %u", field, i,
				          *count);
		if (c_str(c, s, field, i) < 0)
			return -1;
	}
	if (c->decode && *vec)
		(*vec)[*count] = NULL;
	return 0;
}

static int c_u32v(struct codec *c, uint32_t *count, const uint32_t **vec, const char *field)
{
	uint32_t *v = NULL;

	if (c_count(c, count, PROTO_MAX_STRV, field, 4) < 0)
		return -1;
	if (c->decode)
		*vec = v = c_reserve(c, (size_t)*count * 4, _Alignof(uint32_t));
	else if (!*vec && *count)
		return codec_fail(c, EINVAL, "%s is NULL, but its count is %u", field, *count);
	for (uint32_t i = 0; i < *count; i++) {
		uint32_t x = c->decode ? 0 : (*vec)[i];
		if (c_u32(c, &x, field, i) < 0)
			return -1;
		if (v)
			v[i] = x;
	}
	return 0;
}

static int c_u64v(struct codec *c, uint32_t *count, uint32_t max, const uint64_t **vec,
		  const char *field)
{
	uint64_t *v = NULL;

	if (c_count(c, count, max, field, 8) < 0)
		return -1;
	if (c->decode)
		*vec = v = c_reserve(c, (size_t)*count * 8, _Alignof(uint64_t));
	else if (!*vec && *count)
		return codec_fail(c, EINVAL, "%s is NULL, but its count is %u", field, *count);
	for (uint32_t i = 0; i < *count; i++) {
		uint64_t x = c->decode ? 0 : (*vec)[i];
		if (c_u64(c, &x, field, i) < 0)
			return -1;
		if (v)
			v[i] = x;
	}
	return 0;
}

static int walk_exec(struct codec *c, struct proto_exec *x)
{
	if (c_u32(c, &x->exec_id, "exec_id", -1) < 0 || c_u32(c, &x->streams, "streams", -1) < 0 ||
	    c_u32(c, &x->uid, "uid", -1) < 0 || c_u32(c, &x->gid, "gid", -1) < 0 ||
	    c_str(c, &x->root, "root", -1) < 0 || c_str(c, &x->cwd, "cwd", -1) < 0 ||
	    c_strv(c, &x->argc, &x->argv, "argv") < 0 || c_strv(c, &x->envc, &x->envp, "envp") < 0 ||
	    c_u32v(c, &x->ngroups, &x->groups, "groups") < 0 ||
	    c_u32(c, &x->flags, "flags", -1) < 0 || c_u16(c, &x->rows, "rows", -1) < 0 ||
	    c_u16(c, &x->cols, "cols", -1) < 0 || c_u32(c, &x->umask, "umask", -1) < 0 ||
	    c_u32(c, (uint32_t *)&x->oom_score_adj, "oom_score_adj", -1) < 0 ||
	    c_u64v(c, &x->ncaps, PROTO_CAP_SETS, &x->caps, "caps") < 0 ||
	    c_u64v(c, &x->nrlimit_vals, 3 * PROTO_MAX_RLIMITS, &x->rlimit_vals, "rlimits") < 0 ||
	    c_str_max(c, &x->hostname, PROTO_MAX_HOSTNAME_BYTES, "hostname", -1) < 0 ||
	    c_str_max(c, &x->domainname, PROTO_MAX_HOSTNAME_BYTES, "domainname", -1) < 0 ||
	    c_strv(c, &x->nsysctls, &x->sysctls, "sysctls") < 0 ||
	    c_u32(c, &x->seccomp_flags, "seccomp_flags", -1) < 0 ||
	    c_u64v(c, &x->nseccomp, PROTO_MAX_SECCOMP_INSNS, &x->seccomp, "seccomp") < 0 ||
	    c_u32v(c, &x->nuid_map, &x->uid_map, "uid_map") < 0 ||
	    c_u32v(c, &x->ngid_map, &x->gid_map, "gid_map") < 0 ||
	    c_str_max(c, &x->path, PROTO_MAX_PATH_BYTES, "path", -1) < 0)
		return -1;
	return 0;
}

static int walk_mount(struct codec *c, struct proto_mount *x)
{
	if (c_str(c, &x->source, "source", -1) < 0 || c_str(c, &x->target, "target", -1) < 0 ||
	    c_str(c, &x->fstype, "fstype", -1) < 0 || c_u32(c, &x->flags, "flags", -1) < 0 ||
	    c_str(c, &x->data, "data", -1) < 0 || c_u32(c, &x->opts, "opts", -1) < 0 ||
	    c_u32(c, &x->propagation, "propagation", -1) < 0)
		return -1;
	return 0;
}

static int walk_mknod(struct codec *c, struct proto_mknod *x)
{
	if (c_str(c, &x->root, "root", -1) < 0 || c_str(c, &x->target, "target", -1) < 0 ||
	    c_u32(c, &x->kind, "kind", -1) < 0 ||
	    c_u32(c, &x->major, "major", -1) < 0 || c_u32(c, &x->minor, "minor", -1) < 0 ||
	    c_u32(c, &x->mode, "mode", -1) < 0 || c_u32(c, &x->uid, "uid", -1) < 0 ||
	    c_u32(c, &x->gid, "gid", -1) < 0)
		return -1;
	return 0;
}

static int walk_netconf(struct codec *c, struct proto_netconf *x)
{
	if (c_str(c, &x->mac, "mac", -1) < 0 || c_u32(c, &x->mtu, "mtu", -1) < 0 ||
	    c_strv(c, &x->naddrs, &x->addrs, "addrs") < 0 ||
	    c_strv(c, &x->nroutes, &x->routes, "routes") < 0)
		return -1;
	return 0;
}

static bool is_letter(uint32_t v)
{
	return (v >= 'A' && v <= 'Z') || (v >= 'a' && v <= 'z');
}

/* One entry of a PS_REPLY; its state is checked here, the entries being out
 * of check_values' reach (in the arena only on the second walk). */
static int walk_proc(struct codec *c, struct proto_proc *p, long i)
{
	if (c_u32(c, &p->pid, "procs.pid", i) < 0 || c_u32(c, &p->ppid, "procs.ppid", i) < 0 ||
	    c_u32(c, &p->uid, "procs.uid", i) < 0 || c_u32(c, &p->state, "procs.state", i) < 0 ||
	    c_u64(c, &p->utime_ticks, "procs.utime", i) < 0 ||
	    c_u64(c, &p->stime_ticks, "procs.stime", i) < 0 ||
	    c_u64(c, &p->start_ticks, "procs.start", i) < 0 ||
	    c_str_max(c, &p->comm, PROTO_MAX_COMM_BYTES, "procs.comm", i) < 0 ||
	    c_str_max(c, &p->cmdline, PROTO_MAX_CMDLINE_BYTES, "procs.cmdline", i) < 0)
		return -1;
	if (!is_letter(p->state))
		return codec_fail(c, c->decode ? EPROTO : EINVAL, "procs[%ld].state 0x%x is no letter",
			          i, p->state);
	return 0;
}

static int walk_procs(struct codec *c, struct proto_ps *x)
{
	struct proto_proc *v = NULL;

	if (c_count(c, &x->nprocs, PROTO_MAX_PROCS, "procs", PROTO_PROC_FIXED_BYTES) < 0)
		return -1;
	if (c->decode)
		x->procs = v = c_reserve(c, (size_t)x->nprocs * sizeof(*v), _Alignof(struct proto_proc));
	else if (!x->procs && x->nprocs)
		return codec_fail(c, EINVAL, "procs is NULL, but its count is %u", x->nprocs);
	for (uint32_t i = 0; i < x->nprocs; i++) {
		struct proto_proc scratch = c->decode ? (struct proto_proc){ 0 } : x->procs[i];
		if (walk_proc(c, v ? &v[i] : &scratch, i) < 0)
			return -1;
	}
	return 0;
}

static int walk_ps(struct codec *c, struct proto_ps *x)
{
	if (c_u32(c, &x->clk_tck, "clk_tck", -1) < 0 ||
	    c_u64(c, &x->boot_time_s, "boot_time", -1) < 0 ||
	    c_u64(c, &x->uptime_ns, "uptime", -1) < 0 || c_u32(c, &x->total, "total", -1) < 0)
		return -1;
	return walk_procs(c, x);
}

static int walk_stats(struct codec *c, struct proto_stats *x)
{
	if (c_u64(c, &x->cpu_total_ns, "cpu_total", -1) < 0 ||
	    c_u64(c, &x->cpu_user_ns, "cpu_user", -1) < 0 ||
	    c_u64(c, &x->cpu_kernel_ns, "cpu_kernel", -1) < 0 ||
	    c_u32(c, &x->ncpus, "ncpus", -1) < 0 ||
	    c_u64v(c, &x->npercpu, PROTO_MAX_CPUS, &x->percpu_ns, "percpu") < 0 ||
	    c_u64(c, &x->mem_total_bytes, "mem_total", -1) < 0 ||
	    c_u64(c, &x->mem_used_bytes, "mem_used", -1) < 0 ||
	    c_u64(c, &x->mem_cache_bytes, "mem_cache", -1) < 0 ||
	    c_u32(c, &x->pids_current, "pids_current", -1) < 0)
		return -1;
	return 0;
}

/* The payload layout of every type, in wire order. */
static int walk_fields(struct codec *c, struct proto_msg *m)
{
	switch (m->type) {
	case PROTO_OK:
	case PROTO_SHUTDOWN:
	case PROTO_PS:
	case PROTO_STATS:
		return 0;
	case PROTO_HELLO:
		return c_u32(c, &m->hello.version, "version", -1);
	case PROTO_ERROR:
		return (c_u32(c, &m->error.code, "code", -1) < 0 ||
			c_str(c, &m->error.message, "message", -1) < 0) ? -1 : 0;
	case PROTO_EXEC:
		return walk_exec(c, &m->exec);
	case PROTO_ATTACH:
		return (c_u32(c, &m->attach.exec_id, "exec_id", -1) < 0 ||
			c_u32(c, &m->attach.stream, "stream", -1) < 0) ? -1 : 0;
	case PROTO_START:
		return c_u32(c, &m->start.exec_id, "exec_id", -1);
	case PROTO_STARTED:
		return c_u32(c, &m->started.pid, "pid", -1);
	case PROTO_SIGNAL:
		return (c_u32(c, &m->signal.exec_id, "exec_id", -1) < 0 ||
			c_u32(c, &m->signal.signo, "signo", -1) < 0) ? -1 : 0;
	case PROTO_EXIT:
		return (c_u32(c, &m->exit.exec_id, "exec_id", -1) < 0 ||
			c_u32(c, &m->exit.code, "code", -1) < 0 ||
			c_u32(c, &m->exit.signo, "signo", -1) < 0) ? -1 : 0;
	case PROTO_MOUNT:
		return walk_mount(c, &m->mount);
	case PROTO_MKNOD:
		return walk_mknod(c, &m->mknod);
	case PROTO_NETCONF:
		return walk_netconf(c, &m->netconf);
	case PROTO_RESEED:
		return (c_bytes(c, m->reseed.seed, PROTO_RESEED_SEED_BYTES, "seed") < 0 ||
			c_u64(c, &m->reseed.realtime_ns, "realtime_ns", -1) < 0) ? -1 : 0;
	case PROTO_RESEED_REPLY:
		return c_u32(c, &m->reseed_reply.cid, "cid", -1);
	case PROTO_SIGNAL_ALL:
		return c_u32(c, &m->signal_all.signo, "signo", -1);
	case PROTO_PS_REPLY:
		return walk_ps(c, &m->ps);
	case PROTO_STATS_REPLY:
		return walk_stats(c, &m->stats);
	case PROTO_RESIZE:
		return (c_u32(c, &m->resize.exec_id, "exec_id", -1) < 0 ||
			c_u16(c, &m->resize.rows, "rows", -1) < 0 ||
			c_u16(c, &m->resize.cols, "cols", -1) < 0) ? -1 : 0;
	}
	return codec_fail(c, c->decode ? EPROTO : EINVAL, "unknown message type");
}

/* --- encoder --------------------------------------------------------------------------- */

static int grow(uint8_t **buf, size_t *len, size_t *cap, size_t more, struct rv_err *err)
{
	if (more > SIZE_MAX - *len)
		return rv_failx(err, EMSGSIZE, "frame buffer of %zu bytes cannot grow by %zu",
				*len, more);
	size_t need = *len + more;
	if (need <= *cap)
		return 0;
	size_t ncap = *cap <= SIZE_MAX / 2 ? *cap * 2 : need;
	if (ncap < need)
		ncap = need;
	uint8_t *nbuf = realloc(*buf, ncap);
	if (!nbuf)
		return rv_fail(err, ENOMEM, "grow the frame buffer to %zu bytes", ncap);
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

int proto_encode(const struct proto_msg *m, uint8_t **buf, size_t *len, size_t *cap,
		 struct rv_err *err)
{
	struct proto_msg copy = *m;   /* the walk takes a non-const msg; encoding reads only */
	struct codec c = { .type = proto_type_name(m->type), .err = err };

	if (!type_known(m->type))
		return rv_failx(err, EINVAL, "encode: unknown message type %u", (unsigned)m->type);
	if (proto_check_values(&c, m) < 0 || proto_check_paths(&c, m) < 0 || walk_fields(&c, &copy) < 0)
		return -1;
	size_t payload = c.used;
	if (grow(buf, len, cap, PROTO_HDR_BYTES + payload, err) < 0)
		return -1;
	uint8_t *f = *buf + *len;
	put_le32(f, (uint32_t)payload);
	put_le16(f + 4, (uint16_t)m->type);
	put_le16(f + 6, 0);
	put_le32(f + 8, m->id);
	c.out = f + PROTO_HDR_BYTES;
	c.used = 0;
	if (walk_fields(&c, &copy) < 0)
		return -1;
	*len += PROTO_HDR_BYTES + payload;
	return 0;
}

/* --- decoder --------------------------------------------------------------------------- */

static int frame_length(const uint8_t *frame, size_t len, struct rv_err *err)
{
	long n = proto_frame_check(frame, len, err);

	if (n < 0)
		return -1;
	if (len < PROTO_HDR_BYTES)
		return rv_failx(err, EPROTO, "frame of %zu bytes is shorter than a %u-byte header",
				len, PROTO_HDR_BYTES);
	if (n == 0)
		return rv_failx(err, EPROTO, "%s frame is cut short: %zu bytes, its header says %zu",
				proto_type_name(get_le16(frame + 4)), len,
				PROTO_HDR_BYTES + (size_t)get_le32(frame));
	if ((size_t)n != len)
		return rv_failx(err, EPROTO, "%s frame: %zu bytes after its end",
				proto_type_name(get_le16(frame + 4)), len - (size_t)n);
	return 0;
}

/* First walk: check every byte and measure the arena; second walk: fill it. */
static int decode_payload(const uint8_t *p, size_t n, struct proto_msg *m, struct rv_err *err)
{
	struct codec c = { .decode = true, .in = p, .left = n, .type = proto_type_name(m->type),
			   .err = err };

	if (walk_fields(&c, m) < 0)
		return -1;
	if (c.left)
		return codec_fail(&c, EPROTO, "%zu bytes after the last field", c.left);
	if (proto_check_values(&c, m) < 0)
		return -1;
	if (c.used == 0)              /* no strings or vectors: the walk filled m */
		return 0;   /* (never for EXEC or MOUNT, whose paths are checked below) */
	m->arena = malloc(c.used);
	if (!m->arena)
		return rv_fail(err, ENOMEM, "%s frame: allocate %zu bytes for its fields", c.type,
			       c.used);
	c = (struct codec){ .decode = true, .in = p, .left = n, .arena = m->arena,
			    .type = c.type, .err = err };
	if (walk_fields(&c, m) < 0)
		return -1;
	return proto_check_paths(&c, m);
}

int proto_decode(const uint8_t *frame, size_t len, struct proto_msg *m, struct rv_err *err)
{
	*m = (struct proto_msg){ 0 };
	if (frame_length(frame, len, err) < 0)
		return -1;
	m->type = (enum proto_type)get_le16(frame + 4);
	m->id = get_le32(frame + 8);
	if (decode_payload(frame + PROTO_HDR_BYTES, len - PROTO_HDR_BYTES, m, err) < 0) {
		proto_msg_free(m);
		return -1;
	}
	return 0;
}

void proto_msg_free(struct proto_msg *m)
{
	free(m->arena);
	*m = (struct proto_msg){ 0 };   /* no pointer into the freed arena survives */
}

/* --- blocking I/O ---------------------------------------------------------------------- */

static int send_all(int fd, const uint8_t *p, size_t n, const char *type, struct rv_err *err)
{
	bool sock = true;

	while (n > 0) {
		ssize_t r = sock ? send(fd, p, n, MSG_NOSIGNAL) : write(fd, p, n);
		if (r < 0 && sock && errno == ENOTSOCK) {
			sock = false;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rv_fail(err, errno, "send %s frame", type);
		if (r == 0)
			return rv_failx(err, EIO, "send %s frame: the fd took no bytes", type);
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int proto_send(int fd, const struct proto_msg *m, struct rv_err *err)
{
	_cleanup_free_ uint8_t *buf = NULL;
	size_t len = 0, cap = 0;

	if (proto_encode(m, &buf, &len, &cap, err) < 0)
		return -1;
	return send_all(fd, buf, len, proto_type_name(m->type), err);
}

/* Reads n bytes, fewer only at EOF. Returns how many, or -1. */
static ssize_t read_full(int fd, uint8_t *p, size_t n, const char *what, struct rv_err *err)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rv_fail(err, errno, "receive %s", what);
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

int proto_recv(int fd, struct proto_msg *m, struct rv_err *err)
{
	uint8_t hdr[PROTO_HDR_BYTES];

	*m = (struct proto_msg){ 0 };
	ssize_t got = read_full(fd, hdr, sizeof(hdr), "a frame header", err);
	if (got <= 0)
		return got < 0 ? -1 : 1;
	if ((size_t)got < sizeof(hdr))
		return rv_failx(err, EPROTO, "connection closed %zd bytes into a frame header", got);
	if (proto_frame_check(hdr, sizeof(hdr), err) < 0)
		return -1;

	size_t payload = get_le32(hdr);   /* checked: <= PROTO_MAX_PAYLOAD_BYTES */
	const char *type = proto_type_name(get_le16(hdr + 4));
	_cleanup_free_ uint8_t *frame = malloc(PROTO_HDR_BYTES + payload);
	if (!frame)
		return rv_fail(err, ENOMEM, "receive %s frame of %zu bytes", type, payload);
	memcpy(frame, hdr, sizeof(hdr));
	got = read_full(fd, frame + PROTO_HDR_BYTES, payload, type, err);
	if (got < 0)
		return -1;
	if ((size_t)got < payload)
		return rv_failx(err, EPROTO,
				"%s frame: connection closed %zd bytes into its %zu-byte payload",
				type, got, payload);
	return proto_decode(frame, PROTO_HDR_BYTES + payload, m, err);
}
