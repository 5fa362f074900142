/* The client's side of a sandbox's control socket (vmm/control.h): one request,
 * one reply. The CLI's verbs use it, and a pod's member container to reach
 * the pod's VMM. */
#ifndef RV_CTL_H
#define RV_CTL_H

#include <stddef.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>

#include "common/err.h"

/* Sends req to the VMM listening at path and reads its reply: 0 for "ok"
 * (reply gets the payload, maybe ""), -1 with err: the VMM's own error, or
 * ECONNREFUSED / ENOENT when no VMM listens there any more. */
int ctl_call(const char *path, const char *req, char *reply, size_t size, struct rv_err *err);

/* One request on a connection from ctl_dial, as ctl_call: send_fd >= 0
 * goes with it (SCM_RIGHTS); recv_fd, when not NULL, gets the fd that came
 * with an "ok" reply (-1: none; without recv_fd it is closed). */
int ctl_request(int sock, const char *req, int send_fd, char *reply, size_t size, int *recv_fd,
		struct rv_err *err);

/* A connection to the VMM at path (SOCK_SEQPACKET, O_CLOEXEC), for a
 * conversation longer than one request (exec). */
int ctl_dial(const char *path, struct rv_err *err);
/* sa for a unix socket at path. A path longer than sun_path (engines' state
 * dirs under long roots, a 64-digit id) is reached through its directory:
 * *dirfd is opened (O_PATH) and sa names "/proc/self/fd/N/NAME"; close it
 * after bind or connect. *dirfd is -1 when the path fit. */
int ctl_sockaddr(const char *path, struct sockaddr_un *sa, int *dirfd, struct rv_err *err);
/* One packet of n segments, with fd when fd >= 0 (SCM_RIGHTS): a request
 * of ctl_request's, a reply of the VMM's (vmm/control.c). */
ssize_t ctl_sendv_fd(int sock, const struct iovec *iov, size_t n, int fd);

/* Turns a reply "error ERRNO MESSAGE" into err; returns -1. */
int ctl_vmm_error(const char *reply, struct rv_err *err);

#endif
