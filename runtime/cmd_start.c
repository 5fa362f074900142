/* runvm start ID: starts the process of a created container. */
#include <errno.h>
#include <string.h>

#include "runtime/cli.h"
#include "runtime/container.h"

int cmd_start(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct container c;
	const char *id;
	char reply[64];

	if (container_id_arg(argc, argv, "start ID", &id, err) < 0 ||
	    container_open(cli, id, &c, err) < 0)
		return -1;
	const char *status = container_status(&c);
	int rc = -1;
	if (!strcmp(status, "stopped"))
		rv_failx(err, EINVAL, "cannot start a container that has stopped");
	else if (strcmp(status, "created"))
		rv_failx(err, EINVAL, "cannot start an already %s container", status);
	else if (container_call(&c, "start", reply, sizeof(reply), err) == 0)
		rc = container_record(&c, "running", err);
	container_close(&c);
	return rc < 0 ? rv_wrap(err, "start %.64s", id) : 0;
}
