/* Host KVM detection against fake /proc, /sys and /dev trees. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/kvm_host.h"

static char root[] = "/tmp/runvm-test-root.XXXXXX";

static void put(const char *rel, const char *content)
{
	char path[512], cmd[600];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", path);
	cr_assert_eq(system(cmd), 0);
	if (!content) {
		cr_assert_eq(mkdir(path, 0755), 0);
		return;
	}
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(content, f);
	fclose(f);
}

static void setup(void)
{
	cr_assert_not_null(mkdtemp(root));
}

static void teardown(void)
{
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	system(cmd);
}

TestSuite(kvm_host, .init = setup, .fini = teardown);

#define CPUINFO(flags) "processor\t: 0\nflags\t\t: fpu vme " flags " sse2\n\n"

Test(kvm_host, pvm_without_device_is_refused_with_testbed_hint)
{
	struct kvm_host h;
	struct rv_err err;

	put("proc/cpuinfo", CPUINFO("hypervisor avx2"));
	put("sys/module/kvm", NULL);
	put("sys/module/kvm_pvm", NULL);
	kvm_host_detect(root, &h);
	cr_assert_eq(h.backend, KVM_BACKEND_PVM);
	cr_assert_not(h.dev_present);
	cr_assert_eq(kvm_host_check_bootable(&h, &err), -1);
	cr_assert_not_null(strstr(err.msg, "kvm_pvm"), "got: %s", err.msg);
	cr_assert_not_null(strstr(err.msg, "tests/testbed/run"), "got: %s", err.msg);
	cr_assert_null(strchr(err.msg, '\n'), "one line");
}

Test(kvm_host, svm_with_kvm_amd_is_hardware)
{
	struct kvm_host h;

	put("proc/cpuinfo", CPUINFO("svm npt"));
	put("sys/module/kvm_amd", NULL);
	kvm_host_detect(root, &h);
	cr_assert_eq(h.backend, KVM_BACKEND_AMD);
	cr_assert(h.cpu_svm);
	cr_assert_not(h.cpu_vmx);
}

Test(kvm_host, hardware_wins_over_a_loaded_kvm_pvm)
{
	struct kvm_host h;

	put("proc/cpuinfo", CPUINFO("vmx ept"));
	put("sys/module/kvm_intel", NULL);
	put("sys/module/kvm_pvm", NULL);
	kvm_host_detect(root, &h);
	cr_assert_eq(h.backend, KVM_BACKEND_INTEL);
}

Test(kvm_host, flag_must_be_a_whole_word)
{
	struct kvm_host h;

	put("proc/cpuinfo", CPUINFO("svmx vmxe nosvm"));
	put("sys/module/kvm_amd", NULL);
	kvm_host_detect(root, &h);
	cr_assert_not(h.cpu_svm);
	cr_assert_not(h.cpu_vmx);
	cr_assert_eq(h.backend, KVM_BACKEND_NONE, "kvm_amd without svm is no hardware KVM");
}

Test(kvm_host, nothing_at_all_is_none_and_says_what_to_do)
{
	struct kvm_host h;
	struct rv_err err;

	put("proc/cpuinfo", CPUINFO("sse4_2"));
	kvm_host_detect(root, &h);
	cr_assert_eq(h.backend, KVM_BACKEND_NONE);
	cr_assert_str_eq(kvm_backend_name(h.backend), "none");
	cr_assert_eq(kvm_host_check_bootable(&h, &err), -1);
	cr_assert_eq(err.code, ENODEV);
	cr_assert_not_null(strstr(err.msg, "kvm_intel or kvm_amd"), "got: %s", err.msg);
}

Test(kvm_host, hardware_module_without_device_node)
{
	struct kvm_host h;
	struct rv_err err;

	put("proc/cpuinfo", CPUINFO("svm"));
	put("sys/module/kvm_amd", NULL);
	kvm_host_detect(root, &h);
	cr_assert_eq(kvm_host_check_bootable(&h, &err), -1);
	cr_assert_not_null(strstr(err.msg, "mknod /dev/kvm c 10 232"), "got: %s", err.msg);
}

Test(kvm_host, device_that_is_not_kvm_does_not_answer)
{
	struct kvm_host h;
	struct rv_err err;

	put("proc/cpuinfo", CPUINFO("svm"));
	put("sys/module/kvm_amd", NULL);
	put("dev/kvm", "not a device");
	kvm_host_detect(root, &h);
	cr_assert(h.dev_present);
	cr_assert_eq(h.api_version, -1);
	cr_assert_eq(h.dev_errno, ENOTTY);
	cr_assert_eq(kvm_host_check_bootable(&h, &err), -1);
	cr_assert_not_null(strstr(err.msg, "does not answer"), "got: %s", err.msg);
}

Test(kvm_host, missing_cpuinfo_is_not_fatal)
{
	struct kvm_host h;

	kvm_host_detect(root, &h);
	cr_assert_eq(h.backend, KVM_BACKEND_NONE);
}
