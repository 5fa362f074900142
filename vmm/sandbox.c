#include "vmm/sandbox.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "vmm/boot_cli.h"
#include "vmm/boot_fs.h"
#include "vmm/control.h"
#include "vmm/pod_host.h"
#include "vmm/pod_net.h"
#include "vmm/sandbox_ctl.h"

/* The guest side of the container's mounts, in the spec's order: each
 * destination lands where the container's own lookups take it (symlinks in
 * the rootfs followed inside it), a bind of a host directory is that
 * directory's export, anything else a mount made by the guest kernel. */
static int mount_one(const struct sandbox *sb, const struct agent_client *a, size_t i,
		     struct rv_err *err)
{
	const struct sandbox_mount *m = &sb->cfg->mounts[i];
	char target[sizeof(sb->guest_root) + PATH_MAX], src[sizeof(sb->guest_root)];

	if (m->host_source) {
		const struct boot_volume *v = &sb->fs->vol[sb->vol_of[i]];
		snprintf(src, sizeof(src), "%s/%s", BOOT_GUEST_FS, sb->vol_export[sb->vol_of[i]]);
		snprintf(target, sizeof(target), "%s%s", sb->guest_root, v->dst);
		struct proto_mount bind = { .source = src, .target = target, .flags = m->flags | MS_BIND,
					    .propagation = m->propagation };
		return agent_mount_msg(a, &bind, err);
	}
	snprintf(target, sizeof(target), "%s%s", sb->guest_root, sb->mount_rel[i]);
	struct proto_mount mnt = { .source = m->source, .target = target, .fstype = m->fstype,
				   .flags = m->flags, .data = m->data, .opts = m->opts,
				   .propagation = m->propagation };
	return agent_mount_msg(a, &mnt, err);
}

/* A device's owner as the container's user namespace maps it; an id the
 * map leaves out stays as the spec gives it. */
static uint32_t outside_id(const uint32_t *map, uint32_t n, uint32_t id)
{
	uint32_t out;

	return proto_id_map_outside(map, n, id, &out) ? out : id;
}

/* Resolved in the guest, not here: the rootfs on the host lacks the
 * container's mounts (its tmpfs /dev, a volume a symlink may lead into). */
static int make_devices(const struct sandbox *sb, const struct agent_client *a,
			struct rv_err *err)
{
	const struct sandbox_config *cfg = sb->cfg;

	for (size_t i = 0; i < cfg->ndevices; i++) {
		struct proto_mknod d = cfg->devices[i];
		d.root = sb->guest_root;
		d.uid = outside_id(cfg->attrs.uid_map, cfg->attrs.nuid_map, d.uid);
		d.gid = outside_id(cfg->attrs.gid_map, cfg->attrs.ngid_map, d.gid);
		if (agent_mknod(a, &d, err) < 0)
			return rv_wrap(err, "linux.devices[%zu] %s", i, cfg->devices[i].target);
	}
	return 0;
}

/* linux.readonlyPaths (a read-only bind of each over itself) and
 * linux.maskedPaths, after every mount, so that they cover /proc's too. */
static int protect_paths(const struct sandbox *sb, const struct agent_client *a,
			 struct rv_err *err)
{
	const struct sandbox_config *cfg = sb->cfg;
	char target[sizeof(sb->guest_root) + PATH_MAX];

	for (size_t i = 0; i < cfg->nreadonly; i++) {
		snprintf(target, sizeof(target), "%s%s", sb->guest_root, cfg->readonly_paths[i]);
		if (agent_mount_opts(a, target, target, NULL, MS_BIND | MS_REC | MS_RDONLY, NULL,
				     PROTO_MOUNT_IF_EXISTS, err) < 0)
			return rv_wrap(err, "linux.readonlyPaths[%zu] %s", i, cfg->readonly_paths[i]);
	}
	for (size_t i = 0; i < cfg->nmasked; i++) {
		snprintf(target, sizeof(target), "%s%s", sb->guest_root, cfg->masked_paths[i]);
		if (agent_mount_opts(a, NULL, target, NULL, 0, NULL, PROTO_MOUNT_MASK, err) < 0)
			return rv_wrap(err, "linux.maskedPaths[%zu] %s", i, cfg->masked_paths[i]);
	}
	return 0;
}

/* The pod's addresses and routes on the guest's interface, before anything
 * in the container (a createContainer hook, say) looks for them. */
static int configure_net(const struct sandbox *sb, const struct agent_client *a,
			 struct rv_err *err)
{
	if (!sb->vm_cfg.net)
		return 0;
	if (agent_netconf(a, &sb->net->nc, err) < 0)
		return rv_wrap(err, "the guest's interface for %s", sb->net->veth);
	return 0;
}

