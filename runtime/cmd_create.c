/* runvm create [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID:
 * boots the container's VM and leaves its process ready, not started. */
#include <stddef.h>

#include "runtime/cli.h"
#include "runtime/launch.h"

int cmd_create(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct launch_opts o = { 0 };
	const char *id;
	pid_t vmm;

	if (launch_parse(argc, argv, &o, NULL, &id, err) < 0)
		return -1;
	if (launch_create(cli, id, &o, &vmm, err) < 0)
		return rv_wrap(err, "create %.64s", id);
	return 0;
}
