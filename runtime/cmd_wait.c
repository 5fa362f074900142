/* runvm wait ID: waits for the container's process to exit and prints
 * {"id":ID,"exitStatus":N} (runsc's wait). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/jsonw.h"
#include "runtime/cli.h"
#include "runtime/container.h"

int cmd_wait(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct container c;
	const char *id;
	char reply[64], quoted[2 * STATE_ID_MAX + 8];
	int status = -1;

	if (container_id_arg(argc, argv, "wait ID", &id, err) < 0 ||
	    container_open(cli, id, &c, err) < 0)
		return -1;
	/* Waiting must not hold the container's lock: kill and delete go on. */
	close(c.lockfd);
	c.lockfd = -1;
	if (ctl_call(c.ctl_path, "wait", reply, sizeof(reply), err) == 0)
		status = atoi(reply);
	else if (container_exit_status(&c, &status, err) < 0)
		status = -1;
	container_close(&c);
	if (status < 0)
		return rv_wrap(err, "wait %.64s", id);
	jsonw_quote(quoted, sizeof(quoted), id);
	printf("{\"id\":%s,\"exitStatus\":%d}\n", quoted, status);
	return 0;
}
