/* runvm boot (internal): the VMM process. Two shapes:
 *   boot [FLAGS] -- CMD      the developer entry: CMD in a VM (vmm/boot_cli.h)
 *   boot --spec-fd N ... ID  the sandbox of one OCI container, as `create`
 *                            starts it (runsc boot's flags, DESIGN §1)
 * Both refuse up front on a host whose KVM cannot boot a Linux guest. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/cli.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "runtime/spec_vm.h"
#include "vmm/boot_cli.h"
#include "vmm/jail.h"
#include "vmm/kvm_host.h"
#include "vmm/sandbox.h"

#define SPEC_MAX_BYTES (4u << 20)

struct boot_sandbox {
	const char *bundle, *id;
	int spec_fd, user_log_fd;
	struct sandbox_config cfg;
};

static int parse_fd(const char *flag, const char *s, int *fd, struct rv_err *err)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < 0 || v > INT_MAX)
		return rv_failx(err, EINVAL, "%s '%s': give a file descriptor number", flag, s);
	*fd = (int)v;
	return 0;
}

static int parse_stdio(const char *s, int fds[3], struct rv_err *err)
{
	char buf[64];
	char *save = NULL, *tok;
	int n = 0;

	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return rv_failx(err, EINVAL, "--stdio-fds '%s': give three fds, e.g. 0,1,2", s);
	for (tok = strtok_r(buf, ",", &save); tok && n < 3; tok = strtok_r(NULL, ",", &save))
		if (parse_fd("--stdio-fds", tok, &fds[n++], err) < 0)
			return -1;
	if (n != 3 || tok)
		return rv_failx(err, EINVAL, "--stdio-fds '%s': give three fds, e.g. 0,1,2", s);
	return 0;
}

enum { OPT_BUNDLE = 256, OPT_SPEC_FD, OPT_CONTROLLER_FD, OPT_DEVICE_FD, OPT_STDIO_FDS,
       OPT_START_SYNC_FD, OPT_USER_LOG_FD, OPT_EXIT_FD, OPT_CPUS, OPT_MEM, OPT_KERNEL,
       OPT_INITRD, OPT_CONSOLE, OPT_TERMINAL, OPT_POD_CONTROL, OPT_TEMPLATE_DIR };

static int parse_one(struct boot_sandbox *b, int c, const char *arg, struct rv_err *err)
{
	struct sandbox_config *cfg = &b->cfg;
	unsigned long long mem;
	char *end;

	switch (c) {
	case OPT_BUNDLE: b->bundle = arg; return 0;
	case OPT_SPEC_FD: return parse_fd("--spec-fd", arg, &b->spec_fd, err);
	case OPT_CONTROLLER_FD: return parse_fd("--controller-fd", arg, &cfg->control_fd, err);
	case OPT_DEVICE_FD: return parse_fd("--device-fd", arg, &cfg->vm.device_fd, err);
	case OPT_STDIO_FDS: return parse_stdio(arg, cfg->stdio, err);
	case OPT_START_SYNC_FD: return parse_fd("--start-sync-fd", arg, &cfg->start_sync_fd, err);
	case OPT_USER_LOG_FD:
		if (parse_fd("--user-log-fd", arg, &b->user_log_fd, err) < 0)
			return -1;
		cfg->user_log_fd = b->user_log_fd;
		return 0;
	case OPT_EXIT_FD: return parse_fd("--exit-fd", arg, &cfg->exit_fd, err);
	case OPT_CPUS:
		cfg->vm.cpus = (unsigned)strtoul(arg, &end, 10);
		if (end == arg || *end || cfg->vm.cpus == 0 || cfg->vm.cpus > 256)
			return rv_failx(err, EINVAL, "--cpu-num '%s': give 1 to 256", arg);
		return 0;
	case OPT_MEM:
		if (parse_mem_size(arg, &mem, err) < 0)
			return -1;
		cfg->vm.mem_bytes = mem;
		return 0;
	case OPT_KERNEL: cfg->vm.kernel = arg; return 0;
	case OPT_INITRD: cfg->vm.initrd = arg; return 0;
	case OPT_CONSOLE: cfg->vm.console_fd = STDERR_FILENO; return 0;
	case OPT_TERMINAL: cfg->terminal = true; return 0;
	case OPT_POD_CONTROL: cfg->pod_control = arg; return 0;
	case OPT_TEMPLATE_DIR: cfg->vm.template_dir = arg; return 0;
	}
	return -1;
}

static int parse_sandbox_flags(int argc, char **argv, struct boot_sandbox *b, struct rv_err *err)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, OPT_BUNDLE },
		{ "spec-fd", required_argument, NULL, OPT_SPEC_FD },
		{ "controller-fd", required_argument, NULL, OPT_CONTROLLER_FD },
		{ "device-fd", required_argument, NULL, OPT_DEVICE_FD },
		{ "stdio-fds", required_argument, NULL, OPT_STDIO_FDS },
		{ "start-sync-fd", required_argument, NULL, OPT_START_SYNC_FD },
		{ "user-log-fd", required_argument, NULL, OPT_USER_LOG_FD },
		{ "exit-fd", required_argument, NULL, OPT_EXIT_FD },
		{ "cpu-num", required_argument, NULL, OPT_CPUS },
		{ "total-memory", required_argument, NULL, OPT_MEM },
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "console", no_argument, NULL, OPT_CONSOLE },
		{ "terminal", no_argument, NULL, OPT_TERMINAL },
		{ "pod-control", required_argument, NULL, OPT_POD_CONTROL },
		{ "template-dir", required_argument, NULL, OPT_TEMPLATE_DIR },
		{ 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1)
		if (c == '?' || parse_one(b, c, optarg, err) < 0)
			return c == '?' ? rv_failx(err, EINVAL, "unknown flag '%s'", argv[optind - 1]) : -1;
	if (optind != argc - 1)
		return rv_failx(err, EINVAL, "give the container id last");
	b->id = argv[optind];
	if (!b->bundle || b->spec_fd < 0 || b->cfg.control_fd < 0 || b->cfg.start_sync_fd < 0)
		return rv_failx(err, EINVAL, "needs --bundle, --spec-fd, --controller-fd and "
				"--start-sync-fd (boot is started by runvm create)");
	return 0;
}

static int read_spec(struct boot_sandbox *b, struct oci_spec *spec, struct rv_err *err)
{
	_cleanup_free_ char *text = malloc(SPEC_MAX_BYTES);
	size_t len = 0;
	ssize_t n;

	if (!text)
		return rv_fail(err, ENOMEM, "--spec-fd");
	while (len < SPEC_MAX_BYTES && (n = pread(b->spec_fd, text + len, SPEC_MAX_BYTES - len,
						  (off_t)len)) > 0)
		len += (size_t)n;
	if (n < 0)
		return rv_fail(err, errno, "read --spec-fd %d", b->spec_fd);
	close(b->spec_fd);
	if (len == SPEC_MAX_BYTES)
		return rv_failx(err, EFBIG, "config.json: over %u MiB", SPEC_MAX_BYTES >> 20);
	return spec_parse(text, len, b->bundle, spec, err);
}

static int run_sandbox(struct cli *cli, struct boot_sandbox *b, struct rv_err *err)
{
	struct oci_spec spec = { 0 };
	struct sandbox_mount *mounts = NULL;
	struct seccomp_prog filter = { 0 };
	char kernel[PATH_MAX], initrd[PATH_MAX];
	struct sandbox_config *cfg = &b->cfg;
	int rc = -1;

	cfg->id = b->id;
	cfg->vm.log = &cli->log;
	if (!cfg->vm.kernel &&
	    !(cfg->vm.kernel = boot_shipped_file(BOOT_DEFAULT_KERNEL_REL, kernel, sizeof(kernel))))
		return rv_failx(err, EINVAL, "no --kernel given and no default next to runvm");
	if (!cfg->vm.initrd &&
	    !(cfg->vm.initrd = boot_shipped_file(BOOT_DEFAULT_INITRD_REL, initrd, sizeof(initrd))))
		return rv_failx(err, EINVAL, "no --initrd given and no initramfs.img next to runvm");
	if (read_spec(b, &spec, err) == 0 &&
	    spec_to_sandbox(&spec, b->bundle, cfg, &mounts, err) == 0 &&
	    seccomp_compile(&spec, &filter, err) == 0) {
		cfg->attrs.seccomp = filter.insns;
		cfg->attrs.nseccomp = (uint32_t)filter.n;
		cfg->attrs.seccomp_flags = filter.flags;
		rc = cfg->pod_control ? vmm_pod_member(cfg, &cli->exit_code, err) :
		     vmm_sandbox(cfg, &cli->exit_code, err);
	}
	seccomp_prog_free(&filter);
	spec_vm_free(mounts, spec.nmounts);
	spec_free(&spec);
	return rc;
}

/* Only the fds the flags name (and the log) stay open. */
static int close_unnamed_fds(const struct cli *cli, const struct boot_sandbox *b,
			     struct rv_err *err)
{
	const struct sandbox_config *c = &b->cfg;
	int keep[] = { cli->log.fd, b->spec_fd, b->user_log_fd, c->control_fd, c->vm.device_fd,
		       c->start_sync_fd, c->exit_fd, c->stdio[0], c->stdio[1], c->stdio[2] };

