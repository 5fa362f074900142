/* The part of `runvm do` that stays outside the VMM's jail. Forked before
 * the jail, it undoes what the jailed process cannot: the network of --ip
 * (do_net_down runs iptables), and the terminal should `runvm do` die
 * with it raw. It does that work when told, or when `runvm do` dies, even of
 * SIGKILL: the end of its socket is the signal. */
#ifndef RV_DO_KEEPER_H
#define RV_DO_KEEPER_H

#include <stdbool.h>
#include <sys/types.h>
#include <termios.h>

#include "common/err.h"
#include "runtime/do_net.h"

struct do_keeper {
	pid_t pid;      /* 0: none */
	int fd;         /* our end of its socket */
};

/* net: undone by the keeper from here on (this process must not undo it as
 * well); tty: the terminal's settings to restore if we die, or NULL. */
int do_keeper_start(struct do_keeper *k, struct do_net *net, const struct termios *tty,
		    struct rv_err *err);

/* The terminal is ours again: the keeper undoes the network and ends; this
 * waits for it, so that nothing is left once `runvm do` has returned. */
void do_keeper_finish(struct do_keeper *k);

#endif
