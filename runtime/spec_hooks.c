/* config.json's "hooks": each kind an array of {path, args, env, timeout}. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/spec_priv.h"

static int parse_hook(const struct json_val *v, struct oci_hook *hk, struct rv_err *err)
{
	const struct json_val *args, *env;
	uint64_t timeout = 0;
	size_t n;
	char q[SPEC_QUOTE_BYTES];

	if (json_check_type(v, JSON_OBJECT, err) < 0 ||
	    spec_get_copy(v, "path", JSON_REQUIRED, &hk->path, err) < 0)
		return -1;
	if (hk->path[0] != '/')
		return json_fail(v, "path", err, "%s: give an absolute path to the program",
				 spec_quote(q, hk->path));
	if (json_get(v, "args", JSON_ARRAY, JSON_OPTIONAL, &args, err) < 0 ||
	    json_get(v, "env", JSON_ARRAY, JSON_OPTIONAL, &env, err) < 0 ||
	    json_get_uint64(v, "timeout", JSON_OPTIONAL, 86400, &timeout, err) < 0 ||
	    spec_copy_strv(env, &hk->env, &n, err) < 0)
		return -1;
	if (json_member(v, "timeout") && timeout == 0)
		return json_fail(v, "timeout", err, "must be at least 1 (seconds)");
	hk->timeout_s = (unsigned)timeout;
	if (json_len(args))
		return spec_copy_strv(args, &hk->args, &n, err);
	/* No args: argv[0] is the path, as runc runs it. */
	if (!(hk->args = calloc(2, sizeof(char *))) || !(hk->args[0] = strdup(hk->path)))
		return rv_fail(err, ENOMEM, "hooks");
	return 0;
}

int spec_parse_hooks(const struct json_val *top, struct oci_hooks *h, struct rv_err *err)
{
	const struct json_val *obj, *arr;

	if (json_get(top, "hooks", JSON_OBJECT, JSON_OPTIONAL, &obj, err) < 0)
		return -1;
	for (int k = 0; obj && k < HOOK_KINDS; k++) {
		if (json_get(obj, hook_kind_names[k], JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
			return -1;
		size_t n = json_len(arr);
		if (!n)
			continue;
		if (!(h->list[k] = calloc(n, sizeof(struct oci_hook))))
			return rv_fail(err, ENOMEM, "hooks");
		for (size_t i = 0; i < n; i++) {
			h->n[k]++;     /* counted first: a half-parsed hook is freed too */
			if (parse_hook(json_item(arr, i), &h->list[k][i], err) < 0)
				return -1;
		}
	}
	return 0;
}

void hooks_free(struct oci_hooks *h)
{
	for (int k = 0; k < HOOK_KINDS; k++) {
		for (size_t i = 0; i < h->n[k]; i++) {
			free(h->list[k][i].path);
			spec_strv_free(h->list[k][i].args);
			spec_strv_free(h->list[k][i].env);
		}
		free(h->list[k]);
		h->list[k] = NULL;
		h->n[k] = 0;
	}
}
