#include "vmm/cmdline.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cmdline_init(struct cmdline *c, size_t limit)
{
	c->buf[0] = '\0';
	c->len = 0;
	c->limit = limit < sizeof(c->buf) - 1 ? limit : sizeof(c->buf) - 1;
}

int cmdline_add(struct cmdline *c, const char *opts, struct rv_err *err)
{
	size_t len = strlen(opts);

	if (len == 0)
		return 0;
	if (strpbrk(opts, "\n\r"))
		return rv_failx(err, EINVAL, "kernel command line option '%s' holds a newline", opts);
	size_t need = c->len + (c->len ? 1 : 0) + len;
	if (need > c->limit)
		return rv_failx(err, E2BIG, "kernel command line too long: adding '%.64s' makes "
				"%zu bytes, the kernel takes %zu", opts, need, c->limit);
	if (c->len)
		c->buf[c->len++] = ' ';
	memcpy(c->buf + c->len, opts, len + 1);
	c->len += len;
	return 0;
}

int cmdline_addf(struct cmdline *c, struct rv_err *err, const char *fmt, ...)
{
	char opt[1024];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(opt, sizeof(opt), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(opt))
		return rv_failx(err, E2BIG, "kernel command line option too long");
	return cmdline_add(c, opt, err);
}
