/* runvm: a runc-compatible OCI runtime whose sandbox is a KVM microVM.
 * Parses the global flags, dispatches one verb, prints its error once. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "runtime/cli.h"

#ifndef RUNVM_VERSION
#define RUNVM_VERSION "unknown"
#endif

struct verb {
	const char *name;
	cli_verb_fn fn;             /* NULL: part of the CLI contract, not built yet */
	const char *summary;        /* runvm --help's one line */
	const char *usage;          /* the arguments after the verb's name */
	const char *help;           /* runvm help VERB: what it does, then its flags */
};

/* The create and run flags that launch_parse accepts. */
#define LAUNCH_FLAGS \
	"  -b, --bundle DIR        the bundle: config.json and the root filesystem it names\n" \
	"                          (default: the current directory)\n" \
	"  --pid-file FILE         write the VMM's pid to FILE (its directory must exist)\n" \
	"  --console-socket SOCK   with process.terminal, the Unix socket that gets the\n" \
	"                          terminal's master (as runc sends it)\n" \
	"  --no-pivot, --no-new-keyring, --no-subreaper, --preserve-fds N\n" \
	"                          accepted for runc's clients; they mean nothing to a VM\n"
#define FORMAT_FLAG "  -f, --format FORMAT     table or json (default table)\n"

static int cmd_help(struct cli *cli, int argc, char **argv, struct rv_err *err);

