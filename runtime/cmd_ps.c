/* runvm ps [--format table|json] ID: the processes in the container's VM.
 * json: their (guest) pids, as containerd reads them; table: `ps -ef`'s
 * columns, which containerd's top parses by the PID header. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cli.h"
#include "runtime/container.h"
#include "runtime/json.h"
#include "vmm/control.h"

#define USAGE "ps [--format table|json] ID"

static int parse(int argc, char **argv, bool *json, const char **id, struct rv_err *err)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'f' }, { 0 } };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f:", opts, NULL)) != -1) {
		if (c == 'f' && (!strcmp(optarg, "json") || !strcmp(optarg, "table")))
			*json = optarg[0] == 'j';
		else if (c == 'f')
			return rv_failx(err, EINVAL, "ps --format '%s': give table or json", optarg);
		else
			return rv_failx(err, EINVAL, "ps: unknown flag '%s' (usage: runvm " USAGE ")",
					argv[optind - 1]);
	}
	/* runc passes anything after the id to ps(1); there is no ps(1) here. */
	if (optind >= argc)
		return rv_failx(err, EINVAL, "ps: give the container id (usage: runvm " USAGE ")");
	if (argc - optind > 1)
		return rv_failx(err, ENOTSUP, "ps: options for ps(1) ('%s') are not supported: the "
				"processes are in a VM", argv[optind + 1]);
	*id = argv[optind];
	return 0;
}

/* "[[MM:]HH:]MM:SS" of CPU time as ps prints TIME. */
static void format_time(char *buf, size_t size, uint64_t ticks, uint64_t hz)
{
	uint64_t s = hz ? ticks / hz : 0;
	snprintf(buf, size, "%02llu:%02llu:%02llu", (unsigned long long)(s / 3600),
		 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

static int print_proc(const struct json_val *p, bool json, bool first, uint64_t hz,
		      struct rv_err *err)
{
	int64_t pid, ppid, uid;
	uint64_t ut, st;
	const char *cmd, *state;
	char tm[32];

	if (json_get_int64(p, "pid", JSON_REQUIRED, 0, INT32_MAX, &pid, err) < 0 ||
	    json_get_int64(p, "ppid", JSON_REQUIRED, 0, INT32_MAX, &ppid, err) < 0 ||
	    json_get_int64(p, "uid", JSON_REQUIRED, 0, UINT32_MAX, &uid, err) < 0 ||
	    json_get_uint64(p, "utime", JSON_REQUIRED, UINT64_MAX, &ut, err) < 0 ||
	    json_get_uint64(p, "stime", JSON_REQUIRED, UINT64_MAX, &st, err) < 0 ||
	    json_get_string(p, "state", JSON_REQUIRED, &state, err) < 0 ||
	    json_get_string(p, "cmd", JSON_REQUIRED, &cmd, err) < 0)
		return -1;
	if (json) {
		printf("%s%lld", first ? "" : ",", (long long)pid);
		return 0;
	}
	format_time(tm, sizeof(tm), ut + st, hz);
	printf("%-8lld %7lld %7lld  0 -        ?        %s %s\n", (long long)uid, (long long)pid,
	       (long long)ppid, tm, cmd);
	return 0;
}

static int print_ps(const char *reply, bool json, struct rv_err *err)
{
	struct json_doc *doc = json_parse(reply, strlen(reply), err);
	const struct json_val *procs;
	uint64_t hz = 100;
	int rc = -1;

	if (!doc)
		return rv_wrap(err, "the VMM's process list");
	const struct json_val *root = json_root(doc);
	if (json_get_uint64(root, "clk_tck", JSON_OPTIONAL, 1000000, &hz, err) >= 0 &&
	    json_get(root, "procs", JSON_ARRAY, JSON_REQUIRED, &procs, err) > 0) {
		printf(json ? "[" : "UID          PID    PPID  C STIME    TTY      TIME     CMD\n");
		rc = 0;
		for (size_t i = 0; rc == 0 && i < json_len(procs); i++)
			rc = print_proc(json_item(procs, i), json, i == 0, hz, err);
		if (json)
			printf("]\n");
	}
	json_free(doc);
	return rc;
}

int cmd_ps(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct container c;
	bool json = false;
	const char *id = NULL;
	char *reply = malloc(CONTROL_REPLY_MAX_BYTES);

	if (!reply)
		return rv_fail(err, ENOMEM, "ps");
	int rc = parse(argc, argv, &json, &id, err);
	if (rc == 0 && (rc = container_open(cli, id, &c, err)) == 0) {
		rc = container_call(&c, "ps", reply, CONTROL_REPLY_MAX_BYTES, err);
		container_close(&c);
		if (rc == 0)
			rc = print_ps(reply, json, err);
		if (rc < 0)
			rv_wrap(err, "ps %.64s", id);
	}
	free(reply);
	return rc;
}
