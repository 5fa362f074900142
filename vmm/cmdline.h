/* The guest kernel command line: our base options, device announcements and the
 * user's own, joined and checked against the boot protocol's size limit. */
#ifndef RV_CMDLINE_H
#define RV_CMDLINE_H

#include <stddef.h>

#include "common/err.h"

struct cmdline {
	char buf[4096];
	size_t len;
	size_t limit;       /* bytes the kernel accepts, without the NUL */
};

void cmdline_init(struct cmdline *c, size_t limit);

/* Append one or more space-separated options. Fails, naming the option, when
 * the result would not fit or an option holds a NUL-unsafe or newline byte. */
int cmdline_add(struct cmdline *c, const char *opts, struct rv_err *err);
int cmdline_addf(struct cmdline *c, struct rv_err *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