static const struct verb verbs[] = {
	{ "create", cmd_create, "create a container (boots its VM)",
	  "[--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID",
	  "Boot the VM of container ID from a bundle and leave its process ready, not\n"
	  "started: runvm start ID starts it.\n\n" LAUNCH_FLAGS },
	{ "start", cmd_start, "start the process of a created container", "ID",
	  "Start the process of the created container ID.\n" },
	{ "run", cmd_run, "create and start a container",
	  "[-d] [--bundle DIR] [--pid-file FILE] [--console-socket SOCK] ID",
	  "Create and start container ID. In the foreground runvm forwards the signals it\n"
	  "gets to the container, waits for it, deletes it and exits with its status\n"
	  "(128 + N when signal N ended it).\n\n"
	  "  -d, --detach            return once the container runs\n" LAUNCH_FLAGS },
	{ "exec", cmd_exec, "run another process in a running container",
	  "[OPTIONS] ID COMMAND [ARG...] | [OPTIONS] --process FILE ID",
	  "Run COMMAND in the VM of container ID, as the container's own process runs\n"
	  "(its user, env, cwd and capabilities) unless an option says otherwise. In the\n"
	  "foreground, stdio is relayed and runvm exits with the process's status.\n\n"
	  "  -p, --process FILE      the whole process as JSON (runc's process.json)\n"
	  "      --cwd DIR           its working directory\n"
	  "  -e, --env NAME=VALUE    set an environment variable (repeatable; later wins)\n"
	  "  -u, --user UID[:GID]    run as this user (numbers)\n"
	  "  -g, --additional-gids GID  add a supplementary group (repeatable)\n"
	  "  -c, --cap CAP           add a capability (repeatable), e.g. CAP_NET_ADMIN\n"
	  "  -t, --tty               on a terminal: ours, or the one sent to --console-socket\n"
	  "      --console-socket SOCK  send the terminal's master to this Unix socket\n"
	  "  -d, --detach            return once it runs; a relay process stands for it\n"
	  "      --pid-file FILE     write the pid that stands for the process here\n"
	  "      --no-new-privs      set no_new_privs for it\n" },
	{ "kill", cmd_kill, "send a signal to a container's process", "[--all] ID [SIGNAL]",
	  "Send SIGNAL (default TERM) to the process of container ID: a name such as KILL,\n"
	  "SIGKILL or RTMIN+3, or a number.\n\n"
	  "  -a, --all               signal every process in the container\n" },
	{ "delete", cmd_delete, "delete a container and its VM", "[--force] ID",
	  "Delete the stopped or created container ID: its VM and its state.\n\n"
	  "  -f, --force             kill a running or paused one first; succeed when ID\n"
	  "                          does not exist\n" },
	{ "state", cmd_state, "print a container's OCI state", "ID",
	  "Print the OCI state of container ID as JSON.\n" },
	{ "list", cmd_list, "list containers", "[--format table|json] [--quiet]",
	  "List the containers under --root.\n\n" FORMAT_FLAG
	  "  -q, --quiet             print their ids only\n" },
	{ "ps", cmd_ps, "list a container's processes", "[--format table|json] ID",
	  "List the processes in the VM of container ID: ps -ef's columns, or their guest\n"
	  "pids as JSON. Options for ps(1) after ID are refused: there is no ps(1) here.\n\n"
	  FORMAT_FLAG },
	{ "events", cmd_events, "stream a container's events and stats",
	  "[--stats] [--interval Ns] ID",
	  "Print the stats of container ID as JSON lines, one every interval, until it\n"
	  "stops.\n\n"
	  "  --stats                 print them once and exit\n"
	  "  --interval DURATION     such as 5s, 500ms or 1m (default 5s)\n" },
	{ "pause", cmd_pause, "pause all vCPUs of a container", "ID",
	  "Stop every vCPU of the VM of container ID.\n" },
	{ "resume", cmd_resume, "resume a paused container", "ID",
	  "Let the vCPUs of the paused container ID run again.\n" },
	{ "wait", cmd_wait, "wait for a container to exit", "ID",
	  "Wait for the process of container ID to exit and print\n"
	  "{\"id\":ID,\"exitStatus\":N}.\n" },
	{ "spec", cmd_spec, "write a default config.json", "[--bundle DIR] [--rootless]",
	  "Write a default config.json (as runc spec) into the bundle directory; never\n"
	  "over an existing one.\n\n"
	  "  -b, --bundle DIR        the bundle directory (default: the current directory)\n"
	  "  --rootless              for running without root: a user namespace that maps\n"
	  "                          your uid and gid to root\n" },
	{ "features", cmd_features, "print what this build and host support (JSON)", "",
	  "Print as JSON what this build supports, as runc features does, and whether\n"
	  "this host's KVM can boot guests (annotation io.runvm.kvm.bootable).\n" },
	{ "do", cmd_do, "run a command in a VM over the host's root",
	  "[FLAGS] -- COMMAND [ARG...]",
	  "Run COMMAND in a VM of its own, as runsc do: over the host's root (or --root),\n"
	  "read-only below a writable layer that is gone with the VM, so nothing it writes\n"
	  "reaches the host. It gets your environment, your current directory, your stdio\n"
	  "(a terminal when stdin is one) and your signals; runvm exits with its status.\n"
	  "No state is kept. The host's /proc, /sys and /dev are not shown to the VM: it\n"
	  "has its own.\n\n"
	  "  --root DIR          the root the command sees (default /)\n"
	  "  --cwd DIR           its directory (default: the current one)\n"
	  "  --cpus N            vCPUs (default 1)\n"
	  "  --memory SIZE       guest RAM, e.g. 512M, 2G (default 512M); the writable\n"
	  "                      layer lives in it\n"
	  "  --network none      loopback only (the default without --ip)\n"
	  "  --network sandbox   a network of the VM's own, as runsc do makes it (root):\n"
	  "                      a veth from this host, the VM at --ip/24, this host at\n"
	  "                      the next address as its gateway, NAT out through this\n"
	  "                      host's default route (with iptables); all removed on exit\n"
	  "  --ip ADDR           the VM's address (default 192.168.10.2); implies sandbox\n"
	  "  --quiet             no notes from runvm (that the VM has no NAT, say)\n" },
	{ "boot", cmd_boot, "(internal) the VMM of one sandbox",
	  "--bundle DIR --spec-fd N --controller-fd N --start-sync-fd N [FLAGS] ID\n"
	  "   or: runvm boot [FLAGS] -- COMMAND [ARG...]",
	  "The VMM of one container, as runvm create starts it (runsc boot's flags); the\n"
	  "second form, for developers, runs COMMAND in a VM over the agent's initramfs.\n\n"
	  "  sandbox:   --device-fd N --exit-fd N --user-log-fd N --stdio-fds A,B,C\n"
	  "  both:      --cpu-num N --total-memory SIZE --kernel FILE --initrd FILE --console\n"
	  "  developer: --cmdline KERNEL-ARGS --timeout SECS --rootfs DIR --rootfs-ro\n"
	  "             --volume SRC:DST[:ro] --fs-cache auto|none|always --fs-writeback\n" },
	{ "help", cmd_help, "show the flags of a command", "[COMMAND]",
	  "Show the flags of COMMAND, or runvm's own without one. runvm COMMAND --help\n"
	  "does the same.\n" },
};

#define NVERBS (sizeof(verbs) / sizeof(verbs[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: runvm [global options] COMMAND [arguments]\n\n"
		"global options:\n"
		"  --root DIR            state directory (default " RUNVM_DEFAULT_ROOT ")\n"
		"  --log FILE            log to FILE instead of stderr\n"
		"  --log-format FORMAT   text or json (default text)\n"
		"  --debug               log debug messages\n"
		"  --systemd-cgroup      accepted for runc compatibility\n"
		"  --version, --help\n\ncommands:\n");
	for (size_t i = 0; i < NVERBS; i++)
		fprintf(out, "  %-10s %s%s\n", verbs[i].name, verbs[i].summary,
			verbs[i].fn ? "" : " [not built yet]");
	fprintf(out, "\nrunvm help COMMAND (or runvm COMMAND --help) shows its flags.\n");
}

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < NVERBS; i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
}

