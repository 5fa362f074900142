#include "vmm/boot_cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "devices/fs/server.h"
#include "vmm/boot_fs.h"
#include "vmm/jail.h"
#include "vmm/vm.h"


/* The file service as the guest sees it (DESIGN §5): the agent mounts the
 * virtio-fs tag at BOOT_GUEST_FS, whose entries are the exports: "rootfs"
 * and one "volN" per --volume. */

int parse_mem_size(const char *s, unsigned long long *bytes, struct rv_err *err)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	unsigned shift = 0;
	const char *digits_end = end;

	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	}
	if (*end == 'i' && shift)
		end++;
	if ((*end == 'b' || *end == 'B') && shift)
		end++;
	if (errno || digits_end == s || *end || s[0] == '-' || v > (ULLONG_MAX >> shift))
		return rv_failx(err, EINVAL, "--total-memory '%s': give a size such as 512M or 2G", s);
	*bytes = v << shift;
	return 0;
}

static int parse_uint(const char *flag, const char *s, unsigned max, unsigned *out, struct rv_err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v > max)
		return rv_failx(err, EINVAL, "%s '%s': give a whole number up to %u", flag, s, max);
	*out = (unsigned)v;
	return 0;
}

static int parse_timeout(const char *s, unsigned *ms, struct rv_err *err)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || v <= 0 || v > 86400 * 30)
		return rv_failx(err, EINVAL, "--timeout '%s': give seconds, e.g. 30 or 0.5", s);
	*ms = (unsigned)(v * 1000 + 0.5);
	return 0;
}

const char *boot_shipped_file(const char *rel, char *buf, size_t size)
{
	char exe[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return NULL;
	exe[n] = '\0';
	char *slash = strrchr(exe, '/');
	if (!slash)
		return NULL;
	*slash = '\0';
	int n2 = snprintf(buf, size, "%s/%s", exe, rel);
	return n2 > 0 && (size_t)n2 < size ? buf : NULL;
}

static int check_host_memory(unsigned long long bytes, struct rv_err *err)
{
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	unsigned long long host = pages > 0 && page > 0 ? (unsigned long long)pages * (unsigned long long)page : 0;
	if (host && bytes > host)
		return rv_failx(err, EINVAL, "--total-memory %llu MiB exceeds this host's %llu MiB of RAM",
				bytes >> 20, host >> 20);
	return 0;
}

/* SRC:DST[:ro]. DST stays as given until the rootfs is known (check_volume). */
static int parse_volume(const char *arg, struct boot_fs *f, struct rv_err *err)
{
	char buf[PATH_MAX];
	size_t n = strlen(arg);

	if (f->nvolumes == BOOT_MAX_VOLUMES)
		return rv_failx(err, EINVAL, "--volume %s: at most %u volumes", arg, BOOT_MAX_VOLUMES);
	if (n >= sizeof(buf))
		return rv_failx(err, ENAMETOOLONG, "--volume: '%.64s...' is too long", arg);
	struct boot_volume *v = &f->vol[f->nvolumes];
	memcpy(buf, arg, n + 1);
	if (n > 3 && (!strcmp(buf + n - 3, ":ro") || !strcmp(buf + n - 3, ":rw"))) {
		v->readonly = buf[n - 2] == 'r' && buf[n - 1] == 'o';
		buf[n - 3] = '\0';
	}
	char *colon = strrchr(buf, ':');   /* DST is absolute: the last ':' ends SRC */
	if (!colon || colon == buf || colon[1] == '\0')
		return rv_failx(err, EINVAL, "--volume '%s': give SRC:DST or SRC:DST:ro, e.g. "
				"/srv/data:/data", arg);
	*colon = '\0';
	v->arg = arg;
	strcpy(v->src, buf);
	strcpy(v->dst, colon + 1);
	f->nvolumes++;
	return 0;
}

static int parse_cache(const char *s, struct boot_fs *f, struct rv_err *err)
{
	static const char *const names[] = { [FS_CACHE_AUTO] = "auto", [FS_CACHE_NONE] = "none",
					     [FS_CACHE_ALWAYS] = "always" };

	for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcmp(s, names[i])) {
			f->cache = (enum fs_cache)i;
			f->cache_arg = s;
			return 0;
		}
	}
	return rv_failx(err, EINVAL, "--fs-cache '%s': give auto, none or always", s);
}

