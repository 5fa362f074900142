/* runvm do [FLAGS] -- CMD ARGS...: CMD in a VM of its own over the host's
 * root (or --root), read-only below a writable layer that goes with the VM,
 * as `runsc do` does. No bundle, no state: the VMM runs in this process,
 * with our stdio (a terminal when stdin is one), our environment and
 * current directory, and its signals go to CMD. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/cli.h"
#include "runtime/do_keeper.h"
#include "runtime/do_net.h"
#include "vmm/boot_cli.h"
#include "vmm/boot_fs.h"
#include "vmm/jail.h"
#include "vmm/kvm_host.h"

extern char **environ;

#define DO_DEFAULT_MEM (512ull << 20)
#define DO_MIN_MEM (64ull << 20)
#define DO_MAX_CPUS 64u

struct do_opts {
	const char *root, *cwd, *network, *ip;
	bool quiet;
	unsigned cpus;
	unsigned long long mem;
	char **argv;
};

/* The guest process as signals find it: booting, running, ended. The main
 * loop (on_signal) must not block on the agent, so it marks the signal
 * pending and wakes the forwarder thread with one byte on a pipe; pending
 * signals are a set, so a storm of them (SIGWINCH) is one request each. */
enum cmd_phase { PHASE_BOOTING, PHASE_RUNNING, PHASE_ENDED };

struct forward {
	pthread_mutex_t lock;
	const struct agent_client *agent;
	uint32_t exec_id;
	atomic_int phase;
	atomic_ullong pending;       /* bit n-1: signal n */
	bool tty;                    /* the command has a terminal; ours goes raw once it runs */
	struct termios saved;
	atomic_bool raw;
	int pipe[2];                 /* [1] non-blocking */
	const struct rv_log *log;
	pthread_t thread;
	bool started;
};

enum { OPT_ROOT = 256, OPT_CWD, OPT_NETWORK, OPT_IP, OPT_QUIET, OPT_CPUS, OPT_MEM };

static int parse_cpus(const char *s, unsigned *out, struct rv_err *err)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);

	if (errno || end == s || *end || s[0] == '-' || v == 0 || v > DO_MAX_CPUS)
		return rv_failx(err, EINVAL, "do: --cpus '%s': give a whole number from 1 to %u", s,
				DO_MAX_CPUS);
	*out = (unsigned)v;
	return 0;
}

static int parse_memory(const char *s, unsigned long long *out, struct rv_err *err)
{
	if (parse_mem_size(s, out, err) < 0 || *out < DO_MIN_MEM)
		return rv_failx(err, EINVAL, "do: --memory '%s': give a size of at least 64M, such "
				"as 512M or 2G", s);
	return 0;
}

static int parse(int argc, char **argv, struct do_opts *o, struct rv_err *err)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "cwd", required_argument, NULL, OPT_CWD },
		{ "network", required_argument, NULL, OPT_NETWORK },
		{ "ip", required_argument, NULL, OPT_IP },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "cpus", required_argument, NULL, OPT_CPUS },
		{ "memory", required_argument, NULL, OPT_MEM },
		{ 0 },
	};
	int c, rc = 0;

	optind = 1;
	opterr = 0;
	while (rc == 0 && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT: o->root = optarg; break;
		case OPT_CWD: o->cwd = optarg; break;
		case OPT_NETWORK: o->network = optarg; break;
		case OPT_IP: o->ip = optarg; break;
		case OPT_QUIET: o->quiet = true; break;
		case OPT_CPUS: rc = parse_cpus(optarg, &o->cpus, err); break;
		case OPT_MEM: rc = parse_memory(optarg, &o->mem, err); break;
		default:
			return rv_failx(err, EINVAL, "do: unknown flag '%s' (see runvm help do)",
					argv[optind - 1]);
		}
	}
	if (rc < 0)
		return -1;
	if (optind >= argc)
		return rv_failx(err, EINVAL, "do: no command given: runvm do [FLAGS] -- COMMAND [ARG...]");
	/* --ip alone asks for a network; loopback only stays the default, as
	 * a network needs root and changes this host (a veth, NAT rules). */
	if (!o->network)
		o->network = o->ip ? "sandbox" : "none";
	if (strcmp(o->network, "none") && strcmp(o->network, "sandbox"))
		return rv_failx(err, EINVAL, "do: --network '%s': use none (loopback only) or "
				"sandbox (a veth and NAT of the VM's own)", o->network);
	if (!strcmp(o->network, "none") && o->ip)
		return rv_failx(err, EINVAL, "do: --ip %s with --network none: drop one of them",
				o->ip);
	if (!o->ip)
		o->ip = DO_NET_DEFAULT_IP;
	if (do_net_check_ip(o->ip, err) < 0)
		return -1;
	o->argv = argv + optind;
	return 0;
}

