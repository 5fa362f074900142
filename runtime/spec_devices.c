/* linux.devices: device nodes the agent makes in the container. In a VM a
 * major:minor names the guest kernel's device of that number (/dev/fuse is
 * the guest's FUSE), never the host's: no host device is passed through. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "runtime/spec_priv.h"

#define DEFAULT_DEVICE_MODE 0666

/* Absolute, no "..", and naming something below the root. */
static bool path_ok(const char *path)
{
	const char *last = strrchr(path, '/');

	return path[0] == '/' && last[1] && strcmp(last, "/.") && !spec_has_dotdot(path);
}

static int parse_kind(const struct json_val *dev, uint32_t *kind, struct rv_err *err)
{
	const char *type;
	char q[SPEC_QUOTE_BYTES];

	if (json_get_string(dev, "type", JSON_REQUIRED, &type, err) < 0)
		return -1;
	if (strlen(type) != 1 || !strchr("cubp", type[0]))
		return json_fail(dev, "type", err, "%s: use c or u (character), b (block) or p "
				 "(FIFO)", spec_quote(q, type));
	*kind = type[0] == 'u' ? 'c' : (uint32_t)type[0];
	return 0;
}

static int parse_one(const struct json_val *dev, struct proto_mknod *d, struct rv_err *err)
{
	const char *path;
	char q[SPEC_QUOTE_BYTES];
	uint64_t major = 0, minor = 0, mode = DEFAULT_DEVICE_MODE, uid = 0, gid = 0;

	if (json_check_type(dev, JSON_OBJECT, err) < 0 ||
	    json_get_string(dev, "path", JSON_REQUIRED, &path, err) < 0 ||
	    parse_kind(dev, &d->kind, err) < 0)
		return -1;
	if (!path_ok(path))
		return json_fail(dev, "path", err, "%s: give an absolute path inside the container, "
				 "without \"..\", naming the node", spec_quote(q, path));
	enum json_need need = d->kind == 'p' ? JSON_OPTIONAL : JSON_REQUIRED;
	if (json_get_uint64(dev, "major", need, PROTO_MAX_DEV_MAJOR, &major, err) < 0 ||
	    json_get_uint64(dev, "minor", need, PROTO_MAX_DEV_MINOR, &minor, err) < 0 ||
	    json_get_uint64(dev, "fileMode", JSON_OPTIONAL, UINT32_MAX, &mode, err) < 0 ||
	    json_get_uint64(dev, "uid", JSON_OPTIONAL, UINT32_MAX, &uid, err) < 0 ||
	    json_get_uint64(dev, "gid", JSON_OPTIONAL, UINT32_MAX, &gid, err) < 0)
		return -1;
	if (d->kind == 'p' && (major || minor))
		return json_fail(dev, "major", err, "a FIFO has no device number; drop major and "
				 "minor");
	d->major = (uint32_t)major;
	d->minor = (uint32_t)minor;
	if (mode & ~(uint64_t)(S_IFMT | 07777))
		return json_fail(dev, "fileMode", err, "0%llo has bits beyond a file type and 07777",
				 (unsigned long long)mode);
	d->mode = (uint32_t)(mode & 07777);   /* runc drops the type bits some specs carry */
	d->uid = (uint32_t)uid;
	d->gid = (uint32_t)gid;
	char *copy = strdup(path);
	if (!copy)
		return rv_fail(err, ENOMEM, "linux.devices");
	d->target = copy;
	return 0;
}

int spec_parse_devices(const struct json_val *lnx, struct oci_spec *s, struct rv_err *err)
{
	const struct json_val *arr;

	if (json_get(lnx, "devices", JSON_ARRAY, JSON_OPTIONAL, &arr, err) < 0)
		return -1;
	size_t n = json_len(arr);
	if (n && !(s->devices = calloc(n, sizeof(*s->devices))))
		return rv_fail(err, ENOMEM, "linux.devices");
	for (size_t i = 0; i < n; i++) {
		if (parse_one(json_item(arr, i), &s->devices[i], err) < 0)
			return -1;
		s->ndevices = i + 1;
	}
	return 0;
}