enum { OPT_CPUS = 256, OPT_MEM, OPT_DEVICE_FD, OPT_KERNEL, OPT_INITRD, OPT_CMDLINE,
       OPT_CONSOLE, OPT_TIMEOUT, OPT_ROOTFS, OPT_READONLY, OPT_VOLUME, OPT_FS_CACHE,
       OPT_FS_WRITEBACK, OPT_SECCOMP_SELFTEST };

static int parse_selftest(const char *s, struct vm_config *cfg, struct rv_err *err)
{
	enum jail_role role;

	if (jail_role_parse(s, &role, err) < 0)
		return rv_wrap(err, "--seccomp-selftest");
	cfg->jail_selftest = 1u + role;
	return 0;
}

static int parse_flags(int argc, char **argv, struct vm_config *cfg, struct boot_fs *fs,
		       char ***command, struct rv_err *err)
{
	static const struct option opts[] = {
		{ "cpu-num", required_argument, NULL, OPT_CPUS },
		{ "total-memory", required_argument, NULL, OPT_MEM },
		{ "device-fd", required_argument, NULL, OPT_DEVICE_FD },
		{ "kernel", required_argument, NULL, OPT_KERNEL },
		{ "initrd", required_argument, NULL, OPT_INITRD },
		{ "cmdline", required_argument, NULL, OPT_CMDLINE },
		{ "console", no_argument, NULL, OPT_CONSOLE },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "rootfs", required_argument, NULL, OPT_ROOTFS },
		{ "rootfs-ro", no_argument, NULL, OPT_READONLY },
		{ "readonly", no_argument, NULL, OPT_READONLY },
		{ "volume", required_argument, NULL, OPT_VOLUME },
		{ "fs-cache", required_argument, NULL, OPT_FS_CACHE },
		{ "fs-writeback", no_argument, NULL, OPT_FS_WRITEBACK },
		/* Tests only: ROLE's thread makes a call its filter forbids. */
		{ "seccomp-selftest", required_argument, NULL, OPT_SECCOMP_SELFTEST },
		{ 0 },
	};
	unsigned long long mem;
	unsigned fd;
	int c, rc = 0;

	while (rc == 0 && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CPUS: rc = parse_uint("--cpu-num", optarg, 4096, &cfg->cpus, err); break;
		case OPT_MEM:
			rc = parse_mem_size(optarg, &mem, err);
			if (rc == 0)
				rc = check_host_memory(mem, err);
			cfg->mem_bytes = mem;
			break;
		case OPT_DEVICE_FD:
			rc = parse_uint("--device-fd", optarg, INT_MAX, &fd, err);
			cfg->device_fd = (int)fd;
			break;
		case OPT_KERNEL: cfg->kernel = optarg; break;
		case OPT_INITRD: cfg->initrd = optarg; break;
		case OPT_CMDLINE: cfg->cmdline = optarg; break;
		case OPT_CONSOLE: cfg->console_fd = STDOUT_FILENO; break;
		case OPT_TIMEOUT: rc = parse_timeout(optarg, &cfg->timeout_ms, err); break;
		case OPT_ROOTFS: fs->rootfs = optarg; break;
		case OPT_READONLY: fs->readonly = true; break;
		case OPT_VOLUME: rc = parse_volume(optarg, fs, err); break;
		case OPT_FS_CACHE: rc = parse_cache(optarg, fs, err); break;
		case OPT_FS_WRITEBACK: fs->writeback = true; break;
		case OPT_SECCOMP_SELFTEST: rc = parse_selftest(optarg, cfg, err); break;
		default:
			return rv_failx(err, EINVAL, "unknown flag '%s' (see runvm boot --help)",
					argv[optind - 1]);
		}
	}
	*command = optind < argc ? argv + optind : NULL;
	return rc;
}

