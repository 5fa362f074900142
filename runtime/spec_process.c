/* config.json's process (and runc's process.json, which is one alone): the
 * command, its user, environment, terminal, capabilities and limits. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/caps.h"
#include "runtime/spec_priv.h"

static int parse_gids(const struct json_val *user, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *arr;
	uint64_t gid;

	if (json_get(user, "additionalGids", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	size_t n = json_len(arr);
	if (n == 0)
		return 0;
	if (!(p->additional_gids = calloc(n, sizeof(*p->additional_gids))))
		return rv_fail(err, ENOMEM, "process.user.additionalGids");
	for (size_t i = 0; i < n; i++) {
		if (json_uint64(json_item(arr, i), UINT32_MAX, &gid, err) < 0)
			return -1;
		p->additional_gids[i] = (uint32_t)gid;
		p->nadditional_gids++;
	}
	return 0;
}

static int parse_user(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *user;
	uint64_t uid = 0, gid = 0, umask = 0;
	int has_umask = 0;

	/* Absent, uid and gid are 0: runc's zero values. */
	if (json_get(proc, "user", JSON_OBJECT, JSON_OPTIONAL, &user, err) < 0 ||
	    json_get_uint64(user, "uid", JSON_OPTIONAL, UINT32_MAX, &uid, err) < 0 ||
	    json_get_uint64(user, "gid", JSON_OPTIONAL, UINT32_MAX, &gid, err) < 0 ||
	    (has_umask = json_get_uint64(user, "umask", JSON_OPTIONAL, UINT32_MAX, &umask, err)) < 0)
		return -1;
	p->uid = (uint32_t)uid;
	p->gid = (uint32_t)gid;
	p->has_umask = has_umask == 1;
	p->umask = (uint32_t)umask;
	return parse_gids(user, p, err);
}

static int parse_console(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *size;
	uint64_t h = 0, w = 0;

	if (json_get(proc, "consoleSize", JSON_OBJECT, JSON_OPTIONAL, &size, err) < 0 ||
	    json_get_uint64(size, "height", JSON_OPTIONAL, UINT_MAX, &h, err) < 0 ||
	    json_get_uint64(size, "width", JSON_OPTIONAL, UINT_MAX, &w, err) < 0)
		return -1;
	p->console_height = (unsigned)h;
	p->console_width = (unsigned)w;
	return 0;
}

static int parse_args(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *args = json_member(proc, "args");

	if (json_type(args) != JSON_ARRAY || json_len(args) == 0)
		return json_fail(proc, "args", err,
				 "must be a non-empty array of strings, the program and its "
				 "arguments, e.g. [\"sh\"]");
	if (spec_copy_strv(args, &p->args, &p->nargs, err) < 0)
		return -1;
	if (p->args[0][0] == '\0')
		return json_fail(json_item(args, 0), NULL, err, "must name the program to run");
	return 0;
}

static int parse_env(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *env;
	char q[SPEC_QUOTE_BYTES];

	if (json_get(proc, "env", JSON_ARRAY, JSON_OPTIONAL, &env, err) < 0 ||
	    spec_copy_strv(env, &p->env, &p->nenv, err) < 0)
		return -1;
	for (size_t i = 0; i < p->nenv; i++) {
		const char *eq = strchr(p->env[i], '=');
		if (!eq || eq == p->env[i])
			return json_fail(json_item(env, i), NULL, err,
					 "%s: must have the form NAME=VALUE", spec_quote(q, p->env[i]));
	}
	return 0;
}

static int parse_cwd(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	char q[SPEC_QUOTE_BYTES];
	int r = spec_get_copy(proc, "cwd", JSON_OPTIONAL, &p->cwd, err);

	if (r == 0)
		return json_fail(proc, "cwd", err, "required; give an absolute path such as \"/\"");
	if (r > 0 && p->cwd[0] != '/')
		return json_fail(json_member(proc, "cwd"), NULL, err,
				 "%s is relative; give an absolute path such as \"/\"",
				 spec_quote(q, p->cwd));
	return r < 0 ? -1 : 0;
}

const char *const spec_cap_set_names[SPEC_CAP_SETS] = {
	"bounding", "effective", "inheritable", "permitted", "ambient",
};

static int parse_caps(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *obj, *set;
	const char *name;
	char q[SPEC_QUOTE_BYTES];

	if (json_get(proc, "capabilities", JSON_OBJECT, JSON_OPTIONAL, &obj, err) < 0)
		return -1;
	p->has_caps = obj != NULL;
	for (int k = 0; obj && k < SPEC_CAP_SETS; k++) {
		if (json_get(obj, spec_cap_set_names[k], JSON_ARRAY, JSON_OPTIONAL, &set, err) < 0)
			return -1;
		for (size_t i = 0; i < json_len(set); i++) {
			if (json_string(json_item(set, i), &name, err) < 0)
				return -1;
			int cap = caps_number(name);
			if (cap < 0)
				return json_fail(json_item(set, i), NULL, err, "unknown capability %s "
						 "(names as in capabilities(7), e.g. \"CAP_CHOWN\")",
						 spec_quote(q, name));
			p->caps[k] |= 1ull << cap;
		}
	}
	return 0;
}

