/* Signal names as `runc kill` takes them. */
#ifndef RV_SIGNALS_H
#define RV_SIGNALS_H

#include "common/err.h"

/* "TERM", "SIGTERM", "sigterm", "15", "RTMIN+3": the number; an unknown name
 * is an error naming it. */
int signal_parse(const char *s, int *sig, struct rv_err *err);

#endif
