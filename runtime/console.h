/* A container's terminal, as runc hands it out (DESIGN §6): a host pty whose
 * master goes to the client's --console-socket (SCM_RIGHTS) and whose slave
 * the VMM relays to the process's pty in the guest. */
#ifndef RV_CONSOLE_H
#define RV_CONSOLE_H

#include "common/err.h"

/* Makes the pty (rows x cols when both are given), sends its master to the
 * Unix socket at socket_path and returns the slave in *slave (O_CLOEXEC). */
int console_open(const char *socket_path, unsigned rows, unsigned cols, int *slave,
		 struct rv_err *err);

#endif