static const char *const rlimit_names[SPEC_MAX_RLIMITS] = {
	"RLIMIT_CPU", "RLIMIT_FSIZE", "RLIMIT_DATA", "RLIMIT_STACK", "RLIMIT_CORE", "RLIMIT_RSS",
	"RLIMIT_NPROC", "RLIMIT_NOFILE", "RLIMIT_MEMLOCK", "RLIMIT_AS", "RLIMIT_LOCKS",
	"RLIMIT_SIGPENDING", "RLIMIT_MSGQUEUE", "RLIMIT_NICE", "RLIMIT_RTPRIO", "RLIMIT_RTTIME",
};

static int parse_rlimit(const struct json_val *v, struct oci_process *p, struct rv_err *err)
{
	const char *type;
	uint64_t soft, hard;
	char q[SPEC_QUOTE_BYTES];
	uint32_t t;

	if (json_check_type(v, JSON_OBJECT, err) < 0 ||
	    json_get_string(v, "type", JSON_REQUIRED, &type, err) < 0 ||
	    json_get_uint64(v, "soft", JSON_REQUIRED, UINT64_MAX, &soft, err) < 0 ||
	    json_get_uint64(v, "hard", JSON_REQUIRED, UINT64_MAX, &hard, err) < 0)
		return -1;
	for (t = 0; t < SPEC_MAX_RLIMITS && strcmp(type, rlimit_names[t]); t++)
		;
	if (t == SPEC_MAX_RLIMITS)
		return json_fail(v, "type", err, "unknown rlimit %s (e.g. \"RLIMIT_NOFILE\")",
				 spec_quote(q, type));
	for (size_t i = 0; i < p->nrlimits; i++)
		if (p->rlimits[i].type == t)
			return json_fail(v, "type", err, "%s given twice", type);
	if (soft > hard)
		return json_fail(v, "soft", err, "%llu is over the hard limit %llu",
				 (unsigned long long)soft, (unsigned long long)hard);
	p->rlimits[p->nrlimits++] = (struct oci_rlimit){ t, soft, hard };
	return 0;
}

static int parse_limits(const struct json_val *proc, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *arr;
	int64_t oom = 0;
	int has_oom;

	if (json_get(proc, "rlimits", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0 ||
	    (has_oom = json_get_int64(proc, "oomScoreAdj", JSON_OPTIONAL, -1000, 1000, &oom,
				      err)) < 0)
		return -1;
	p->has_oom_score_adj = has_oom == 1;
	p->oom_score_adj = (int32_t)oom;
	for (size_t i = 0; i < json_len(arr); i++)
		if (parse_rlimit(json_item(arr, i), p, err) < 0)
			return -1;
	return 0;
}

static int parse_process_obj(const struct json_val *proc, struct oci_process *p,
			     struct rv_err *err)
{
	if (json_get_bool(proc, "terminal", JSON_OPTIONAL, &p->terminal, err) < 0 ||
	    json_get_bool(proc, "noNewPrivileges", JSON_OPTIONAL, &p->no_new_privileges, err) < 0 ||
	    parse_console(proc, p, err) < 0 || parse_args(proc, p, err) < 0 ||
	    parse_env(proc, p, err) < 0 || parse_cwd(proc, p, err) < 0 ||
	    parse_caps(proc, p, err) < 0 || parse_limits(proc, p, err) < 0)
		return -1;
	return parse_user(proc, p, err);
}

int spec_parse_process_member(const struct json_val *top, struct oci_process *p, struct rv_err *err)
{
	const struct json_val *proc;

	if (json_get(top, "process", JSON_OBJECT, JSON_OPTIONAL, &proc, err) < 0)
		return -1;
	if (!proc)
		return json_fail(NULL, "process", err, "required; runvm runs it as the container, "
				 "e.g. {\"args\": [\"sh\"], \"cwd\": \"/\"}");
	return parse_process_obj(proc, p, err);
}

int spec_parse_process(const char *text, size_t len, struct oci_process *p,
		       struct json_doc **doc, struct rv_err *err)
{
	memset(p, 0, sizeof(*p));
	if (!(*doc = json_parse(text, len, err)))
		return -1;
	const struct json_val *root = json_root(*doc);
	if (json_check_type(root, JSON_OBJECT, err) < 0 || parse_process_obj(root, p, err) < 0) {
		spec_process_free(p);
		json_free(*doc);
		*doc = NULL;
		return -1;
	}
	return 0;
}

void spec_process_free(struct oci_process *p)
{
	spec_strv_free(p->args);
	spec_strv_free(p->env);
	free(p->cwd);
	free(p->additional_gids);
	memset(p, 0, sizeof(*p));
}
