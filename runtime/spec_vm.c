#include "runtime/spec_vm.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>

#include "runtime/pod.h"

static const struct {
	const char *name;
	uint32_t set, clear;
} mount_flags[] = {
	{ "ro", MS_RDONLY, 0 }, { "rw", 0, MS_RDONLY },
	{ "nosuid", MS_NOSUID, 0 }, { "suid", 0, MS_NOSUID },
	{ "nodev", MS_NODEV, 0 }, { "dev", 0, MS_NODEV },
	{ "noexec", MS_NOEXEC, 0 }, { "exec", 0, MS_NOEXEC },
	{ "sync", MS_SYNCHRONOUS, 0 }, { "async", 0, MS_SYNCHRONOUS },
	{ "dirsync", MS_DIRSYNC, 0 },
	{ "noatime", MS_NOATIME, 0 }, { "atime", 0, MS_NOATIME },
	{ "nodiratime", MS_NODIRATIME, 0 }, { "diratime", 0, MS_NODIRATIME },
	{ "relatime", MS_RELATIME, 0 }, { "norelatime", 0, MS_RELATIME },
	{ "strictatime", MS_STRICTATIME, 0 }, { "nostrictatime", 0, MS_STRICTATIME },
	{ "bind", MS_BIND, 0 }, { "rbind", MS_BIND | MS_REC, 0 },
	/* Propagation: no flag of the mount itself; propagation_of reads it. */
	{ "private", 0, 0 }, { "rprivate", 0, 0 }, { "shared", 0, 0 }, { "rshared", 0, 0 },
	{ "slave", 0, 0 }, { "rslave", 0, 0 }, { "unbindable", 0, 0 }, { "runbindable", 0, 0 },
};

const char *spec_mount_option_name(size_t i)
{
	return i < sizeof(mount_flags) / sizeof(mount_flags[0]) ? mount_flags[i].name : NULL;
}

static int append_data(char **data, size_t *len, const char *opt)
{
	size_t n = strlen(opt);
	char *p = realloc(*data, *len + n + 2);

	if (!p)
		return -1;
	if (*len)
		p[(*len)++] = ',';
	memcpy(p + *len, opt, n + 1);
	*len += n;
	*data = p;
	return 0;
}

int spec_mount_options(const struct oci_mount *m, uint32_t *flags, char **data, bool *bind,
		       struct rv_err *err)
{
	size_t len = 0;

	*flags = 0;
	*data = NULL;
	for (size_t i = 0; i < m->noptions; i++) {
		const char *o = m->options[i];
		size_t k = 0, nk = sizeof(mount_flags) / sizeof(mount_flags[0]);
		while (k < nk && strcmp(o, mount_flags[k].name))
			k++;
		if (k < nk) {
			*flags = (*flags & ~mount_flags[k].clear) | mount_flags[k].set;
		} else if (append_data(data, &len, o) < 0) {
			free(*data);
			*data = NULL;
			return rv_fail(err, ENOMEM, "mount options");
		}
	}
	*bind = (*flags & MS_BIND) || (m->type && !strcmp(m->type, "bind"));
	return 0;
}

/* A bind's host side: a directory or a regular file, exported over
 * virtio-fs; a relative source is the bundle's, as runc resolves it from
 * the bundle directory. */
static int bind_source(const struct oci_mount *m, const char *bundle, char **out,
		       struct rv_err *err)
{
	char path[PATH_MAX];
	struct stat st;

	if (!m->source || !m->source[0])
		return rv_failx(err, EINVAL, "a bind mount needs a source");
	if (snprintf(path, sizeof(path), "%s%s%s", m->source[0] == '/' ? "" : bundle,
		     m->source[0] == '/' ? "" : "/", m->source) >= (int)sizeof(path))
		return rv_failx(err, ENAMETOOLONG, "source %s: too long", m->source);
	if (stat(path, &st) < 0)
		return rv_fail(err, errno, "source %s", path);
	if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
		return rv_failx(err, ENOTSUP, "source %s is neither a directory nor a regular file: a "
				"socket, FIFO or device of the host cannot reach runvm's VM", path);
	*out = strdup(path);
	return *out ? 0 : rv_fail(err, ENOMEM, "source %s", path);
}

/* A propagation's MS_* type (with MS_REC for an "r" one), 0 for another
 * word. It applies in the guest: what shares a mount there is the
 * container's own. */
