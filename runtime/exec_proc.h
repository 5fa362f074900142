/* The process `runvm exec` runs, by runc's rules: a --process file as it is,
 * or else the container's own process (config.json's, as create saw it) with
 * the command line's args and flags over it. */
#ifndef RV_EXEC_PROC_H
#define RV_EXEC_PROC_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "runtime/spec.h"

struct exec_flags {
	const char *process_file;      /* --process: the whole process, flags below ignored
					* but for --tty, --env, ... as runc (none) */
	const char *cwd;               /* --cwd */
	const char *user;              /* --user uid[:gid], numbers */
	const char *const *env;        /* --env NAME=VALUE, in order: later wins */
	size_t nenv;
	const char *const *gids;       /* --additional-gids, each a number */
	size_t ngids;
	const char *const *caps;       /* --cap CAP_NAME: added to the process's */
	size_t ncaps;
	bool tty, tty_set;             /* --tty */
	bool no_new_privs, no_new_privs_set;
	char *const *args;             /* the command after the id */
	size_t nargs;
};

/* Fills *out (exec_proc_free it). spec is the container's; flags as given.
 * Errors name the flag or the process file's field. */
int exec_proc_build(const struct oci_spec *spec, const struct exec_flags *f,
		    struct oci_process *out, struct rv_err *err);
void exec_proc_free(struct oci_process *p);

/* env with later entries of a name replacing earlier ones, in the place the
 * name first had (runc's rule for spec env + --env). In place; returns the
 * new count (the dropped strings are freed). */
size_t exec_env_merge(char **env, size_t n);

#endif
