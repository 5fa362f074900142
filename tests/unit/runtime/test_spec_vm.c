#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>

#include "runtime/spec.h"
#include "runtime/spec_vm.h"

/* The mounts of runc's default spec, as a bundle made by `runc spec` has them. */
static const char config[] =
	"{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
	" \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"mounts\": ["
	"{\"destination\": \"/proc\", \"type\": \"proc\", \"source\": \"proc\"},"
	"{\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
	" \"options\": [\"nosuid\", \"strictatime\", \"mode=755\", \"size=65536k\"]},"
	"{\"destination\": \"/dev/pts\", \"type\": \"devpts\", \"source\": \"devpts\","
	" \"options\": [\"nosuid\", \"noexec\", \"newinstance\", \"ptmxmode=0666\", \"mode=0620\"]},"
	"{\"destination\": \"/sys/fs/cgroup\", \"type\": \"cgroup\", \"source\": \"cgroup\","
	" \"options\": [\"nosuid\", \"noexec\", \"nodev\", \"relatime\", \"ro\"]}]}";

static void translate_text(const char *text, struct oci_spec *s, struct sandbox_config *cfg,
			   struct sandbox_mount **ms)
{
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(text, strlen(text), "/b", s, &err), 0, "%s", err.msg);
	*cfg = (struct sandbox_config){ 0 };
	cr_assert_eq(spec_to_sandbox(s, "/b", cfg, ms, &err), 0, "%s", err.msg);
}

static void translate(struct oci_spec *s, struct sandbox_config *cfg, struct sandbox_mount **ms)
{
	translate_text(config, s, cfg, ms);
	cr_assert_eq(cfg->nmounts, 4);
}

Test(spec_vm, a_tmpfs_dev_is_the_containers_own_with_the_standard_devices)
{
	struct oci_spec s;
	struct sandbox_config cfg;
	struct sandbox_mount *ms;

	translate(&s, &cfg, &ms);
	cr_expect_str_eq(ms[1].fstype, "tmpfs", "not the guest's devtmpfs");
	cr_expect_eq(ms[1].opts, PROTO_MOUNT_DEVICES);
	cr_expect_null(ms[1].host_source);
	cr_expect_str_eq(ms[1].data, "mode=755,size=65536k");
	cr_expect_eq(ms[1].flags & (MS_NOSUID | MS_STRICTATIME), MS_NOSUID | MS_STRICTATIME);
	cr_expect_eq(ms[2].opts, 0, "only /dev gets the nodes");
	cr_expect_str_eq(ms[2].data, "newinstance,ptmxmode=0666,mode=0620");
	spec_vm_free(ms, cfg.nmounts);
	spec_free(&s);
}

Test(spec_vm, cgroup_becomes_cgroup2_with_the_specs_flags_as_runc_does_on_a_unified_host)
{
	struct oci_spec s;
	struct sandbox_config cfg;
	struct sandbox_mount *ms;

	translate(&s, &cfg, &ms);
	cr_expect_str_eq(ms[3].fstype, "cgroup2");
	cr_expect_str_eq(ms[3].source, "cgroup2");
	cr_expect_null(ms[3].data);
	cr_expect_eq(ms[3].flags, MS_NOSUID | MS_NOEXEC | MS_NODEV | MS_RELATIME | MS_RDONLY);
	cr_expect_eq(ms[3].opts, 0);
	spec_vm_free(ms, cfg.nmounts);
	spec_free(&s);
}

/* Specs made from a host's stat carry the type bits in fileMode: runc drops
 * them, and so do we; the devices reach the sandbox as the agent's MKNODs. */
Test(spec_vm, devices_keep_their_permissions_without_the_type_bits)
{
	const char *text = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
			   " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"linux\": {\"devices\": ["
			   "{\"path\": \"/dev/fuse\", \"type\": \"c\", \"major\": 10, \"minor\": 229,"
			   " \"fileMode\": 8630, \"uid\": 7}]}}";
	struct oci_spec s;
	struct sandbox_config cfg;
	struct sandbox_mount *ms;

	translate_text(text, &s, &cfg, &ms);
	cr_assert_eq(cfg.ndevices, 1);
	cr_expect_str_eq(cfg.devices[0].target, "/dev/fuse");
	cr_expect_eq(cfg.devices[0].mode, 0666);
	cr_expect_eq(cfg.devices[0].kind, 'c');
	cr_expect_eq(cfg.devices[0].uid, 7);
	spec_vm_free(ms, cfg.nmounts);
	spec_free(&s);
}

