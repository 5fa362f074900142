/* One thread per vCPU: KVM_RUN, dispatch the exit, repeat until told to stop
 * (parked in between while the VM is paused: the gate below). Every exit
 * reason that ends the VM is turned into one clear error. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "common/clock.h"
#include "vmm/vm_priv.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/ksym.h"

#define INSN_DUMP_BYTES 16

static int set_cpuid(struct vcpu *v, struct rv_err *err)
{
	const struct kvm_cpuid2 *supported = v->vm->kvm.cpuid;
	size_t bytes = sizeof(*supported) + supported->nent * sizeof(supported->entries[0]);
	struct kvm_cpuid2 *mine = malloc(bytes);
	struct cpuid_topology topo = { .cpu_index = v->index, .ncpus = v->vm->cfg->cpus };
	int rc = -1;

	if (!mine)
		return rv_fail(err, ENOMEM, "allocate CPUID for vCPU %u", v->index);
	memcpy(mine, supported, bytes);
	if (cpuid_apply(mine->entries, mine->nent, &topo, err) == 0) {
		rc = ioctl(v->fd, KVM_SET_CPUID2, mine);
		if (rc < 0)
			rv_fail(err, errno, "KVM_SET_CPUID2 on vCPU %u", v->index);
	}
	free(mine);
	return rc;
}

int vcpu_create(struct vm *vm, unsigned index, struct vcpu *v, struct rv_err *err)
{
	memset(v, 0, sizeof(*v));
	v->vm = vm;
	v->index = index;
	v->fd = ioctl(vm->kvm.vm_fd, KVM_CREATE_VCPU, (unsigned long)index);
	if (v->fd < 0)
		return rv_fail(err, errno, "KVM_CREATE_VCPU %u", index);
	void *run = mmap(NULL, (size_t)vm->kvm.run_size, PROT_READ | PROT_WRITE, MAP_SHARED, v->fd, 0);
	if (run == MAP_FAILED)
		return rv_fail(err, errno, "map kvm_run of vCPU %u", index);
	v->run = run;
	if (set_cpuid(v, err) < 0)
		return -1;
	/* A clone's registers come from its template (vm_template_restore). */
	return vm->tpl.clone ? 0 : x86_vcpu_init(v->fd, index, &vm->kernel, err);
}

static void handle_io(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	/* data_offset and the sizes come from KVM, not the guest, but a wrong value
	 * would still be a host pointer bug: check it against the mapping. */
	uint64_t bytes = (uint64_t)r->io.size * r->io.count;
	if (r->io.data_offset > (uint64_t)v->vm->kvm.run_size ||
	    bytes > (uint64_t)v->vm->kvm.run_size - r->io.data_offset)
		return;
	uint8_t *data = (uint8_t *)r + r->io.data_offset;
	for (uint32_t i = 0; i < r->io.count; i++, data += r->io.size) {
		if (r->io.direction == KVM_EXIT_IO_OUT)
			bus_write(&v->vm->pio, r->io.port, data, r->io.size);
		else
			bus_read(&v->vm->pio, r->io.port, data, r->io.size);
	}
}

static void handle_mmio(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	uint32_t len = r->mmio.len <= sizeof(r->mmio.data) ? r->mmio.len : sizeof(r->mmio.data);
	if (r->mmio.is_write)
		bus_write(&v->vm->mmio, r->mmio.phys_addr, r->mmio.data, len);
	else
		bus_read(&v->vm->mmio, r->mmio.phys_addr, r->mmio.data, len);
}

static const char *suberror_name(uint32_t sub)
{
	switch (sub) {
	case KVM_INTERNAL_ERROR_EMULATION: return "instruction emulation failed";
	case KVM_INTERNAL_ERROR_SIMUL_EX: return "exception during exception delivery";
	case KVM_INTERNAL_ERROR_DELIVERY_EV: return "event delivery failed";
	case KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: return "unexpected exit reason";
	}
	return "unknown";
}