static uint32_t propagation_named(const char *o)
{
	static const struct { const char *name; uint32_t type; } types[] = {
		{ "private", MS_PRIVATE }, { "shared", MS_SHARED }, { "slave", MS_SLAVE },
		{ "unbindable", MS_UNBINDABLE },
	};
	bool rec = o[0] == 'r';   /* "rw" and "relatime" name no type after it */

	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++)
		if (!strcmp(o + rec, types[k].name))
			return types[k].type | (rec ? MS_REC : 0);
	return 0;
}

/* The last propagation option's, 0 without one. */
static uint32_t propagation_of(const struct oci_mount *m)
{
	uint32_t prop = 0;

	for (size_t i = 0; i < m->noptions; i++)
		if (propagation_named(m->options[i]))
			prop = propagation_named(m->options[i]);
	return prop;
}

static int translate_mount(const struct oci_mount *m, const char *bundle, struct sandbox_mount *o,
			   struct rv_err *err)
{
	char *data = NULL, *src = NULL;
	bool bind;

	if (spec_mount_options(m, &o->flags, &data, &bind, err) < 0)
		return -1;
	o->destination = m->destination;
	o->data = data;
	o->propagation = propagation_of(m);
	if (bind) {
		if (bind_source(m, bundle, &src, err) < 0)
			return -1;
		o->host_source = src;
		o->flags &= MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_REC | MS_NOATIME |
			    MS_NODIRATIME | MS_RELATIME | MS_STRICTATIME;
		return 0;
	}
	o->source = m->source ? m->source : "none";
	o->fstype = m->type ? m->type : "none";
	/* A tmpfs /dev is the container's own: the agent makes the standard
	 * device nodes in it, as runc does. */
	if (!strcmp(m->destination, "/dev") && !strcmp(o->fstype, "tmpfs"))
		o->opts = PROTO_MOUNT_DEVICES;
	/* Our guest kernel has the unified hierarchy only: runc mounts cgroup2
	 * where a spec (its own default one too) asks for "cgroup" on such a
	 * host, with the spec's flags and without v1's controller options. A
	 * writable one is the guest's whole tree: this container's own VM. */
	if (!strcmp(o->fstype, "cgroup")) {
		o->fstype = "cgroup2";
		o->source = "cgroup2";
		free(data);
		o->data = NULL;
	}
	return 0;
}

/* runc mounts a user namespace's tmpfs inside it, so its root belongs to
 * the container's root; the agent mounts ours outside it: say the owner. */
static int own_tmpfs(const struct oci_spec *s, struct sandbox_mount *o)
{
	uint32_t uid, gid;
	char opt[48];

	if (!s->userns || !o->fstype || strcmp(o->fstype, "tmpfs") || o->host_source ||
	    (o->data && (strstr(o->data, "uid=") || strstr(o->data, "gid="))) ||
	    !proto_id_map_outside((const uint32_t *)s->uid_maps, 3 * (uint32_t)s->nuid_maps, 0, &uid) ||
	    !proto_id_map_outside((const uint32_t *)s->gid_maps, 3 * (uint32_t)s->ngid_maps, 0, &gid))
		return 0;
	char *data = (char *)o->data;
	size_t len = data ? strlen(data) : 0;
	snprintf(opt, sizeof(opt), "uid=%u,gid=%u", uid, gid);
	if (append_data(&data, &len, opt) < 0)
		return -1;
	o->data = data;
	return 0;
}

int spec_to_sandbox(const struct oci_spec *s, const char *bundle, struct sandbox_config *cfg,
		    struct sandbox_mount **mounts, struct rv_err *err)
{
	struct sandbox_mount *ms = calloc(s->nmounts + 1, sizeof(*ms));