/* In a user namespace a tmpfs belongs to the container's root, as runc's
 * (mounted inside the namespace) does; an owner the spec names stays. */
Test(spec_vm, a_user_namespaces_tmpfs_belongs_to_its_root)
{
	const char *text = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
			   " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"mounts\": ["
			   "{\"destination\": \"/dev\", \"type\": \"tmpfs\", \"source\": \"tmpfs\","
			   " \"options\": [\"mode=755\"]},"
			   "{\"destination\": \"/tmp\", \"type\": \"tmpfs\", \"options\": [\"uid=7\"]},"
			   "{\"destination\": \"/proc\", \"type\": \"proc\"}],"
			   " \"linux\": {\"namespaces\": [{\"type\": \"user\"}],"
			   " \"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}],"
			   " \"gidMappings\": [{\"containerID\": 0, \"hostID\": 200000, \"size\": 65536}]}}";
	struct oci_spec s;
	struct sandbox_config cfg;
	struct sandbox_mount *ms;

	translate_text(text, &s, &cfg, &ms);
	cr_expect_str_eq(ms[0].data, "mode=755,uid=100000,gid=200000");
	cr_expect_str_eq(ms[1].data, "uid=7");
	cr_expect_null(ms[2].data);
	spec_vm_free(ms, cfg.nmounts);
	spec_free(&s);
}

/* Propagation options apply in the guest (the last one wins), and
 * linux.rootfsPropagation to the container's root mount. */
Test(spec_vm, propagation_options_and_the_roots_reach_the_guest)
{
	const char *text = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
			   " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"mounts\": ["
			   "{\"destination\": \"/a\", \"type\": \"tmpfs\", \"options\": [\"rshared\"]},"
			   "{\"destination\": \"/b\", \"type\": \"tmpfs\", \"options\": [\"rw\", \"slave\","
			   " \"rprivate\", \"relatime\"]},"
			   "{\"destination\": \"/c\", \"type\": \"tmpfs\", \"options\": [\"rw\", \"relatime\"]}],"
			   " \"linux\": {\"rootfsPropagation\": \"runbindable\"}}";
	struct oci_spec s;
	struct sandbox_config cfg;
	struct sandbox_mount *ms;

	translate_text(text, &s, &cfg, &ms);
	cr_expect_eq(ms[0].propagation, MS_SHARED | MS_REC);
	cr_expect_eq(ms[1].propagation, MS_PRIVATE | MS_REC);
	cr_expect_eq(ms[2].propagation, 0, "rw and relatime are no propagation");
	cr_expect_eq(cfg.rootfs_propagation, MS_UNBINDABLE | MS_REC);
	spec_vm_free(ms, cfg.nmounts);
	spec_free(&s);

	text = "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
	       " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"linux\": {\"rootfsPropagation\": \"x\"}}";
	struct rv_err err = { 0 };
	cr_assert_eq(spec_parse(text, strlen(text), "/b", &s, &err), 0, "%s", err.msg);
	cr_expect_eq(spec_to_sandbox(&s, "/b", &cfg, &ms, &err), -1);
	cr_expect_not_null(strstr(err.msg, "linux.rootfsPropagation: \"x\": use private, shared"), "%s",
			   err.msg);
	spec_free(&s);
}

static bool pidns_of(const char *namespaces)
{
	char text[512];
	struct oci_spec s;
	struct sandbox_config cfg;
	struct sandbox_mount *ms;

	snprintf(text, sizeof(text), "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
		 " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"},"
		 " \"linux\": {\"namespaces\": [%s]}}", namespaces);
	translate_text(text, &s, &cfg, &ms);
	bool pidns = cfg.pidns;
	spec_vm_free(ms, cfg.nmounts);
	spec_free(&s);
	return pidns;
}

