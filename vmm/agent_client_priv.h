/* Inside the host side of the agent protocol: what agent_client.c shares
 * with the calls kept in files of their own (agent_reseed.c). Not for other
 * modules. */
#ifndef RV_AGENT_CLIENT_PRIV_H
#define RV_AGENT_CLIENT_PRIV_H

#include "common/err.h"
#include "common/proto.h"
#include "vmm/agent_client.h"

/* Request ids, one per kind: the agent echoes them in its replies. */
enum { REQ_EXEC = 1, REQ_START, REQ_SIGNAL, REQ_SHUTDOWN, REQ_ATTACH, REQ_MOUNT, REQ_SIGNAL_ALL,
       REQ_PS, REQ_STATS, REQ_RESIZE, REQ_MKNOD, REQ_NETCONF, REQ_RESEED };

/* req on a fresh connection (c's dial, then HELLO), and its reply, which
 * must be of type want (the caller frees it with proto_msg_free). An ERROR
 * reply is err, in the guest's words; a reply that does not come within
 * AGENT_QUERY_TIMEOUT_MS is ETIMEDOUT. */
int agent_query(const struct agent_client *c, const struct proto_msg *req, enum proto_type want,
		struct proto_msg *reply, struct rv_err *err);

#endif
