/* The OCI process attributes a child takes on before its exec (protocol
 * v5): limits and the hostname while it is still root, then capabilities
 * around the change of uid, as runc orders them:
 *   keep caps across setuid; drop the bounding set; setgroups/setgid/setuid;
 *   capset (effective, permitted, inheritable); ambient; no_new_privs. */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "guest/agent/agent.h"

int privs_last_cap(void)
{
	char buf[16] = "";
	int fd = open("/proc/sys/kernel/cap_last_cap", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	int last = n > 0 ? atoi(buf) : CAP_LAST_CAP;
	return last > 0 && last <= (int)PROTO_CAP_MAX ? last : CAP_LAST_CAP;
}

/* "net.ipv4.ip_forward=1" into /proc/sys/net/ipv4/ip_forward (the decoder
 * let through keys of [A-Za-z0-9_.-] only, without ".."). */
static int write_sysctl(const char *kv)
{
	char path[sizeof("/proc/sys/") + PROTO_MAX_SYSCTL_KEY_BYTES];
	const char *eq = strchr(kv, '=');
	size_t n = (size_t)(eq - kv);

	memcpy(path, "/proc/sys/", 10);
	for (size_t i = 0; i < n; i++)
		path[10 + i] = kv[i] == '.' ? '/' : kv[i];
	path[10 + n] = '\0';
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	size_t len = strlen(eq + 1);
	bool ok = write(fd, eq + 1, len) == (ssize_t)len;
	int e = errno;
	close(fd);
	errno = e;
	return ok ? 0 : -1;
}

int privs_limits(const struct proto_exec *x)
{
	if (x->flags & PROTO_EXEC_OOM_SCORE) {
		char v[16];
		int n = snprintf(v, sizeof(v), "%d", x->oom_score_adj);
		int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
		bool ok = fd >= 0 && write(fd, v, (size_t)n) == n;
		if (fd >= 0)
			close(fd);
		if (!ok)
			return PRIVS_OOM;
	}
	if (x->hostname[0] && sethostname(x->hostname, strlen(x->hostname)) < 0)
		return PRIVS_HOSTNAME;
	if (x->domainname[0] && setdomainname(x->domainname, strlen(x->domainname)) < 0)
		return PRIVS_HOSTNAME;
	for (uint32_t i = 0; i < x->nsysctls; i++)
		if (write_sysctl(x->sysctls[i]) < 0)
			return PRIVS_SYSCTL;
	umask(x->umask);
	/* Last: a low NOFILE must not fail the opens above (the child still
	 * holds the agent's fds until its exec). */
	for (uint32_t i = 0; i < x->nrlimit_vals; i += 3) {
		struct rlimit rl = { .rlim_cur = x->rlimit_vals[i + 1],
				     .rlim_max = x->rlimit_vals[i + 2] };
		if (setrlimit((int)x->rlimit_vals[i], &rl) < 0)
			return PRIVS_RLIMIT;
	}
	return 0;
}

/* The filter the host compiled (linux.seccomp), as struct sock_filter. */
static int install_seccomp(const struct proto_exec *x)
{
	struct sock_filter f[PROTO_MAX_SECCOMP_INSNS];

	for (uint32_t i = 0; i < x->nseccomp; i++) {
		uint64_t v = x->seccomp[i];
		f[i] = (struct sock_filter){ (uint16_t)v, (uint8_t)(v >> 16), (uint8_t)(v >> 24),
					     (uint32_t)(v >> 32) };
	}
	struct sock_fprog prog = { .len = (unsigned short)x->nseccomp, .filter = f };
	return syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, x->seccomp_flags, &prog) < 0 ?
	       PRIVS_SECCOMP : 0;
}

int privs_before_ids(const struct proto_exec *x, int last_cap)
{
	/* Without no_new_privs the kernel wants CAP_SYS_ADMIN for a filter:
	 * load it while root, before the caps go (runc's order). */
	if (x->nseccomp && !(x->flags & PROTO_EXEC_NO_NEW_PRIVS) && install_seccomp(x))
		return PRIVS_SECCOMP;
	if (!x->ncaps)
		return 0;
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		return PRIVS_CAPS;
	for (int cap = 0; cap <= last_cap; cap++)
		if (!(x->caps[PROTO_CAP_BOUNDING] & (1ull << cap)) &&
		    prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0)
			return PRIVS_CAPS;
	return 0;
}

int privs_after_ids(const struct proto_exec *x, int last_cap)
{
	uint64_t known = last_cap >= 63 ? ~0ull : (1ull << (last_cap + 1)) - 1;

	if (x->ncaps) {
		struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
		struct __user_cap_data_struct data[2];
		uint64_t eff = x->caps[PROTO_CAP_EFFECTIVE] & known,
			 perm = x->caps[PROTO_CAP_PERMITTED] & known,
			 inh = x->caps[PROTO_CAP_INHERITABLE] & known;
		for (int i = 0; i < 2; i++)
			data[i] = (struct __user_cap_data_struct){ (uint32_t)(eff >> (32 * i)),
								   (uint32_t)(perm >> (32 * i)),
								   (uint32_t)(inh >> (32 * i)) };
		if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0 || syscall(SYS_capset, &hdr, data) < 0)
			return PRIVS_CAPS;
		if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0)
			return PRIVS_AMBIENT;
		for (int cap = 0; cap <= last_cap; cap++)
			if ((x->caps[PROTO_CAP_AMBIENT] & (1ull << cap)) &&
			    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
				return PRIVS_AMBIENT;
	}
	if ((x->flags & PROTO_EXEC_NO_NEW_PRIVS) && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return PRIVS_NNP;
	/* With it, the filter goes last: it need not allow the setup's calls. */
	if (x->nseccomp && (x->flags & PROTO_EXEC_NO_NEW_PRIVS))
		return install_seccomp(x);
	return 0;
}

const char *privs_step_name(int step)
{
	switch (step) {
	case PRIVS_RLIMIT: return "set its rlimits";
	case PRIVS_OOM: return "set its oom_score_adj";
	case PRIVS_HOSTNAME: return "set the hostname or domainname";
	case PRIVS_SYSCTL: return "write a sysctl (linux.sysctl)";
	case PRIVS_CAPS: return "set its capabilities";
	case PRIVS_AMBIENT: return "set its ambient capabilities (each must be permitted and "
				   "inheritable)";
	case PRIVS_NNP: return "set no_new_privs";
	case PRIVS_SECCOMP: return "load its seccomp filter (linux.seccomp)";
	}
	return "set up";
}