/* runc makes the process PID 1 of a new pid namespace: the guest does; one
 * to join (a pod sandbox's, on the host) is out of reach, and without one
 * the process shares the guest's, as runc's shares the host's. */
Test(spec_vm, a_new_pid_namespace_is_made_in_the_guest)
{
	cr_expect(pidns_of("{\"type\": \"mount\"}, {\"type\": \"pid\"}"));
	cr_expect_not(pidns_of("{\"type\": \"mount\"}, {\"type\": \"ipc\"}"));
	cr_expect_not(pidns_of("{\"type\": \"pid\", \"path\": \"/proc/42/ns/pid\"}"));
}

/* A spec with these annotations and a pod's namespaces by path, as
 * containerd's CRI plugin gives a pod's container. */
static int pod_translate(const char *annotations, struct sandbox_config *cfg, struct rv_err *err)
{
	char text[2048];
	struct oci_spec s;
	struct sandbox_mount *ms = NULL;

	snprintf(text, sizeof(text),
		 "{\"ociVersion\": \"1.2.0\", \"root\": {\"path\": \"rootfs\"},"
		 " \"process\": {\"args\": [\"sh\"], \"cwd\": \"/\"}, \"annotations\": {%s},"
		 " \"linux\": {\"namespaces\": [{\"type\": \"pid\", \"path\": \"/proc/self/ns/pid\"},"
		 " {\"type\": \"network\", \"path\": \"/proc/self/ns/net\"}]}}", annotations);
	cr_assert_eq(spec_parse(text, strlen(text), "/b", &s, err), 0, "%s", err->msg);
	*cfg = (struct sandbox_config){ 0 };
	int rc = spec_to_sandbox(&s, "/b", cfg, &ms, err);
	spec_vm_free(ms, cfg->nmounts);
	spec_free(&s);
	return rc;
}

Test(spec_vm, a_pods_containers_join_its_vm_with_a_pid_namespace_of_their_own)
{
	struct sandbox_config cfg;
	struct rv_err err;

	cr_assert_eq(pod_translate("\"io.kubernetes.cri.container-type\": \"container\", "
				   "\"io.kubernetes.cri.sandbox-id\": \"p1\"", &cfg, &err), 0, "%s",
		     err.msg);
	cr_expect(cfg.pidns, "its own, whose end is its processes' end only");
	cr_expect_null(cfg.netns_path, "the pod's network is the guest's already");
	cr_expect_not(cfg.pod_host);
	cr_assert_eq(pod_translate("\"io.kubernetes.cri-o.ContainerType\": \"container\", "
				   "\"io.kubernetes.cri-o.SandboxID\": \"p1\"", &cfg, &err), 0, "%s",
		     err.msg);
	cr_expect(cfg.pidns, "CRI-O's annotations say the same");
	cr_assert_eq(pod_translate("\"io.kubernetes.cri.container-type\": \"sandbox\"", &cfg, &err), 0,
		     "%s", err.msg);
	cr_expect(cfg.pod_host, "the sandbox's VM takes the pod's containers in");
	cr_expect_not(cfg.pidns, "a path: as before, the guest's");
	cr_assert_eq(pod_translate("\"io.kubernetes.cri.sandbox-id\": \"p1\"", &cfg, &err), 0, "%s",
		     err.msg);
	cr_expect_not(cfg.pod_host, "no type: a container of its own");
}

Test(spec_vm, a_pods_container_without_its_sandbox_or_of_an_unknown_type_is_refused)
{
	struct sandbox_config cfg;
	struct rv_err err;

	cr_expect_eq(pod_translate("\"io.kubernetes.cri.container-type\": \"container\"", &cfg, &err),
		     -1);
	cr_expect_not_null(strstr(err.msg, "io.kubernetes.cri.sandbox-id"), "%s", err.msg);
	cr_expect_eq(pod_translate("\"io.kubernetes.cri.container-type\": \"sidecar\"", &cfg, &err),
		     -1);
	cr_expect_not_null(strstr(err.msg, "sidecar"), "%s", err.msg);
}