/* --root as an absolute host directory without "..", "." or "//": the
 * export's path and the base that --cwd is checked against. */
static int resolve_root(const char *arg, char *out, struct rv_err *err)
{
	struct stat st;

	if (!realpath(arg, out))
		return rv_fail(err, errno, "do: --root %s", arg);
	if (stat(out, &st) < 0 || !S_ISDIR(st.st_mode))
		return rv_failx(err, ENOTDIR, "do: --root %s: not a directory", arg);
	return 0;
}

/* The process's directory inside the root: --cwd, else ours. A relative
 * --cwd is taken from ours, as a shell would. With the host's root it is
 * the same path; under another --root it must lie inside that root. */
static int resolve_cwd(const struct do_opts *o, const char *root, char *out, struct rv_err *err)
{
	char here[PATH_MAX], host[PATH_MAX];
	const char *want = o->cwd ? o->cwd : ".";
	struct stat st;

	if (!getcwd(here, sizeof(here)))
		return rv_fail(err, errno, "do: the current directory");
	if (want[0] == '/')
		snprintf(host, sizeof(host), "%s", want);
	else if (snprintf(host, sizeof(host), "%s/%s", here, want) >= (int)sizeof(host))
		return rv_failx(err, ENAMETOOLONG, "do: --cwd %s: too long", want);
	if (!realpath(host, out) || stat(out, &st) < 0)
		return rv_fail(err, errno, "do: --cwd %s", want);
	if (!S_ISDIR(st.st_mode))
		return rv_failx(err, ENOTDIR, "do: --cwd %s: not a directory", want);
	if (!strcmp(root, "/"))
		return 0;
	size_t n = strlen(root);
	if (strncmp(out, root, n) || (out[n] && out[n] != '/')) {
		if (o->cwd)
			return rv_failx(err, EINVAL, "do: --cwd %s: not inside --root %s", want, root);
		strcpy(out, "/");      /* our own directory is elsewhere: the root's top */
		return 0;
	}
	memmove(out, out + n, strlen(out + n) + 1);
	if (!out[0])
		strcpy(out, "/");
	return 0;
}

static void forward_one(struct forward *f, int sig)
{
	struct winsize ws;
	struct rv_err err;
	int rc = 0;

	pthread_mutex_lock(&f->lock);
	if (!f->agent)
		rc = 0;                 /* ended meanwhile */
	else if (sig == SIGWINCH)
		rc = ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 ? 0 :
		     agent_resize(f->agent, f->exec_id, ws.ws_row, ws.ws_col, &err);
	else
		rc = agent_signal(f->agent, f->exec_id, sig, &err);
	pthread_mutex_unlock(&f->lock);
	if (rc < 0)
		rv_logf(f->log, RV_LOG_DEBUG, "do: signal %d to the command: %s", sig, err.msg);
}

static void *forwarder(void *arg)
{
	struct forward *f = arg;
	unsigned char b;

	while (read(f->pipe[0], &b, 1) == 1) {
		unsigned long long set = atomic_exchange(&f->pending, 0);
		for (int sig = 1; sig <= 64; sig++)
			if (set & (1ull << (sig - 1)))
				forward_one(f, sig);
	}
	return NULL;
}

static void wake_forwarder(struct forward *f, int sig)
{
	unsigned char b = 0;

	if (atomic_fetch_or(&f->pending, 1ull << (sig - 1)) == 0 && write(f->pipe[1], &b, 1) != 1) {
		/* full: a wake-up byte is there already, and it reads the whole set */
	}
}

