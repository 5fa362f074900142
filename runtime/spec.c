/* config.json into struct oci_spec. Every field is read through runtime/json.h,
 * whose errors carry the JSON path; this file adds what the spec requires of
 * the values and says how to fix them. Everything is copied out of the tree,
 * so the plain data does not depend on it; the tree stays for later readers. */
#include "runtime/spec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/jsonw.h"
#include "runtime/spec_priv.h"

#define MIB (1ull << 20)

/* S as a JSON string for an error message, cut short when long. */
const char *spec_quote(char buf[static SPEC_QUOTE_BYTES], const char *s)
{
	jsonw_quote(buf, SPEC_QUOTE_BYTES, s);
	return buf;
}

int spec_copy_str(const char *s, char **out, struct rv_err *err)
{
	if (!(*out = strdup(s)))
		return rv_fail(err, ENOMEM, "copy config.json");
	return 0;
}

/* Member KEY of OBJ as a fresh copy; json_get's 1/0/-1. */
int spec_get_copy(const struct json_val *obj, const char *key, enum json_need need, char **out,
		    struct rv_err *err)
{
	const char *s;
	int r = json_get_string(obj, key, need, &s, err);
	return r <= 0 ? r : spec_copy_str(s, out, err) < 0 ? -1 : 1;
}

void spec_strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

/* The strings of array ARR (NULL: none) as a NULL-terminated vector. */
int spec_copy_strv(const struct json_val *arr, char ***out, size_t *n, struct rv_err *err)
{
	size_t len = json_len(arr);
	char **v = calloc(len + 1, sizeof(*v));
	const char *s;

	if (!v)
		return rv_fail(err, ENOMEM, "copy config.json");
	for (size_t i = 0; i < len; i++) {
		if (json_string(json_item(arr, i), &s, err) < 0 || spec_copy_str(s, &v[i], err) < 0) {
			spec_strv_free(v);
			return -1;
		}
	}
	*out = v;
	*n = len;
	return 0;
}

/* BASE/REL made absolute and clean as runc makes root.path (Go's
 * filepath.Join then Clean): empty and "." components dropped, ".." drops
 * the one before it and stops at "/". BASE is absolute; an absolute REL
 * stands alone. */
static char *path_join_clean(const char *base, const char *rel)
{
	char *out = malloc(strlen(base) + strlen(rel) + 3);
	const char *parts[2] = { rel[0] == '/' ? "" : base, rel };
	size_t n = 0;

	if (!out)
		return NULL;
	for (size_t i = 0; i < 2; i++) {
		for (const char *p = parts[i]; *p;) {
			p += strspn(p, "/");
			size_t len = strcspn(p, "/");
			if (len == 2 && p[0] == '.' && p[1] == '.') {
				while (n > 0 && out[--n] != '/')
					;
			} else if (len > 0 && !(len == 1 && p[0] == '.')) {
				out[n++] = '/';
				memcpy(out + n, p, len);
				n += len;
			}
			p += len;
		}
	}
	if (n == 0)
		out[n++] = '/';
	out[n] = '\0';
	return out;
}

static int set_bundle(const char *bundle, struct oci_spec *s, struct rv_err *err)
{
	if (!bundle || bundle[0] != '/') {
		_cleanup_free_ char *cwd = getcwd(NULL, 0);
		if (!cwd)
			return rv_fail(err, errno, "current directory");
		s->bundle = path_join_clean(cwd, bundle ? bundle : ".");
	} else {
		s->bundle = path_join_clean(bundle, ".");
	}
	return s->bundle ? 0 : rv_fail(err, ENOMEM, "bundle path");
}

/* 1.MINOR[.PATCH][-pre|+build] with MINOR 0 to 2: the versions runvm was
 * written against (runtime/cmd_features.c advertises the same range). */
static bool version_supported(const char *v)
{
	if (strncmp(v, "1.", 2) != 0 || v[2] < '0' || v[2] > '2' || isdigit((unsigned char)v[3]))
		return false;
	const char *p = v + 3;
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	return *p == '\0' || *p == '-' || *p == '+';
}

