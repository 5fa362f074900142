/* `runvm run` in the foreground with a terminal and no console socket, as
 * runc does it: we keep the console's master (console.h; the VMM relays its
 * slave to the guest's terminal) and stand between it and our own stdio:
 * stdin to the master, all the master shows to stdout, and our terminal's
 * size to the master on SIGWINCH (the VMM, whose terminal the slave is,
 * hears of it and resizes the guest's), until the VMM has exited and all
 * it wrote is out. */
#ifndef RV_CONSOLE_RELAY_H
#define RV_CONSOLE_RELAY_H

#include <sys/types.h>

#include "common/err.h"

#define CONSOLE_RELAY_BUF_BYTES 16384u   /* each way, one read's worth */

struct console_relay {
	int in_fd;                     /* copied to master until it ends (the terminal
					* then reads nothing more; it sees no EOF); -1: none */
	int out_fd;                    /* gets all master shows. When a write fails (its
					* reader is gone: the caller ignores SIGPIPE), master
					* is closed: the terminal hangs up, and what holds it
					* gets SIGHUP */
	int master;                    /* the console's master; console_relay makes it
					* nonblocking and closes it */
	int size_fd;                   /* a terminal whose size master takes, at the start
					* and on each SIGWINCH; -1: none */
	int sig_fd;                    /* a signalfd of SIGCHLD, SIGWINCH and the signals
					* for on_signal, blocked by the caller */
	pid_t child;                   /* the VMM, our child: relayed until it has exited */
	void (*on_signal)(void *arg, int sig);   /* each signal but SIGCHLD and SIGWINCH */
	void *arg;
};

/* Relays until child has exited and master has shown all it holds; *status
 * is child's wait status. -1 with err when child cannot be waited for or
 * poll fails (master is closed then too: the terminal hangs up). */
int console_relay(struct console_relay *r, int *status, struct rv_err *err);

#endif