/* Names the RIP, the bytes there and, when the kernel is an ELF, the symbol. */
static void describe_rip(struct vcpu *v, char *buf, size_t size)
{
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	size_t n = 0;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_SREGS, &sregs) < 0) {
		snprintf(buf, size, "registers unreadable");
		return;
	}
	uint64_t linear = sregs.cs.base + regs.rip;
	n += (size_t)snprintf(buf + n, size - n, "RIP 0x%llx", (unsigned long long)regs.rip);
	char sym[128];
	if (n < size && ksym_lookup(v->vm->kernel_fd, regs.rip, sym, sizeof(sym)) == 0)
		n += (size_t)snprintf(buf + n, size - n, " (%s)", sym);
	struct kvm_translation tr = { .linear_address = linear };
	const uint8_t *insn = NULL;
	if (ioctl(v->fd, KVM_TRANSLATE, &tr) == 0 && tr.valid)
		insn = guest_mem_slice(&v->vm->mem, tr.physical_address, INSN_DUMP_BYTES);
	if (n < size)
		n += (size_t)snprintf(buf + n, size - n, insn ? ", bytes" : ", bytes unreadable");
	for (int i = 0; insn && i < INSN_DUMP_BYTES && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, " %02x", insn[i]);
}

static void stop_with_error(struct vcpu *v, const char *what)
{
	struct rv_err why;
	char where[300];

	describe_rip(v, where, sizeof(where));
	rv_failx(&why, EIO, "vCPU %u: %s at %s, %llu ms and %llu exits after it started", v->index, what,
		 where, (unsigned long long)(rv_now_ms(CLOCK_MONOTONIC) - v->started_ms),
		 (unsigned long long)v->exits);
	vm_request_stop(v->vm, VM_STOP_ERROR, &why);
}

