/* runvm features: what this build supports, as `runc features` prints it, plus
 * which KVM backend this host has and whether runvm can boot guests on it.
 *
 * "hooks" lists the kinds that run: those on the host. createContainer and
 * startContainer would run in the guest and are refused by create for now. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/jsonw.h"
#include "runtime/caps.h"
#include "runtime/cli.h"
#include "runtime/spec_vm.h"
#include "vmm/kvm_host.h"

#ifndef RUNVM_VERSION
#define RUNVM_VERSION "unknown"
#endif

/* Every container has a kernel of its own, so it has every namespace runc
 * lists without asking for it. */
static const char *const namespaces[] = {
	"cgroup", "ipc", "mount", "network", "pid", "user", "uts",
};

static void print_annotation(const char *key, const char *value, bool last)
{
	char qkey[256], qvalue[1024];

	jsonw_quote(qkey, sizeof(qkey), key);
	jsonw_quote(qvalue, sizeof(qvalue), value);
	printf("    %s: %s%s\n", qkey, qvalue, last ? "" : ",");
}

/* "KEY": [ one name a line ], at INDENT spaces; the names need no escaping. */
static void print_names(int indent, const char *key, const char *const *names, size_t n,
			bool last)
{
	printf("%*s\"%s\": [\n", indent, "", key);
	for (size_t i = 0; i < n; i++)
		printf("%*s\"%s\"%s\n", indent + 2, "", names[i], i + 1 < n ? "," : "");
	printf("%*s]%s\n", indent, "", last ? "" : ",");
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Sorted, as runc lists them, for a diff against its output to read well;
 * malloc'd, NULL when out of memory. */
static const char **mount_option_names(size_t *n)
{
	*n = 0;
	while (spec_mount_option_name(*n))
		(*n)++;
	const char **names = calloc(*n, sizeof(*names));
	if (!names)
		return NULL;
	for (size_t i = 0; i < *n; i++)
		names[i] = spec_mount_option_name(i);
	qsort(names, *n, sizeof(names[0]), cmp_names);
	return names;
}

/* The capabilities process.capabilities and exec --cap take, in number
 * order as runc lists them; the guest kernel drops what it does not know. */
static void print_linux(void)
{
	const char *caps[CAPS_LAST + 1];

	for (int i = 0; i <= CAPS_LAST; i++)
		caps[i] = caps_name(i);
	printf("  \"linux\": {\n");
	print_names(4, "namespaces", namespaces, sizeof(namespaces) / sizeof(namespaces[0]), false);
	print_names(4, "capabilities", caps, CAPS_LAST + 1, true);
	printf("  },\n");
}

int cmd_features(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct kvm_host host;
	struct rv_err why = { 0 };

	(void)cli;
	if (argc > 1)
		return rv_failx(err, EINVAL, "features takes no arguments (got '%s')", argv[1]);

	kvm_host_detect("/", &host);
	bool bootable = kvm_host_check_bootable(&host, &why) == 0;
	const char *device = !host.dev_present ? "absent" : host.dev_errno ? "unusable" : "ok";
	size_t nmount;
	const char **mount = mount_option_names(&nmount);
	if (!mount)
		return rv_fail(err, ENOMEM, "features");

	printf("{\n");
	printf("  \"ociVersionMin\": \"1.0.0\",\n");
	printf("  \"ociVersionMax\": \"1.2.0\",\n");
	static const char *const hooks[] = { "prestart", "createRuntime", "poststart", "poststop" };
	print_names(2, "hooks", hooks, sizeof(hooks) / sizeof(hooks[0]), false);
	print_names(2, "mountOptions", mount, nmount, false);
	free(mount);
	print_linux();
	printf("  \"annotations\": {\n");
	print_annotation("io.runvm.version", RUNVM_VERSION, false);
	print_annotation("io.runvm.sandbox", "kvm-microvm", false);
	print_annotation("io.runvm.kvm.backend", kvm_backend_name(host.backend), false);
	print_annotation("io.runvm.kvm.device", device, false);
	/* vmm/jail.h: one allow-list per VMM thread role, anything else kills it. */
	print_annotation("io.runvm.vmm.seccomp", "vmm,vcpu,fs-worker: kill-process", false);
	print_annotation("io.runvm.vmm.no_new_privs", "true", false);
	print_annotation("io.runvm.vmm.jail", "mount,ipc,uts namespaces; pivot_root; "
			 "file-server capabilities only", false);
	print_annotation("io.runvm.kvm.bootable", bootable ? "true" : "false", bootable);
	if (!bootable)
		print_annotation("io.runvm.kvm.reason", why.msg, true);
	printf("  }\n}\n");
	return fflush(stdout) == 0 ? 0 : rv_fail(err, EIO, "write features to stdout");
}
