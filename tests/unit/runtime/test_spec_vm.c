#include <criterion/criterion.h>
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

static void translate(struct oci_spec *s, struct sandbox_config *cfg, struct sandbox_mount **ms)
{
	struct rv_err err = { 0 };

	cr_assert_eq(spec_parse(config, strlen(config), "/b", s, &err), 0, "%s", err.msg);
	*cfg = (struct sandbox_config){ 0 };
	cr_assert_eq(spec_to_sandbox(s, "/b", cfg, ms, &err), 0, "%s", err.msg);
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
