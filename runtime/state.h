/* The container state directory, as runc's /run/runc/<id>: ROOT/ID holds
 * state.json, the lock file, the VMM's control socket and its exit file. Every
 * CLI call is a short-lived process; this directory is all they share. */
#ifndef RV_STATE_H
#define RV_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "common/err.h"

#define STATE_ID_MAX 1024
#define STATE_OCI_VERSION "1.0.2"

/* Names inside ROOT/ID. */
#define STATE_FILE "state.json"
#define STATE_LOCK_FILE "lock"
#define STATE_CONTROL_SOCK "control.sock"   /* made by the VMM */
#define STATE_EXIT_FILE "exit"              /* written by the VMM */
#define STATE_SPEC_FILE "config.json"       /* the bundle's, as create read it (for exec) */

/* A larger state.json is corrupt (annotations are the only unbounded part). */
#define STATE_JSON_MAX_BYTES (4u << 20)

/* runc's rule: [A-Za-z0-9][A-Za-z0-9_.+-]*, at most STATE_ID_MAX bytes. The
 * error names the id and the rule. */
int state_check_id(const char *id, struct rv_err *err);

struct ct_annotation {
	char *key, *value;
};

struct ct_state {
	char *id, *bundle, *rootfs;
	char *created;            /* RFC 3339 UTC, as runc: 2024-01-02T03:04:05.123456789Z */
	char *status;             /* last recorded: "creating", "created", "running", "paused", "stopped" */
	pid_t pid;                /* the VMM's host pid; 0 before it is launched */
	uint64_t pid_start;       /* its start time: field 22 of /proc/PID/stat (clock ticks since boot) */
	struct ct_annotation *annotations;
	size_t nannotations;
	char *owner;              /* "" as runc prints for root */
	char *cgroup;             /* the VMM's host cgroup below each hierarchy's root, NULL:
				   * none (private to state.json, as pidStart is) */
};

/* Each gives the caller an O_DIRECTORY fd of ROOT/ID; everything else works on it.
 * create: mkdir -p ROOT (0711), then ROOT/ID (0700) exclusively: EEXIST when the
 * container already exists. open: ENOENT when it does not. */
int state_create(const char *root, const char *id, int *dirfd, struct rv_err *err);
int state_open(const char *root, const char *id, int *dirfd, struct rv_err *err);

/* Blocks for an exclusive flock on ROOT/ID/lock, so CLI calls on one id
 * serialize. Unlock by closing *lockfd. Fails with ENOENT when the container was
 * removed while this call waited (its lock file is gone). */
int state_lock(int dirfd, int *lockfd, struct rv_err *err);

/* state.json is written whole to a temp file in the dir and renamed over (0600).
 * It is the OCI state (as `runc state` prints it) plus the private "pidStart". */
int state_write(int dirfd, const struct ct_state *s, struct rv_err *err);
/* Strict and bounded: a truncated or corrupt file is an error naming the file.
 * On success the caller owns *s (ct_state_free); on failure *s is empty. */
int state_read(int dirfd, struct ct_state *s, struct rv_err *err);
void ct_state_free(struct ct_state *s);

/* Removes ROOT/ID and all it contains, never following a symlink: links are
 * unlinked, not their targets. A missing directory is not an error. */
int state_remove(const char *root, const char *id, struct rv_err *err);

/* Sorted names of the directories under ROOT that are valid ids; a missing ROOT
 * is an empty list. */
int state_list(const char *root, char ***ids, size_t *n, struct rv_err *err);
void state_list_free(char **ids, size_t n);

/* Field 22 of /proc/PID/stat. ENOENT when there is no such process. */
int state_pid_start(pid_t pid, uint64_t *start, struct rv_err *err);
/* The very process (its start time matches: pids are reused) is alive and not a
 * zombie. */
bool state_pid_alive(pid_t pid, uint64_t start);

/* RFC 3339 in UTC as Go prints time.Time (RFC3339Nano): trailing zeros of the
 * fraction dropped, so 05.120000000 prints as 05.12. malloc'd, NULL on ENOMEM. */
char *state_rfc3339(const struct timespec *ts);
char *state_now_rfc3339(void);

/* The OCI state as `runc state` prints it: Go's MarshalIndent with two spaces, no
 * trailing newline, runc's field order (ociVersion, id, pid, status, bundle,
 * rootfs, created, annotations when any, owner), annotations sorted by key. The
 * caller passes the live status; "stopped" prints pid 0, as runc does. malloc'd. */
char *state_oci_json(const struct ct_state *s, const char *status);
/* One element of `runc list --format json`: the same fields, compact. */
char *state_list_json_entry(const struct ct_state *s, const char *status);

/* The pid file as runc writes it: the decimal pid without a newline, via a temp
 * file in the same directory renamed over PATH. */
int state_write_pid_file(const char *path, pid_t pid, struct rv_err *err);

#endif