static int check_fs_flags(const struct boot_fs *f, char **command, struct rv_err *err)
{
	const char *needs_rootfs = f->nvolumes ? "--volume" : f->readonly ? "--readonly" :
				   f->cache_arg ? "--fs-cache" : f->writeback ? "--fs-writeback" :
				   NULL;

	if (!f->rootfs && needs_rootfs)
		return rv_failx(err, EINVAL, "%s needs --rootfs DIR", needs_rootfs);
	if (f->rootfs && !command)
		return rv_failx(err, EINVAL, "--rootfs %s: give the command to run in it (-- CMD)",
				f->rootfs);
	return 0;
}

#define CONSOLE_TAIL_LINES 20

void boot_print_console_tail(const struct vm_result *res, FILE *out)
{
	const char *start = res->console_tail, *end = start + strlen(start);
	int lines = 0;

	if (start == end)
		return;
	const char *p = end;
	while (p > start && lines <= CONSOLE_TAIL_LINES)
		if (*--p == '\n' && p + 1 != end)
			lines++;
	if (lines > CONSOLE_TAIL_LINES)
		p++;
	fprintf(out, "runvm: boot: last guest console lines:\n");
	while (p < end) {
		size_t len = strcspn(p, "\n");
		fprintf(out, "  | %.*s\n", (int)len, p);
		p += len + 1;
	}
}

void boot_reraise(int sig)
{
	sigset_t set;

	signal(sig, SIG_DFL);
	sigemptyset(&set);
	sigaddset(&set, sig);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	raise(sig);
}

int boot_exit_status(const struct vm_result *res, int *sig)
{
	*sig = 0;
	if (res->reason == VM_STOP_HOST_SIGNAL)
		*sig = res->host_signal;
	else if (res->status & VM_STATUS_SIGNALED)
		*sig = (int)(res->status & 0x7f);
	return *sig ? 128 + *sig : (int)(res->status & 0xff);
}

static bool fd_open(int fd)
{
	return fcntl(fd, F_GETFD) >= 0;
}

/* The controller for `boot -- CMD`: CMD in the guest with our stdio, in the
 * rootfs when there is one. */
struct started_ctx {
	struct boot_command *bc;
	const struct agent_client *agent;
};

static void on_started(void *arg, uint32_t exec_id, uint32_t guest_pid)
{
	struct started_ctx *s = arg;

	(void)guest_pid;
	s->bc->started(s->bc->arg, s->agent, exec_id);
}

static int run_command(void *arg, struct vm *vm, const struct agent_client *agent,
		       uint32_t *status, struct rv_err *err)
{
	(void)vm;
	struct boot_command *bc = arg;
	struct started_ctx started = { bc, agent };
	struct agent_exec x = { .argv = (const char *const *)bc->argv, .envp = bc->envp,
				.cwd = bc->cwd ? bc->cwd : "/",
				.root = bc->fs ? boot_fs_guest_root(bc->fs) : NULL,
				.stdin_fd = fd_open(STDIN_FILENO) ? STDIN_FILENO : -1,
				.stdout_fd = fd_open(STDOUT_FILENO) ? STDOUT_FILENO : -1,
				.stderr_fd = fd_open(STDERR_FILENO) ? STDERR_FILENO : -1,
				.attrs = { .hostname = bc->hostname },
				.tty = bc->tty, .rows = bc->rows, .cols = bc->cols,
				.started = bc->started ? on_started : NULL, .started_arg = &started };
	struct agent_status st;

	if (bc->netconf && agent_netconf(agent, bc->netconf, err) < 0)
		return rv_wrap(err, "the guest's network interface");
	if (bc->fs && boot_fs_mount(agent, bc->fs, err) < 0)
		return -1;
	int rc = agent_run(agent, &x, &st, err);
	if (bc->ended)
		bc->ended(bc->arg);
	if (rc < 0) {
		/* As a shell says it: 127 not found, 126 not runnable. */
		bc->exec_failed = err->code == ENOENT ? 127 : err->code == EACCES ? 126 : 0;
		return -1;
	}
	*status = st.signaled ? VM_STATUS_SIGNALED | (uint32_t)st.signo : (uint32_t)st.code & 0xff;
	return 0;
}

