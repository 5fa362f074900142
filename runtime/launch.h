/* `create`, and the first half of `run`: a validated bundle becomes a state dir
 * and a VMM (`runvm boot`, our child) whose container process is ready but not
 * started (DESIGN §1). */
#ifndef RV_LAUNCH_H
#define RV_LAUNCH_H

#include <stdbool.h>
#include <sys/types.h>

#include "common/err.h"
#include "runtime/cli.h"

struct launch_opts {
	const char *bundle;           /* NULL: the current directory */
	const char *pid_file;         /* NULL: none */
	const char *console_socket;   /* NULL: none */
	/* NULL: process.terminal needs console_socket (create, run -d: runc's
	 * "cannot allocate tty if runc will detach without setting console
	 * socket"). Else, without console_socket, the console's master comes
	 * back here (`run` in the foreground relays it; -1 without a terminal),
	 * of console_rows x console_cols (the user's terminal's) when both are
	 * given, else of the spec's consoleSize. */
	int *console_master;
	unsigned console_rows, console_cols;
};

/* The error the VMM of ID ended with, as it wrote it to its state dir's boot
 * log ("" when it wrote none): `run`, whose start returns once the process
 * is released, reports a process that then failed to start in the guest. */
void launch_boot_error(const struct cli *cli, const char *id, char *buf, size_t size);
/* On success the container is "created" and *vmm is the VMM's pid (our child,
 * for `run` to wait for). On failure nothing is left: no VMM, no state dir,
 * no console. */
int launch_create(struct cli *cli, const char *id, const struct launch_opts *o, pid_t *vmm,
		  struct rv_err *err);

/* Parses create's and run's shared flags; *id gets the positional id.
 * run's -d/--detach when detach is not NULL. */
int launch_parse(int argc, char **argv, struct launch_opts *o, bool *detach, const char **id,
		 struct rv_err *err);

#endif
