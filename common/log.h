/* Runtime log, shaped like runc's (--log FILE, --log-format text|json, --debug):
 * containerd's shim reads the last JSON record's "msg" to report our errors. */
#ifndef RV_LOG_H
#define RV_LOG_H

#include <stdbool.h>

#include "common/err.h"

enum rv_log_level { RV_LOG_DEBUG, RV_LOG_INFO, RV_LOG_WARN, RV_LOG_ERROR };
enum rv_log_format { RV_LOG_TEXT, RV_LOG_JSON };

struct rv_log {
	int fd;                       /* stderr unless --log names a file */
	bool owns_fd;
	enum rv_log_format format;
	enum rv_log_level min_level;
};

int rv_log_parse_format(const char *name, enum rv_log_format *out, struct rv_err *err);

/* path NULL logs to stderr. Files are opened for append so that the CLI, the VMM
 * and the shim can share one log. */
int rv_log_open(struct rv_log *log, const char *path, enum rv_log_format format,
		bool debug, struct rv_err *err);
void rv_log_close(struct rv_log *log);

bool rv_log_to_stderr(const struct rv_log *log);

/* One record per call, written with a single write() so writers never interleave.
 * A NULL log discards (devices under unit test have none). */
void rv_logf(const struct rv_log *log, enum rv_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
