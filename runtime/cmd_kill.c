/* runvm kill [--all] ID [SIGNAL]: SIGNAL (default TERM) to the container's
 * init, or with --all to every process in it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cli.h"
#include "runtime/container.h"
#include "runtime/signals.h"

#define USAGE "kill [--all] ID [SIGNAL]"

int cmd_kill(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	static const struct option opts[] = { { "all", no_argument, NULL, 'a' },
					      { "pid", required_argument, NULL, 'p' }, { 0 } };
	bool all = false;
	int c, sig = 15;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+a", opts, NULL)) != -1) {
		if (c == 'a')
			all = true;
		else if (c == 'p')
			return rv_failx(err, ENOTSUP, "kill --pid: signal a process by its guest pid is "
					"not supported; use exec's own kill");
		else
			return rv_failx(err, EINVAL, "kill: unknown flag '%s' (usage: runvm " USAGE ")",
					argv[optind - 1]);
	}
	if (optind >= argc || argc - optind > 2)
		return rv_failx(err, EINVAL, "kill: give the container id (usage: runvm " USAGE ")");
	const char *id = argv[optind];
	if (argc - optind == 2 && signal_parse(argv[optind + 1], &sig, err) < 0)
		return rv_wrap(err, "kill %.64s", id);

	struct container ct;
	char req[32], reply[64];
	if (container_open(cli, id, &ct, err) < 0)
		return -1;
	int rc = -1;
	const char *status = container_status(&ct);
	if (!strcmp(status, "stopped"))
		rv_failx(err, ESRCH, "container not running");
	else {
		snprintf(req, sizeof(req), "%s %d", all ? "kill-all" : "kill", sig);
		rc = container_call(&ct, req, reply, sizeof(reply), err);
	}
	container_close(&ct);
	return rc < 0 ? rv_wrap(err, "kill %.64s", id) : 0;
}