static int verb_help(const struct verb *v, struct rv_err *err)
{
	printf("usage: runvm %s%s%s\n\n%s", v->name, v->usage[0] ? " " : "", v->usage, v->help);
	if (!v->fn)
		printf("\nNot part of this build yet.\n");
	return fflush(stdout) == 0 ? 0 : rv_fail(err, EIO, "write the help of %s", v->name);
}

static int cmd_help(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	(void)cli;
	if (argc > 2)
		return rv_failx(err, EINVAL, "help: give one command (got '%s' as well)", argv[2]);
	if (argc == 1) {
		usage(stdout);
		return fflush(stdout) == 0 ? 0 : rv_fail(err, EIO, "write the help");
	}
	const struct verb *v = find_verb(argv[1]);
	if (!v)
		return rv_failx(err, EINVAL, "help: unknown command '%s' (see runvm --help)", argv[1]);
	return verb_help(v, err);
}

/* Runs the verb named by argv[0]. `VERB --help` and `VERB -h` show its flags
 * here, from the table, so that no verb has to know about help. */
static int dispatch(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	const struct verb *verb = find_verb(argv[0]);

	if (!verb)
		return rv_failx(err, EINVAL, "unknown command '%s' (see runvm --help)", argv[0]);
	if (argc > 1 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")))
		return verb_help(verb, err);
	if (!verb->fn)
		return rv_failx(err, ENOSYS, "%s: not part of this build yet", verb->name);
	optind = 1;    /* each verb parses its own flags from its argv[0] */
	return verb->fn(cli, argc, argv, err);
}

enum { OPT_ROOT = 256, OPT_LOG, OPT_LOG_FORMAT, OPT_DEBUG, OPT_SYSTEMD_CGROUP,
       OPT_VERSION, OPT_HELP };

/* Returns the index of the verb in argv, 0 when main should exit 0 (help,
 * version), -1 on a bad flag. */
static int parse_globals(int argc, char **argv, struct cli *cli, const char **log_path,
			 enum rv_log_format *format, struct rv_err *err)
{
	static const struct option opts[] = {
		{ "root", required_argument, NULL, OPT_ROOT },
		{ "log", required_argument, NULL, OPT_LOG },
		{ "log-format", required_argument, NULL, OPT_LOG_FORMAT },
		{ "debug", no_argument, NULL, OPT_DEBUG },
		{ "systemd-cgroup", no_argument, NULL, OPT_SYSTEMD_CGROUP },
		{ "version", no_argument, NULL, OPT_VERSION },
		{ "help", no_argument, NULL, OPT_HELP },
		{ 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+hv", opts, NULL)) != -1) {
		switch (c) {
		case OPT_ROOT: cli->root = optarg; break;
		case OPT_LOG: *log_path = cli->log_path = optarg; break;
		case OPT_LOG_FORMAT:
			if (rv_log_parse_format(optarg, format, err) < 0)
				return -1;
			cli->log_format = optarg;
			break;
		case OPT_DEBUG: cli->debug = true; break;
		case OPT_SYSTEMD_CGROUP: cli->systemd_cgroup = true; break;
		case 'v':
		case OPT_VERSION: printf("runvm version %s\n", RUNVM_VERSION); return 0;
		case 'h':
		case OPT_HELP: usage(stdout); return 0;
		default:
			return rv_failx(err, EINVAL, "unknown global option '%s' (see runvm --help)",
				       argv[optind - 1]);
		}
	}
	if (optind >= argc)
		return rv_failx(err, EINVAL, "no command given (see runvm --help)");
	return optind;
}

int main(int argc, char **argv)
{
	struct cli cli = { .root = RUNVM_DEFAULT_ROOT };
	struct rv_err err = { 0 };
	const char *log_path = NULL;
	enum rv_log_format format = RV_LOG_TEXT;
	int rc = -1;

	rv_log_open(&cli.log, NULL, format, false, &err);
	int first = parse_globals(argc, argv, &cli, &log_path, &format, &err);
	if (first == 0)
		return 0;
	if (first > 0 && rv_log_open(&cli.log, log_path, format, cli.debug, &err) == 0)
		rc = dispatch(&cli, argc - first, argv + first, &err);
	if (rc < 0) {
		fprintf(stderr, "runvm: %s\n", err.msg);
		if (!rv_log_to_stderr(&cli.log))
			rv_logf(&cli.log, RV_LOG_ERROR, "%s", err.msg);
	}
	rv_log_close(&cli.log);
	/* A failed verb exits 1 unless it chose a status (boot: 127 for a missing command). */
	return rc < 0 ? (cli.exit_code ? cli.exit_code : 1) : cli.exit_code;
}
