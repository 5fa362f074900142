/* runvm state ID: the OCI state JSON, as runc prints it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "runtime/cli.h"
#include "runtime/container.h"

int cmd_state(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct container c;
	const char *id;

	if (container_id_arg(argc, argv, "state ID", &id, err) < 0 ||
	    container_open(cli, id, &c, err) < 0)
		return -1;
	char *json = state_oci_json(&c.st, container_status(&c));
	container_close(&c);
	if (!json)
		return rv_fail(err, ENOMEM, "state %s", id);
	printf("%s\n", json);
	free(json);
	return 0;
}
