/* OCI hooks (config.json "hooks"): programs the runtime runs at points of the
 * lifecycle with the container's state JSON on stdin. The host-side kinds run
 * here, in the CLI: prestart and createRuntime at the end of create (a failure
 * fails create, which cleans up), poststart after start and poststop after
 * delete (a failure is a warning; the lifecycle goes on), as the runtime spec
 * says. createContainer and startContainer run in the container, which for
 * runvm is inside the guest: hooks_run_guest execs each there through the
 * VMM's control socket (hooks_guest.c), with the same rules. */
#ifndef RV_HOOKS_H
#define RV_HOOKS_H

#include <stddef.h>

#include "common/err.h"

enum hook_kind {
	HOOK_PRESTART, HOOK_CREATE_RUNTIME, HOOK_CREATE_CONTAINER, HOOK_START_CONTAINER,
	HOOK_POSTSTART, HOOK_POSTSTOP, HOOK_KINDS
};

extern const char *const hook_kind_names[HOOK_KINDS];   /* "createRuntime" */

struct oci_hook {
	char *path;            /* absolute */
	char **args;           /* NULL-terminated; args[0] as given, or path when absent */
	char **env;            /* NULL-terminated, maybe empty */
	unsigned timeout_s;    /* 0: none */
};

struct oci_hooks {
	struct oci_hook *list[HOOK_KINDS];
	size_t n[HOOK_KINDS];
};

/* The hook's output kept for an error message. */
#define HOOK_STDERR_BYTES 2048

/* Runs the hooks of KIND in order, each with STATE_JSON on stdin, its stdout
 * and stderr captured; the first that fails (a non-zero exit, a signal, its
 * timeout, a missing program) stops them: "hooks.createRuntime[1] /bin/x:
 * exit status 3: <the tail of its stderr>". */
int hooks_run(const struct oci_hooks *h, enum hook_kind kind, const char *state_json,
	      struct rv_err *err);

/* The same for hooks that run in the container (createContainer,
 * startContainer), through the sandbox's control socket CTL_PATH; the path
 * is looked up in the container's root. */
int hooks_run_guest(const char *ctl_path, const struct oci_hooks *h, enum hook_kind kind,
		    const char *state_json, struct rv_err *err);

void hooks_free(struct oci_hooks *h);

#endif
