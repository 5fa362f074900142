/* Shared between vm.c and vcpu.c only. */
#ifndef RV_VM_PRIV_H
#define RV_VM_PRIV_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>

#include "common/evloop.h"
#include "devices/fs/virtio_fs.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"
#include "devices/net/net.h"
#include "devices/rng/rng.h"
#include "devices/virtio/mmio.h"
#include "devices/vsock/vsock.h"
#include "vmm/bus.h"
#include "vmm/guest_mem.h"
#include "vmm/jail.h"
#include "vmm/kvm.h"
#include "vmm/template.h"
#include "vmm/vm.h"
#include "vmm/x86/kernel.h"

#define VCPU_KICK_SIGNAL SIGUSR1

struct vm;

struct vcpu {
	struct vm *vm;
	unsigned index;
	int fd;
	struct kvm_run *run;
	pthread_t thread;
	bool initialized, started;
	uint64_t started_ms, exits;     /* for errors: how far the guest got */
	/* Its last KVM_RUN ended in an I/O exit we served, which KVM completes
	 * on the next KVM_RUN: its state is not saved until a kick ends one. */
	bool io_pending;
};

/* virtio-mmio windows, in this order: rng, vsock, then net with cfg->net and
 * fs with cfg->fs, so a device's address and IRQ depend only on which of
 * those come before it. */
#define VM_MMIO_MAX 4u

struct vm_mmio_slot {
	const char *name;
	struct virtio_dev *dev;
};

/* Pause and resume of the vCPU threads (vm_pause): a small state machine of
 * its own, so that it can be tested with plain threads. A vCPU thread calls
 * vcpu_gate_enter before it starts and vcpu_gate_leave when it ends; before
 * each KVM_RUN it checks vcpu_gate_should_park (lock-free) and, when true,
 * waits in vcpu_gate_park until resumed or closed.
 *
 *   running --pause--> pausing (kick; wait until every live thread parked)
 *     --> paused --resume--> running
 *   any --close--> closed: parked threads leave, pause/resume fail (ECANCELED)
 *
 * Pausing a paused gate, or resuming a running one, fails with EALREADY and
 * changes nothing: the caller can tell "already so" from a failure, and a
 * caller that wants idempotence ignores EALREADY. One pause or resume at a
 * time (op_lock): a second caller waits for the first to finish. */
struct vcpu_gate {
	pthread_mutex_t op_lock;      /* held for a whole pause or resume */
	pthread_mutex_t lock;         /* the fields below */
	pthread_cond_t cond;          /* parked, running, paused or closed changed */
	atomic_bool requested;        /* park before the next KVM_RUN */
	bool paused;                  /* a pause completed, no resume since */
	bool closed;                  /* the VM is stopping */
	unsigned running;             /* threads between enter and leave */
	unsigned parked;              /* of those, waiting in vcpu_gate_park */
};

void vcpu_gate_init(struct vcpu_gate *g);
void vcpu_gate_destroy(struct vcpu_gate *g);
void vcpu_gate_enter(struct vcpu_gate *g);
void vcpu_gate_leave(struct vcpu_gate *g);
static inline bool vcpu_gate_should_park(struct vcpu_gate *g)
{
	return atomic_load(&g->requested);
}
void vcpu_gate_park(struct vcpu_gate *g);
/* Asks every thread to park, calls kick(arg) to get them out of KVM_RUN, and
 * returns once every live thread is parked (a thread that ends counts too). */
int vcpu_gate_pause(struct vcpu_gate *g, void (*kick)(void *arg), void *arg, struct rv_err *err);
int vcpu_gate_resume(struct vcpu_gate *g, struct rv_err *err);
bool vcpu_gate_paused(struct vcpu_gate *g);
/* Any thread, never blocks: wakes parked threads and a waiting pause for good. */
void vcpu_gate_close(struct vcpu_gate *g);
/* close, then waits until no pause or resume is in progress: after it the
 * vCPUs may be joined and freed, no later call touches them. */
void vcpu_gate_quiesce(struct vcpu_gate *g);

/* The controller thread and what it waits for (vm_agent.c). */
struct vm_agent {
	pthread_t thread;
	bool initialized, started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int ready_fd;                 /* the agent's announcement connection, -1 until then */
	bool stopping;                /* the VM is going down: stop waiting */
};

