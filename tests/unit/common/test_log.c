#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static char path[] = "/tmp/runvm-test-log.XXXXXX";

static void make_path(void)
{
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	close(fd);
}

static void drop_path(void)
{
	unlink(path);
}

static char *slurp(void)
{
	static char buf[8192];
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

TestSuite(rv_log, .init = make_path, .fini = drop_path);

Test(rv_log, json_records_are_one_line_each_like_runc)
{
	struct rv_log log;
	struct rv_err err;

	cr_assert_eq(rv_log_open(&log, path, RV_LOG_JSON, false, &err), 0);
	rv_logf(&log, RV_LOG_ERROR, "container \"%s\" failed", "web-1");
	rv_logf(&log, RV_LOG_INFO, "second");
	rv_log_close(&log);
	char *out = slurp();
	const char *want = "{\"level\":\"error\",\"msg\":\"container \\\"web-1\\\" failed\",\"time\":\"";
	cr_assert(strncmp(out, want, strlen(want)) == 0, "got: %s", out);
	char *nl = strchr(out, '\n');
	cr_assert_not_null(nl);
	want = "{\"level\":\"info\",\"msg\":\"second\",\"time\":\"";
	cr_assert(strncmp(nl + 1, want, strlen(want)) == 0, "got: %s", nl + 1);
}

Test(rv_log, text_records_name_time_level_and_msg)
{
	struct rv_log log;
	struct rv_err err;

	cr_assert_eq(rv_log_open(&log, path, RV_LOG_TEXT, false, &err), 0);
	rv_logf(&log, RV_LOG_WARN, "low memory");
	rv_log_close(&log);
	char *out = slurp();
	cr_assert(strncmp(out, "time=\"", 6) == 0, "got: %s", out);
	cr_assert_not_null(strstr(out, " level=warning msg=\"low memory\"\n"), "got: %s", out);
}

Test(rv_log, debug_records_need_debug)
{
	struct rv_log log;
	struct rv_err err;

	rv_log_open(&log, path, RV_LOG_TEXT, false, &err);
	rv_logf(&log, RV_LOG_DEBUG, "hidden");
	rv_log_close(&log);
	rv_log_open(&log, path, RV_LOG_TEXT, true, &err);
	rv_logf(&log, RV_LOG_DEBUG, "shown");
	rv_log_close(&log);
	char *out = slurp();
	cr_assert_null(strstr(out, "hidden"));
	cr_assert_not_null(strstr(out, "shown"));
}

Test(rv_log, appends_to_an_existing_file)
{
	struct rv_log log;
	struct rv_err err;

	for (int i = 0; i < 2; i++) {
		rv_log_open(&log, path, RV_LOG_JSON, false, &err);
		rv_logf(&log, RV_LOG_INFO, "run %d", i);
		rv_log_close(&log);
	}
	char *out = slurp();
	cr_assert_not_null(strstr(out, "run 0"));
	cr_assert_not_null(strstr(out, "run 1"));
}

Test(rv_log, unopenable_file_names_the_flag)
{
	struct rv_log log;
	struct rv_err err;

	cr_assert_eq(rv_log_open(&log, "/nonexistent/dir/log", RV_LOG_TEXT, false, &err), -1);
	cr_assert_eq(err.code, ENOENT);
	cr_assert_not_null(strstr(err.msg, "/nonexistent/dir/log (--log)"), "got: %s", err.msg);
}

Test(rv_log, rejects_unknown_format)
{
	enum rv_log_format f;
	struct rv_err err;

	cr_assert_eq(rv_log_parse_format("json", &f, &err), 0);
	cr_assert_eq(f, RV_LOG_JSON);
	cr_assert_eq(rv_log_parse_format("yaml", &f, &err), -1);
	cr_assert_str_eq(err.msg, "--log-format 'yaml': use text or json");
}
