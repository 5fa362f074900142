/* runvm delete [--force] ID: removes a stopped (or never started) container;
 * --force first kills its VMM, running, paused or hung. */
#include <errno.h>
#include <getopt.h>
#include <string.h>

#include "runtime/cli.h"
#include "runtime/container.h"

#define USAGE "delete [--force] ID"

int cmd_delete(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	static const struct option opts[] = { { "force", no_argument, NULL, 'f' }, { 0 } };
	bool force = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f", opts, NULL)) != -1) {
		if (c != 'f')
			return rv_failx(err, EINVAL, "delete: unknown flag '%s' (usage: runvm " USAGE ")",
					argv[optind - 1]);
		force = true;
	}
	if (argc - optind != 1)
		return rv_failx(err, EINVAL, "delete: give one container id (usage: runvm " USAGE ")");
	const char *id = argv[optind];
	struct container ct;
	if (container_open(cli, id, &ct, err) < 0) {
		/* As runc: forcing the delete of what is not there succeeds. */
		return force && err->code == ENOENT ? 0 : -1;
	}
	const char *status = container_status(&ct);
	/* A created container was never started: runc deletes it without --force. */
	bool may = force || !strcmp(status, "stopped") || !strcmp(status, "created");
	if (!may) {
		container_close(&ct);
		return rv_failx(err, EBUSY, "cannot delete container %s that is not stopped: %s "
				"(stop it, or use delete --force)", id, status);
	}
	if (container_kill_vmm(&ct, err) < 0) {
		container_close(&ct);
		return rv_wrap(err, "delete %.64s", id);
	}
	if (container_destroy(&ct, err) < 0)
		return rv_wrap(err, "delete %.64s", id);
	return 0;
}