/* Template clones (vm_template.c, vmm/template.h). */
struct vm_template {
	struct template_store store;  /* dir_fd -1: templates off for this VM */
	char key[TEMPLATE_KEY_BYTES];
	bool clone;                   /* started from a template, not booted */
	uint8_t *state;               /* a clone's saved state, until restored */
	size_t state_len;
	int mem_fd;                   /* a clone's template memory, until mapped */
	bool make;                    /* no template yet: save one at agent ready */
	bool failed;                  /* a clone that did not restore: boot instead */
	bool restore_failed;          /* vm_template_restore refused the saved state */
	char shape[512];              /* devices and cmdline, also kept in the state */
	struct template_writer writer;
	uint64_t cid;                 /* this VM's vsock CID */
	uint64_t restore_start_ms;    /* CLOCK_MONOTONIC, for "ready in N ms" */
};

struct vm {
	const struct vm_config *cfg;
	int device_fd;                /* cfg->device_fd, or its copy for a second start */
	struct vm_template tpl;
	struct evloop loop;
	struct rng rng;
	struct vsock vsock;
	struct virtio_fs fs;
	struct vnet net;
	struct vm_mmio_slot slots[VM_MMIO_MAX];
	unsigned nslots;
	struct virtio_mmio mmio_dev[VM_MMIO_MAX];
	bool devices_up;
	bool net_up;                  /* vm->net to destroy */
	struct vm_agent agent;
	struct kvm kvm;
	struct guest_mem mem;
	struct kernel_image kernel;
	struct bus pio, mmio;
	struct serial serial;
	struct i8042 i8042;
	int serial_irq_fd;
	int kernel_fd;                /* for symbols in errors; -1: none (vmm/x86/ksym.h) */
	struct vcpu *vcpus;
	struct vcpu_gate gate;        /* vm_pause, vm_resume */
	atomic_bool stopping;
	int stop_fd;                  /* eventfd: a vCPU asks the main thread to stop */
	pthread_mutex_t stop_lock;
	enum vm_stop_reason reason;   /* first stop request wins */
	struct rv_err stop_err;
	atomic_bool has_status;
	atomic_uint status;
};

/* With cfg->jail, loads role's seccomp filter on the calling thread (and
 * makes the selftest's forbidden call when it names role); a failure stops
 * the VM with its error and returns -1. A no-op without cfg->jail. */
int vm_jail_thread(struct vm *vm, enum jail_role role);

/* Called from any thread; the first caller's reason and error are kept. */
void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const struct rv_err *why);

/* vm_template.c. Before anything else of the VM: looks the template up
 * (tpl.clone) or readies one to be written (tpl.make); templates off or a
 * VM that cannot be one leaves both false. */
int vm_template_prepare(struct vm *vm, struct rv_err *err);
/* A clone's RAM, in place of guest_mem_create. */
int vm_template_map(struct vm *vm, struct rv_err *err);
/* A clone, once its devices and vCPUs exist: the saved machine put back. */
int vm_template_restore(struct vm *vm, struct rv_err *err);
/* The agent thread of a clone: raise what was pending and tell the guest
 * it is a new machine (vsock CID, entropy, time); of the VM that makes the
 * template: save it (a failure only costs later VMs their head start) and
 * then the same fresh entropy and time as a clone gets. */
int vm_template_wake(struct vm *vm, const struct agent_client *agent, struct rv_err *err);
void vm_template_save(struct vm *vm);
void vm_template_end(struct vm *vm);

/* vm_agent.c: the controller thread (cfg->controller). */
int vm_agent_setup(struct vm *vm, struct rv_err *err);     /* before boot: listen for the agent */
int vm_agent_start(struct vm *vm, struct rv_err *err);     /* with the vCPUs */
void vm_agent_stop(struct vm *vm);                         /* wake it; the VM is going down */
void vm_agent_join(struct vm *vm);                         /* after the devices dropped its sockets */

int vcpu_create(struct vm *vm, unsigned index, struct vcpu *v, struct rv_err *err);
int vcpu_start(struct vcpu *v, struct rv_err *err);
void vcpu_kick(struct vcpu *v);
void vcpu_destroy(struct vcpu *v);

/* Logs (debug level) every device's queues and state: a guest that stopped
 * making progress. vm.c. */
void vm_dump_devices(struct vm *vm);

#endif
