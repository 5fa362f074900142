#include "runtime/signals.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const struct {
	const char *name;
	int sig;
} names[] = {
	{ "HUP", SIGHUP }, { "INT", SIGINT }, { "QUIT", SIGQUIT }, { "ILL", SIGILL },
	{ "TRAP", SIGTRAP }, { "ABRT", SIGABRT }, { "IOT", SIGIOT }, { "BUS", SIGBUS },
	{ "FPE", SIGFPE }, { "KILL", SIGKILL }, { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },
	{ "USR2", SIGUSR2 }, { "PIPE", SIGPIPE }, { "ALRM", SIGALRM }, { "TERM", SIGTERM },
	{ "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CLD", SIGCHLD }, { "CONT", SIGCONT },
	{ "STOP", SIGSTOP }, { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN }, { "TTOU", SIGTTOU },
	{ "URG", SIGURG }, { "XCPU", SIGXCPU }, { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM },
	{ "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO }, { "POLL", SIGPOLL },
	{ "PWR", SIGPWR }, { "SYS", SIGSYS },
};

/* The guest kernel's numbering: RTMIN is 34 there, whatever our libc reserves. */
#define GUEST_SIGRTMIN 34
#define GUEST_SIGRTMAX 64

static int parse_number(const char *s, int *out)
{
	char *end;
	long v = strtol(s, &end, 10);

	if (end == s || *end || v < 0 || v > 1000)
		return -1;
	*out = (int)v;
	return 0;
}

static int parse_rt(const char *s, int *sig)
{
	int off = 0;

	if (!strncasecmp(s, "RTMIN", 5)) {
		if (s[5] && (s[5] != '+' || parse_number(s + 6, &off) < 0))
			return -1;
		*sig = GUEST_SIGRTMIN + off;
	} else if (!strncasecmp(s, "RTMAX", 5)) {
		if (s[5] && (s[5] != '-' || parse_number(s + 6, &off) < 0))
			return -1;
		*sig = GUEST_SIGRTMAX - off;
	} else {
		return -1;
	}
	return *sig >= GUEST_SIGRTMIN && *sig <= GUEST_SIGRTMAX ? 0 : -1;
}

int signal_parse(const char *s, int *sig, struct rv_err *err)
{
	const char *name = !strncasecmp(s, "SIG", 3) ? s + 3 : s;

	if (parse_number(s, sig) == 0) {
		if (*sig >= 1 && *sig <= GUEST_SIGRTMAX)
			return 0;
		return rv_failx(err, EINVAL, "signal %s: give a number from 1 to %d or a name",
				s, GUEST_SIGRTMAX);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (!strcasecmp(name, names[i].name)) {
			*sig = names[i].sig;
			return 0;
		}
	}
	if (parse_rt(name, sig) == 0)
		return 0;
	return rv_failx(err, EINVAL, "unknown signal '%s' (give a name such as TERM or KILL, or a "
			"number)", s);
}