static int parse_version(const struct json_val *root, struct oci_spec *s, struct rv_err *err)
{
	char q[SPEC_QUOTE_BYTES];
	int r = spec_get_copy(root, "ociVersion", JSON_OPTIONAL, &s->oci_version, err);

	if (r < 0)
		return -1;
	if (r == 0)
		return json_fail(NULL, "ociVersion", err,
				 "required; runvm supports 1.0 to 1.2, e.g. \"1.2.0\"");
	if (!version_supported(s->oci_version))
		return rv_failx(err, EINVAL, "ociVersion %s: unsupported; runvm supports 1.0 to 1.2",
				spec_quote(q, s->oci_version));
	return 0;
}

static int parse_root(const struct json_val *top, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *root;
	const char *path = NULL;

	if (json_get(top, "root", JSON_OBJECT, JSON_OPTIONAL, &root, err) < 0)
		return -1;
	if (!root)
		return json_fail(NULL, "root", err,
				 "required; name the root filesystem, e.g. {\"path\": \"rootfs\"}");
	if (json_get_string(root, "path", JSON_OPTIONAL, &path, err) < 0 ||
	    json_get_bool(root, "readonly", JSON_OPTIONAL, &s->root_readonly, err) < 0)
		return -1;
	if (!path || !path[0])
		return json_fail(root, "path", err, "required; give the root filesystem's directory, "
				 "absolute or relative to the bundle, e.g. \"rootfs\"");
	if (!(s->root_path = path_join_clean(s->bundle, path)))
		return rv_fail(err, ENOMEM, "root.path");
	return 0;
}


static int parse_mount(const struct json_val *v, struct oci_mount *m, struct rv_err *err)
{
	const struct json_val *opts;
	char q[SPEC_QUOTE_BYTES];

	if (json_check_type(v, JSON_OBJECT, err) < 0)
		return -1;
	int r = spec_get_copy(v, "destination", JSON_OPTIONAL, &m->destination, err);
	if (r == 0)
		return json_fail(v, "destination", err,
				 "required; give the absolute path inside the container");
	if (r > 0 && m->destination[0] != '/')
		return json_fail(json_member(v, "destination"), NULL, err,
				 "%s is relative; give an absolute path inside the container",
				 spec_quote(q, m->destination));
	if (r < 0 || spec_get_copy(v, "type", JSON_OPTIONAL, &m->type, err) < 0 ||
	    spec_get_copy(v, "source", JSON_OPTIONAL, &m->source, err) < 0 ||
	    json_get(v, "options", JSON_ARRAY, JSON_OPTIONAL, &opts, err) < 0)
		return -1;
	return spec_copy_strv(opts, &m->options, &m->noptions, err);
}