/* Main loop thread. While the VM boots, SIGINT and the like end it (false):
 * nothing else could stop a guest that hangs on its way up. Once the
 * command has ended, its status stands: a late signal changes nothing. */
static bool on_signal(void *arg, int sig)
{
	struct forward *f = arg;
	int phase = atomic_load(&f->phase);

	if (phase == PHASE_BOOTING)
		return sig == SIGWINCH;
	if (phase == PHASE_RUNNING && (sig != SIGWINCH || f->tty))
		wake_forwarder(f, sig);
	return true;
}

static void on_started(void *arg, const struct agent_client *agent, uint32_t exec_id)
{
	struct forward *f = arg;

	pthread_mutex_lock(&f->lock);
	f->agent = agent;
	f->exec_id = exec_id;
	pthread_mutex_unlock(&f->lock);
	atomic_store(&f->phase, PHASE_RUNNING);
	if (!f->tty)
		return;
	/* Raw only now: until the command runs, Ctrl-C is our SIGINT and ends
	 * the boot. From here it is a byte its terminal turns into one. */
	struct termios raw = f->saved;
	cfmakeraw(&raw);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0)
		atomic_store(&f->raw, true);
	wake_forwarder(f, SIGWINCH);    /* a resize while the VM booted */
}

static void on_ended(void *arg)
{
	struct forward *f = arg;

	atomic_store(&f->phase, PHASE_ENDED);
	pthread_mutex_lock(&f->lock);
	f->agent = NULL;
	pthread_mutex_unlock(&f->lock);
}

/* A terminal on both ends: the command gets one too, of its size. With
 * output going to a file or pipe, it gets plain streams, as docker's -t
 * is not the default either. */
static bool want_tty(struct boot_command *bc, struct termios *saved)
{
	struct winsize ws;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO) || tcgetattr(STDIN_FILENO, saved) < 0)
		return false;
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) == 0) {
		bc->rows = ws.ws_row;
		bc->cols = ws.ws_col;
	}
	bc->tty = true;
	return true;
}

/* --network sandbox: do_net's work and what the VM and its agent are told of it. */
struct do_netconf {
	struct do_net net;
	struct pod_net_conf conf;
};

static int network_up(const struct do_opts *o, struct do_netconf *d, struct vm_config *cfg,
		      struct boot_command *bc, struct rv_err *err)
{
	if (strcmp(o->network, "sandbox"))
		return 0;
	if (do_net_up(&d->net, o->ip, err) < 0)
		return -1;
	pod_net_conf(&d->net.pod, &d->conf);
	cfg->net = &d->conf.vnet;
	bc->netconf = &d->conf.nc;
	if (!o->quiet && d->net.no_nat_why)
		fprintf(stderr, "runvm do: the VM (%s) reaches this host (%s) only: %s\n", d->net.ip,
			d->net.peer_ip, d->net.no_nat_why);
	return 0;
}

/* vm_config.on_run: the VMM is jailed and filtered, and so is this thread,
 * which the VMM's signals never reach (they are for its signalfd). */
static int start_forwarder(void *arg, struct rv_err *err)
{
	struct forward *f = arg;
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	int rc = pthread_create(&f->thread, NULL, forwarder, f);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return rv_fail(err, rc, "do: start the signal thread");
	f->started = true;
	return 0;
}

/* The network and, with a terminal, its settings go to a keeper forked
 * now, outside the jail the VMM enters next. */
static int prepare(const struct do_opts *o, struct do_netconf *netconf, struct forward *f,
		   struct vm_config *cfg, struct boot_command *bc, struct do_keeper *keeper,
		   struct rv_err *err)
{
	if (network_up(o, netconf, cfg, bc, err) < 0)
		return -1;
	if ((cfg->net || f->tty) &&
	    do_keeper_start(keeper, &netconf->net, f->tty ? &f->saved : NULL, err) < 0) {
		do_net_down(&netconf->net);
		return -1;
	}
	return 0;
}

