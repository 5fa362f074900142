#include "runtime/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/ctl.h"
#include "runtime/cgroup.h"
#include "runtime/console.h"
#include "runtime/lookpath.h"
#include "runtime/pod.h"
#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "runtime/state.h"
#include "vmm/kvm_host.h"
#include "vmm/template.h"

#define BOOT_LOG_FILE "boot.log"     /* boot's errors, for create to report */
#define VMM_LOG_FILE "vmm.log"       /* the VMM's log when no --log was given */
#define BOOT_LOG_MAX_BYTES 4000

/* What create hands to `runvm boot` (closed once it runs). */
struct launch_fds {
	int kvm, spec, control, exit, log, sync[2];
	int tty;                         /* the console's slave, -1: none */
};

enum { OPT_BUNDLE = 256, OPT_PID_FILE, OPT_CONSOLE_SOCKET, OPT_ACCEPTED, OPT_ACCEPTED_ARG,
       OPT_DETACH };

int launch_parse(int argc, char **argv, struct launch_opts *o, bool *detach, const char **id,
		 struct rv_err *err)
{
	static const struct option opts[] = {
		{ "bundle", required_argument, NULL, OPT_BUNDLE },
		{ "pid-file", required_argument, NULL, OPT_PID_FILE },
		{ "console-socket", required_argument, NULL, OPT_CONSOLE_SOCKET },
		{ "detach", no_argument, NULL, OPT_DETACH },
		/* runc's, meaningless for a VM: accepted so that clients can pass them. */
		{ "no-pivot", no_argument, NULL, OPT_ACCEPTED },
		{ "no-new-keyring", no_argument, NULL, OPT_ACCEPTED },
		{ "no-subreaper", no_argument, NULL, OPT_ACCEPTED },
		{ "preserve-fds", required_argument, NULL, OPT_ACCEPTED_ARG },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, detach ? "+b:d" : "+b:", opts, NULL)) != -1) {
		switch (c) {
		case 'b': case OPT_BUNDLE: o->bundle = optarg; break;
		case OPT_PID_FILE: o->pid_file = optarg; break;
		case OPT_CONSOLE_SOCKET: o->console_socket = optarg; break;
		case 'd': case OPT_DETACH:
			if (!detach)
				goto unknown;
			*detach = true;
			break;
		case OPT_ACCEPTED: case OPT_ACCEPTED_ARG: break;
		default:
			goto unknown;
		}
	}
	if (optind != argc - 1)
		return rv_failx(err, EINVAL, "%s: give exactly one container id (usage: runvm %s "
				"[--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID)",
				argv[0], argv[0]);
	*id = argv[optind];
	return 0;
unknown:
	return rv_failx(err, EINVAL, "%s: unknown flag '%s' (see runvm help %s)", argv[0],
			argv[optind - 1], argv[0]);
}

/* Everything that can be checked before a state dir exists, with runc's
 * wording where runc has one. */
static int check_inputs(const struct launch_opts *o, const struct oci_spec *spec,
			struct rv_err *err)
{
	struct stat st;

	if (spec->process.terminal && !o->console_socket && !o->console_master)
		return rv_failx(err, EINVAL, "cannot allocate tty if runvm will detach without "
				"setting console socket (process.terminal is true: give "
				"--console-socket, or run in the foreground)");
	if (o->console_socket && !spec->process.terminal)
		return rv_failx(err, EINVAL, "--console-socket %s: process.terminal is false, so "
				"there is no terminal to send (drop the flag, or set terminal)",
				o->console_socket);
	if (o->console_socket && (stat(o->console_socket, &st) < 0 || !S_ISSOCK(st.st_mode)))
		return rv_failx(err, ENOTSOCK, "--console-socket %s: not a Unix socket",
				o->console_socket);
	struct seccomp_prog filter;       /* compiled here too: a bad profile fails before boot */
	if (seccomp_compile(spec, &filter, err) < 0)
		return -1;
	seccomp_prog_free(&filter);
	if (stat(spec->root_path, &st) < 0)
		return rv_fail(err, errno, "root.path %s", spec->root_path);
	if (!S_ISDIR(st.st_mode))
		return rv_failx(err, ENOTDIR, "root.path %s: not a directory", spec->root_path);
	if (o->pid_file) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", o->pid_file);
		if (stat(dirname(dir), &st) < 0 || !S_ISDIR(st.st_mode))
			return rv_failx(err, ENOENT, "--pid-file %s: directory %s does not exist",
					o->pid_file, dir);
	}
	return 0;
}

