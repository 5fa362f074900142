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
	const char *log_path;       /* --log as given; NULL: stderr */
	const char *log_format;     /* --log-format as given; NULL: text */
	int exit_code;              /* a verb's status when it succeeded (boot: the guest's) */
};

typedef int (*cli_verb_fn)(struct cli *cli, int argc, char **argv, struct rv_err *err);

/* One per verb, each in its runtime/cmd_<verb>.c. */
int cmd_create(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_start(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_run(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_state(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_list(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_kill(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_delete(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_wait(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_pause(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_resume(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_exec(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_ps(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_events(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_spec(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_features(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_boot(struct cli *cli, int argc, char **argv, struct rv_err *err);
int cmd_do(struct cli *cli, int argc, char **argv, struct rv_err *err);

#endif
