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
	const char *summary;
};

static const struct verb verbs[] = {
	{ "create", cmd_create, "create a container (boots its VM)" },
	{ "start", cmd_start, "start the process of a created container" },
	{ "run", cmd_run, "create and start a container" },
	{ "exec", NULL, "run a process in a running container" },
	{ "kill", cmd_kill, "send a signal to a container's process" },
	{ "delete", cmd_delete, "delete a container and its VM" },
	{ "state", cmd_state, "print a container's OCI state" },
	{ "list", cmd_list, "list containers" },
	{ "ps", cmd_ps, "list a container's processes" },
	{ "events", cmd_events, "stream a container's events and stats" },
	{ "pause", cmd_pause, "pause all vCPUs of a container" },
	{ "resume", cmd_resume, "resume a paused container" },
	{ "wait", cmd_wait, "wait for a container to exit" },
	{ "spec", cmd_spec, "write a default config.json" },
	{ "features", cmd_features, "print what this build and host support (JSON)" },
	{ "do", cmd_guest_verb, "run a command in a VM over the host's root" },
	{ "boot", cmd_boot, "(internal) the VMM of one sandbox" },
};

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
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		fprintf(out, "  %-10s %s%s\n", verbs[i].name, verbs[i].summary,
			verbs[i].fn ? "" : " [not built yet]");
}

static const struct verb *find_verb(const char *name)
{
	for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strcmp(verbs[i].name, name) == 0)
			return &verbs[i];
	return NULL;
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
	if (first > 0 && rv_log_open(&cli.log, log_path, format, cli.debug, &err) == 0) {
		const struct verb *verb = find_verb(argv[first]);
		if (!verb)
			rv_failx(&err, EINVAL, "unknown command '%s' (see runvm --help)", argv[first]);
		else if (!verb->fn)
			rv_failx(&err, ENOSYS, "%s: not part of this build yet", verb->name);
		else {
			optind = 1;    /* each verb parses its own flags from its argv[0] */
			rc = verb->fn(&cli, argc - first, argv + first, &err);
		}
	}
	if (rc < 0) {
		fprintf(stderr, "runvm: %s\n", err.msg);
		if (!rv_log_to_stderr(&cli.log))
			rv_logf(&cli.log, RV_LOG_ERROR, "%s", err.msg);
	}
	rv_log_close(&cli.log);
	/* A failed verb exits 1 unless it chose a status (boot: 127 for a missing command). */
	return rc < 0 ? (cli.exit_code ? cli.exit_code : 1) : cli.exit_code;
}