static int run(struct cli *cli, struct do_opts *o, struct rv_err *err)
{
	char root[PATH_MAX], cwd[PATH_MAX], kernel[PATH_MAX], initrd[PATH_MAX], host[256] = "";
	struct vm_config cfg = { .cpus = o->cpus, .mem_bytes = o->mem, .device_fd = -1,
				 .console_fd = -1, .log = &cli->log, .jail = true };
	struct forward f = { .lock = PTHREAD_MUTEX_INITIALIZER, .pipe = { -1, -1 }, .log = &cli->log };
	struct do_keeper keeper = { 0, -1 };
	_cleanup_free_ struct boot_fs *fs = calloc(1, sizeof(*fs));
	_cleanup_free_ struct do_netconf *netconf = calloc(1, sizeof(*netconf));

	if (!fs || !netconf)
		return rv_fail(err, ENOMEM, "do");
	netconf->net = (struct do_net){ .netns_fd = -1, .pod = { .tap_fd = -1, .nl = { .fd = -1 } } };
	if (resolve_root(o->root, root, err) < 0 || resolve_cwd(o, root, cwd, err) < 0)
		return -1;
	if (!(cfg.kernel = boot_shipped_file(BOOT_DEFAULT_KERNEL_REL, kernel, sizeof(kernel))) ||
	    !(cfg.initrd = boot_shipped_file(BOOT_DEFAULT_INITRD_REL, initrd, sizeof(initrd))))
		return rv_failx(err, ENOENT, "do: the guest kernel and initramfs belong in "
				"share/runvm/ next to bin/runvm: install runvm with make install");
	gethostname(host, sizeof(host) - 1);
	*fs = (struct boot_fs){ .rootfs = root, .overlay = true };
	struct boot_command bc = { .argv = o->argv, .envp = (const char *const *)environ,
				   .cwd = cwd, .hostname = host[0] ? host : NULL,
				   .started = on_started, .ended = on_ended, .arg = &f };
	if (pipe2(f.pipe, O_CLOEXEC) < 0)
		return rv_fail(err, errno, "do: pipe");
	fcntl(f.pipe[1], F_SETFL, O_NONBLOCK);   /* the main loop never waits on it */
	/* Held from here until the terminal is ours again: one that comes as the
	 * VM ends would otherwise end us with the terminal still raw. */
	sigset_t held, old;
	vm_caller_signals(&held);
	pthread_sigmask(SIG_BLOCK, &held, &old);
	f.tty = want_tty(&bc, &f.saved);
	cfg.on_signal = on_signal;
	cfg.on_signal_arg = &f;
	cfg.on_run = start_forwarder;
	cfg.on_run_arg = &f;
	int rc = prepare(o, netconf, &f, &cfg, &bc, &keeper, err);
	if (rc == 0)
		rc = boot_run_command(&cfg, fs, &bc, &cli->exit_code, err);
	if (atomic_load(&f.raw))
		tcsetattr(STDIN_FILENO, TCSANOW, &f.saved);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(f.pipe[1]);
	if (f.started)
		pthread_join(f.thread, NULL);
	close(f.pipe[0]);
	do_keeper_finish(&keeper);
	if (rc == 0 && bc.signal)
		boot_reraise(bc.signal);    /* died of it: so do we, as its stand-in */
	return rc;
}

int cmd_do(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct do_opts o = { .root = "/", .cpus = 1, .mem = DO_DEFAULT_MEM };
	struct kvm_host host;

	if (parse(argc, argv, &o, err) < 0)
		return -1;
	/* The VMM is jailed here as under `runvm boot`; nothing of the
	 * caller's reaches its jail but stdio and the log. */
	int keep[] = { cli->log.fd };
	if (jail_close_fds(keep, 1, err) < 0)
		return rv_wrap(err, "do");
	kvm_host_detect("/", &host);
	if (kvm_host_check_bootable(&host, err) < 0 || jail_check_privileged(err) < 0)
		return rv_wrap(err, "do");
	/* As runvm boot's: inherited by every thread, and the jail's filters
	 * need it once CAP_SYS_ADMIN is gone. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return rv_fail(err, errno, "do: set no_new_privs");
	return run(cli, &o, err);
}