	if (!ms)
		return rv_fail(err, ENOMEM, "mounts");
	for (size_t i = 0; i < s->nmounts; i++) {
		if (translate_mount(&s->mounts[i], bundle, &ms[i], err) < 0 ||
		    (own_tmpfs(s, &ms[i]) < 0 && rv_fail(err, ENOMEM, "mount options"))) {
			spec_vm_free(ms, i + 1);
			return rv_wrap(err, "mounts[%zu] %s", i, s->mounts[i].destination);
		}
	}
	if (s->rootfs_propagation && !(cfg->rootfs_propagation =
					       propagation_named(s->rootfs_propagation))) {
		spec_vm_free(ms, s->nmounts);
		return rv_failx(err, EINVAL, "linux.rootfsPropagation: \"%.64s\": use private, shared, "
				"slave or unbindable, maybe with r (rprivate)", s->rootfs_propagation);
	}
	*mounts = ms;
	cfg->rootfs = s->root_path;
	cfg->readonly = s->root_readonly;
	cfg->mounts = ms;
	cfg->nmounts = s->nmounts;
	cfg->argv = (const char *const *)s->process.args;
	cfg->envp = (const char *const *)s->process.env;
	cfg->cwd = s->process.cwd;
	cfg->uid = s->process.uid;
	cfg->gid = s->process.gid;
	cfg->groups = s->process.additional_gids;
	cfg->ngroups = (uint32_t)s->process.nadditional_gids;
	spec_vm_attrs(&s->process, &cfg->attrs);
	cfg->attrs.hostname = s->hostname;
	cfg->attrs.domainname = s->domainname;
	cfg->attrs.sysctls = (const char *const *)s->sysctls;
	cfg->attrs.nsysctls = (uint32_t)s->nsysctls;
	_Static_assert(sizeof(struct oci_id_map) == 3 * sizeof(uint32_t),
		       "a map line is the protocol's (inside, outside, count) triple");
	cfg->attrs.uid_map = (const uint32_t *)s->uid_maps;
	cfg->attrs.nuid_map = 3 * (uint32_t)s->nuid_maps;
	cfg->attrs.gid_map = (const uint32_t *)s->gid_maps;
	cfg->attrs.ngid_map = 3 * (uint32_t)s->ngid_maps;
	cfg->masked_paths = (const char *const *)s->masked_paths;
	cfg->nmasked = s->nmasked;
	cfg->readonly_paths = (const char *const *)s->readonly_paths;
	cfg->nreadonly = s->nreadonly;
	cfg->devices = s->devices;
	cfg->ndevices = s->ndevices;
	/* A pod's namespace, made by CNI, is joined; a new one (no path) or none
	 * at all leaves the guest its loopback, as a VM cannot share the host's. */
	for (size_t i = 0; i < s->nnamespaces; i++)
		if (!strcmp(s->namespaces[i].type, "network"))
			cfg->netns_path = s->namespaces[i].path;
	/* A new pid namespace is made in the guest. One to join (a path, a
	 * pod's sandbox's) is on the host, out of a VM's reach: the process
	 * then shares the guest's, where it is not PID 1 either. */
	for (size_t i = 0; i < s->nnamespaces; i++)
		if (!strcmp(s->namespaces[i].type, "pid"))
			cfg->pidns = !s->namespaces[i].path;
	/* A pod's other container names the sandbox's namespaces by path, which
	 * for runvm are its VMM's: the pod's network is the guest's, shared
	 * already. Its processes get a PID namespace of their own, whose end
	 * takes them all, leaving the rest of the pod alone. */
	enum pod_role role;
	if (pod_role(s, &role, NULL, err) < 0)
		return -1;
	cfg->pod_host = role == POD_SANDBOX;
	if (role == POD_MEMBER) {
		cfg->netns_path = NULL;
		cfg->pidns = true;
	}
	return 0;
}

void spec_vm_attrs(const struct oci_process *p, struct agent_attrs *a)
{
	_Static_assert((int)SPEC_CAP_SETS == (int)PROTO_CAP_SETS &&
		       (int)SPEC_CAP_AMBIENT == (int)PROTO_CAP_AMBIENT,
		       "the spec's capability sets are the protocol's, in its order");
	*a = (struct agent_attrs){ .has_umask = p->has_umask, .umask = p->umask,
				   .no_new_privs = p->no_new_privileges,
				   .has_oom_score_adj = p->has_oom_score_adj,
				   .oom_score_adj = p->oom_score_adj, .has_caps = p->has_caps,
				   .nrlimits = (uint32_t)p->nrlimits };
	memcpy(a->caps, p->caps, sizeof(a->caps));
	for (size_t i = 0; i < p->nrlimits; i++) {
		a->rlimits[3 * i] = p->rlimits[i].type;
		a->rlimits[3 * i + 1] = p->rlimits[i].soft;
		a->rlimits[3 * i + 2] = p->rlimits[i].hard;
	}
}

void spec_vm_free(struct sandbox_mount *mounts, size_t n)
{
	if (!mounts)
		return;
	for (size_t i = 0; i < n; i++) {
		free((char *)mounts[i].data);
		free((char *)mounts[i].host_source);
	}
	free(mounts);
}