/* Returns false when the VM must stop. */
static bool handle_exit(struct vcpu *v)
{
	struct kvm_run *r = v->run;
	char what[160];

	switch (r->exit_reason) {
	case KVM_EXIT_IO: handle_io(v); return true;
	case KVM_EXIT_MMIO: handle_mmio(v); return true;
	case KVM_EXIT_SYSTEM_EVENT:
		vm_request_stop(v->vm, VM_STOP_RESET, NULL);
		return false;
	case KVM_EXIT_SHUTDOWN:
		stop_with_error(v, "triple fault (KVM_EXIT_SHUTDOWN)");
		return false;
	case KVM_EXIT_INTERNAL_ERROR:
		snprintf(what, sizeof(what), "KVM internal error, suberror %u (%s)",
			 r->internal.suberror, suberror_name(r->internal.suberror));
		stop_with_error(v, what);
		return false;
	case KVM_EXIT_FAIL_ENTRY:
		snprintf(what, sizeof(what), "VM entry failed, hardware reason 0x%llx",
			 (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
		stop_with_error(v, what);
		return false;
	default:
		snprintf(what, sizeof(what), "unhandled KVM exit %u", r->exit_reason);
		stop_with_error(v, what);
		return false;
	}
}

/* The local APIC registers that say why an interrupt is not taken: a vector
 * still in service (no EOI), one pending, the task priority, the timer. */
#define LAPIC_TPR 0x80
#define LAPIC_ISR 0x100
#define LAPIC_IRR 0x200
#define LAPIC_LVT_TIMER 0x320
#define LAPIC_TIMER_COUNT 0x390

static uint32_t lapic_reg(const struct kvm_lapic_state *s, unsigned off)
{
	uint32_t v;

	memcpy(&v, s->regs + off, sizeof(v));
	return v;
}

/* The highest vector set in a 256-bit APIC register bank, or -1. */
static int lapic_top_vector(const struct kvm_lapic_state *s, unsigned bank)
{
	for (int word = 7; word >= 0; word--) {
		uint32_t bits = lapic_reg(s, bank + (unsigned)word * 0x10);
		if (bits)
			return word * 32 + 31 - __builtin_clz(bits);
	}
	return -1;
}

static void describe_interrupts(struct vcpu *v, char *buf, size_t size)
{
	struct kvm_regs regs;
	struct kvm_lapic_state lapic;

	if (ioctl(v->fd, KVM_GET_REGS, &regs) < 0 || ioctl(v->fd, KVM_GET_LAPIC, &lapic) < 0) {
		snprintf(buf, size, "interrupt state unreadable");
		return;
	}
	snprintf(buf, size, "interrupts %s, APIC in service %d, pending %d, TPR 0x%x, "
		 "timer LVT 0x%x count %u", regs.rflags & (1u << 9) ? "on" : "off",
		 lapic_top_vector(&lapic, LAPIC_ISR), lapic_top_vector(&lapic, LAPIC_IRR),
		 lapic_reg(&lapic, LAPIC_TPR), lapic_reg(&lapic, LAPIC_LVT_TIMER),
		 lapic_reg(&lapic, LAPIC_TIMER_COUNT));
}

/* A VM stopped for an error elsewhere (--timeout, a device): where each vCPU
 * was says whether the guest hung in a loop, waited idle for an interrupt
 * (a HLT, mp_state 3) or was busy. */
static void log_where_stopped(struct vcpu *v)
{
	struct kvm_mp_state mp = { 0 };
	char where[300], irqs[160];

	pthread_mutex_lock(&v->vm->stop_lock);
	bool error = v->vm->reason == VM_STOP_ERROR;
	pthread_mutex_unlock(&v->vm->stop_lock);
	if (!error || !v->vm->cfg->log || v->vm->cfg->log->min_level > RV_LOG_DEBUG)
		return;
	describe_rip(v, where, sizeof(where));
	describe_interrupts(v, irqs, sizeof(irqs));
	ioctl(v->fd, KVM_GET_MP_STATE, &mp);
	rv_logf(v->vm->cfg->log, RV_LOG_DEBUG, "vCPU %u stopped at %s, mp_state %u; %s", v->index,
		where, mp.mp_state, irqs);
}

/* --- the pause gate (vm_priv.h) ------------------------------------------------- */

void vcpu_gate_init(struct vcpu_gate *g)
{
	pthread_mutex_init(&g->op_lock, NULL);
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	atomic_init(&g->requested, false);
	g->paused = g->closed = false;
	g->running = g->parked = 0;
}

void vcpu_gate_destroy(struct vcpu_gate *g)
{
	pthread_cond_destroy(&g->cond);
	pthread_mutex_destroy(&g->lock);
	pthread_mutex_destroy(&g->op_lock);
}

void vcpu_gate_enter(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->running++;
	pthread_mutex_unlock(&g->lock);
}

/* A thread that ends no longer holds a pause up. */
void vcpu_gate_leave(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->running--;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void vcpu_gate_park(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->parked++;
	pthread_cond_broadcast(&g->cond);
	while (atomic_load(&g->requested) && !g->closed)
		pthread_cond_wait(&g->cond, &g->lock);
	g->parked--;
	pthread_mutex_unlock(&g->lock);
}

/* With g->lock held: ask, kick, and wait for every live thread to park. */
static int gate_pause_locked(struct vcpu_gate *g, void (*kick)(void *), void *arg,
			     struct rv_err *err)
{
	if (g->closed)
		return rv_failx(err, ECANCELED, "the VM is stopping");
	if (g->paused)
		return rv_failx(err, EALREADY, "already paused");
	atomic_store(&g->requested, true);
	kick(arg);
	while (g->parked < g->running && !g->closed)
		pthread_cond_wait(&g->cond, &g->lock);
	if (g->closed) {
		atomic_store(&g->requested, false);
		return rv_failx(err, ECANCELED, "the VM stopped before every vCPU had parked");
	}
	g->paused = true;
	return 0;
}

int vcpu_gate_pause(struct vcpu_gate *g, void (*kick)(void *arg), void *arg, struct rv_err *err)
{
	pthread_mutex_lock(&g->op_lock);
	pthread_mutex_lock(&g->lock);
	int rc = gate_pause_locked(g, kick, arg, err);
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_unlock(&g->op_lock);
	return rc;
}

int vcpu_gate_resume(struct vcpu_gate *g, struct rv_err *err)
{
	int rc = 0;

	pthread_mutex_lock(&g->op_lock);
	pthread_mutex_lock(&g->lock);
	if (g->closed) {
		rc = rv_failx(err, ECANCELED, "the VM is stopping");
	} else if (!g->paused) {
		rc = rv_failx(err, EALREADY, "not paused");
	} else {
		g->paused = false;
		atomic_store(&g->requested, false);
		pthread_cond_broadcast(&g->cond);
	}
	pthread_mutex_unlock(&g->lock);
	pthread_mutex_unlock(&g->op_lock);
	return rc;
}

bool vcpu_gate_paused(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	bool paused = g->paused;
	pthread_mutex_unlock(&g->lock);
	return paused;
}

void vcpu_gate_close(struct vcpu_gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->closed = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

void vcpu_gate_quiesce(struct vcpu_gate *g)
{
	vcpu_gate_close(g);
	/* A pause in progress has been woken by the close; wait for it to go. */
	pthread_mutex_lock(&g->op_lock);
	pthread_mutex_unlock(&g->op_lock);
}

/* --- the vCPU thread ------------------------------------------------------------ */

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;
	sigset_t kick;

	sigemptyset(&kick);
	sigaddset(&kick, VCPU_KICK_SIGNAL);
	pthread_sigmask(SIG_UNBLOCK, &kick, NULL);
	v->started_ms = rv_now_ms(CLOCK_MONOTONIC);
	if (vm_jail_thread(v->vm, JAIL_VCPU) < 0) {
		vcpu_gate_leave(&v->vm->gate);
		return NULL;
	}
	while (!atomic_load(&v->vm->stopping)) {
		if (vcpu_gate_should_park(&v->vm->gate)) {
			vcpu_gate_park(&v->vm->gate);
			continue;
		}
		if (ioctl(v->fd, KVM_RUN, 0) < 0) {
			if (errno == EINTR || errno == EAGAIN) {
				/* A kick: the loop's checks say what for. Cleared before
				 * they read (both sides seq_cst), so a kick that lands
				 * after them still stops the next KVM_RUN, and a pause
				 * resumed before we saw it does not spin us. */
				__atomic_store_n(&v->run->immediate_exit, 0, __ATOMIC_SEQ_CST);
				v->io_pending = false;
				continue;
			}
			struct rv_err why;
			rv_fail(&why, errno, "vCPU %u: KVM_RUN", v->index);
			vm_request_stop(v->vm, VM_STOP_ERROR, &why);
			break;
		}
		v->exits++;
		v->io_pending = true;
		if (!handle_exit(v))
			break;
	}
	log_where_stopped(v);
	vcpu_gate_leave(&v->vm->gate);
	return NULL;
}

int vcpu_start(struct vcpu *v, struct rv_err *err)
{
	vcpu_gate_enter(&v->vm->gate);   /* before it runs: a pause then waits for it */
	int rc = pthread_create(&v->thread, NULL, vcpu_thread, v);
	if (rc != 0) {
		vcpu_gate_leave(&v->vm->gate);
		return rv_fail(err, rc, "start vCPU %u thread", v->index);
	}
	v->started = true;
	return 0;
}

void vcpu_kick(struct vcpu *v)
{
	if (!v->started)
		return;
	/* immediate_exit covers a kick that lands before the thread enters KVM_RUN;
	 * the signal covers one already inside it. */
	__atomic_store_n(&v->run->immediate_exit, 1, __ATOMIC_SEQ_CST);
	pthread_kill(v->thread, VCPU_KICK_SIGNAL);
}

void vcpu_destroy(struct vcpu *v)
{
	if (v->started)
		pthread_join(v->thread, NULL);
	v->started = false;
	if (v->run)
		munmap(v->run, (size_t)v->vm->kvm.run_size);
	if (v->fd >= 0)
		close(v->fd);
	v->run = NULL;
	v->fd = -1;
}
