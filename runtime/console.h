/* A container's terminal, as runc hands it out (DESIGN §6): a host pty whose
 * master goes to the client's --console-socket (SCM_RIGHTS), or stays with
 * `runvm run` in the foreground (console_relay.h), and whose slave the VMM
 * relays to the process's pty in the guest. */
#ifndef RV_CONSOLE_H
#define RV_CONSOLE_H

#include <stdbool.h>
#include <termios.h>

#include "common/err.h"

/* Makes the pty (rows x cols when both are given), its slave raw (the
 * guest's pty does the line discipline): the master in *master, the slave
 * in *slave, both O_CLOEXEC. */
int console_make(unsigned rows, unsigned cols, int *master, int *slave, struct rv_err *err);

/* console_make, then sends the master to the Unix socket at socket_path
 * (and closes ours); the slave comes back in *slave. */
int console_open(const char *socket_path, unsigned rows, unsigned cols, int *slave,
		 struct rv_err *err);

/* The user's own terminal while a container's stands in for it (exec --tty
 * and run without a console socket, as runc does it): raw, so that every
 * key, ^C too, goes to the container's terminal as a byte. */
struct console_raw {
	int fd;                        /* -1: nothing to give back */
	struct termios saved;
};

/* Puts the terminal fd in raw mode, keeping how it was in *r; false (and
 * r->fd -1) when fd is no terminal. console_raw_end gives it back. */
bool console_raw_begin(struct console_raw *r, int fd);
void console_raw_end(struct console_raw *r);

#endif