int vmm_boot(int argc, char **argv, const struct rv_log *log, int *exit_code, struct rv_err *err)
{
	struct vm_config cfg = { .cpus = 1, .mem_bytes = VM_DEFAULT_MEM_BYTES, .device_fd = -1,
				 .console_fd = -1, .log = log, .jail = true };
	struct boot_command bc = { 0 };
	char kernel[PATH_MAX], initrd[PATH_MAX];
	/* 16 volumes of two paths each: too big for the stack of a library call. */
	_cleanup_free_ struct boot_fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return rv_fail(err, ENOMEM, "boot flags");
	optind = 1;
	opterr = 0;
	if (parse_flags(argc, argv, &cfg, fs, &bc.argv, err) < 0 ||
	    check_fs_flags(fs, bc.argv, err) < 0)
		return -1;
	int keep[] = { log->fd, cfg.device_fd };
	if (jail_close_fds(keep, sizeof(keep) / sizeof(keep[0]), err) < 0)
		return -1;
	if (!cfg.kernel && !(cfg.kernel = boot_shipped_file(BOOT_DEFAULT_KERNEL_REL, kernel, sizeof(kernel))))
		return rv_failx(err, EINVAL, "no --kernel given and no default next to runvm");
	if (bc.argv && !cfg.initrd &&
	    !(cfg.initrd = boot_shipped_file(BOOT_DEFAULT_INITRD_REL, initrd, sizeof(initrd))))
		return rv_failx(err, EINVAL, "no --initrd given and no initramfs.img next to runvm");
	if (boot_run_command(&cfg, fs, &bc, exit_code, err) < 0)
		return -1;
	if (bc.signal)
		boot_reraise(bc.signal);
	return 0;
}

int boot_run_command(struct vm_config *cfg, struct boot_fs *fs, struct boot_command *bc,
		     int *exit_code, struct rv_err *err)
{
	struct vm_result res;

	if (bc->argv) {
		cfg->controller = run_command;
		cfg->controller_arg = bc;
		/* A reader that goes away is the guest process's SIGPIPE, not ours. */
		signal(SIGPIPE, SIG_IGN);
	}
	if (boot_fs_make_server(fs, cfg->log, &cfg->fs, err) < 0) {
		fs_server_free(cfg->fs);
		return -1;
	}
	if (cfg->fs) {
		cfg->fs_tag = BOOT_FS_TAG;
		bc->fs = fs;
	}
	int rc = vm_run(cfg, &res, err);
	fs_server_free(cfg->fs);   /* the device and its workers are gone with the VM */
	cfg->fs = NULL;
	if (rc < 0 && bc->exec_failed)
		*exit_code = bc->exec_failed;
	rv_logf(cfg->log, RV_LOG_DEBUG, "boot: %u vCPUs, %llu MiB: CPU ms before the first KVM_RUN: %.1f",
		cfg->cpus, (unsigned long long)(cfg->mem_bytes >> 20), res.cpu_ms_before_run);
	if (rc < 0) {
		boot_print_console_tail(&res, stderr);
		return -1;
	}
	*exit_code = boot_exit_status(&res, &bc->signal);
	return 0;
}
