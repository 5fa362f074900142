/* The controller thread: waits for the agent to announce itself over vsock,
 * hands a dialler to cfg->controller, and turns its result into the end of
 * the VM (a graceful agent shutdown, or an error). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/proto.h"
#include "vmm/vm_priv.h"

#define HELLO_TIMEOUT_S 5
#define JOIN_KICK_MS 50u
#define DIAL_RETRY_MS 5000u

/* Runs with the vsock lock held: just hand the fd over. */
static void on_agent_ready(void *ctx, int fd)
{
	struct vm_agent *a = ctx;

	pthread_mutex_lock(&a->lock);
	if (a->ready_fd < 0) {
		a->ready_fd = fd;
		fd = -1;
	}
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
	if (fd >= 0)
		close(fd);    /* a second announcement: the first one counts */
}

static int dial_agent(void *ctx, struct rv_err *err)
{
	struct vm *vm = ctx;
	return vsock_connect(&vm->vsock, PROTO_AGENT_PORT, err);
}

/* Waits until `done` holds (returns 0), the VM stops or ms pass (ETIMEDOUT). */
static int wait_for(struct vm_agent *a, bool (*done)(const struct vm_agent *), unsigned ms)
{
	struct timespec until = rv_deadline_in(CLOCK_MONOTONIC, ms);
	int rc = 0;

	pthread_mutex_lock(&a->lock);
	while (!done(a) && !a->stopping && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&a->cond, &a->lock, &until);
	if (!done(a))
		rc = a->stopping ? ECANCELED : ETIMEDOUT;
	else
		rc = 0;
	pthread_mutex_unlock(&a->lock);
	return rc;
}

static bool is_ready(const struct vm_agent *a) { return a->ready_fd >= 0; }
static bool is_stopping(const struct vm_agent *a) { return a->stopping; }

static int check_hello(int fd, struct rv_err *err)
{
	struct timeval tv = { .tv_sec = HELLO_TIMEOUT_S };
	struct proto_msg m = { 0 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int rc = proto_recv(fd, &m, err);
	bool ok = rc == 0 && m.type == PROTO_HELLO && m.hello.version == PROTO_VERSION;
	if (rc == 1)
		rv_failx(err, EPROTO, "the announcement connection closed without a HELLO");
	else if (rc == 0 && !ok)
		rv_failx(err, EPROTO, "announced %s version %u; this VMM speaks version %u",
			 proto_type_name(m.type), m.type == PROTO_HELLO ? m.hello.version : 0, PROTO_VERSION);
	proto_msg_free(&m);
	return ok ? 0 : rv_wrap(err, "agent");
}

static int await_agent(struct vm *vm, struct rv_err *err)
{
	unsigned ms = vm->cfg->agent_timeout_ms ? vm->cfg->agent_timeout_ms : VM_AGENT_TIMEOUT_MS;
	int rc = wait_for(&vm->agent, is_ready, ms);

	if (rc == ETIMEDOUT) {
		vm_dump_devices(vm);    /* with --debug: what the guest's devices were doing */
		return rv_failx(err, ETIMEDOUT, "the agent did not come up within %u s of boot (is the "
				"initrd runvm's initramfs.img?)", ms / 1000);
	}
	if (rc)
		return rv_failx(err, rc, "the VM stopped before the agent came up");
	pthread_mutex_lock(&vm->agent.lock);
	int fd = vm->agent.ready_fd;
	vm->agent.ready_fd = -1;
	pthread_mutex_unlock(&vm->agent.lock);
	rc = check_hello(fd, err);
	close(fd);
	return rc;
}

static void *agent_thread(void *arg)
{
	struct vm *vm = arg;
	struct agent_client client = { .dial = dial_agent, .ctx = vm, .connect_timeout_ms = DIAL_RETRY_MS,
				       .cancel = &vm->stopping };
	struct rv_err err;
	uint32_t status = 0;
	sigset_t kick;

	/* vm_agent_join interrupts blocking writes to host fds with the kick. */
	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);

	/* A clone's agent announced itself in its template's VM, long ago. */
	if ((!vm->tpl.clone && await_agent(vm, &err) < 0) || vm_template_wake(vm, &client, &err) < 0 ||
	    vm->cfg->controller(vm->cfg->controller_arg, vm, &client, &status, &err) < 0) {
		if (!atomic_load(&vm->stopping))
			vm_request_stop(vm, VM_STOP_ERROR, &err);
		return NULL;
	}
	atomic_store(&vm->status, status);
	atomic_store(&vm->has_status, true);
	/* The agent powers the guest off (reboot=k resets through the i8042);
	 * a guest that does not is stopped after a grace period. */
	if (atomic_load(&vm->stopping))
		return NULL;
	if (agent_shutdown(&client, &err) < 0)
		rv_logf(vm->cfg->log, RV_LOG_DEBUG, "agent shutdown: %s", err.msg);
	if (wait_for(&vm->agent, is_stopping, VM_SHUTDOWN_GRACE_MS) == ETIMEDOUT)
		vm_request_stop(vm, VM_STOP_RESET, NULL);
	return NULL;
}

int vm_agent_setup(struct vm *vm, struct rv_err *err)
{
	struct vm_agent *a = &vm->agent;
	pthread_condattr_t attr;

	a->ready_fd = -1;
	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->cond, &attr);
	pthread_condattr_destroy(&attr);
	a->initialized = true;
	if (!vm->cfg->controller)
		return 0;
	return vsock_listen(&vm->vsock, PROTO_READY_PORT, on_agent_ready, a, err);
}

int vm_agent_start(struct vm *vm, struct rv_err *err)
{
	if (!vm->cfg->controller)
		return 0;
	int rc = pthread_create(&vm->agent.thread, NULL, agent_thread, vm);
	if (rc)
		return rv_fail(err, rc, "start the agent controller thread");
	vm->agent.started = true;
	return 0;
}

void vm_agent_stop(struct vm *vm)
{
	struct vm_agent *a = &vm->agent;

	if (!a->initialized)
		return;
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->cond);
	pthread_mutex_unlock(&a->lock);
}

void vm_agent_join(struct vm *vm)
{
	struct vm_agent *a = &vm->agent;

	if (!a->initialized)
		return;
	/* vm->stopping is set: a controller stuck writing to a host reader that
	 * does not read is interrupted (and gives up) until it is gone. */
	while (a->started) {
		struct timespec t = rv_deadline_in(CLOCK_REALTIME, JOIN_KICK_MS);   /* timedjoin's clock */
		if (pthread_timedjoin_np(a->thread, NULL, &t) != ETIMEDOUT)
			break;
		pthread_kill(a->thread, VCPU_KICK_SIGNAL);
	}
	if (a->ready_fd >= 0)
		close(a->ready_fd);
	pthread_cond_destroy(&a->cond);
	pthread_mutex_destroy(&a->lock);
	a->initialized = false;
}