	return jail_close_fds(keep, sizeof(keep) / sizeof(keep[0]), err);
}

static int cmd_boot_sandbox(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct boot_sandbox b = {
		.spec_fd = -1, .user_log_fd = -1,
		.cfg = { .vm = { .cpus = 1, .mem_bytes = 256ull << 20, .device_fd = -1,
				 .console_fd = -1 },
			 .stdio = { STDIN_FILENO, STDOUT_FILENO, STDERR_FILENO },
			 .control_fd = -1, .start_sync_fd = -1, .exit_fd = -1,
			 .user_log_fd = -1 },
	};

	struct kvm_host host;

	kvm_host_detect("/", &host);
	/* A pod's member runs in its pod's VM and uses no KVM of its own. */
	if (parse_sandbox_flags(argc, argv, &b, err) == 0 && close_unnamed_fds(cli, &b, err) == 0 &&
	    (b.cfg.pod_control || kvm_host_check_bootable(&host, err) == 0) &&
	    jail_check_privileged(err) == 0 &&
	    run_sandbox(cli, &b, err) == 0)
		return 0;
	/* Our stderr is the container's: the error goes to the log that
	 * `create` reads, and is printed nowhere else. */
	if (b.user_log_fd < 0)
		return rv_wrap(err, "boot");
	dprintf(b.user_log_fd, "%s\n", err->msg);
	cli->exit_code = 1;
	return 0;
}

static bool is_sandbox(int argc, char **argv)
{
	for (int i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strncmp(argv[i], "--spec-fd", 9))
			return true;
	return false;
}

int cmd_boot(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct kvm_host host;

	/* Before any thread: they all inherit it. Nothing the VMM runs may gain
	 * privileges through a set-id or file-capability binary. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return rv_fail(err, errno, "boot: set no_new_privs");
	if (is_sandbox(argc, argv))
		return cmd_boot_sandbox(cli, argc, argv, err);
	kvm_host_detect("/", &host);
	if (kvm_host_check_bootable(&host, err) < 0 || jail_check_privileged(err) < 0)
		return rv_wrap(err, "boot");
	if (vmm_boot(argc, argv, &cli->log, &cli->exit_code, err) < 0)
		return rv_wrap(err, "boot");
	return 0;
}
