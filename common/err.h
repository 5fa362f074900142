/* Error object: an errno value plus a message that gains context on the way up.
 * Library code fills it and returns -1; only main prints it, once. */
#ifndef RV_ERR_H
#define RV_ERR_H

#define RV_ERR_MSG_BYTES 512

struct rv_err {
	int code;                    /* errno value; EINVAL for plain bad input */
	char msg[RV_ERR_MSG_BYTES];
};

/* Record a failure. When code > 0, ": strerror(code)" is appended. Returns -1. */
int rv_fail(struct rv_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The same without the strerror suffix: for bad input, where the message itself
 * says what is wrong and how to fix it. */
int rv_failx(struct rv_err *e, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the recorded message with "context: ". Returns -1. */
int rv_wrap(struct rv_err *e, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void rv_err_clear(struct rv_err *e);

#endif