static int mount_all(struct sandbox *sb, const struct agent_client *a, struct rv_err *err)
{
	if (configure_net(sb, a, err) < 0)
		return -1;
	/* A pod member's file service is the pod's, mounted already. */
	if (boot_fs_mount_root(a, sb->fs, sb->guest_root, !sb->member, err) < 0)
		return -1;
	for (size_t i = 0; i < sb->cfg->nmounts; i++)
		if (mount_one(sb, a, i, err) < 0)
			return rv_wrap(err, "mounts[%zu] %s", i, sb->cfg->mounts[i].destination);
	if (make_devices(sb, a, err) < 0)
		return -1;
	if (sb->cfg->readonly && agent_mount(a, NULL, sb->guest_root, NULL,
					     MS_BIND | MS_REMOUNT | MS_RDONLY, NULL, err) < 0)
		return rv_wrap(err, "root.readonly");
	return protect_paths(sb, a, err);
}

int sandbox_mount_container(struct sandbox *sb, const struct agent_client *a, struct rv_err *err)
{
	struct agent_client session;

	if (agent_session_open(a, &session, err) < 0)
		return rv_wrap(err, "the container's mounts");
	int rc = mount_all(sb, &session, err);
	agent_session_close(&session);
	return rc;
}

/* root.readonly: the rootfs's export is read-only to the guest as well
 * (DESIGN §5), so the agent could not make a mount point the rootfs lacks:
 * they are made here, on the host, before boot (boot_fs_make_mount_points),
 * as runc makes them in the rootfs before it remounts the root read-only. */
static int make_mount_points(const struct sandbox_config *cfg, struct rv_err *err)
{
	_cleanup_free_ struct boot_mount_point *mp = calloc(cfg->nmounts + 1, sizeof(*mp));
	size_t failed = 0;

	if (!mp)
		return rv_fail(err, ENOMEM, "mount points");
	for (size_t i = 0; i < cfg->nmounts; i++) {
		const struct sandbox_mount *m = &cfg->mounts[i];
		struct stat st;
		/* A bind of a host file wants a file, as the agent makes it. */
		mp[i] = (struct boot_mount_point){ .dst = m->destination,
			.file = m->host_source && stat(m->host_source, &st) == 0 && !S_ISDIR(st.st_mode) };
	}
	if (boot_fs_make_mount_points(cfg->rootfs, mp, cfg->nmounts, &failed, err) < 0)
		return rv_wrap(err, "mounts[%zu] %s", failed, cfg->mounts[failed].destination);
	return 0;
}

/* The exports: the rootfs, and one volume per bind of a host directory.
 * Every other mount's destination is resolved in the rootfs now: once the
 * VMM is in its jail, the rootfs has no host path. */
int sandbox_plan_exports(struct sandbox *sb, struct rv_err *err)
{
	const struct sandbox_config *cfg = sb->cfg;
	bool exists;

	if (cfg->readonly && make_mount_points(cfg, err) < 0)
		return -1;
	sb->fs->rootfs = cfg->rootfs;
	sb->fs->readonly = sb->fs->points_made = cfg->readonly;
	sb->fs->root_propagation = cfg->rootfs_propagation;
	sb->fs->root_pidns = cfg->pidns;
	for (size_t i = 0; i < cfg->nmounts; i++) {
		const struct sandbox_mount *m = &cfg->mounts[i];
		if (!m->host_source) {
			char rel[PATH_MAX];
			if (boot_fs_resolve(cfg->rootfs, m->destination, rel, sizeof(rel), &exists, err) < 0)
				return rv_wrap(err, "mounts[%zu] %s", i, m->destination);
			if (!(sb->mount_rel[i] = strdup(rel)))
				return rv_fail(err, ENOMEM, "mounts[%zu] %s", i, m->destination);
			continue;
		}
		if (sb->fs->nvolumes == BOOT_MAX_VOLUMES)
			return rv_failx(err, E2BIG, "mounts[%zu] %s: at most %u bind mounts of host "
					"directories", i, m->destination, BOOT_MAX_VOLUMES);
		struct boot_volume *v = &sb->fs->vol[sb->fs->nvolumes];
		v->arg = m->destination;
		if (snprintf(v->src, sizeof(v->src), "%s", m->host_source) >= (int)sizeof(v->src) ||
		    snprintf(v->dst, sizeof(v->dst), "%s", m->destination) >= (int)sizeof(v->dst))
			return rv_failx(err, ENAMETOOLONG, "mounts[%zu] %s: path too long", i,
					m->destination);
		v->readonly = m->flags & MS_RDONLY;
		sb->vol_of[i] = sb->fs->nvolumes++;
	}
	return 0;
}

int sandbox_write_exit(int fd, int code)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d\n", code);

	return fd < 0 || write(fd, buf, (size_t)n) == n ? 0 : -1;
}

/* The user log is create's to read when we fail; stderr is the container's. */
static void print_tail(const struct sandbox_config *cfg, const struct vm_result *res)
{
	int fd = cfg->user_log_fd >= 0 ? dup(cfg->user_log_fd) : -1;
	FILE *f = fd >= 0 ? fdopen(fd, "a") : NULL;

	boot_print_console_tail(res, f ? f : stderr);
	if (f)
		fclose(f);
	else if (fd >= 0)
		close(fd);
}

/* Started once the VMM is jailed, so that they inherit its filter. No
 * client waits: `create` hears from us only when the container is ready. */
