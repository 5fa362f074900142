#include "vmm/kvm_host.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kvm.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"

static bool path_exists(const char *root, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	return stat(path, &st) == 0;
}

static bool has_word(const char *list, const char *word)
{
	size_t len = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += len) {
		bool starts = p == list || p[-1] == ' ' || p[-1] == '\t';
		bool ends = p[len] == '\0' || p[len] == ' ' || p[len] == '\n';
		if (starts && ends)
			return true;
	}
	return false;
}

static void read_cpu_flags(const char *root, struct kvm_host *host)
{
	char path[PATH_MAX];
	_cleanup_free_ char *line = NULL;
	size_t cap = 0;

	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root);
	_cleanup_fclose_ FILE *f = fopen(path, "re");
	if (!f)
		return;
	while (getline(&line, &cap, f) > 0) {
		if (strncmp(line, "flags", 5) != 0)
			continue;
		const char *colon = strchr(line, ':');
		if (!colon)
			continue;
		host->cpu_vmx = has_word(colon + 1, "vmx");
		host->cpu_svm = has_word(colon + 1, "svm");
		return;      /* every CPU of one host reports the same flags */
	}
}

static void probe_device(const char *root, struct kvm_host *host)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	host->api_version = -1;
	host->dev_present = access(path, F_OK) == 0;
	if (!host->dev_present) {
		host->dev_errno = ENOENT;
		return;
	}
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		host->dev_errno = errno;
		return;
	}
	host->api_version = ioctl(fd, KVM_GET_API_VERSION, 0);
	host->dev_errno = host->api_version < 0 ? errno : 0;
}

void kvm_host_detect(const char *root, struct kvm_host *host)
{
	memset(host, 0, sizeof(*host));
	read_cpu_flags(root, host);
	probe_device(root, host);

	/* Hardware wins: a host may carry kvm_pvm beside a loaded kvm_intel/kvm_amd. */
	if (host->cpu_vmx && path_exists(root, "sys/module/kvm_intel"))
		host->backend = KVM_BACKEND_INTEL;
	else if (host->cpu_svm && path_exists(root, "sys/module/kvm_amd"))
		host->backend = KVM_BACKEND_AMD;
	else if (path_exists(root, "sys/module/kvm_pvm"))
		host->backend = KVM_BACKEND_PVM;
	else if (host->dev_present)
		host->backend = KVM_BACKEND_UNKNOWN;
	else
		host->backend = KVM_BACKEND_NONE;
}

const char *kvm_backend_name(enum kvm_backend backend)
{
	switch (backend) {
	case KVM_BACKEND_INTEL: return "kvm_intel";
	case KVM_BACKEND_AMD: return "kvm_amd";
	case KVM_BACKEND_PVM: return "kvm_pvm";
	case KVM_BACKEND_UNKNOWN: return "unknown";
	case KVM_BACKEND_NONE: break;
	}
	return "none";
}

#define TESTBED_HINT "run it inside the testbed instead: tests/testbed/run -- runvm ..."

int kvm_host_check_bootable(const struct kvm_host *host, struct rv_err *err)
{
	switch (host->backend) {
	case KVM_BACKEND_PVM:
		return rv_failx(err, ENOTSUP,
			       "this host's KVM is kvm_pvm, a software backend that cannot run a "
			       "Linux guest%s; " TESTBED_HINT,
			       host->dev_present ? "" : " (and /dev/kvm is absent)");
	case KVM_BACKEND_NONE:
		return rv_failx(err, ENODEV,
			       "no KVM on this host (no /dev/kvm%s): enable hardware "
			       "virtualization and load kvm_intel or kvm_amd, or " TESTBED_HINT,
			       host->cpu_vmx || host->cpu_svm ? ", though the CPU has it" : "");
	default:
		break;
	}
	if (!host->dev_present)
		return rv_failx(err, ENODEV, "%s is loaded but /dev/kvm is missing: "
			       "create it with 'mknod /dev/kvm c 10 232'",
			       kvm_backend_name(host->backend));
	if (host->dev_errno == EACCES || host->dev_errno == EPERM)
		return rv_fail(err, host->dev_errno,
			       "open /dev/kvm: run as root or as a member of the kvm group");
	if (host->dev_errno)
		return rv_fail(err, host->dev_errno, "/dev/kvm (%s) does not answer",
			       kvm_backend_name(host->backend));
	if (host->api_version != KVM_HOST_API_VERSION)
		return rv_failx(err, ENOTSUP, "/dev/kvm speaks KVM API %d, runvm needs %d",
			       host->api_version, KVM_HOST_API_VERSION);
	return 0;
}
