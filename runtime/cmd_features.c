/* runvm features: what this build supports, as `runc features` prints it, plus
 * which KVM backend this host has and whether runvm can boot guests on it. */
#include <errno.h>
#include <stdio.h>

#include "common/jsonw.h"
#include "runtime/cli.h"
#include "vmm/kvm_host.h"

#ifndef RUNVM_VERSION
#define RUNVM_VERSION "unknown"
#endif

static void print_annotation(const char *key, const char *value, bool last)
{
	char qkey[256], qvalue[1024];

	jsonw_quote(qkey, sizeof(qkey), key);
	jsonw_quote(qvalue, sizeof(qvalue), value);
	printf("    %s: %s%s\n", qkey, qvalue, last ? "" : ",");
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

	printf("{\n");
	printf("  \"ociVersionMin\": \"1.0.0\",\n");
	printf("  \"ociVersionMax\": \"1.2.0\",\n");
	printf("  \"annotations\": {\n");
	print_annotation("io.runvm.version", RUNVM_VERSION, false);
	print_annotation("io.runvm.kvm.backend", kvm_backend_name(host.backend), false);
	print_annotation("io.runvm.kvm.device", device, false);
	print_annotation("io.runvm.kvm.bootable", bootable ? "true" : "false", bootable);
	if (!bootable)
		print_annotation("io.runvm.kvm.reason", why.msg, true);
	printf("  }\n}\n");
	return fflush(stdout) == 0 ? 0 : rv_fail(err, EIO, "write features to stdout");
}