static int start_threads(void *arg, struct rv_err *err)
{
	struct sandbox *sb = arg;

	if (sb->cfg->terminal && sandbox_console_start(sb, err) < 0)
		return -1;
	return control_server_start(sb->cfg->control_fd, sandbox_handle, sandbox_closed, sb, &sb->ctl,
				    err);
}

struct sandbox *sandbox_new(const struct sandbox_config *cfg, struct rv_err *err)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	struct boot_fs *fs = calloc(1, sizeof(*fs));
	unsigned *vol_of = calloc(cfg->nmounts + 1, sizeof(*vol_of));
	char **mount_rel = calloc(cfg->nmounts + 1, sizeof(*mount_rel));

	if (!sb || !fs || !vol_of || !mount_rel) {
		free(sb);
		free(fs);
		free(vol_of);
		free(mount_rel);
		rv_fail(err, ENOMEM, "sandbox %s", cfg->id);
		return NULL;
	}
	sandbox_init(sb, cfg, fs, vol_of);
	sb->mount_rel = mount_rel;
	sb->mount = sandbox_mount_container;
	/* A reader that goes away is the container's SIGPIPE, not ours. */
	signal(SIGPIPE, SIG_IGN);
	if (cfg->terminal) {
		/* Blocked before any thread starts, so that only the console's
		 * own thread takes it. */
		sigset_t winch;
		sigemptyset(&winch);
		sigaddset(&winch, SIGWINCH);
		pthread_sigmask(SIG_BLOCK, &winch, NULL);
	}
	return sb;
}

void sandbox_free(struct sandbox *sb)
{
	if (!sb)
		return;
	sandbox_console_stop(sb);
	sandbox_destroy(sb);
	for (size_t i = 0; i < sb->cfg->nmounts; i++)
		free(sb->mount_rel[i]);
	free(sb->mount_rel);
	free(sb->vol_of);
	free(sb->fs);
	free(sb);
}

/* A pod's sandbox: the exporter starts jailed, before the VMM's filter. */
static int start_pod_host(void *arg, struct vm *vm, struct rv_err *err)
{
	struct sandbox *sb = arg;

	return pod_host_start(vm, sb->vm_cfg.fs, &sb->pod, err);
}

int vmm_sandbox(const struct sandbox_config *cfg, int *exit_code, struct rv_err *err)
{
	struct sandbox *sb = sandbox_new(cfg, err);
	struct vm_result res;
	struct pod_net net = { .tap_fd = -1, .nl = { .fd = -1 } };
	struct pod_net_conf conf;
	int rc = -1, sig;

	if (!sb)
		return -1;
	sb->net = &conf;
	/* Before the threads below: none may start while this thread is in
	 * the pod's namespace. */
	if (cfg->netns_path && pod_net_attach(cfg->netns_path, &net, err) < 0) {
		rv_wrap(err, "linux.namespaces network");
		goto out;
	}
	if (net.tap_fd >= 0) {
		pod_net_conf(&net, &conf);
		sb->vm_cfg.net = &conf.vnet;
		sb->vm_cfg.net_admin_at_end = true;     /* pod_net_detach below */
	}
	if (sandbox_plan_exports(sb, err) < 0 ||
	    boot_fs_make_server(sb->fs, cfg->vm.log, &sb->vm_cfg.fs, err) < 0 ||
	    (cfg->terminal && sandbox_console_claim(sb, err) < 0))
		goto out;
	sb->vm_cfg.jail = true;
	sb->vm_cfg.on_run = start_threads;
	sb->vm_cfg.on_run_arg = sb;
	if (cfg->pod_host) {
		sb->vm_cfg.on_jailed = start_pod_host;
		sb->vm_cfg.on_jailed_arg = sb;
	}
	rc = vm_run(&sb->vm_cfg, &res, err);
	pod_net_detach(&net);   /* before a re-raised signal ends us */
	rv_logf(cfg->vm.log, RV_LOG_DEBUG, "boot: %u vCPUs, %llu MiB: CPU ms before the first "
		"KVM_RUN: %.1f", cfg->vm.cpus, (unsigned long long)(cfg->vm.mem_bytes >> 20),
		res.cpu_ms_before_run);
	sandbox_finish(sb, rc == 0 ? boot_exit_status(&res, &sig) : -1, err);
	control_server_stop(sb->ctl);
	sandbox_console_stop(sb);
	pod_host_stop(sb->pod);
	sb->pod = NULL;
	if (rc < 0) {
		sandbox_write_exit(cfg->exit_fd, 1);     /* the status `runvm boot` ends with */
		print_tail(cfg, &res);
		goto out;
	}
	*exit_code = boot_exit_status(&res, &sig);
	sandbox_write_exit(cfg->exit_fd, *exit_code);
	if (sig)
		boot_reraise(sig);
out:
	fs_server_free(sb->vm_cfg.fs);
	pod_net_detach(&net);
	sandbox_free(sb);
	return rc < 0 ? rv_wrap(err, "sandbox %s", cfg->id) : 0;
}
