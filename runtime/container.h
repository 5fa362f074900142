/* One container as the CLI verbs see it: its state dir, locked, its recorded
 * state, and its live status asked of its VMM. */
#ifndef RV_CONTAINER_H
#define RV_CONTAINER_H

#include <limits.h>
#include <stdbool.h>

#include "common/err.h"
#include "runtime/cli.h"
#include "runtime/spec.h"
#include "runtime/state.h"

struct container {
	const struct cli *cli;
	const char *root, *id;
	int dirfd, lockfd;
	struct ct_state st;
	char ctl_path[PATH_MAX];       /* ROOT/ID/control.sock */
};

/* Checks id, opens and locks ROOT/ID and reads its state. "container does not
 * exist" (ENOENT) as runc says it. */
int container_open(const struct cli *cli, const char *id, struct container *c, struct rv_err *err);
/* The same without the lock, for readers (list) that must not wait for a
 * create in progress. */
int container_peek(const struct cli *cli, const char *id, struct container *c, struct rv_err *err);
void container_close(struct container *c);

/* The status a client sees: "creating", "created", "running", "paused" or
 * "stopped" (the VMM is gone, or the process in it has exited). */
const char *container_status(const struct container *c);

/* Sends one control request to the container's VMM (runtime/ctl.h). */
int container_call(const struct container *c, const char *req, char *reply, size_t size,
		   struct rv_err *err);

/* SIGKILLs the VMM, if it still runs, and waits until it is gone. */
int container_kill_vmm(const struct container *c, struct rv_err *err);

/* The process's status from the exit file the VMM leaves: code or 128 + signal.
 * ENOENT when the VMM left none. */
int container_exit_status(const struct container *c, int *status, struct rv_err *err);

/* Records status in state.json (what `list` shows of a VMM that went away). */
int container_record(struct container *c, const char *status, struct rv_err *err);

/* start and run: a created container's process starts (runc's errors for
 * any other status), and state.json records it running. */
int container_start(const struct cli *cli, const char *id, struct rv_err *err);

/* config.json as create saw it (saved in the state dir; the bundle's for a
 * container created before runvm kept a copy). spec_free it. */
int container_spec(const struct container *c, struct oci_spec *spec, struct rv_err *err);

/* Runs poststop hooks (a failure is a warning, as the runtime spec says),
 * removes the state dir (the lock goes with it) and closes c. */
int container_destroy(struct container *c, struct rv_err *err);

/* `--flag value` / `--flag=value` and the one positional ID, for the verbs that
 * take nothing else: the error names the verb's usage. */
int container_id_arg(int argc, char **argv, const char *usage, const char **id, struct rv_err *err);

#endif
