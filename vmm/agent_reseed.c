/* RESEED from the host (vmm/agent_client.h): fresh entropy and the wall
 * clock for a clone of a saved VM, and the guest's own view of its CID. */
#include <string.h>

#include "common/proto.h"
#include "vmm/agent_client.h"
#include "vmm/agent_client_priv.h"

int agent_reseed(const struct agent_client *c, const uint8_t seed[PROTO_RESEED_SEED_BYTES],
		 uint64_t realtime_ns, uint32_t *guest_cid, struct rv_err *err)
{
	struct proto_msg m = { .type = PROTO_RESEED, .id = REQ_RESEED }, reply;

	memcpy(m.reseed.seed, seed, PROTO_RESEED_SEED_BYTES);
	m.reseed.realtime_ns = realtime_ns;
	int rc = agent_query(c, &m, PROTO_RESEED_REPLY, &reply, err);
	/* Our copy goes; the caller's is the caller's to wipe. */
	explicit_bzero(m.reseed.seed, sizeof(m.reseed.seed));
	if (rc < 0)
		return rv_wrap(err, "reseed the guest");
	*guest_cid = reply.reseed_reply.cid;
	proto_msg_free(&reply);
	return 0;
}
