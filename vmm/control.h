/* The VMM's control socket (DESIGN §1): short-lived `runvm` CLI calls
 * (start, kill, pause, state, wait, ps, events) reach the VMM of their
 * sandbox here. A Unix SOCK_SEQPACKET socket that `create` made in the state
 * dir and handed over as --controller-fd: one request per packet, one reply
 * per request.
 *
 * Requests are text: a verb and its arguments, "kill 15". Replies start with
 * "ok" (a payload may follow after one space) or "error ERRNO MESSAGE". */
#ifndef RV_CONTROL_H
#define RV_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/err.h"

#define CONTROL_REQ_MAX_BYTES 512u
#define CONTROL_REPLY_MAX_BYTES (128u * 1024)
#define CONTROL_MAX_CONNS 64u
#define CONTROL_MAX_FDS 3u             /* fds one request may carry (exec's stdio) */

/* One request as its handler sees it. Most verbs need only the text; exec
 * takes the caller's stdio fds that came with it (SCM_RIGHTS), reads its
 * process as a second packet and tells the caller of progress before its
 * final reply. */
struct control_call {
	int fd;                          /* the connection */
	int fds[CONTROL_MAX_FDS];        /* -1 when absent; a handler that keeps one
					  * sets its slot to -1, the rest are closed */
	unsigned nfds;
	int reply_fd;                    /* -1; a handler may set an fd it owns: it goes
					  * with an "ok" reply (SCM_RIGHTS) and is closed */
};

/* Answers one request (NUL-terminated, already length-checked) into reply
 * (size bytes, NUL-terminated): 0 for ok (reply holds the payload, maybe
 * empty), -1 with err for an error. Called on a thread per connection, so a
 * handler may block (wait does, until the container exits). */
typedef int (*control_handler_fn)(void *arg, struct control_call *call, const char *req,
				  char *reply, size_t size, struct rv_err *err);

/* The next packet of the call's connection into buf: its length (a packet
 * longer than size is an error, EMSGSIZE), or -1 with err. */
long control_recv(struct control_call *call, void *buf, size_t size, struct rv_err *err);

/* A packet before the final reply ("started 7 42"). */
int control_send(struct control_call *call, const char *text, struct rv_err *err);

/* A connection has ended (its caller hung up, or the server stops): told
 * on its thread after its last request, before fd is closed, so that what
 * a caller set up for the life of its connection can go with it. */
typedef void (*control_closed_fn)(void *arg, int fd);

struct control_server;

/* Serves listen_fd (owned from now on) on a thread of its own; closed may
 * be NULL. */
int control_server_start(int listen_fd, control_handler_fn fn, control_closed_fn closed,
			 void *arg, struct control_server **out, struct rv_err *err);

/* Stops accepting, ends every connection and returns once no handler runs.
 * A handler that blocks must have been woken by its owner first. NULL: no-op. */
void control_server_stop(struct control_server *s);

/* Who may call: root and the VMM's own user (SO_PEERCRED). */
bool control_peer_allowed(uid_t peer, uid_t owner);

/* The client is runtime/ctl.h. */

#endif
