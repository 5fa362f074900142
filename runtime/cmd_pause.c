/* runvm pause ID: stops every vCPU of the container's VM. */
#include "runtime/cli.h"
#include "runtime/container.h"

int cmd_pause(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct container c;
	const char *id;
	char reply[64];

	if (container_id_arg(argc, argv, "pause ID", &id, err) < 0 ||
	    container_open(cli, id, &c, err) < 0)
		return -1;
	int rc = container_call(&c, "pause", reply, sizeof(reply), err);
	if (rc == 0)
		rc = container_record(&c, "paused", err);
	container_close(&c);
	return rc < 0 ? rv_wrap(err, "pause %.64s", id) : 0;
}
