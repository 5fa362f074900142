#include "runtime/seccomp.h"

#include <ctype.h>
#include <errno.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/proto.h"

#define NAME_BYTES 64

static const struct { const char *name; uint32_t flag; } filter_flags[] = {
	{ "SECCOMP_FILTER_FLAG_TSYNC", SECCOMP_FILTER_FLAG_TSYNC },
	{ "SECCOMP_FILTER_FLAG_LOG", SECCOMP_FILTER_FLAG_LOG },
	{ "SECCOMP_FILTER_FLAG_SPEC_ALLOW", SECCOMP_FILTER_FLAG_SPEC_ALLOW },
};

static const struct { const char *name; enum scmp_compare op; } ops[] = {
	{ "SCMP_CMP_NE", SCMP_CMP_NE }, { "SCMP_CMP_LT", SCMP_CMP_LT },
	{ "SCMP_CMP_LE", SCMP_CMP_LE }, { "SCMP_CMP_EQ", SCMP_CMP_EQ },
	{ "SCMP_CMP_GE", SCMP_CMP_GE }, { "SCMP_CMP_GT", SCMP_CMP_GT },
	{ "SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ },
};

/* An action and its errno (ERRNO and TRACE; EPERM when not given, as runc). */
static int parse_action(const struct json_val *obj, const char *key, const char *errno_key,
			uint32_t *act, struct rv_err *err)
{
	const char *name;
	uint64_t ret = EPERM;

	if (json_get_string(obj, key, JSON_REQUIRED, &name, err) < 0 ||
	    json_get_uint64(obj, errno_key, JSON_OPTIONAL, 4095, &ret, err) < 0)
		return -1;
	if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD"))
		*act = SCMP_ACT_KILL_THREAD;
	else if (!strcmp(name, "SCMP_ACT_KILL_PROCESS"))
		*act = SCMP_ACT_KILL_PROCESS;
	else if (!strcmp(name, "SCMP_ACT_TRAP"))
		*act = SCMP_ACT_TRAP;
	else if (!strcmp(name, "SCMP_ACT_ERRNO"))
		*act = SCMP_ACT_ERRNO((uint32_t)ret);
	else if (!strcmp(name, "SCMP_ACT_TRACE"))
		*act = SCMP_ACT_TRACE((uint32_t)ret);
	else if (!strcmp(name, "SCMP_ACT_ALLOW"))
		*act = SCMP_ACT_ALLOW;
	else if (!strcmp(name, "SCMP_ACT_LOG"))
		*act = SCMP_ACT_LOG;
	else if (!strcmp(name, "SCMP_ACT_NOTIFY"))
		return json_fail(obj, key, err, "SCMP_ACT_NOTIFY needs a listener on the host, "
				 "which a guest's filter cannot reach; not supported");
	else
		return json_fail(obj, key, err, "unknown action \"%.64s\" (e.g. SCMP_ACT_ERRNO)", name);
	return 0;
}

static int add_arches(scmp_filter_ctx ctx, const struct json_val *sc, struct rv_err *err)
{
	const struct json_val *arr;
	const char *name;
	char lower[NAME_BYTES];

	if (json_get(sc, "architectures", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	for (size_t i = 0; i < json_len(arr); i++) {
		if (json_string(json_item(arr, i), &name, err) < 0)
			return -1;
		const char *bare = strncmp(name, "SCMP_ARCH_", 10) ? "" : name + 10;
		size_t k = 0;
		for (; bare[k] && k + 1 < sizeof(lower); k++)
			lower[k] = (char)tolower((unsigned char)bare[k]);
		lower[k] = '\0';
		uint32_t arch = lower[0] ? seccomp_arch_resolve_name(lower) : 0;
		if (!arch)
			return json_fail(json_item(arr, i), NULL, err, "unknown architecture \"%.64s\" "
					 "(e.g. SCMP_ARCH_X86_64)", name);
		int rc = seccomp_arch_add(ctx, arch);
		if (rc < 0 && rc != -EEXIST)
			return rv_fail(err, -rc, "linux.seccomp.architectures[%zu] %s", i, name);
	}
	return 0;
}

static int parse_flags(const struct json_val *sc, uint32_t *flags, struct rv_err *err)
{
	const struct json_val *arr;
	const char *name;

	if (json_get(sc, "flags", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	for (size_t i = 0; i < json_len(arr); i++) {
		if (json_string(json_item(arr, i), &name, err) < 0)
			return -1;
		size_t f = 0;
		while (f < sizeof(filter_flags) / sizeof(filter_flags[0]) &&
		       strcmp(name, filter_flags[f].name))
			f++;
		if (f == sizeof(filter_flags) / sizeof(filter_flags[0]))
			return json_fail(json_item(arr, i), NULL, err, "unknown flag \"%.64s\"", name);
		*flags |= filter_flags[f].flag;
	}
	return 0;
}

static int parse_args(const struct json_val *rule, struct scmp_arg_cmp *cmp, unsigned *n,
		      struct rv_err *err)
{
	const struct json_val *arr;
	const char *op;
	uint64_t index, value, two = 0;

	if (json_get(rule, "args", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	if (json_len(arr) > 6)
		return json_fail(rule, "args", err, "at most 6 conditions (a syscall has 6 arguments)");
	for (size_t i = 0; i < json_len(arr); i++) {
		const struct json_val *a = json_item(arr, i);
		if (json_check_type(a, JSON_OBJECT, err) < 0 ||
		    json_get_uint64(a, "index", JSON_REQUIRED, 5, &index, err) < 0 ||
		    json_get_uint64(a, "value", JSON_REQUIRED, UINT64_MAX, &value, err) < 0 ||
		    json_get_uint64(a, "valueTwo", JSON_OPTIONAL, UINT64_MAX, &two, err) < 0 ||
		    json_get_string(a, "op", JSON_REQUIRED, &op, err) < 0)
			return -1;
		size_t k = 0;
		while (k < sizeof(ops) / sizeof(ops[0]) && strcmp(op, ops[k].name))
			k++;
		if (k == sizeof(ops) / sizeof(ops[0]))
			return json_fail(a, "op", err, "unknown operator \"%.64s\" (e.g. SCMP_CMP_EQ)", op);
		cmp[i] = (struct scmp_arg_cmp){ (unsigned)index, ops[k].op, value, two };
	}
	*n = (unsigned)json_len(arr);
	return 0;
}

static int add_rule(scmp_filter_ctx ctx, uint32_t def, const struct json_val *rule,
		    struct rv_err *err)
{
	const struct json_val *names;
	struct scmp_arg_cmp cmp[6];
	unsigned ncmp = 0;
	uint32_t act;
	const char *name;

	if (json_check_type(rule, JSON_OBJECT, err) < 0 ||
	    json_get(rule, "names", JSON_ARRAY, JSON_REQUIRED, &names, err) < 0 ||
	    parse_action(rule, "action", "errnoRet", &act, err) < 0 ||
	    parse_args(rule, cmp, &ncmp, err) < 0)
		return -1;
	for (size_t i = 0; i < json_len(names); i++) {
		const struct json_val *v = json_item(names, i);
		if (json_string(v, &name, err) < 0)
			return -1;
		int nr = seccomp_syscall_resolve_name(name);
		if (nr == __NR_SCMP_ERROR)
			return json_fail(v, NULL, err, "unknown syscall \"%.64s\"", name);
		if (act == def)
			continue;     /* libseccomp refuses what the default does anyway */
		int rc = seccomp_rule_add_array(ctx, act, nr, ncmp, cmp);
		if (rc < 0)
			return json_fail(v, NULL, err, "libseccomp refused the rule for %s: %s", name,
					 strerror(-rc));
	}
	return 0;
}

/* The filter as loaded: a memfd gets libseccomp's export. */
static int export(scmp_filter_ctx ctx, struct seccomp_prog *out, struct rv_err *err)
{
	int fd = memfd_create("seccomp-bpf", MFD_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return rv_fail(err, errno, "memfd for the seccomp filter");
	int rc = seccomp_export_bpf(ctx, fd);
	if (rc < 0 || fstat(fd, &st) < 0 || st.st_size % 8 || st.st_size == 0) {
		close(fd);
		return rv_fail(err, rc < 0 ? -rc : EIO, "linux.seccomp: export the filter");
	}
	out->n = (size_t)st.st_size / 8;
	if (out->n > PROTO_MAX_SECCOMP_INSNS) {
		close(fd);
		return rv_failx(err, E2BIG, "linux.seccomp: the filter has %zu instructions, more than "
				"the kernel's %u", out->n, PROTO_MAX_SECCOMP_INSNS);
	}
	out->insns = malloc((size_t)st.st_size);
	ssize_t got = out->insns ? pread(fd, out->insns, (size_t)st.st_size, 0) : -1;
	close(fd);
	if (got != st.st_size)
		return rv_fail(err, out->insns ? EIO : ENOMEM, "linux.seccomp: read the filter");
	return 0;
}

int seccomp_compile(const struct oci_spec *s, struct seccomp_prog *out, struct rv_err *err)
{
	const struct json_val *lnx = json_member(json_root(s->doc), "linux"), *sc, *rules;
	uint32_t def;

	*out = (struct seccomp_prog){ 0 };
	if (json_get(lnx, "seccomp", JSON_OBJECT, JSON_OPTIONAL, &sc, err) < 0 || !sc)
		return sc ? -1 : 0;
	if (json_member(sc, "listenerPath"))
		return json_fail(sc, "listenerPath", err, "a seccomp agent on the host cannot serve "
				 "a guest's filter; not supported");
	if (parse_action(sc, "defaultAction", "defaultErrnoRet", &def, err) < 0 ||
	    parse_flags(sc, &out->flags, err) < 0 ||
	    json_get(sc, "syscalls", JSON_ARRAY, JSON_OPTIONAL, &rules, err) < 0)
		return -1;
	scmp_filter_ctx ctx = seccomp_init(def);
	if (!ctx)
		return rv_failx(err, EINVAL, "linux.seccomp: libseccomp refused the default action");
	int rc = add_arches(ctx, sc, err);
	for (size_t i = 0; rc == 0 && i < json_len(rules); i++)
		rc = add_rule(ctx, def, json_item(rules, i), err);
	if (rc == 0)
		rc = export(ctx, out, err);
	seccomp_release(ctx);
	if (rc < 0)
		seccomp_prog_free(out);
	return rc;
}

void seccomp_prog_free(struct seccomp_prog *p)
{
	free(p->insns);
	*p = (struct seccomp_prog){ 0 };
}
