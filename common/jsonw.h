/* The few JSON output helpers the CLI and the log need. Parsing lives in runtime/. */
#ifndef RV_JSONW_H
#define RV_JSONW_H

#include <stddef.h>

/* Write s as a quoted JSON string into buf; returns the length it needs (like
 * snprintf), so a result >= size means it was truncated (still NUL-terminated). */
size_t jsonw_quote(char *buf, size_t size, const char *s);

#endif