static int parse_mounts(const struct json_val *top, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *arr;

	if (json_get(top, "mounts", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	size_t n = json_len(arr);
	if (n && !(s->mounts = calloc(n, sizeof(*s->mounts))))
		return rv_fail(err, ENOMEM, "mounts");
	for (size_t i = 0; i < n; i++) {
		s->nmounts = i + 1;   /* so spec_free frees a half-filled entry too */
		if (parse_mount(json_item(arr, i), &s->mounts[i], err) < 0)
			return -1;
	}
	return 0;
}

struct key_at {
	const char *key;
	size_t index;
};

static int key_at_cmp(const void *a, const void *b)
{
	const struct key_at *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : x->index < y->index ? -1 : x->index > y->index;
}

/* keep[i]: member i is the last of its key, the one runc's Go map keeps. By
 * sorting, not pairwise: a generated file may carry many annotations. */
static int last_of_each_key(const struct json_val *obj, bool *keep, struct rv_err *err)
{
	size_t n = json_len(obj);
	_cleanup_free_ struct key_at *v = calloc(n, sizeof(*v));

	if (!v)
		return rv_fail(err, ENOMEM, "annotations");
	for (size_t i = 0; i < n; i++)
		v[i] = (struct key_at){ json_key(obj, i), i };
	qsort(v, n, sizeof(*v), key_at_cmp);
	for (size_t i = 0; i < n; i++)
		keep[v[i].index] = i + 1 == n || strcmp(v[i].key, v[i + 1].key) != 0;
	return 0;
}

static int parse_annotations(const struct json_val *top, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *obj;
	const char *value;

	if (json_get(top, "annotations", JSON_OBJECT, JSON_OPTIONAL, &obj, err) < 0)
		return -1;
	size_t n = json_len(obj);
	if (n == 0)
		return 0;
	_cleanup_free_ bool *keep = calloc(n, sizeof(*keep));
	if (!keep || !(s->annotations = calloc(n, sizeof(*s->annotations))))
		return rv_fail(err, ENOMEM, "annotations");
	if (last_of_each_key(obj, keep, err) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (json_string(json_item(obj, i), &value, err) < 0)
			return -1;
		if (!keep[i])
			continue;
		struct oci_kv *kv = &s->annotations[s->nannotations++];
		if (spec_copy_str(json_key(obj, i), &kv->key, err) < 0 || spec_copy_str(value, &kv->value, err) < 0)
			return -1;
	}
	return 0;
}

static int parse_resources(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *res, *cpu, *mem;
	int r;

	if (json_get(lnx, "resources", JSON_OBJECT, JSON_OPTIONAL, &res, err) < 0 ||
	    json_get(res, "cpu", JSON_OBJECT, JSON_OPTIONAL, &cpu, err) < 0 ||
	    json_get(res, "memory", JSON_OBJECT, JSON_OPTIONAL, &mem, err) < 0)
		return -1;
	if ((r = json_get_int64(cpu, "quota", JSON_OPTIONAL, INT64_MIN, INT64_MAX, &s->cpu_quota,
				err)) < 0)
		return -1;
	s->has_cpu_quota = r == 1;
	if (json_get_uint64(cpu, "period", JSON_OPTIONAL, UINT64_MAX, &s->cpu_period, err) < 0)
		return -1;
	if ((r = json_get_int64(mem, "limit", JSON_OPTIONAL, INT64_MIN, INT64_MAX,
				&s->memory_limit, err)) < 0)
		return -1;
	s->has_memory_limit = r == 1;
	return 0;
}

/* Each type with its file in /proc/PID/ns, for the fix in an error. */
static const char *const namespace_types[][2] = {
	{ "pid", "pid" }, { "network", "net" }, { "mount", "mnt" }, { "ipc", "ipc" },
	{ "uts", "uts" }, { "user", "user" }, { "cgroup", "cgroup" }, { "time", "time" },
};

static int check_namespace(const struct json_val *v, const struct oci_spec *s, size_t i,
			   struct rv_err *err)
{
	const struct oci_namespace *ns = &s->namespaces[i];
	const struct json_val *type = json_member(v, "type");
	char q[SPEC_QUOTE_BYTES];
	const char *file = NULL;

	for (size_t k = 0; k < sizeof(namespace_types) / sizeof(namespace_types[0]); k++)
		if (strcmp(ns->type, namespace_types[k][0]) == 0)
			file = namespace_types[k][1];
	if (!file)
		return json_fail(type, NULL, err, "%s: unknown; use pid, network, mount, ipc, uts, "
				 "user, cgroup or time", spec_quote(q, ns->type));
	for (size_t k = 0; k < i; k++)
		if (strcmp(s->namespaces[k].type, ns->type) == 0)
			return json_fail(type, NULL, err, "%s: listed twice; keep one",
					 spec_quote(q, ns->type));
	if (ns->path && ns->path[0] != '/')
		return json_fail(json_member(v, "path"), NULL, err,
				 "%s is relative; give an absolute path such as /proc/1234/ns/%s",
				 spec_quote(q, ns->path), file);
	return 0;
}

static int parse_namespaces(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *arr, *v;

	if (json_get(lnx, "namespaces", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	size_t n = json_len(arr);
	if (n && !(s->namespaces = calloc(n, sizeof(*s->namespaces))))
		return rv_fail(err, ENOMEM, "linux.namespaces");
	for (size_t i = 0; i < n; i++) {
		struct oci_namespace *ns = &s->namespaces[i];
		v = json_item(arr, i);
		s->nnamespaces = i + 1;
		if (json_check_type(v, JSON_OBJECT, err) < 0 ||
		    spec_get_copy(v, "type", JSON_REQUIRED, &ns->type, err) < 0 ||
		    spec_get_copy(v, "path", JSON_OPTIONAL, &ns->path, err) < 0 ||
		    check_namespace(v, s, i, err) < 0)
			return -1;
	}
	return 0;
}

bool spec_has_dotdot(const char *path)
{
	for (const char *p = path; *p;) {
		p += strspn(p, "/");
		size_t n = strcspn(p, "/");
		if (n == 2 && p[0] == '.' && p[1] == '.')
			return true;
		p += n;
	}
	return false;
}

/* maskedPaths, readonlyPaths: absolute container paths without "..". */
static int parse_paths(const struct json_val *lnx, const char *key, char ***out, size_t *n,
		       struct rv_err *err)
{
	const struct json_val *arr;
	char q[SPEC_QUOTE_BYTES];

	if (json_get(lnx, key, JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0 ||
	    spec_copy_strv(arr, out, n, err) < 0)
		return -1;
	for (size_t i = 0; i < *n; i++) {
		const char *p = (*out)[i];
		if (p[0] != '/' || spec_has_dotdot(p))
			return json_fail(json_item(arr, i), NULL, err, "%s: give an absolute path "
					 "without \"..\"", spec_quote(q, p));
	}
	return 0;
}

/* linux.sysctl: {"net.ipv4.ip_forward": "1"} -> "net.ipv4.ip_forward=1". The
 * guest writes each below /proc/sys, so a key is dotted words only. */
static int parse_sysctl(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *obj;
	const char *val;
	char q[SPEC_QUOTE_BYTES];

	if (json_get(lnx, "sysctl", JSON_OBJECT, JSON_OPTIONAL, &obj, err) < 0)
		return -1;
	size_t n = json_len(obj);
	if (!(s->sysctls = calloc(n + 1, sizeof(char *))))
		return rv_fail(err, ENOMEM, "linux.sysctl");
	for (size_t i = 0; i < n; i++) {
		const char *key = json_key(obj, i);
		size_t klen = strlen(key);
		bool ok = klen > 0 && klen <= 256 && key[0] != '.' && key[klen - 1] != '.' &&
			  !strstr(key, "..") && strspn(key, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJ"
						 "KLMNOPQRSTUVWXYZ0123456789_-.") == klen;
		if (!ok)
			return json_fail(obj, key, err, "%s is not a sysctl name (dotted words, "
					 "e.g. \"net.ipv4.ip_forward\")", spec_quote(q, key));
		if (json_string(json_item(obj, i), &val, err) < 0)
			return -1;
		if (asprintf(&s->sysctls[i], "%s=%s", key, val) < 0) {
			s->sysctls[i] = NULL;
			return rv_fail(err, ENOMEM, "linux.sysctl");
		}
		s->nsysctls++;
	}
	return 0;
}

static int parse_linux(const struct json_val *top, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *lnx;

	if (json_get(top, "linux", JSON_OBJECT, JSON_OPTIONAL, &lnx, err) < 0 ||
	    spec_get_copy(lnx, "cgroupsPath", JSON_OPTIONAL, &s->cgroups_path, err) < 0 ||
	    spec_get_copy(lnx, "rootfsPropagation", JSON_OPTIONAL, &s->rootfs_propagation, err) < 0 ||
	    parse_resources(lnx, s, err) < 0 || spec_parse_devices(lnx, s, err) < 0 ||
	    parse_paths(lnx, "maskedPaths", &s->masked_paths, &s->nmasked, err) < 0 ||
	    parse_paths(lnx, "readonlyPaths", &s->readonly_paths, &s->nreadonly, err) < 0 ||
	    parse_sysctl(lnx, s, err) < 0 || parse_namespaces(lnx, s, err) < 0)
		return -1;
	return spec_parse_userns(lnx, s, err);
}

static int parse_tree(const char *bundle, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *top = json_root(s->doc);

	if (json_check_type(top, JSON_OBJECT, err) < 0 || parse_version(top, s, err) < 0 ||
	    set_bundle(bundle, s, err) < 0 || parse_root(top, s, err) < 0 ||
	    spec_parse_process_member(top, &s->process, err) < 0 ||
	    spec_get_copy(top, "hostname", JSON_OPTIONAL, &s->hostname, err) < 0 ||
	    spec_get_copy(top, "domainname", JSON_OPTIONAL, &s->domainname, err) < 0 ||
	    parse_mounts(top, s, err) < 0 || parse_annotations(top, s, err) < 0 ||
	    spec_parse_hooks(top, &s->hooks, err) < 0)
		return -1;
	return parse_linux(top, s, err);
}

int spec_parse(const char *text, size_t len, const char *bundle, struct oci_spec *s,
	       struct rv_err *err)
{
	memset(s, 0, sizeof(*s));
	if (!(s->doc = json_parse(text, len, err)) || parse_tree(bundle, s, err) < 0) {
		spec_free(s);
		return rv_wrap(err, "config.json");
	}
	return 0;
}

/* The whole of config.json, NUL-terminated for the error paths' sake. */
static int read_config(int dirfd, char **text, size_t *len, struct rv_err *err)
{
	_cleanup_close_ int fd = openat(dirfd, "config.json", O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat st;

	if (fd < 0 && errno == ENOENT)
		return rv_failx(err, ENOENT, "no config.json (runvm spec writes a default one)");
	if (fd < 0 || fstat(fd, &st) < 0)
		return rv_fail(err, errno, "open config.json");
	if (!S_ISREG(st.st_mode))
		return rv_failx(err, EINVAL, "config.json: not a regular file");
	if (st.st_size > SPEC_MAX_FILE_BYTES)
		return rv_failx(err, EFBIG, "config.json: larger than %u MiB; is it the right file?",
				SPEC_MAX_FILE_BYTES >> 20);
	size_t size = (size_t)st.st_size, n = 0;
	_cleanup_free_ char *buf = malloc(size + 1);
	if (!buf)
		return rv_fail(err, ENOMEM, "read config.json");
	while (n < size) {
		ssize_t r = read(fd, buf + n, size - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return rv_fail(err, errno, "read config.json");
		if (r == 0)
			break;           /* shrank since fstat: parse what is there */
		n += (size_t)r;
	}
	buf[n] = '\0';
	*text = buf;
	buf = NULL;
	*len = n;
	return 0;
}

int spec_load(const char *bundle, struct oci_spec *s, struct rv_err *err)
{
	char real[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	size_t len = 0;

	memset(s, 0, sizeof(*s));
	if (!realpath(bundle, real))
		return errno == ENOENT ? rv_failx(err, ENOENT, "bundle %s: no such directory", bundle)
				       : rv_fail(err, errno, "bundle %s", bundle);
	_cleanup_close_ int dirfd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return errno == ENOTDIR ? rv_failx(err, ENOTDIR, "bundle %s: not a directory", bundle)
					: rv_fail(err, errno, "bundle %s", bundle);
	if (read_config(dirfd, &text, &len, err) < 0 || spec_parse(text, len, real, s, err) < 0)
		return rv_wrap(err, "bundle %s", bundle);
	return 0;
}

void spec_free(struct oci_spec *s)
{
	free(s->oci_version);
	free(s->root_path);
	spec_process_free(&s->process);
	free(s->hostname);
	free(s->domainname);
	hooks_free(&s->hooks);
	spec_strv_free(s->masked_paths);
	spec_strv_free(s->readonly_paths);
	spec_strv_free(s->sysctls);
	for (size_t i = 0; i < s->nmounts; i++) {
		free(s->mounts[i].destination);
		free(s->mounts[i].type);
		free(s->mounts[i].source);
		spec_strv_free(s->mounts[i].options);
	}
	free(s->mounts);
	for (size_t i = 0; i < s->nannotations; i++) {
		free(s->annotations[i].key);
		free(s->annotations[i].value);
	}
	free(s->annotations);
	free(s->cgroups_path);
	free(s->rootfs_propagation);
	for (size_t i = 0; i < s->ndevices; i++)
		free((char *)s->devices[i].target);
	free(s->devices);
	for (size_t i = 0; i < s->nnamespaces; i++) {
		free(s->namespaces[i].type);
		free(s->namespaces[i].path);
	}
	free(s->namespaces);
	free(s->uid_maps);
	free(s->gid_maps);
	json_free(s->doc);
	free(s->bundle);
	memset(s, 0, sizeof(*s));
}

const char *spec_annotation(const struct oci_spec *s, const char *key)
{
	for (size_t i = 0; i < s->nannotations; i++)
		if (strcmp(s->annotations[i].key, key) == 0)
			return s->annotations[i].value;
	return NULL;
}

/* "512M", "1G", "2GiB", "1073741824": the sizes boot's --total-memory takes. */
static int parse_size(const char *s, uint64_t *out)
{
	unsigned shift = 0;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	switch (*end) {
	case 'k': case 'K': shift = 10; break;
	case 'm': case 'M': shift = 20; break;
	case 'g': case 'G': shift = 30; break;
	case 't': case 'T': shift = 40; break;
	}
	if (shift) {
		end++;
		end += *end == 'i';
		end += *end == 'b' || *end == 'B';
	}
	if (errno || *end || v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* A Kubernetes pod's sandbox, whose VM is the whole pod's (runtime/pod.h). */
static bool pod_sandbox(const struct oci_spec *s)
{
	const char *type = spec_annotation(s, "io.kubernetes.cri.container-type");

	return type && !strcmp(type, "sandbox");
}

/* A pod's total, as containerd's CRI plugin passes the kubelet's sum of the
 * containers' limits to the sandbox: absent, "0" or negative (unlimited)
 * leaves *v as it is. */
static int pod_value(const struct oci_spec *s, const char *key, uint64_t *v, struct rv_err *err)
{
	const char *a = spec_annotation(s, key);
	char q[SPEC_QUOTE_BYTES], *end;

	if (!a)
		return 0;
	if (a[0] == '-' && isdigit((unsigned char)a[1]))
		return 0;        /* -1: unlimited, as the CRI has it */
	errno = 0;
	unsigned long long n = isdigit((unsigned char)a[0]) ? strtoull(a, &end, 10) : 0;
	if (!isdigit((unsigned char)a[0]) || errno || *end || n > (1ull << 50))
		return rv_failx(err, EINVAL, "annotation %s %s: give a whole number", key,
				spec_quote(q, a));
	if (n)
		*v = n;
	return 0;
}

static int shape_cpus(const struct oci_spec *s, unsigned *cpus, struct rv_err *err)
{
	const char *a = spec_annotation(s, SPEC_ANNOTATION_CPUS);
	char q[SPEC_QUOTE_BYTES], *end;

	if (a) {
		errno = 0;
		unsigned long n = isdigit((unsigned char)a[0]) ? strtoul(a, &end, 10) : 0;
		if (!isdigit((unsigned char)a[0]) || errno || *end || n < 1 || n > SPEC_MAX_CPUS)
			return rv_failx(err, EINVAL, "annotation " SPEC_ANNOTATION_CPUS " %s: give a "
					"whole number of vCPUs from 1 to %u", spec_quote(q, a), SPEC_MAX_CPUS);
		*cpus = (unsigned)n;
		return 0;
	}
	*cpus = SPEC_DEFAULT_CPUS;
	uint64_t quota = s->has_cpu_quota && s->cpu_quota > 0 ? (uint64_t)s->cpu_quota : 0;
	uint64_t period = s->cpu_period ? s->cpu_period : SPEC_DEFAULT_CPU_PERIOD_US;
	if (pod_sandbox(s) && (pod_value(s, SPEC_POD_CPU_QUOTA, &quota, err) < 0 ||
			       pod_value(s, SPEC_POD_CPU_PERIOD, &period, err) < 0))
		return -1;
	if (quota) {
		period = period ? period : SPEC_DEFAULT_CPU_PERIOD_US;
		uint64_t n = quota / period + (quota % period != 0);
		*cpus = n > SPEC_MAX_CPUS ? SPEC_MAX_CPUS : (unsigned)n;
	}
	return 0;
}

static int shape_memory(const struct oci_spec *s, uint64_t *bytes, struct rv_err *err)
{
	const char *a = spec_annotation(s, SPEC_ANNOTATION_MEMORY);
	char q[SPEC_QUOTE_BYTES];
	uint64_t v;

	/* Whole MiB, rounded down: the guest never gets more than the limit. */
	if (a) {
		if (parse_size(a, &v) < 0 || v / MIB * MIB < SPEC_MIN_MEM_BYTES)
			return rv_failx(err, EINVAL, "annotation " SPEC_ANNOTATION_MEMORY " %s: give "
					"a size of at least %lluM, e.g. 512M, 1G or a number of bytes",
					spec_quote(q, a), SPEC_MIN_MEM_BYTES >> 20);
		*bytes = v / MIB * MIB;
		return 0;
	}
	*bytes = SPEC_DEFAULT_MEM_BYTES;
	v = 0;
	if (pod_sandbox(s) && pod_value(s, SPEC_POD_MEMORY, &v, err) < 0)
		return -1;
	if (v) {
		/* The sum of the limits, no more: the kubelet caps the pod's cgroup
		 * at that sum plus the RuntimeClass's overhead, which must hold
		 * the VMM's own memory; a guest allowed beyond it would have the
		 * host kill the whole pod where the guest kills one process. */
		v = v / MIB * MIB;
		*bytes = v < SPEC_MIN_MEM_BYTES ? SPEC_MIN_MEM_BYTES : v;
		return 0;
	}
	if (s->has_memory_limit && s->memory_limit > 0) {
		v = (uint64_t)s->memory_limit / MIB * MIB;
		if (v < SPEC_MIN_MEM_BYTES)
			return rv_failx(err, EINVAL, "linux.resources.memory.limit %" PRId64 ": a VM "
					"needs at least %llu MiB; raise the limit or set the "
					"annotation " SPEC_ANNOTATION_MEMORY, s->memory_limit,
					SPEC_MIN_MEM_BYTES >> 20);
		*bytes = v;
	}
	return 0;
}

int spec_vm_shape(const struct oci_spec *s, unsigned *cpus, uint64_t *mem_bytes,
		  struct rv_err *err)
{
	if (shape_cpus(s, cpus, err) < 0 || shape_memory(s, mem_bytes, err) < 0)
		return -1;
	return 0;
}

int spec_vm_template(const struct oci_spec *s, bool *use, struct rv_err *err)
{
	const char *v = spec_annotation(s, SPEC_ANNOTATION_TEMPLATE);

	*use = !v || !strcmp(v, "true");
	if (v && strcmp(v, "true") && strcmp(v, "false"))
		return rv_failx(err, EINVAL, "annotations[\"%s\"] '%s': give true or false",
				SPEC_ANNOTATION_TEMPLATE, v);
	return 0;
}
