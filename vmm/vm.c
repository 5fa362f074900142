#include "vmm/vm.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "vmm/cmdline.h"
#include "vmm/vm_priv.h"
#include "vmm/x86/cpu.h"
#include "vmm/x86/e820.h"
#include "vmm/x86/layout.h"
#include "vmm/x86/mptable.h"

/* Quiet by default: printk through an emulated UART costs an exit per byte.
 * loglevel=1 still lets a panic (KERN_EMERG) reach the console ring. */
#define CMDLINE_BASE "console=ttyS0 reboot=k panic=-1 nomodule 8250.nr_uarts=1 " \
	"i8042.noaux i8042.nomux i8042.dumbkbd io_delay=none tsc=reliable no_timer_check " \
	"rdinit=/init"
#define CMDLINE_QUIET "loglevel=1"

void vm_request_stop(struct vm *vm, enum vm_stop_reason reason, const struct rv_err *why)
{
	uint64_t one = 1;

	pthread_mutex_lock(&vm->stop_lock);
	if (vm->reason == VM_STOP_NONE) {
		vm->reason = reason;
		if (why)
			vm->stop_err = *why;
	}
	pthread_mutex_unlock(&vm->stop_lock);
	atomic_store(&vm->stopping, true);
	vcpu_gate_close(&vm->gate);   /* parked vCPUs leave and see stopping */
	if (write(vm->stop_fd, &one, sizeof(one)) < 0) {
		/* Only fails when the counter is saturated: a stop is pending anyway. */
	}
}

static void kick_vcpus(void *arg)
{
	struct vm *vm = arg;

	for (unsigned i = 0; vm->vcpus && i < vm->cfg->cpus; i++)
		vcpu_kick(&vm->vcpus[i]);
}

int vm_pause(struct vm *vm, struct rv_err *err)
{
	if (vcpu_gate_pause(&vm->gate, kick_vcpus, vm, err) < 0)
		return rv_wrap(err, "pause the VM");
	return 0;
}

int vm_resume(struct vm *vm, struct rv_err *err)
{
	if (vcpu_gate_resume(&vm->gate, err) < 0)
		return rv_wrap(err, "resume the VM");
	return 0;
}

bool vm_is_paused(struct vm *vm)
{
	return vcpu_gate_paused(&vm->gate);
}

static void reset_requested(void *ctx)
{
	vm_request_stop(ctx, VM_STOP_RESET, NULL);
}

static void status_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct vm *vm = opaque;
	uint32_t v = 0;

	if (offset != 0 || len > sizeof(v))
		return;
	memcpy(&v, data, len);
	atomic_store(&vm->status, v);
	atomic_store(&vm->has_status, true);
}

static uint64_t mmio_base(unsigned i) { return VIRTIO_MMIO_BASE_GPA + (uint64_t)i * VIRTIO_MMIO_WINDOW_BYTES; }

_Static_assert(VIRTIO_MMIO_FIRST_IRQ + VM_MMIO_MAX <= 16, "virtio-mmio IRQs are ISA IRQs");

/* Before the cmdline is written, which announces each window. */
static void plan_mmio(struct vm *vm)
{
	vm->slots[vm->nslots++] = (struct vm_mmio_slot){ "virtio-rng", &vm->rng.dev };
	vm->slots[vm->nslots++] = (struct vm_mmio_slot){ "virtio-vsock", &vm->vsock.dev };
	if (vm->cfg->net)
		vm->slots[vm->nslots++] = (struct vm_mmio_slot){ "virtio-net", &vm->net.dev };
	if (vm->cfg->fs)
		vm->slots[vm->nslots++] = (struct vm_mmio_slot){ "virtio-fs", &vm->fs.dev };
}

static int add_net(struct vm *vm, struct rv_err *err)
{
	const struct vm_net *net = vm->cfg->net;
	int fd = fcntl(net->tap_fd, F_DUPFD_CLOEXEC, 0);

	if (fd < 0)
		return rv_fail(err, errno, "virtio-net: the tap");
	vm->net_up = true;
	return vnet_init(&vm->net, fd, net->mac, net->mtu, &vm->mem, &vm->loop, vm->cfg->log, err);
}

/* Loads role's filter on the calling thread, then makes the selftest's
 * forbidden call when it names role. */
static int jail_as(const struct vm *vm, enum jail_role role, struct rv_err *err)
{
	if (jail_load(role, err) < 0)
		return -1;
	if (vm->cfg->jail_selftest == 1u + role)
		jail_forbidden_call();
	return 0;
}

