/* RESEED (common/proto.h): a clone of a saved VM wakes up with the CRNG
 * state and the wall clock of the moment the image was taken, the same in
 * every clone. The host's seed, credited in full, and an immediate reseed
 * make the clones' random numbers their own from here on; the host's clock
 * makes their time right. The reply says which vsock CID the guest's kernel
 * has. */
#include <errno.h>
#include <fcntl.h>
#include <linux/random.h>
#include <linux/vm_sockets.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "guest/agent/agent.h"

#define NS_PER_S 1000000000ull

_Static_assert(PROTO_RESEED_SEED_BYTES % sizeof(__u32) == 0, "the pool takes whole u32s");

/* The seed into the guest's input pool, then a CRNG reseed: without it the
 * kernel would take the new entropy only at its next scheduled reseed, and
 * the clones would hand out the template's stream until then. */
static int add_seed(const uint8_t seed[PROTO_RESEED_SEED_BYTES], struct rv_err *err)
{
	/* rand_pool_info ends in a flexible array: its room, on the stack. */
	union {
		struct rand_pool_info info;
		uint8_t bytes[sizeof(struct rand_pool_info) + PROTO_RESEED_SEED_BYTES];
	} pool;
	int rc = 0;
	_cleanup_close_ int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return rv_fail(err, errno, "open /dev/urandom");
	/* Credited in full (the host's getrandom() bytes): that also readies a
	 * CRNG not initialised yet, which RNDRESEEDCRNG needs (else ENODATA). */
	pool.info.entropy_count = 8 * PROTO_RESEED_SEED_BYTES;   /* bits */
	pool.info.buf_size = PROTO_RESEED_SEED_BYTES;
	memcpy(pool.info.buf, seed, PROTO_RESEED_SEED_BYTES);
	if (ioctl(fd, RNDADDENTROPY, &pool.info) < 0)
		rc = rv_fail(err, errno, "ioctl RNDADDENTROPY on /dev/urandom");
	else if (ioctl(fd, RNDRESEEDCRNG) < 0)
		rc = rv_fail(err, errno, "ioctl RNDRESEEDCRNG on /dev/urandom");
	explicit_bzero(&pool, sizeof(pool));
	return rc;
}

static int set_clock(uint64_t realtime_ns, struct rv_err *err)
{
	struct timespec ts = { .tv_sec = (time_t)(realtime_ns / NS_PER_S),
			       .tv_nsec = (long)(realtime_ns % NS_PER_S) };

	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		return rv_fail(err, errno, "clock_settime(CLOCK_REALTIME, %llu ns)",
			       (unsigned long long)realtime_ns);
	return 0;
}

/* 0 with no vsock device: the guest has no CID then. */
static int local_cid(uint32_t *cid, struct rv_err *err)
{
	unsigned int v = 0;
	_cleanup_close_ int fd = open("/dev/vsock", O_RDONLY | O_CLOEXEC);

	*cid = 0;
	if (fd < 0)
		return 0;
	if (ioctl(fd, IOCTL_VM_SOCKETS_GET_LOCAL_CID, &v) < 0)
		return rv_fail(err, errno, "ioctl IOCTL_VM_SOCKETS_GET_LOCAL_CID on /dev/vsock");
	*cid = v;
	return 0;
}

static int apply(const struct proto_reseed *x, uint32_t *cid, struct rv_err *err)
{
	if (add_seed(x->seed, err) < 0)
		return -1;
	if (x->realtime_ns && set_clock(x->realtime_ns, err) < 0)
		return -1;
	return local_cid(cid, err);
}

void reseed_on_reseed(const struct agent *a, struct conn *c, const struct proto_msg *m)
{
	struct proto_msg reply = { .type = PROTO_RESEED_REPLY, .id = m->id };
	struct rv_err err = { 0 };
	/* On the host (--unix) the RNG, the clock and /dev/vsock are the host's. */
	int rc = a->guest ? apply(&m->reseed, &reply.reseed_reply.cid, &err) : 0;

	if (rc < 0) {
		conn_reply_error(c, m->id, err.code, "%s", err.msg);   /* names the call */
		return;
	}
	conn_send(c, &reply);
}
