#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/jsonw.h"

#define LOG_RECORD_BYTES 4096

static const char *level_name(enum rv_log_level level)
{
	static const char *const names[] = { "debug", "info", "warning", "error" };
	return names[level];
}

int rv_log_parse_format(const char *name, enum rv_log_format *out, struct rv_err *err)
{
	if (strcmp(name, "text") == 0)
		*out = RV_LOG_TEXT;
	else if (strcmp(name, "json") == 0)
		*out = RV_LOG_JSON;
	else
		return rv_failx(err, EINVAL, "--log-format '%s': use text or json", name);
	return 0;
}

int rv_log_open(struct rv_log *log, const char *path, enum rv_log_format format,
		bool debug, struct rv_err *err)
{
	log->fd = STDERR_FILENO;
	log->owns_fd = false;
	log->format = format;
	log->min_level = debug ? RV_LOG_DEBUG : RV_LOG_INFO;
	if (!path || !*path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return rv_fail(err, errno, "open log file %s (--log)", path);
	log->fd = fd;
	log->owns_fd = true;
	return 0;
}

void rv_log_close(struct rv_log *log)
{
	if (log->owns_fd)
		close(log->fd);
	log->fd = STDERR_FILENO;
	log->owns_fd = false;
}

bool rv_log_to_stderr(const struct rv_log *log)
{
	return !log->owns_fd;
}

static void format_time(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, size - n, ".%09ldZ", ts.tv_nsec);
}

void rv_logf(const struct rv_log *log, enum rv_log_level level, const char *fmt, ...)
{
	char msg[LOG_RECORD_BYTES / 2], qmsg[LOG_RECORD_BYTES], when[48];
	char record[LOG_RECORD_BYTES + 128];
	va_list ap;
	int n;

	if (!log || level < log->min_level)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_time(when, sizeof(when));
	jsonw_quote(qmsg, sizeof(qmsg), msg);
	if (log->format == RV_LOG_JSON)
		n = snprintf(record, sizeof(record), "{\"level\":\"%s\",\"msg\":%s,\"time\":\"%s\"}\n",
			     level_name(level), qmsg, when);
	else
		n = snprintf(record, sizeof(record), "time=\"%s\" level=%s msg=%s\n",
			     when, level_name(level), qmsg);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(record)) {
		n = sizeof(record) - 1;
		record[n - 1] = '\n';
	}
	/* A log that cannot be written has nowhere to report that; the caller's
	 * error still reaches stderr through main. */
	ssize_t w = write(log->fd, record, (size_t)n);
	(void)w;
}
