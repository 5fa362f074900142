/* runvm list [--format table|json] [-q]: the containers under --root, as
 * runc lists them. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/cli.h"
#include "runtime/container.h"

#define USAGE "list [--format table|json] [--quiet]"
#define NCOLS 6

struct row {
	char *cell[NCOLS];
};

/* Go's text/tabwriter as runc sets it up (minwidth 12, padding 3): every
 * column but the last is as wide as its widest cell plus 3, at least 12. */
static void print_table(struct row *rows, size_t n)
{
	size_t width[NCOLS] = { 12, 12, 12, 12, 12, 12 };

	for (size_t r = 0; r < n; r++)
		for (int c = 0; c < NCOLS - 1; c++) {
			size_t w = strlen(rows[r].cell[c]) + 3;
			if (w > width[c])
				width[c] = w;
		}
	for (size_t r = 0; r < n; r++) {
		for (int c = 0; c < NCOLS - 1; c++)
			printf("%-*s", (int)width[c], rows[r].cell[c]);
		printf("%s\n", rows[r].cell[NCOLS - 1]);
	}
}

static int add_row(struct row *row, const struct container *c, const char *status)
{
	bool stopped = !strcmp(status, "stopped");

	return (asprintf(&row->cell[0], "%s", c->id) < 0 ||
		asprintf(&row->cell[1], "%d", stopped ? 0 : (int)c->st.pid) < 0 ||
		asprintf(&row->cell[2], "%s", status) < 0 ||
		asprintf(&row->cell[3], "%s", c->st.bundle) < 0 ||
		asprintf(&row->cell[4], "%s", c->st.created) < 0 ||
		asprintf(&row->cell[5], "%s", c->st.owner ? c->st.owner : "") < 0) ? -1 : 0;
}

static int parse(int argc, char **argv, bool *json, bool *quiet, struct rv_err *err)
{
	static const struct option opts[] = { { "format", required_argument, NULL, 'f' },
					      { "quiet", no_argument, NULL, 'q' }, { 0 } };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "+f:q", opts, NULL)) != -1) {
		if (c == 'q')
			*quiet = true;
		else if (c == 'f' && (!strcmp(optarg, "json") || !strcmp(optarg, "table")))
			*json = optarg[0] == 'j';
		else if (c == 'f')
			return rv_failx(err, EINVAL, "list --format '%s': give table or json", optarg);
		else
			return rv_failx(err, EINVAL, "list: unknown flag '%s' (usage: runvm " USAGE ")",
					argv[optind - 1]);
	}
	if (optind != argc)
		return rv_failx(err, EINVAL, "list takes no arguments (usage: runvm " USAGE ")");
	return 0;
}

/* One container in the chosen format; one that vanished meanwhile is skipped. */
static void list_one(const struct cli *cli, const char *id, bool json, bool quiet, bool *first,
		     struct row *row)
{
	struct container c;
	struct rv_err err;

	if (container_peek(cli, id, &c, &err) < 0)
		return;
	const char *status = container_status(&c);
	if (quiet) {
		printf("%s\n", id);
	} else if (json) {
		char *entry = state_list_json_entry(&c.st, status);
		if (entry)
			printf("%s%s", *first ? "[" : ",", entry);
		*first = !entry && *first;
		free(entry);
	} else {
		add_row(row, &c, status);
	}
	container_close(&c);
}

int cmd_list(struct cli *cli, int argc, char **argv, struct rv_err *err)
{
	bool json = false, quiet = false, first = true;
	char **ids;
	size_t n;

	if (parse(argc, argv, &json, &quiet, err) < 0 || state_list(cli->root, &ids, &n, err) < 0)
		return -1;
	struct row *rows = calloc(n + 1, sizeof(*rows));
	if (!rows) {
		state_list_free(ids, n);
		return rv_fail(err, ENOMEM, "list");
	}
	rows[0] = (struct row){ { "ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER" } };
	for (size_t i = 0; i < n; i++)
		list_one(cli, ids[i], json, quiet, &first, &rows[i + 1]);
	size_t nrows = 1;
	for (size_t i = 1; i <= n; i++)
		if (rows[i].cell[5])
			rows[nrows++] = rows[i];
	if (json)
		printf("%s\n", first ? "null" : "]");
	else if (!quiet)
		print_table(rows, nrows);
	for (size_t i = 1; i < nrows; i++)
		for (int c = 0; c < NCOLS; c++)
			free(rows[i].cell[c]);
	free(rows);
	state_list_free(ids, n);
	return 0;
}
