/* What every CLI verb gets: the global flags, parsed once in main. */
#ifndef RV_CLI_H
#define RV_CLI_H

#include <stdbool.h>

#include "common/err.h"
#include "common/log.h"

#define RUNVM_DEFAULT_ROOT "/run/runvm"

struct cli {
	const char *root;           /* --root: state directories live here */
	bool debug;                 /* --debug */
	bool systemd_cgroup;        /* --systemd-cgroup: accepted, as runc's clients pass it */
	struct rv_log log;          /* --log, --log-format */
	int exit_code;              /* a verb's status when it succeeded (boot: the guest's) */
};

typedef int (*cli_verb_fn)(struct cli *cli, int argc, char **argv, struct rv_err *err);

int cmd_features(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_boot(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_guest_verb(struct cli *cli, int argc, char **argv, struct rv_err *err);

#endif