static int open_kvm(struct rv_err *err)
{
	struct kvm_host host;

	kvm_host_detect("/", &host);
	if (kvm_host_check_bootable(&host, err) < 0)
		return -1;
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return rv_fail(err, errno, "open /dev/kvm (runvm runs each container in a KVM VM)");
	return fd;
}

static int listen_control(const char *root, const char *id, struct rv_err *err)
{
	struct sockaddr_un sa;
	char path[PATH_MAX];
	_cleanup_close_ int dirfd = -1;

	if (snprintf(path, sizeof(path), "%s/%s/%s", root, id, STATE_CONTROL_SOCK) >= (int)sizeof(path))
		return rv_failx(err, ENAMETOOLONG, "control socket %s/%s: path too long", root, id);
	if (ctl_sockaddr(path, &sa, &dirfd, err) < 0)
		return rv_wrap(err, "control socket");
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return rv_fail(err, errno, "socket");
	/* 0600 whatever the caller's umask: connecting needs write permission. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(sa.sun_path, 0600) < 0 ||
	    listen(fd, 64) < 0) {
		int e = errno;
		close(fd);
		return rv_fail(err, e, "control socket %s", path);
	}
	return fd;
}

static void close_fds(struct launch_fds *f)
{
	int *all[] = { &f->kvm, &f->spec, &f->control, &f->exit, &f->log, &f->sync[0], &f->sync[1],
		       &f->tty };

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
		if (*all[i] >= 0) {
			close(*all[i]);
			*all[i] = -1;
		}
}

/* A copy of config.json for exec, which runs processes by it later, whatever
 * became of the bundle. The VMM reads the same fd from its start. */
static int save_spec(int dirfd, int spec_fd, struct rv_err *err)
{
	char buf[65536];
	off_t off = 0;
	ssize_t n;
	int fd = openat(dirfd, STATE_SPEC_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return rv_fail(err, errno, "%s", STATE_SPEC_FILE);
	while ((n = pread(spec_fd, buf, sizeof(buf), off)) > 0) {
		if (write(fd, buf, (size_t)n) != n)
			break;
		off += n;
	}
	int e = n < 0 ? errno : n > 0 ? EIO : 0;
	close(fd);
	return e ? rv_fail(err, e, "%s", STATE_SPEC_FILE) : 0;
}

static int open_fds(const char *root, const char *id, int dirfd, const char *bundle,
		    struct launch_fds *f, struct rv_err *err)
{
	char path[PATH_MAX + 16];

	snprintf(path, sizeof(path), "%s/config.json", bundle);
	if ((f->spec = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return rv_fail(err, errno, "%s", path);
	if (save_spec(dirfd, f->spec, err) < 0)
		return rv_wrap(err, "state dir %s/%s", root, id);
	if ((f->control = listen_control(root, id, err)) < 0)
		return -1;
	f->exit = openat(dirfd, STATE_EXIT_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	f->log = openat(dirfd, BOOT_LOG_FILE, O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
	if (f->exit < 0 || f->log < 0 || pipe2(f->sync, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "state dir %s/%s", root, id);
	return 0;
}

struct boot_args {
	char fd[6][16], cpus[16], mem[32], vmm_log[PATH_MAX], stdio[48];
	char cgroup[PATH_MAX];            /* "": none */
	char pod[PATH_MAX];               /* a pod member's: its pod's VMM's control socket */
	char templates[PATH_MAX];         /* the template store (vmm/template.h); "": none */
	const char *argv[40];
};

/* With a terminal, the container's stdio is the terminal, and create's own
 * stdio must not live on in the VMM: a caller that reads create's output to
 * its end, as containerd's runc shim does, would wait for the VM to end.
 * Spares any of fds 0-2 that is one the VMM is given. */
static void stdio_to_null(const int pass[6], int tty)
{
	int null = open("/dev/null", O_RDWR);

	for (int i = 0; i < 3 && null >= 0; i++) {
		bool given = i == tty || i == null;
		for (int j = 0; j < 6; j++)
			given = given || pass[j] == i;
		if (!given)
			dup2(null, i);
	}
	if (null > 2)
		close(null);
}

/* The VMM saved its shape's template at agent ready, into files it could
 * not publish from its jail: done here, outside it. A failure only costs
 * later containers their head start. */
static void publish_templates(const struct cli *cli, const char *dir, pid_t vmm)
{
	struct rv_err err;

	if (dir[0] && template_publish(dir, vmm, &err) < 0)
		rv_logf(&cli->log, RV_LOG_WARN, "template not published: %s", err.msg);
}

/* The child: `runvm boot` in a session of its own (a terminal's Ctrl-C is
 * for `run` to forward, not for the VMM), with exactly the fds it is given. */
static void __attribute__((noreturn))
exec_boot(const struct cli *cli, const char *id, const char *bundle, const struct launch_fds *f,
	  struct boot_args *a)
{
	const int pass[6] = { f->kvm, f->spec, f->control, f->exit, f->log, f->sync[1] };
	static const char *const flags[6] = { "--device-fd", "--spec-fd", "--controller-fd",
					      "--exit-fd", "--user-log-fd", "--start-sync-fd" };
	size_t n = 0;
	struct rv_err e;

	setsid();
	/* Joined before exec, so that all the VMM ever uses is charged there. */
	if (a->cgroup[0] && cgroup_join(a->cgroup, 0, NULL, &e) < 0) {
		dprintf(f->log, "%s\n", e.msg);
		_exit(1);
	}
	a->argv[n++] = "runvm";
	a->argv[n++] = "--log";
	a->argv[n++] = cli->log_path ? cli->log_path : a->vmm_log;
	if (cli->log_format) {
		a->argv[n++] = "--log-format";
		a->argv[n++] = cli->log_format;
	}
	if (cli->debug)
		a->argv[n++] = "--debug";
	a->argv[n++] = "boot";
	a->argv[n++] = "--bundle";
	a->argv[n++] = bundle;
	for (size_t i = 0; i < 6; i++) {
		if (pass[i] < 0)
			continue;     /* a pod's member has no /dev/kvm */
		fcntl(pass[i], F_SETFD, 0);
		snprintf(a->fd[i], sizeof(a->fd[i]), "%d", pass[i]);
		a->argv[n++] = flags[i];
		a->argv[n++] = a->fd[i];
	}
	if (f->tty >= 0) {
		stdio_to_null(pass, f->tty);
		fcntl(f->tty, F_SETFD, 0);
		snprintf(a->stdio, sizeof(a->stdio), "%d,%d,%d", f->tty, f->tty, f->tty);
		a->argv[n++] = "--terminal";
		a->argv[n++] = "--stdio-fds";
		a->argv[n++] = a->stdio;
	}
	if (a->pod[0]) {
		a->argv[n++] = "--pod-control";
		a->argv[n++] = a->pod;
	}
	if (a->templates[0]) {
		a->argv[n++] = "--template-dir";
		a->argv[n++] = a->templates;
	}
	a->argv[n++] = "--cpu-num";
	a->argv[n++] = a->cpus;
	a->argv[n++] = "--total-memory";
	a->argv[n++] = a->mem;
	a->argv[n++] = id;
	a->argv[n] = NULL;
	execv("/proc/self/exe", (char *const *)a->argv);
	dprintf(f->log, "exec runvm boot: %s\n", strerror(errno));
	_exit(127);
}

/* The log's text (its first size - 1 bytes, or with tail its last) without
 * its trailing newlines and blanks. */
static size_t read_log(int fd, bool tail, char *buf, size_t size)
{
	struct stat st;
	off_t from = tail && fstat(fd, &st) == 0 && st.st_size > (off_t)size - 1 ?
		     st.st_size - ((off_t)size - 1) : 0;
	ssize_t n = size ? pread(fd, buf, size - 1, from) : 0;

	n = n < 0 ? 0 : n;
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		n--;
	if (size)
		buf[n] = '\0';
	return (size_t)n;
}

void launch_boot_error(const struct cli *cli, const char *id, char *buf, size_t size)
{
	char path[PATH_MAX];

	if (size)
		buf[0] = '\0';
	if (snprintf(path, sizeof(path), "%s/%s/%s", cli->root, id, BOOT_LOG_FILE) >= (int)sizeof(path))
		return;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	/* The VMM ends its log with its error, after the guest console's tail. */
	char all[BOOT_LOG_MAX_BYTES + 1];
	size_t n = read_log(fd, true, all, sizeof(all));
	close(fd);
	if (n == 0)
		return;
	const char *last = strrchr(all, '\n');
	snprintf(buf, size, "%s", last ? last + 1 : all);
}

/* boot's error, as it wrote it to the boot log. */
static int boot_failed(const struct launch_fds *f, pid_t pid, struct rv_err *err)
{
	char msg[BOOT_LOG_MAX_BYTES + 1];
	int status;

	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (read_log(f->log, false, msg, sizeof(msg)) == 0)
		return rv_failx(err, EIO, "the VMM ended (%s %d) before the container was ready",
				WIFSIGNALED(status) ? "signal" : "status",
				WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
	return rv_failx(err, EIO, "%s", msg);
}

/* A VMM that failed is reaped here (*vmm = -1): nothing is left to kill. */
static int wait_ready(const struct launch_fds *f, pid_t *vmm, struct rv_err *err)
{
	char byte;
	ssize_t n;

	do
		n = read(f->sync[0], &byte, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		return 0;
	boot_failed(f, *vmm, err);
	*vmm = -1;
	return -1;
}

static void fill_state(struct ct_state *st, const char *id, const char *bundle,
		       const struct oci_spec *spec, struct ct_annotation *ann)
{
	for (size_t i = 0; i < spec->nannotations; i++)
		ann[i] = (struct ct_annotation){ spec->annotations[i].key, spec->annotations[i].value };
	*st = (struct ct_state){ .id = (char *)id, .bundle = (char *)bundle,
				 .rootfs = spec->root_path, .status = "creating",
				 .annotations = ann, .nannotations = spec->nannotations,
				 .owner = "" };
}

/* prestart (legacy) then createRuntime on the host, then createContainer
 * in the guest, once the VM is up and the process prepared, with the state
 * "creating" as runc gives it. A failure fails create, which then cleans
 * up. */
static int create_hooks(const struct cli *cli, const struct oci_spec *spec,
			const struct ct_state *st, struct rv_err *err)
{
	char ctl[PATH_MAX];

	if (!spec->hooks.n[HOOK_PRESTART] && !spec->hooks.n[HOOK_CREATE_RUNTIME] &&
	    !spec->hooks.n[HOOK_CREATE_CONTAINER])
		return 0;
	_cleanup_free_ char *json = state_oci_json(st, "creating");
	if (!json)
		return rv_fail(err, ENOMEM, "state JSON");
	snprintf(ctl, sizeof(ctl), "%s/%s/%s", cli->root, st->id, STATE_CONTROL_SOCK);
	return hooks_run(&spec->hooks, HOOK_PRESTART, json, err) < 0 ||
	       hooks_run(&spec->hooks, HOOK_CREATE_RUNTIME, json, err) < 0 ||
	       hooks_run_guest(ctl, &spec->hooks, HOOK_CREATE_CONTAINER, json, err) < 0 ? -1 : 0;
}

/* The console's master goes to --console-socket, or back to `run`. */
static int open_console(const struct launch_opts *o, const struct oci_spec *spec, int *slave,
			struct rv_err *err)
{
	unsigned rows = spec->process.console_height, cols = spec->process.console_width;

	if (o->console_socket)
		return console_open(o->console_socket, rows, cols, slave, err);
	if (o->console_rows && o->console_cols) {
		rows = o->console_rows;
		cols = o->console_cols;
	}
	return console_make(rows, cols, o->console_master, slave, err);
}

/* With the state dir made and locked: start boot and wait until it is ready. */
static int start_vmm(struct cli *cli, const char *id, const char *bundle, int dirfd,
		     const struct oci_spec *spec, const char *cgroup, const char *pod,
		     struct launch_fds *f, pid_t *vmm, struct rv_err *err)
{
	_cleanup_free_ struct ct_annotation *ann = calloc(spec->nannotations + 1, sizeof(*ann));
	_cleanup_free_ char *created = state_now_rfc3339();
	struct boot_args a;
	struct ct_state st;
	unsigned cpus;
	uint64_t mem;
	bool templates;

	if (!ann || !created)
		return rv_fail(err, ENOMEM, "state");
	if (spec_vm_shape(spec, &cpus, &mem, err) < 0 || spec_vm_template(spec, &templates, err) < 0)
		return -1;
	fill_state(&st, id, bundle, spec, ann);
	st.created = created;
	snprintf(a.cpus, sizeof(a.cpus), "%u", cpus);
	snprintf(a.mem, sizeof(a.mem), "%llu", (unsigned long long)mem);
	snprintf(a.vmm_log, sizeof(a.vmm_log), "%s/%s/%s", cli->root, id, VMM_LOG_FILE);
	snprintf(a.cgroup, sizeof(a.cgroup), "%s", cgroup);
	snprintf(a.pod, sizeof(a.pod), "%s", pod);
	a.templates[0] = '\0';
	/* RUNVM_TEMPLATES=off: the host's operator turns templates off for every
	 * container (the annotation is the container's owner's to set). */
	const char *env = getenv("RUNVM_TEMPLATES");
	if (env && strcmp(env, "off") && strcmp(env, "on"))
		return rv_failx(err, EINVAL, "RUNVM_TEMPLATES=%s: give on or off", env);
	if (env && !strcmp(env, "off"))
		templates = false;
	if (templates && !pod[0])
		snprintf(a.templates, sizeof(a.templates), "%s/%s", cli->root, TEMPLATE_STORE_DIR);
	st.cgroup = cgroup[0] ? (char *)cgroup : NULL;
	if (state_write(dirfd, &st, err) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return rv_fail(err, errno, "fork");
	if (pid == 0)
		exec_boot(cli, id, bundle, f, &a);
	*vmm = pid;
	close(f->sync[1]);
	f->sync[1] = -1;
	st.pid = pid;
	if (state_pid_start(pid, &st.pid_start, err) < 0 || state_write(dirfd, &st, err) < 0)
		return -1;
	if (wait_ready(f, vmm, err) < 0) {
		if (a.templates[0])
			template_forget_failed(a.templates, err->msg);
		return -1;
	}
	publish_templates(cli, a.templates, pid);
	if (create_hooks(cli, spec, &st, err) < 0)
		return -1;
	st.status = "created";
	return state_write(dirfd, &st, err);
}

int launch_create(struct cli *cli, const char *id, const struct launch_opts *o, pid_t *vmm,
		  struct rv_err *err)
{
	struct launch_fds f = { -1, -1, -1, -1, -1, { -1, -1 }, -1 };
	struct oci_spec spec = { 0 };
	char bundle[PATH_MAX], cgroup[PATH_MAX] = "", pod[PATH_MAX] = "";
	const char *sandbox_id = NULL;
	enum pod_role role = POD_NONE;
	int dirfd = -1, lockfd = -1, rc = -1;

	*vmm = -1;
	if (o->console_master)
		*o->console_master = -1;
	if (state_check_id(id, err) < 0)
		return -1;
	if (!realpath(o->bundle ? o->bundle : ".", bundle))
		return rv_fail(err, errno, "bundle %s", o->bundle ? o->bundle : ".");
	if (spec_load(bundle, &spec, err) < 0)
		return -1;
	if (check_inputs(o, &spec, err) < 0 || pod_role(&spec, &role, &sandbox_id, err) < 0 ||
	    (role == POD_MEMBER && pod_control_path(cli, sandbox_id, pod, sizeof(pod), err) < 0) ||
	    (spec.cgroups_path &&
	     cgroup_path(spec.cgroups_path, cli->systemd_cgroup, cgroup, sizeof(cgroup), err) < 0) ||
	    (role != POD_MEMBER && (f.kvm = open_kvm(err)) < 0))
		goto out;
	if (state_create(cli->root, id, &dirfd, err) < 0)
		goto out;
	/* The lookup last: every refusal before it names its own field or id. */
	if (state_lock(dirfd, &lockfd, err) == 0 && lookpath_check(&spec, err) == 0 &&
	    open_fds(cli->root, id, dirfd, bundle, &f, err) == 0 &&
	    (!spec.process.terminal || open_console(o, &spec, &f.tty, err) == 0) &&
	    start_vmm(cli, id, bundle, dirfd, &spec, cgroup, pod, &f, vmm, err) == 0 &&
	    (!o->pid_file || state_write_pid_file(o->pid_file, *vmm, err) == 0))
		rc = 0;
	if (rc < 0) {
		struct rv_err ignored;
		if (*vmm > 0) {
			kill(*vmm, SIGKILL);
			waitpid(*vmm, NULL, 0);
			*vmm = -1;
		}
		if (cgroup[0])
			cgroup_remove(cgroup, NULL);
		state_remove(cli->root, id, &ignored);
		if (o->console_master && *o->console_master >= 0) {
			close(*o->console_master);
			*o->console_master = -1;
		}
	}
out:
	close_fds(&f);
	if (lockfd >= 0)
		close(lockfd);
	if (dirfd >= 0)
		close(dirfd);
	spec_free(&spec);
	return rc;
}
