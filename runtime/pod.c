#include "runtime/pod.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "runtime/container.h"

static const struct {
	const char *type, *sandbox_id;
} engines[] = {
	{ "io.kubernetes.cri.container-type", "io.kubernetes.cri.sandbox-id" },
	{ "io.kubernetes.cri-o.ContainerType", "io.kubernetes.cri-o.SandboxID" },
};

int pod_role(const struct oci_spec *s, enum pod_role *role, const char **sandbox_id,
	     struct rv_err *err)
{
	*role = POD_NONE;
	for (size_t i = 0; i < sizeof(engines) / sizeof(engines[0]); i++) {
		const char *type = spec_annotation(s, engines[i].type);
		if (!type)
			continue;
		if (!strcmp(type, "sandbox")) {
			*role = POD_SANDBOX;
			return 0;
		}
		if (strcmp(type, "container"))
			return rv_failx(err, EINVAL, "annotations.%s: '%s' is neither \"sandbox\" nor "
					"\"container\"", engines[i].type, type);
		const char *id = spec_annotation(s, engines[i].sandbox_id);
		if (!id || !id[0])
			return rv_failx(err, EINVAL, "annotations.%s: a pod's container needs its pod "
					"in %s", engines[i].type, engines[i].sandbox_id);
		*role = POD_MEMBER;
		if (sandbox_id)
			*sandbox_id = id;
		return 0;
	}
	return 0;
}

/* The sandbox's own spec says it is a pod's: a plain container's VM takes
 * no one in (its VMM would refuse too, less clearly). */
static int check_sandbox(const struct container *c, struct rv_err *err)
{
	struct oci_spec spec = { 0 };
	enum pod_role role = POD_NONE;

	if (container_spec(c, &spec, err) < 0)
		return -1;
	int rc = pod_role(&spec, &role, NULL, err);
	spec_free(&spec);
	if (rc == 0 && role != POD_SANDBOX)
		rc = rv_failx(err, EINVAL, "container %s is not a pod's sandbox (annotation "
			      "io.kubernetes.cri.container-type is not \"sandbox\")", c->id);
	return rc;
}

int pod_control_path(const struct cli *cli, const char *sandbox_id, char *out, size_t size,
		     struct rv_err *err)
{
	struct container c;

	if (container_peek(cli, sandbox_id, &c, err) < 0)
		return rv_wrap(err, "pod sandbox %s (under %s)", sandbox_id, cli->root);
	const char *status = container_status(&c);
	int rc = check_sandbox(&c, err);
	if (rc == 0 && strcmp(status, "running") && strcmp(status, "created"))
		rc = rv_failx(err, ESRCH, "pod sandbox %s is %s: its containers need its VM running",
			      sandbox_id, status);
	if (rc == 0 && snprintf(out, size, "%s", c.ctl_path) >= (int)size)
		rc = rv_failx(err, ENAMETOOLONG, "pod sandbox %s: control socket path too long",
			      sandbox_id);
	container_close(&c);
	return rc;
}
