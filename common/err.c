#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Keep what fits: a truncated message is still better than a lost one. */
static void append(char *buf, size_t size, size_t *used, const char *fmt, va_list ap)
{
	if (*used >= size - 1)
		return;
	int n = vsnprintf(buf + *used, size - *used, fmt, ap);
	if (n > 0)
		*used += (size_t)n < size - *used ? (size_t)n : size - *used - 1;
}

static void appendf(char *buf, size_t size, size_t *used, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	append(buf, size, used, fmt, ap);
	va_end(ap);
}

static size_t set_msg(struct rv_err *e, int code, const char *fmt, va_list ap)
{
	size_t used = 0;

	e->code = code;
	e->msg[0] = '\0';
	append(e->msg, sizeof(e->msg), &used, fmt, ap);
	return used;
}

int rv_fail(struct rv_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	size_t used = set_msg(e, code, fmt, ap);
	va_end(ap);
	if (code > 0)
		appendf(e->msg, sizeof(e->msg), &used, ": %s", strerror(code));
	return -1;
}

int rv_failx(struct rv_err *e, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	set_msg(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

int rv_wrap(struct rv_err *e, const char *fmt, ...)
{
	char prev[sizeof(e->msg)];
	size_t used = 0;
	va_list ap;

	memcpy(prev, e->msg, sizeof(prev));
	e->msg[0] = '\0';
	va_start(ap, fmt);
	append(e->msg, sizeof(e->msg), &used, fmt, ap);
	va_end(ap);
	appendf(e->msg, sizeof(e->msg), &used, ": %s", prev);
	return -1;
}

void rv_err_clear(struct rv_err *e)
{
	e->code = 0;
	e->msg[0] = '\0';
}
