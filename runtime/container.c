#include "runtime/container.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/ctl.h"
#include "runtime/cgroup.h"
#include "runtime/hooks.h"
#include "runtime/pod.h"
#include "vmm/pod_net.h"

#define KILL_WAIT_MS 10000
#define KILL_POLL_MS 10

static int open_state(const struct cli *cli, const char *id, bool lock, struct container *c,
		      struct rv_err *err)
{
	*c = (struct container){ .cli = cli, .root = cli->root, .id = id, .dirfd = -1,
				 .lockfd = -1 };
	if (state_check_id(id, err) < 0)
		return -1;
	if (state_open(cli->root, id, &c->dirfd, err) < 0) {
		if (err->code == ENOENT)
			rv_failx(err, ENOENT, "container '%s' does not exist", id);
		return -1;
	}
	if ((lock && state_lock(c->dirfd, &c->lockfd, err) < 0) ||
	    state_read(c->dirfd, &c->st, err) < 0) {
		if (err->code == ENOENT)
			rv_failx(err, ENOENT, "container '%s' does not exist", id);
		container_close(c);
		return -1;
	}
	snprintf(c->ctl_path, sizeof(c->ctl_path), "%s/%s/%s", cli->root, id, STATE_CONTROL_SOCK);
	return 0;
}

int container_open(const struct cli *cli, const char *id, struct container *c, struct rv_err *err)
{
	return open_state(cli, id, true, c, err);
}

int container_peek(const struct cli *cli, const char *id, struct container *c, struct rv_err *err)
{
	return open_state(cli, id, false, c, err);
}

void container_close(struct container *c)
{
	if (c->lockfd >= 0)
		close(c->lockfd);
	if (c->dirfd >= 0)
		close(c->dirfd);
	c->lockfd = c->dirfd = -1;
	ct_state_free(&c->st);
}

static bool vmm_alive(const struct container *c)
{
	return c->st.pid > 0 && state_pid_alive(c->st.pid, c->st.pid_start);
}

const char *container_status(const struct container *c)
{
	static const char *const known[] = { "creating", "created", "running", "paused", "stopped" };
	char reply[64];
	struct rv_err err;

	if (!vmm_alive(c))
		return "stopped";
	/* A live VMM that does not answer (still booting, or busy) is in the
	 * state it last recorded. */
	const char *said = ctl_call(c->ctl_path, "state", reply, sizeof(reply), &err) == 0 ?
			   reply : c->st.status;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (!strcmp(said, known[i]))
			return known[i];
	return "stopped";
}

