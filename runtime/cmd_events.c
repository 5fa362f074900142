/* runvm events [--stats] [--interval Ns] ID: the container's stats as runc's
 * events stream them, one JSON object per line ({"type":"stats","id":...,
 * "data":{cpu, memory, pids}}); --stats prints one and exits. The stream ends
 * when the container stops. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/ctl.h"
#include "common/jsonw.h"
#include "runtime/cli.h"
#include "runtime/container.h"
#include "vmm/control.h"

#define USAGE "events [--stats] [--interval Ns] ID"

/* Go's duration syntax as runc's clients pass it: "5s", "500ms", "1m", "2". */
static int parse_interval(const char *s, double *secs, struct rv_err *err)
{
	char *end;
	double v = strtod(s, &end);
	double unit = !*end || !strcmp(end, "s") ? 1 : !strcmp(end, "ms") ? 0.001 :
		      !strcmp(end, "m") ? 60 : -1;

	if (end == s || unit < 0 || v <= 0 || v * unit > 86400)
		return rv_failx(err, EINVAL, "events --interval '%s': give a duration such as 5s",
				s);
	*secs = v * unit;
	return 0;
}

static int parse(int argc, char **argv, bool *once, double *secs, const char **id,
		 struct rv_err *err)
{
	static const struct option opts[] = { { "stats", no_argument, NULL, 's' },
					      { "interval", required_argument, NULL, 'i' }, { 0 } };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
		if (c == 's')
			*once = true;
		else if (c == 'i') {
			if (parse_interval(optarg, secs, err) < 0)
				return -1;
		} else
			return rv_failx(err, EINVAL, "events: unknown flag '%s' (usage: runvm " USAGE ")",
					argv[optind - 1]);
	}
	if (argc - optind != 1)
		return rv_failx(err, EINVAL, "events: give one container id (usage: runvm " USAGE ")");
	*id = argv[optind];
	return 0;
}

static void sleep_secs(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - (time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int cmd_events(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	struct container c;
	bool once = false;
	double secs = 5;
	const char *id = NULL;
	char quoted[2 * STATE_ID_MAX + 8];

	if (parse(argc, argv, &once, &secs, &id, err) < 0 || container_open(cli, id, &c, err) < 0)
		return -1;
	close(c.lockfd);     /* a stream must not hold the container's lock */
	c.lockfd = -1;
	char *reply = malloc(CONTROL_REPLY_MAX_BYTES);
	int rc = reply ? 0 : rv_fail(err, ENOMEM, "events");
	jsonw_quote(quoted, sizeof(quoted), id);
	for (bool first = true; rc == 0; first = false) {
		if (container_call(&c, "stats", reply, CONTROL_REPLY_MAX_BYTES, err) < 0) {
			/* A stream ends quietly when the container does. */
			rc = first || once ? -1 : 0;
			break;
		}
		printf("{\"type\":\"stats\",\"id\":%s,\"data\":%s}\n", quoted, reply);
		fflush(stdout);
		if (once)
			break;
		sleep_secs(secs);
	}
	free(reply);
	container_close(&c);
	return rc < 0 ? rv_wrap(err, "events %.64s", id) : 0;
}
