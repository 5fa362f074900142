/* runvm start ID: starts the process of a created container. */
#include "runtime/cli.h"
#include "runtime/container.h"

int cmd_start(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	const char *id;

	if (container_id_arg(argc, argv, "start ID", &id, err) < 0)
		return -1;
	return container_start(cli, id, err) < 0 ? rv_wrap(err, "start %.64s", id) : 0;
}
