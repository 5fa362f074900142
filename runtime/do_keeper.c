#include "runtime/do_keeper.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/jail.h"

#define KEEPER_ALL_WELL 'k'

/* A session of its own, and the caller's signals (SIGINT, SIGTERM, SIGHUP,
 * …) still blocked: neither the terminal's Ctrl-C while the VM boots nor a
 * kill of `runvm do`'s process group ends it before its work (iptables gets
 * a mask of its own, do_net.c's spawn_wait). Only what that work needs is
 * kept open: an fd of runvm do's held here would keep whatever waits for its
 * end (the signal thread's pipe) waiting, and the tap would outlive the VM. */
static _Noreturn void keeper_main(int fd, struct do_net *net, const struct termios *tty)
{
	int keep[] = { fd, net->netns_fd, net->pod.nl.fd };
	struct rv_err err;
	char said = 0;
	ssize_t n;

	setsid();
	if (jail_close_fds(keep, sizeof(keep) / sizeof(keep[0]), &err) < 0)
		_exit(1);
	net->pod.tap_fd = -1;
	while ((n = read(fd, &said, 1)) < 0 && errno == EINTR)
		;
	if (tty && !(n == 1 && said == KEEPER_ALL_WELL))
		tcsetattr(STDIN_FILENO, TCSANOW, tty);
	do_net_down(net);
	_exit(0);
}

int do_keeper_start(struct do_keeper *k, struct do_net *net, const struct termios *tty,
		    struct rv_err *err)
{
	int p[2];

	k->pid = 0;
	k->fd = -1;
	/* A socket, not a pipe: a send to a keeper that is gone is an error
	 * (MSG_NOSIGNAL), not our SIGPIPE. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0)
		return rv_fail(err, errno, "do: a socket to the process that cleans up after the VM");
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return rv_fail(err, e, "do: fork the process that cleans up after the VM");
	}
	if (pid == 0) {
		close(p[1]);
		keeper_main(p[0], net, tty);
	}
	close(p[0]);
	k->pid = pid;
	k->fd = p[1];
	/* The keeper's from here: the VMM, jailed, needs neither. */
	if (net->netns_fd >= 0)
		close(net->netns_fd);
	net->netns_fd = -1;
	nl_close(&net->pod.nl);
	return 0;
}

void do_keeper_finish(struct do_keeper *k)
{
	char all_well = KEEPER_ALL_WELL;

	if (!k->pid)
		return;
	if (send(k->fd, &all_well, 1, MSG_NOSIGNAL) != 1) {
		/* It is gone: there is nothing to wait for but its status. */
	}
	close(k->fd);
	k->fd = -1;
	while (waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
		;
	k->pid = 0;
}
