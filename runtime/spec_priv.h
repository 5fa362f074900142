/* Inside runtime/spec: what spec.c and spec_process.c share. Not for other
 * modules. */
#ifndef RV_SPEC_PRIV_H
#define RV_SPEC_PRIV_H

#include "runtime/json.h"
#include "runtime/spec.h"

#define SPEC_QUOTE_BYTES 96

/* S as a JSON string for an error message, cut short when long. */
const char *spec_quote(char buf[static SPEC_QUOTE_BYTES], const char *s);
int spec_copy_str(const char *s, char **out, struct rv_err *err);
/* Member KEY of OBJ as a fresh copy; json_get's 1/0/-1. */
int spec_get_copy(const struct json_val *obj, const char *key, enum json_need need, char **out,
		  struct rv_err *err);
void spec_strv_free(char **v);
/* A ".." component anywhere in path. */
bool spec_has_dotdot(const char *path);
/* The strings of array ARR (NULL: none) as a NULL-terminated vector. */
int spec_copy_strv(const struct json_val *arr, char ***out, size_t *n, struct rv_err *err);

/* config.json's "hooks" (spec_hooks.c). */
int spec_parse_hooks(const struct json_val *top, struct oci_hooks *h, struct rv_err *err);

/* linux.uidMappings, gidMappings and the user namespace they belong to
 * (spec_userns.c); after linux.namespaces. */
int spec_parse_userns(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err);

/* linux.devices (spec_devices.c). */
int spec_parse_devices(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err);

/* config.json's "process" member (spec_process.c). */
int spec_parse_process_member(const struct json_val *top, struct oci_process *p,
			      struct rv_err *err);

#endif