int vm_jail_thread(struct vm *vm, enum jail_role role)
{
	struct rv_err err;
	sigset_t sys;

	if (!vm->cfg->jail)
		return 0;
	/* A thread with SIGSYS blocked is killed by a trapped call instead of
	 * reporting it (JAIL_REPORT_ENV); the file workers block everything. */
	sigemptyset(&sys);
	sigaddset(&sys, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
	if (jail_as(vm, role, &err) < 0) {
		vm_request_stop(vm, VM_STOP_ERROR, &err);
		return -1;
	}
	return 0;
}

static int fs_worker_start(void *arg)
{
	return vm_jail_thread(arg, JAIL_FS_WORKER);
}

static int add_virtio_devices(struct vm *vm, struct rv_err *err)
{
	rng_init(&vm->rng, &vm->mem, vm->cfg->log);
	vsock_init(&vm->vsock, vm->tpl.cid, &vm->mem, &vm->loop, vm->cfg->log);
	vm->devices_up = true;
	struct virtio_fs_config fs_cfg = { .tag = vm->cfg->fs_tag, .worker_start = fs_worker_start,
					   .worker_start_arg = vm };
	if (vm->cfg->fs && virtio_fs_init(&vm->fs, &fs_cfg, vm->cfg->fs, &vm->mem, vm->cfg->log, err) < 0)
		return -1;
	if (vm->cfg->net && add_net(vm, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->nslots; i++) {
		struct virtio_mmio *m = &vm->mmio_dev[i];
		if (virtio_mmio_init(m, vm->slots[i].dev, mmio_base(i), VIRTIO_MMIO_FIRST_IRQ + i,
				     vm->kvm.vm_fd, &vm->loop, err) < 0)
			return -1;
		struct bus_device b = { vm->slots[i].name, mmio_base(i), VIRTIO_MMIO_WINDOW_BYTES, m,
					virtio_mmio_read, virtio_mmio_write };
		if (bus_add(&vm->mmio, &b, err) < 0)
			return -1;
	}
	return vm_agent_setup(vm, err);
}

static void remove_virtio_devices(struct vm *vm)
{
	if (!vm->devices_up)
		return;
	/* Ending the vsock connections ends the controller's sockets, and a closed
	 * device refuses its redials, so the join cannot wait on a dead guest. */
	vsock_close(&vm->vsock);
	vm_agent_join(vm);
	vsock_destroy(&vm->vsock);
	rng_destroy(&vm->rng);
	/* Joins the workers (each finishes the request in hand) before the
	 * transport closes the interrupt eventfd they raise. */
	virtio_fs_destroy(&vm->fs);
	if (vm->net_up)
		vnet_destroy(&vm->net);
	for (unsigned i = 0; i < VM_MMIO_MAX; i++)
		virtio_mmio_destroy(&vm->mmio_dev[i]);
	vm->devices_up = false;
}

static int add_devices(struct vm *vm, struct rv_err *err)
{
	vm->serial_irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (vm->serial_irq_fd < 0)
		return rv_fail(err, errno, "create serial interrupt eventfd");
	serial_init(&vm->serial, vm->cfg->console_fd, vm->serial_irq_fd);
	struct kvm_irqfd irqfd = { .fd = (uint32_t)vm->serial_irq_fd, .gsi = SERIAL_COM1_IRQ };
	if (ioctl(vm->kvm.vm_fd, KVM_IRQFD, &irqfd) < 0)
		return rv_fail(err, errno, "KVM_IRQFD for the serial port");
	vm->i8042 = (struct i8042){ .reset = reset_requested, .ctx = vm };

	const struct bus_device pio[] = {
		{ "serial", SERIAL_COM1_PORT, SERIAL_PORT_COUNT, &vm->serial, serial_read, serial_write },
		{ "i8042", I8042_DATA_PORT, I8042_PORT_SPAN, &vm->i8042, i8042_read, i8042_write },
		{ "status", VM_STATUS_PORT, 4, vm, NULL, status_write },
	};
	for (size_t i = 0; i < sizeof(pio) / sizeof(pio[0]); i++)
		if (bus_add(&vm->pio, &pio[i], err) < 0)
			return -1;
	return add_virtio_devices(vm, err);
}

static int build_cmdline(const struct vm *vm, struct cmdline *c, struct rv_err *err)
{
	cmdline_init(c, vm->kernel.cmdline_max);
	for (unsigned i = 0; i < vm->nslots; i++) {
		char dev[64];
		if (virtio_mmio_cmdline(mmio_base(i), VIRTIO_MMIO_FIRST_IRQ + i, dev, sizeof(dev)) < 0 ||
		    cmdline_add(c, dev, err) < 0)
			return rv_wrap(err, "announce virtio-mmio device %u", i);
	}
	if (cmdline_add(c, CMDLINE_BASE, err) < 0 ||
	    (vm->cfg->console_fd < 0 && cmdline_add(c, CMDLINE_QUIET, err) < 0) ||
	    (vm->cfg->cmdline && cmdline_add(c, vm->cfg->cmdline, err) < 0))
		return rv_wrap(err, "--cmdline");
	return 0;
}

static int load_guest(struct vm *vm, struct rv_err *err)
{
	struct boot_info info = { 0 };
	struct e820_entry e820[E820_MAX_ENTRIES];
	struct cmdline cmd;

	/* Its fd kept: once jailed, no vCPU may open a file to name a symbol, and
	 * the symbols must be those of the kernel loaded, even if it is replaced. */
	if (kernel_load(vm->cfg->kernel, &vm->mem, &vm->kernel, &vm->kernel_fd, err) < 0)
		return -1;
	if (vm->cfg->initrd && initrd_load(vm->cfg->initrd, &vm->mem, &vm->kernel,
					   &info.initrd_gpa, &info.initrd_size, err) < 0)
		return -1;
	if (build_cmdline(vm, &cmd, err) < 0)
		return -1;
	info.cmdline = cmd.buf;
	info.e820 = e820;
	info.e820_count = e820_build(&vm->mem, e820);
	uint64_t mp_room = HIGH_RAM_START_GPA - EBDA_GPA;
	void *mp = guest_mem_slice(&vm->mem, EBDA_GPA, mp_room);
	if (!mp || mptable_build(mp, mp_room, EBDA_GPA, vm->cfg->cpus, err) < 0)
		return rv_wrap(err, "write MP table");
	if (x86_write_boot_tables(&vm->mem, vm->kernel.format, err) < 0)
		return -1;
	return boot_info_write(&vm->mem, &vm->kernel, &info, err);
}

static int check_config(const struct vm_config *cfg, const struct kvm *kvm, struct rv_err *err)
{
	if (cfg->cpus == 0 || cfg->cpus > kvm->max_vcpus || cfg->cpus > MPTABLE_MAX_CPUS)
		return rv_failx(err, EINVAL, "--cpu-num %u: this host's KVM runs 1 to %u vCPUs",
				cfg->cpus, kvm->max_vcpus < MPTABLE_MAX_CPUS ? kvm->max_vcpus
									: MPTABLE_MAX_CPUS);
	if (cfg->mem_bytes < GUEST_MEM_MIN_BYTES)
		return rv_failx(err, EINVAL, "--total-memory %llu MiB: the minimum is %llu MiB",
				(unsigned long long)(cfg->mem_bytes >> 20),
				(unsigned long long)(GUEST_MEM_MIN_BYTES >> 20));
	return 0;
}

static int vm_setup(struct vm *vm, struct rv_err *err)
{
	const struct vm_config *cfg = vm->cfg;

	plan_mmio(vm);
	if (evloop_init(&vm->loop, err) < 0)
		return -1;
	if (kvm_open(&vm->kvm, vm->device_fd, err) < 0 || check_config(cfg, &vm->kvm, err) < 0 ||
	    vm_template_prepare(vm, err) < 0)
		return -1;
	bool clone = vm->tpl.clone;
	if ((clone ? vm_template_map(vm, err) : guest_mem_create(&vm->mem, cfg->mem_bytes, err)) < 0 ||
	    kvm_create_vm(&vm->kvm, err) < 0 || guest_mem_register(&vm->mem, vm->kvm.vm_fd, err) < 0)
		return -1;
	if ((!clone && load_guest(vm, err) < 0) || add_devices(vm, err) < 0)
		return -1;
	vm->vcpus = calloc(cfg->cpus, sizeof(*vm->vcpus));
	if (!vm->vcpus)
		return rv_fail(err, ENOMEM, "allocate %u vCPUs", cfg->cpus);
	for (unsigned i = 0; i < cfg->cpus; i++)
		vm->vcpus[i].fd = -1;
	for (unsigned i = 0; i < cfg->cpus; i++)
		if (vcpu_create(vm, i, &vm->vcpus[i], err) < 0)
			return -1;
	return clone ? vm_template_restore(vm, err) : 0;
}

static void kick_handler(int sig)
{
	(void)sig;      /* only interrupts KVM_RUN */
}

/* The signals that stop the VMM, and those its caller takes as well
 * (vm_config.on_signal); they arrive on the main loop's signalfd. */
void vm_caller_signals(sigset_t *set)
{
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
	sigaddset(set, SIGQUIT);
	sigaddset(set, SIGUSR1);
	sigaddset(set, SIGUSR2);
	sigaddset(set, SIGWINCH);
}

static void watched_signals(const struct vm_config *cfg, sigset_t *set)
{
	if (cfg->on_signal) {
		vm_caller_signals(set);
		return;
	}
	sigemptyset(set);
	sigaddset(set, SIGTERM);
	sigaddset(set, SIGINT);
	sigaddset(set, SIGHUP);
}

static bool stops_vm(int sig)
{
	return sig == SIGTERM || sig == SIGINT || sig == SIGHUP;
}

/* The VMM's own signals arrive on a signalfd; vCPU threads inherit the mask
 * and unblock only the kick. */
static int block_signals(const struct vm_config *cfg, sigset_t *old, struct rv_err *err)
{
	sigset_t set;
	struct sigaction sa = { .sa_handler = kick_handler };

	watched_signals(cfg, &set);
	sigaddset(&set, VCPU_KICK_SIGNAL);
	if (sigaction(VCPU_KICK_SIGNAL, &sa, NULL) < 0)
		return rv_fail(err, errno, "install vCPU kick handler");
	int rc = pthread_sigmask(SIG_BLOCK, &set, old);
	return rc ? rv_fail(err, rc, "block signals") : 0;
}

static int make_timer(unsigned timeout_ms, struct rv_err *err)
{
	struct itimerspec its = { .it_value = { timeout_ms / 1000, (timeout_ms % 1000) * 1000000L } };
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);

	if (fd < 0 || timerfd_settime(fd, 0, &its, NULL) < 0) {
		rv_fail(err, errno, "arm --timeout timer");
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* The main loop's own fds: a stop request, a stop signal, the timeout. */
struct loop_watch {
	struct ev_handler h;
	struct vm *vm;
	struct vm_result *res;
	int fd;
	bool *done;
};

static void on_stop(struct ev_handler *h, uint32_t events)
{
	struct loop_watch *w = (struct loop_watch *)h;
	(void)events;
	*w->done = true;
}

static void on_signal(struct ev_handler *h, uint32_t events)
{
	struct loop_watch *w = (struct loop_watch *)h;
	struct signalfd_siginfo si;

	(void)events;
	if (read(w->fd, &si, sizeof(si)) != sizeof(si))
		return;
	int sig = (int)si.ssi_signo;
	const struct vm_config *cfg = w->vm->cfg;
	if ((cfg->on_signal && cfg->on_signal(cfg->on_signal_arg, sig)) || !stops_vm(sig))
		return;
	w->res->host_signal = sig;
	vm_request_stop(w->vm, VM_STOP_HOST_SIGNAL, NULL);
	*w->done = true;
}

/* Each virtio pin of the I/O APIC: a masked pin or a level pin whose remote
 * IRR was never cleared by an EOI would leave a device's interrupts unseen. */
static void dump_ioapic(struct vm *vm)
{
	struct kvm_irqchip chip = { .chip_id = KVM_IRQCHIP_IOAPIC };

	if (ioctl(vm->kvm.vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
		return;
	for (unsigned i = 0; i < vm->nslots; i++) {
		unsigned pin = VIRTIO_MMIO_FIRST_IRQ + i;
		const typeof(chip.chip.ioapic.redirtbl[0]) *e = &chip.chip.ioapic.redirtbl[pin];
		rv_logf(vm->cfg->log, RV_LOG_DEBUG, "I/O APIC pin %u: vector %u, %s, %s%s, dest %u",
			pin, e->fields.vector, e->fields.mask ? "masked" : "unmasked",
			e->fields.trig_mode ? "level" : "edge", e->fields.remote_irr ? " remote IRR" : "",
			e->fields.dest_id);
	}
}

void vm_dump_devices(struct vm *vm)
{
	dump_ioapic(vm);
	vsock_dump(&vm->vsock, vm->cfg->log);
	virtio_dev_dump(&vm->rng.dev, vm->cfg->log);
	if (vm->cfg->fs)
		virtio_fs_dump(&vm->fs, vm->cfg->log);
	if (vm->net_up)
		virtio_dev_dump(&vm->net.dev, vm->cfg->log);
}

static void on_timeout(struct ev_handler *h, uint32_t events)
{
	struct loop_watch *w = (struct loop_watch *)h;
	struct rv_err why;
	unsigned ms = w->vm->cfg->timeout_ms;

	(void)events;
	rv_failx(&why, ETIMEDOUT, "guest still running after %u.%03u s (--timeout); stopped it",
		 ms / 1000, ms % 1000);
	vm_dump_devices(w->vm);
	vm_request_stop(w->vm, VM_STOP_ERROR, &why);
	*w->done = true;
}

static void note_cpu_before_run(struct vm_result *res)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		res->cpu_ms_before_run = (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
					 (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

/* Once all setup is done and before any thread: the jail, which threads
 * started before would not be in; the file workers, which load their own
 * filter; then the main thread's filter, which the threads started after
 * inherit: the vCPUs (which narrow it), the agent's, and whatever the
 * caller's on_run starts. */
static int prepare_jail(void *arg, struct rv_err *err)
{
	return arg ? fs_server_open_exports(arg, err) : 0;
}

static int furnish_jail(void *arg, const char *dir, struct rv_err *err)
{
	return arg ? fs_server_bind_exports(arg, dir, err) : 0;
}

static int jail_main(struct vm *vm, struct rv_err *err)
{
	struct jail_config jail = { .keep_net_admin = vm->cfg->net_admin_at_end,
				    .prepare = prepare_jail, .furnish = furnish_jail,
				    .furnish_arg = vm->cfg->fs };

	if (vm->cfg->jail && (jail_enter(&jail, err) < 0 ||
			      (vm->cfg->fs && fs_server_reopen_in_jail(vm->cfg->fs, JAIL_FURNISHED_DIR,
								       err) < 0)))
		return -1;
	if (vm->cfg->fs && virtio_fs_start(&vm->fs, err) < 0)
		return -1;
	if (vm->cfg->on_jailed && vm->cfg->on_jailed(vm->cfg->on_jailed_arg, vm, err) < 0)
		return -1;
	if (vm->cfg->jail && jail_as(vm, JAIL_VMM, err) < 0)
		return -1;
	return vm->cfg->on_run ? vm->cfg->on_run(vm->cfg->on_run_arg, err) : 0;
}

/* Main thread: devices and host sockets, until a vCPU stops the VM, a signal
 * arrives or the timeout fires. */
static int vm_loop(struct vm *vm, struct vm_result *res, struct rv_err *err)
{
	sigset_t sigs;
	bool done = false;
	_cleanup_close_ int sigfd = -1, timerfd = -1;

	watched_signals(vm->cfg, &sigs);
	sigfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sigfd < 0)
		return rv_fail(err, errno, "set up the event loop");
	if (vm->cfg->timeout_ms && (timerfd = make_timer(vm->cfg->timeout_ms, err)) < 0)
		return -1;
	struct loop_watch stop = { { on_stop }, vm, res, vm->stop_fd, &done },
			  sig = { { on_signal }, vm, res, sigfd, &done },
			  timer = { { on_timeout }, vm, res, timerfd, &done };
	if (evloop_add(&vm->loop, vm->stop_fd, EPOLLIN, &stop.h, err) < 0 ||
	    evloop_add(&vm->loop, sigfd, EPOLLIN, &sig.h, err) < 0 ||
	    (timerfd >= 0 && evloop_add(&vm->loop, timerfd, EPOLLIN, &timer.h, err) < 0))
		return -1;
	note_cpu_before_run(res);
	if (jail_main(vm, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->cfg->cpus; i++)
		if (vcpu_start(&vm->vcpus[i], err) < 0)
			return -1;
	if (vm_agent_start(vm, err) < 0)
		return -1;
	while (!done) {
		if (evloop_run_once(&vm->loop, VIRTIO_IRQ_RETRY_MS / 2, err) < 0)
			return -1;
		/* A paused guest acknowledges nothing: no interrupt is lost. */
		for (unsigned i = 0; i < vm->nslots && !vm_is_paused(vm); i++)
			virtio_dev_watchdog(vm->mmio_dev[i].dev);
	}
	evloop_del(&vm->loop, vm->stop_fd);
	evloop_del(&vm->loop, sigfd);
	if (timerfd >= 0)
		evloop_del(&vm->loop, timerfd);
	return 0;
}

/* Joins the vCPUs first: they may still be writing to the console ring. */
static void vm_teardown(struct vm *vm, struct vm_result *res)
{
	atomic_store(&vm->stopping, true);
	vcpu_gate_quiesce(&vm->gate);   /* no pause kicks the vCPUs while they go */
	vm_agent_stop(vm);
	kick_vcpus(vm);
	for (unsigned i = 0; vm->vcpus && i < vm->cfg->cpus; i++)
		vcpu_destroy(&vm->vcpus[i]);
	free(vm->vcpus);
	remove_virtio_devices(vm);
	if (vm->serial_irq_fd >= 0) {
		serial_tail(&vm->serial, res->console_tail, sizeof(res->console_tail));
		serial_destroy(&vm->serial);
		close(vm->serial_irq_fd);
	}
	guest_mem_destroy(&vm->mem);
	vm_template_end(vm);
	if (vm->kernel_fd >= 0)
		close(vm->kernel_fd);
	kvm_close(&vm->kvm);
	evloop_destroy(&vm->loop);
	close(vm->stop_fd);
	pthread_mutex_destroy(&vm->stop_lock);
	vcpu_gate_destroy(&vm->gate);   /* the controller, its last user, is joined */
}

/* Turns how the VM stopped into the result, or into an error. */
static int vm_outcome(struct vm *vm, struct vm_result *res, struct rv_err *err)
{
	res->reason = vm->reason;
	res->has_status = atomic_load(&vm->has_status);
	res->status = atomic_load(&vm->status);
	if (vm->reason == VM_STOP_ERROR) {
		*err = vm->stop_err;
		return -1;
	}
	if (vm->reason != VM_STOP_RESET || res->has_status)
		return 0;
	const char *panic = strstr(res->console_tail, "Kernel panic - ");
	if (panic)
		return rv_failx(err, EIO, "guest kernel panicked: %.*s", (int)strcspn(panic, "\r\n"), panic);
	return rv_failx(err, EIO, "guest stopped without reporting an exit status");
}

static int vm_start(struct vm *vm, const struct vm_config *cfg, int device_fd, bool no_template,
		    struct rv_err *err)
{
	*vm = (struct vm){ .cfg = cfg, .device_fd = device_fd, .serial_irq_fd = -1, .kernel_fd = -1,
			   .kvm = { .sys_fd = -1, .vm_fd = -1 }, .mem = { .memfd = -1 },
			   .loop = { .epfd = -1 }, .tpl = { .failed = no_template } };
	pthread_mutex_init(&vm->stop_lock, NULL);
	vcpu_gate_init(&vm->gate);
	vm->stop_fd = eventfd(0, EFD_CLOEXEC);
	return vm->stop_fd < 0 ? rv_fail(err, errno, "create stop eventfd") : vm_setup(vm, err);
}

int vm_run(const struct vm_config *cfg, struct vm_result *res, struct rv_err *err)
{
	struct vm vm;
	sigset_t old;

	memset(res, 0, sizeof(*res));
	if (block_signals(cfg, &old, err) < 0)
		return -1;
	int rc = vm_start(&vm, cfg, cfg->device_fd, false, err);
	if (rc < 0 && vm.tpl.restore_failed) {
		/* A template that does not restore here (a KVM that refuses its
		 * MSRs, a file edited) costs this VM a boot, not its start. The
		 * donated /dev/kvm is closed with the first VM: a copy is kept. */
		int kvm = vm.kvm.sys_fd >= 0 ? fcntl(vm.kvm.sys_fd, F_DUPFD_CLOEXEC, 0) : cfg->device_fd;
		rv_logf(cfg->log, RV_LOG_WARN, "%s; booting instead, and dropping the template",
			err->msg);
		template_discard(&vm.tpl.store, vm.tpl.key);
		vm_teardown(&vm, res);
		if (cfg->fs)
			fs_server_allow_waits(cfg->fs);   /* the first VM's end cancelled them */
		rc = vm_start(&vm, cfg, kvm, true, err);
	}
	/* The jail that follows must reach no directory of the store. */
	template_store_close(&vm.tpl.store);
	if (rc == 0)
		rc = vm_loop(&vm, res, err);
	vm_teardown(&vm, res);
	if (rc == 0)
		rc = vm_outcome(&vm, res, err);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}
