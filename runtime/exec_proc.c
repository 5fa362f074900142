#include "runtime/exec_proc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cleanup.h"
#include "runtime/caps.h"

static char **strv_dup(char *const *v, size_t n, size_t extra)
{
	char **out = calloc(n + extra + 1, sizeof(*out));

	for (size_t i = 0; out && i < n; i++)
		if (!(out[i] = strdup(v[i]))) {
			for (size_t j = 0; j < i; j++)
				free(out[j]);
			free(out);
			return NULL;
		}
	return out;
}

void exec_proc_free(struct oci_process *p)
{
	spec_process_free(p);
}

static size_t name_len(const char *kv)
{
	const char *eq = strchr(kv, '=');

	return eq ? (size_t)(eq - kv) : strlen(kv);
}

size_t exec_env_merge(char **env, size_t n)
{
	size_t out = 0;

	for (size_t i = 0; i < n; i++) {
		size_t len = name_len(env[i]), j;
		for (j = 0; j < out; j++)
			if (name_len(env[j]) == len && !strncmp(env[j], env[i], len))
				break;
		if (j < out) {
			free(env[j]);
			env[j] = env[i];
		} else {
			env[out++] = env[i];
		}
	}
	env[out] = NULL;
	return out;
}

static int parse_id(const char *s, const char *what, uint32_t *out, struct rv_err *err)
{
	char *end;

	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (end == s || *end || errno || v > UINT32_MAX || s[0] == '-')
		return rv_failx(err, EINVAL, "%s '%s': give a number (names are not looked up)",
				what, s);
	*out = (uint32_t)v;
	return 0;
}

static int apply_user(struct oci_process *p, const struct exec_flags *f, struct rv_err *err)
{
	char buf[64];

	if (f->user) {
		if (snprintf(buf, sizeof(buf), "%s", f->user) >= (int)sizeof(buf))
			return rv_failx(err, EINVAL, "--user '%.64s': give uid[:gid]", f->user);
		char *colon = strchr(buf, ':');
		if (colon)
			*colon = '\0';
		if (parse_id(buf, "--user: uid", &p->uid, err) < 0 ||
		    (colon && parse_id(colon + 1, "--user: gid", &p->gid, err) < 0))
			return -1;
	}
	if (!f->ngids)
		return 0;
	uint32_t *g = realloc(p->additional_gids, (p->nadditional_gids + f->ngids) * sizeof(*g));
	if (!g)
		return rv_fail(err, ENOMEM, "--additional-gids");
	p->additional_gids = g;
	for (size_t i = 0; i < f->ngids; i++)
		if (parse_id(f->gids[i], "--additional-gids", &g[p->nadditional_gids++], err) < 0)
			return -1;
	return 0;
}

/* runc adds --cap to the bounding, effective and permitted sets (not
 * inheritable, so not ambient). */
static int apply_caps(struct oci_process *p, const struct exec_flags *f, struct rv_err *err)
{
	for (size_t i = 0; i < f->ncaps; i++) {
		int cap = caps_number(f->caps[i]);
		if (cap < 0)
			return rv_failx(err, EINVAL, "--cap '%s': unknown capability (names as in "
					"capabilities(7), e.g. CAP_NET_ADMIN)", f->caps[i]);
		uint64_t bit = 1ull << cap;
		p->caps[SPEC_CAP_BOUNDING] |= bit;
		p->caps[SPEC_CAP_EFFECTIVE] |= bit;
		p->caps[SPEC_CAP_PERMITTED] |= bit;
	}
	return 0;
}

static int from_flags(const struct oci_process *tmpl, const struct exec_flags *f,
		      struct oci_process *p, struct rv_err *err)
{
	*p = *tmpl;     /* scalars and caps; every pointer replaced below */
	p->args = strv_dup(f->args, f->nargs, 0);
	p->env = strv_dup(tmpl->env, tmpl->nenv, f->nenv);
	p->cwd = strdup(f->cwd ? f->cwd : tmpl->cwd ? tmpl->cwd : "/");
	p->additional_gids = NULL;
	p->nadditional_gids = 0;
	p->nargs = f->nargs;
	if (!p->args || !p->env || !p->cwd)
		return rv_fail(err, ENOMEM, "exec");
	if (tmpl->nadditional_gids) {
		p->additional_gids = malloc(tmpl->nadditional_gids * sizeof(uint32_t));
		if (!p->additional_gids)
			return rv_fail(err, ENOMEM, "exec");
		memcpy(p->additional_gids, tmpl->additional_gids, tmpl->nadditional_gids * sizeof(uint32_t));
		p->nadditional_gids = tmpl->nadditional_gids;
	}
	for (size_t i = 0; i < f->nenv; i++) {
		if (!strchr(f->env[i], '=') || f->env[i][0] == '=')
			return rv_failx(err, EINVAL, "--env '%s': give NAME=VALUE", f->env[i]);
		if (!(p->env[tmpl->nenv + i] = strdup(f->env[i])))
			return rv_fail(err, ENOMEM, "exec");
	}
	p->nenv = exec_env_merge(p->env, tmpl->nenv + f->nenv);
	if (p->cwd[0] != '/')
		return rv_failx(err, EINVAL, "--cwd '%s': give an absolute path", p->cwd);
	p->terminal = f->tty_set ? f->tty : false;
	if (f->no_new_privs_set)
		p->no_new_privileges = f->no_new_privs;
	return apply_user(p, f, err) < 0 || apply_caps(p, f, err) < 0 ? -1 : 0;
}

static int from_file(const char *path, struct oci_process *p, struct rv_err *err)
{
	struct json_doc *doc = NULL;
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return rv_fail(err, errno, "--process %s", path);
	char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0) {
		char *t = len + n <= (1u << 20) ? realloc(text, len + n + 1) : NULL;
		if (!t) {
			fclose(f);
			return rv_failx(err, EFBIG, "--process %s: larger than 1 MiB", path);
		}
		text = t;
		memcpy(text + len, buf, n);
		len += n;
	}
	fclose(f);
	if (spec_parse_process(text ? text : "", len, p, &doc, err) < 0)
		return rv_wrap(err, "--process %s", path);
	json_free(doc);
	return 0;
}

int exec_proc_build(const struct oci_spec *spec, const struct exec_flags *f,
		    struct oci_process *out, struct rv_err *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (f->process_file) {
		if (f->nargs)
			return rv_failx(err, EINVAL, "give the command in --process or after the id, "
					"not both");
		rc = from_file(f->process_file, out, err);
	} else {
		if (!f->nargs)
			return rv_failx(err, EINVAL, "give the command to run after the id, or "
					"--process FILE");
		rc = from_flags(&spec->process, f, out, err);
	}
	if (rc < 0)
		exec_proc_free(out);
	return rc;
}