int container_call(const struct container *c, const char *req, char *reply, size_t size,
		   struct rv_err *err)
{
	if (!vmm_alive(c))
		return rv_failx(err, ESRCH, "container not running");
	return ctl_call(c->ctl_path, req, reply, size, err);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* A VMM killed outright (delete --force) or crashed left its redirect on
 * the pod's veth, where it drops everything that comes in: the pod is the
 * engine's, and it gets it back as it was. */
static void release_pod_net(const struct container *c)
{
	struct oci_spec spec;
	struct rv_err err;

	if (container_spec(c, &spec, &err) < 0)
		return;
	/* A pod's member names the pod's namespace, whose VM is another's. */
	enum pod_role role = POD_NONE;
	size_t n = pod_role(&spec, &role, NULL, &err) == 0 && role != POD_MEMBER ?
		   spec.nnamespaces : 0;
	for (size_t i = 0; i < n; i++) {
		const struct oci_namespace *ns = &spec.namespaces[i];
		if (!strcmp(ns->type, "network") && ns->path && pod_net_release(ns->path, &err) < 0 &&
		    err.code != ENOENT)
			rv_logf(&c->cli->log, RV_LOG_WARN, "delete %s: %s", c->id, err.msg);
	}
	spec_free(&spec);
}

int container_kill_vmm(const struct container *c, struct rv_err *err)
{
	if (!vmm_alive(c))
		return 0;
	if (kill(c->st.pid, SIGKILL) < 0 && errno != ESRCH)
		return rv_fail(err, errno, "kill the VMM of '%s' (pid %d)", c->id, (int)c->st.pid);
	for (long waited = 0; waited < KILL_WAIT_MS; waited += KILL_POLL_MS) {
		if (!vmm_alive(c))
			return 0;
		sleep_ms(KILL_POLL_MS);
	}
	return rv_failx(err, ETIMEDOUT, "the VMM of '%s' (pid %d) did not die within %d s of SIGKILL",
			c->id, (int)c->st.pid, KILL_WAIT_MS / 1000);
}

int container_exit_status(const struct container *c, int *status, struct rv_err *err)
{
	char buf[16] = { 0 };
	_cleanup_close_ int fd = openat(c->dirfd, STATE_EXIT_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	char *end;

	if (fd < 0)
		return rv_fail(err, errno, "container '%s': no exit status", c->id);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	long v = n > 0 ? strtol(buf, &end, 10) : -1;
	if (n <= 0 || end == buf || *end != '\n' || v < 0 || v > 255)
		return rv_failx(err, ENOENT, "container '%s': no exit status recorded (its VMM died)",
				c->id);
	*status = (int)v;
	return 0;
}

int container_record(struct container *c, const char *status, struct rv_err *err)
{
	char *copy = strdup(status);

	if (!copy)
		return rv_fail(err, ENOMEM, "state");
	free(c->st.status);
	c->st.status = copy;
	return state_write(c->dirfd, &c->st, err);
}

int container_spec(const struct container *c, struct oci_spec *spec, struct rv_err *err)
{
	int fd = openat(c->dirfd, STATE_SPEC_FILE, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return spec_load(c->st.bundle, spec, err);
	FILE *f = fdopen(fd, "r");
	_cleanup_free_ char *text = f ? malloc(SPEC_MAX_FILE_BYTES + 1) : NULL;
	int rc = -1;
	if (!f || !text) {
		rv_fail(err, ENOMEM, "%s", STATE_SPEC_FILE);
	} else {
		size_t len = fread(text, 1, SPEC_MAX_FILE_BYTES + 1, f);
		rc = len > SPEC_MAX_FILE_BYTES ?
		     rv_failx(err, EFBIG, "%s/%s: too large", c->id, STATE_SPEC_FILE) :
		     spec_parse(text, len, c->st.bundle, spec, err);
	}
	if (f)
		fclose(f);
	else
		close(fd);
	return rc;
}

/* poststart and poststop: a failing one is logged and the lifecycle goes on. */
static void hooks_warn(const struct container *c, enum hook_kind kind, const char *status)
{
	struct oci_spec spec = { 0 };
	struct rv_err err = { 0 };

	if (container_spec(c, &spec, &err) == 0 && spec.hooks.n[kind]) {
		_cleanup_free_ char *json = state_oci_json(&c->st, status);
		if (!json)
			rv_fail(&err, ENOMEM, "state JSON");
		else
			hooks_run(&spec.hooks, kind, json, &err);
	}
	if (err.msg[0])
		rv_logf(&c->cli->log, RV_LOG_WARN, "container %s: %s hooks: %s", c->id,
			hook_kind_names[kind], err.msg);
	spec_free(&spec);
}

/* startContainer, in the guest before the process runs. One that fails
 * stops the container, as the runtime spec wants: start fails and the
 * container is stopped, ready for delete. */
static int start_hooks(struct container *c, struct rv_err *err)
{
	struct oci_spec spec = { 0 };
	struct rv_err ignored;
	int rc = container_spec(c, &spec, err);

	if (rc == 0 && spec.hooks.n[HOOK_START_CONTAINER]) {
		_cleanup_free_ char *json = state_oci_json(&c->st, "created");
		rc = json ? hooks_run_guest(c->ctl_path, &spec.hooks, HOOK_START_CONTAINER, json, err)
			  : rv_fail(err, ENOMEM, "state JSON");
		if (rc < 0 && container_kill_vmm(c, &ignored) == 0)
			container_record(c, "stopped", &ignored);
	}
	spec_free(&spec);
	return rc;
}

int container_start(const struct cli *cli, const char *id, struct rv_err *err)
{
	struct container c;
	char reply[64];

	if (container_open(cli, id, &c, err) < 0)
		return -1;
	const char *status = container_status(&c);
	int rc = -1;
	if (!strcmp(status, "stopped"))
		rv_failx(err, EINVAL, "cannot start a container that has stopped");
	else if (strcmp(status, "created"))
		rv_failx(err, EINVAL, "cannot start an already %s container", status);
	else if (start_hooks(&c, err) == 0 &&
		 container_call(&c, "start", reply, sizeof(reply), err) == 0)
		rc = container_record(&c, "running", err);
	if (rc == 0)
		hooks_warn(&c, HOOK_POSTSTART, "running");
	container_close(&c);
	return rc;
}

int container_destroy(struct container *c, struct rv_err *err)
{
	release_pod_net(c);
	hooks_warn(c, HOOK_POSTSTOP, "stopped");
	/* Only once the VMM is gone: a cgroup with a task cannot go. */
	if (c->st.cgroup)
		cgroup_remove(c->st.cgroup, NULL);
	int rc = state_remove(c->root, c->id, err);

	container_close(c);
	return rc;
}

int container_id_arg(int argc, char **argv, const char *usage, const char **id, struct rv_err *err)
{
	if (argc == 2 && argv[1][0] != '-') {
		*id = argv[1];
		return 0;
	}
	if (argc < 2)
		return rv_failx(err, EINVAL, "%s: give the container id (usage: runvm %s)", argv[0],
				usage);
	return rv_failx(err, EINVAL, "%s: unexpected '%s' (usage: runvm %s)", argv[0],
			argv[argc > 2 ? 2 : 1], usage);
}
