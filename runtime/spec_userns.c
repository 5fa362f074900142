/* linux.uidMappings and gidMappings, and the user namespace they map: the
 * rules runc's validator applies, checked here so that the guest kernel's
 * EINVAL on a map write never is the first word a user reads. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/spec_priv.h"

#define ID_SPACE (1ull << 32)

static int parse_line(const struct json_val *v, struct oci_id_map *m, struct rv_err *err)
{
	uint64_t cid, hid, size;

	if (json_check_type(v, JSON_OBJECT, err) < 0 ||
	    json_get_uint64(v, "containerID", JSON_REQUIRED, UINT32_MAX, &cid, err) < 0 ||
	    json_get_uint64(v, "hostID", JSON_REQUIRED, UINT32_MAX, &hid, err) < 0 ||
	    json_get_uint64(v, "size", JSON_REQUIRED, UINT32_MAX, &size, err) < 0)
		return -1;
	if (size == 0)
		return json_fail(v, "size", err, "must be at least 1");
	/* The kernel takes ids up to 4294967294: -1 is "no id". */
	if (cid + size >= ID_SPACE || hid + size >= ID_SPACE)
		return json_fail(v, "size", err, "%llu ids from containerID %llu or hostID %llu pass "
				 "4294967294, the last id", (unsigned long long)size,
				 (unsigned long long)cid, (unsigned long long)hid);
	*m = (struct oci_id_map){ (uint32_t)cid, (uint32_t)hid, (uint32_t)size };
	return 0;
}

static bool overlap(uint32_t a, uint32_t b, uint32_t size_a, uint32_t size_b)
{
	return (uint64_t)a < (uint64_t)b + size_b && (uint64_t)b < (uint64_t)a + size_a;
}

/* The kernel takes no two lines whose container or host ranges meet. */
static int check_disjoint(const struct json_val *arr, const struct oci_id_map *m, size_t i,
			  struct rv_err *err)
{
	for (size_t k = 0; k < i; k++) {
		if (overlap(m[k].container_id, m[i].container_id, m[k].size, m[i].size))
			return json_fail(json_item(arr, i), "containerID", err, "the range overlaps "
					 "that of line %zu; each container id is mapped once", k);
		if (overlap(m[k].host_id, m[i].host_id, m[k].size, m[i].size))
			return json_fail(json_item(arr, i), "hostID", err, "the range overlaps that "
					 "of line %zu; each host id is mapped once", k);
	}
	return 0;
}

static bool maps_id(const struct oci_id_map *m, size_t n, uint32_t id)
{
	for (size_t i = 0; i < n; i++)
		if (id >= m[i].container_id && (uint64_t)id < (uint64_t)m[i].container_id + m[i].size)
			return true;
	return false;
}

/* The guest writes a map in one write of less than a page, "%u %u %u\n" a
 * line. */
static bool fits_a_page(const struct oci_id_map *m, size_t n)
{
	size_t bytes = 0;
	char line[40];

	for (size_t i = 0; i < n; i++)
		bytes += (size_t)snprintf(line, sizeof(line), "%u %u %u\n", m[i].container_id,
					  m[i].host_id, m[i].size);
	return bytes < 4096;
}

static int parse_map(const struct json_val *lnx, const char *key, struct oci_id_map **out,
		     size_t *n, struct rv_err *err)
{
	const struct json_val *arr;

	if (json_get(lnx, key, JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	size_t len = json_len(arr);
	if (len > SPEC_MAX_ID_MAPS)
		return json_fail(arr, NULL, err, "%zu lines; the kernel takes at most %u", len,
				 SPEC_MAX_ID_MAPS);
	if (len && !(*out = calloc(len, sizeof(**out))))
		return rv_fail(err, ENOMEM, "linux.%s", key);
	for (size_t i = 0; i < len; i++) {
		if (parse_line(json_item(arr, i), &(*out)[i], err) < 0 ||
		    check_disjoint(arr, *out, i, err) < 0)
			return -1;
		*n = i + 1;
	}
	if (!fits_a_page(*out, *n))
		return json_fail(arr, NULL, err, "%zu lines make more than the 4095 bytes the kernel "
				 "takes for a map; merge adjacent ranges", *n);
	return 0;
}

int spec_parse_userns(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *nss;

	if (parse_map(lnx, "uidMappings", &s->uid_maps, &s->nuid_maps, err) < 0 ||
	    parse_map(lnx, "gidMappings", &s->gid_maps, &s->ngid_maps, err) < 0 ||
	    json_get(lnx, "namespaces", JSON_ARRAY, JSON_OPTIONAL, &nss, err) < 0)
		return -1;
	for (size_t i = 0; i < s->nnamespaces; i++) {
		if (strcmp(s->namespaces[i].type, "user"))
			continue;
		if (s->namespaces[i].path)
			return json_fail(json_item(nss, i), "path", err, "a container in runvm's VM "
					 "cannot join the host's user namespace; drop the path for a "
					 "new one in the guest, mapped by linux.uidMappings");
		s->userns = true;
	}
	if (s->userns && (!s->nuid_maps || !s->ngid_maps))
		return json_fail(lnx, s->nuid_maps ? "gidMappings" : "uidMappings", err,
				 "the user namespace (linux.namespaces) needs uid and gid mappings; "
				 "add both, as `runvm spec --rootless` writes them");
	/* As runc: the container's root, and the processes' hooks run as, must
	 * be someone in the namespace. */
	if (s->userns && !maps_id(s->uid_maps, s->nuid_maps, 0))
		return json_fail(lnx, "uidMappings", err, "no line maps the container's root (uid 0); "
				 "add one, as `runvm spec --rootless` writes it");
	if (s->userns && !maps_id(s->gid_maps, s->ngid_maps, 0))
		return json_fail(lnx, "gidMappings", err, "no line maps the container's root group "
				 "(gid 0); add one");
	if (s->userns && (!maps_id(s->uid_maps, s->nuid_maps, s->process.uid) ||
			  !maps_id(s->gid_maps, s->ngid_maps, s->process.gid)))
		return json_fail(lnx, "uidMappings", err, "process.user %u:%u is not mapped; map it "
				 "or run as a mapped id", s->process.uid, s->process.gid);
	if (!s->userns && (s->nuid_maps || s->ngid_maps))
		return json_fail(lnx, s->nuid_maps ? "uidMappings" : "gidMappings", err,
				 "mappings without a user namespace; add {\"type\": \"user\"} to "
				 "linux.namespaces, or drop them");
	return 0;
}
