/* Template clones for one VM (vm_priv.h, vmm/template.h): decide whether it
 * starts from a template or makes one, put a clone's saved machine back, and
 * save a template at agent ready. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "common/clock.h"
#include "devices/virtio/persist.h"
#include "vmm/vm_priv.h"
#include "vmm/x86/cpuid.h"
#include "vmm/x86/vcpu_state.h"

#define TAG_HEADER SNAP_TAG('t', 'h', 'd', 'r')
#define TAG_SHAPE SNAP_TAG('s', 'h', 'a', 'p')
#define TAG_SERIAL SNAP_TAG('s', 'e', 'r', 'l')
#define TEMPLATE_MAGIC 0x52564d54u     /* "TMVR" */
#define QUIESCE_TRIES 200u
#define QUIESCE_SLEEP_MS 2u
#define RESET_WAIT_MS 10000u

struct saved_header {
	uint32_t magic, cpus, nslots, pad;
	uint64_t mem_bytes;
	char key[TEMPLATE_KEY_BYTES];
	char pad2[7];
};

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { 0, (long)ms * 1000000L };
	nanosleep(&ts, NULL);
}

/* A CID of the guest's own: 3 up to 2^32 - 2 (0-2 are reserved, -1 is
 * VMADDR_CID_ANY). */
static uint64_t random_cid(void)
{
	uint32_t r = 0;

	if (getrandom(&r, sizeof(r), 0) < 0)
		r = (uint32_t)getpid();
	return 3u + r % (UINT32_MAX - 4u);
}

/* A guest a template can stand for: one the agent runs, quiet, whose
 * devices have no host state that a clone could not rebuild (a tap). */
static bool can_template(const struct vm *vm)
{
	const struct vm_config *cfg = vm->cfg;
	return cfg->template_dir && cfg->controller && cfg->console_fd < 0 && !cfg->net;
}

static void device_list(const struct vm *vm, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < vm->nslots && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? "," : "", vm->slots[i].name);
	if (n < size)
		snprintf(buf + n, size - n, ";tag=%s", vm->cfg->fs_tag ? vm->cfg->fs_tag : "");
}

int vm_template_prepare(struct vm *vm, struct rv_err *err)
{
	struct vm_template *t = &vm->tpl;
	const struct vm_config *cfg = vm->cfg;
	char devices[128];
	struct rv_err why;

	t->store.dir_fd = t->mem_fd = -1;
	t->writer = (struct template_writer){ .mem_fd = -1, .state_fd = -1, .lock_fd = -1 };
	t->cid = VSOCK_GUEST_CID;
	if (!can_template(vm))
		return 0;
	t->cid = random_cid();
	device_list(vm, devices, sizeof(devices));
	snprintf(t->shape, sizeof(t->shape), "%s|%s", devices, cfg->cmdline ? cfg->cmdline : "");
	/* The CPUID vCPU 0 gets, not KVM's raw list: that one carries the APIC
	 * ID of whichever host CPU answered, which would make every key differ. */
	const struct kvm_cpuid2 *supported = vm->kvm.cpuid;
	size_t cpuid_bytes = supported->nent * sizeof(supported->entries[0]);
	_cleanup_free_ struct kvm_cpuid_entry2 *cpuid = malloc(cpuid_bytes ? cpuid_bytes : 1);
	struct cpuid_topology topo = { .cpu_index = 0, .ncpus = cfg->cpus };
	if (!cpuid)
		return rv_fail(err, ENOMEM, "template key");
	memcpy(cpuid, supported->entries, cpuid_bytes);
	struct template_shape shape = { .kernel = cfg->kernel, .initrd = cfg->initrd, .cpus = cfg->cpus,
					.mem_bytes = cfg->mem_bytes, .cmdline = cfg->cmdline,
					.devices = devices, .cpuid = cpuid, .cpuid_bytes = cpuid_bytes };
	/* Templates only ever save time: a store we cannot use means a boot. */
	if (cpuid_apply(cpuid, supported->nent, &topo, &why) < 0 || template_key(&shape, t->key, &why) < 0 ||
	    template_store_open(cfg->template_dir, &t->store, &why) < 0) {
		rv_logf(cfg->log, RV_LOG_WARN, "templates off for this VM: %s", why.msg);
		return 0;
	}
	t->restore_start_ms = rv_now_ms(CLOCK_MONOTONIC);
	/* After a clone that failed (tpl.failed) its template is gone: this
	 * boot saves a new one. */
	int found = t->failed ? 0 : template_open(&t->store, t->key, cfg->mem_bytes, &t->mem_fd,
						  &t->state, &t->state_len, &why);
	if (found > 0) {
		t->clone = true;
		return 0;
	}
	if (found < 0) {
		rv_logf(cfg->log, RV_LOG_WARN, "%s; booting and saving a new one", why.msg);
		template_discard(&t->store, t->key);
	}
	int begun = template_writer_begin(&t->store, t->key, cfg->mem_bytes, &t->writer, &why);
	if (begun < 0)
		rv_logf(cfg->log, RV_LOG_WARN, "no template saved: %s", why.msg);
	t->make = begun > 0;
	return 0;
}

int vm_template_map(struct vm *vm, struct rv_err *err)
{
	struct vm_template *t = &vm->tpl;
	int rc = guest_mem_create_cow(&vm->mem, vm->cfg->mem_bytes, t->mem_fd, err);

	close(t->mem_fd);
	t->mem_fd = -1;
	/* Symbols for crash reports; the kernel itself is in the template. */
	vm->kernel_fd = open(vm->cfg->kernel, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	return rc;
}

static int restore_header(struct vm *vm, struct snapreader *r, struct rv_err *err)
{
	struct saved_header h;

	const void *shape;
	size_t len;

	if (snapreader_get(r, TAG_HEADER, &h, sizeof(h), err) < 0 ||
	    snapreader_get_var(r, TAG_SHAPE, &shape, &len, sizeof(vm->tpl.shape), err) < 0)
		return -1;
	/* The key is a hash: the shape itself must match too. */
	if (h.magic != TEMPLATE_MAGIC || h.cpus != vm->cfg->cpus || h.nslots != vm->nslots ||
	    h.mem_bytes != vm->cfg->mem_bytes || memcmp(h.key, vm->tpl.key, TEMPLATE_KEY_BYTES) ||
	    len != strlen(vm->tpl.shape) || memcmp(shape, vm->tpl.shape, len))
		return rv_failx(err, EPROTO, "saved for another VM shape (%u vCPUs, %llu MiB, %.*s)",
				h.cpus, (unsigned long long)(h.mem_bytes >> 20), (int)(len < 200 ? len : 200),
				(const char *)shape);
	return 0;
}

int vm_template_restore(struct vm *vm, struct rv_err *err)
{
	struct vm_template *t = &vm->tpl;
	struct snapreader r = { .data = t->state, .len = t->state_len };
	struct serial_regs serial;
	int rc = -1;

	if (restore_header(vm, &r, err) < 0 || x86_vm_state_restore(vm->kvm.vm_fd, &r, err) < 0)
		goto out;
	for (unsigned i = 0; i < vm->cfg->cpus; i++)
		if (x86_vcpu_state_restore(vm->vcpus[i].fd, i, &r, err) < 0)
			goto out;
	if (snapreader_get(&r, TAG_SERIAL, &serial, sizeof(serial), err) < 0)
		goto out;
	serial_restore(&vm->serial, &serial);
	for (unsigned i = 0; i < vm->nslots; i++)
		if (virtio_dev_restore(vm->slots[i].dev, &r, err) < 0)
			goto out;
	if (snapreader_get(&r, TEMPLATE_END_TAG, NULL, 0, err) < 0)
		goto out;
	rc = snapreader_end(&r, err);
	if (rc == 0)
		rv_logf(vm->cfg->log, RV_LOG_DEBUG, "restored template %s in %llu ms", t->key,
			(unsigned long long)(rv_now_ms(CLOCK_MONOTONIC) - t->restore_start_ms));
out:
	free(t->state);
	t->state = NULL;
	t->restore_failed = rc < 0;
	return rc < 0 ? rv_wrap(err, "template %s", t->key) : 0;
}

static int reseed(struct vm *vm, const struct agent_client *agent, struct rv_err *err)
{
	uint8_t seed[PROTO_RESEED_SEED_BYTES];
	struct timespec now;
	uint32_t cid = 0;

	if (getrandom(seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
		return rv_fail(err, errno, "entropy for the guest");
	clock_gettime(CLOCK_REALTIME, &now);
	int rc = agent_reseed(agent, seed, (uint64_t)now.tv_sec * 1000000000ull + (uint64_t)now.tv_nsec,
			      &cid, err);
	explicit_bzero(seed, sizeof(seed));
	if (rc < 0)
		return rv_wrap(err, "reseed the guest");
	if (cid != vm->tpl.cid)
		return rv_failx(err, EPROTO, "the guest's vsock CID is %u, not its own %llu", cid,
				(unsigned long long)vm->tpl.cid);
	return 0;
}

/* The guest handles the transport reset on a workqueue: until it has, a
 * connection could be reset under us. */
static int new_cid(struct vm *vm, struct rv_err *err)
{
	if (vsock_transport_reset(&vm->vsock, vm->tpl.cid, err) < 0)
		return -1;
	for (unsigned ms = 0; !vsock_transport_reset_seen(&vm->vsock); ms++) {
		if (atomic_load(&vm->stopping))
			return rv_failx(err, ECANCELED, "the VM stopped");
		if (ms >= RESET_WAIT_MS)
			return rv_failx(err, ETIMEDOUT, "the guest did not take its new vsock CID "
					"within %u s", RESET_WAIT_MS / 1000);
		sleep_ms(1);
	}
	return 0;
}

int vm_template_wake(struct vm *vm, const struct agent_client *agent, struct rv_err *err)
{
	struct vm_template *t = &vm->tpl;

	if (t->make) {
		vm_template_save(vm);
		return reseed(vm, agent, err);
	}
	if (!t->clone)
		return 0;
	for (unsigned i = 0; i < vm->nslots; i++)
		virtio_dev_kick_saved(vm->slots[i].dev);
	if (new_cid(vm, err) < 0 || reseed(vm, agent, err) < 0)
		return rv_wrap(err, "clone of template %s", t->key);
	rv_logf(vm->cfg->log, RV_LOG_DEBUG, "cloned from template %s: guest CID %llu, agent ready "
		"%llu ms after the restore started", t->key, (unsigned long long)t->cid,
		(unsigned long long)(rv_now_ms(CLOCK_MONOTONIC) - t->restore_start_ms));
	return 0;
}

static bool vcpus_between_exits(const struct vm *vm)
{
	for (unsigned i = 0; i < vm->cfg->cpus; i++)
		if (vm->vcpus[i].io_pending)
			return false;
	return true;
}

/* Pauses the guest where nothing is half done: no vsock traffic in flight,
 * no vCPU parked with an I/O exit KVM has yet to complete. The agent has
 * just announced itself and waits for us, so this comes within a few tries. */
static int quiesce(struct vm *vm, struct rv_err *err)
{
	for (unsigned i = 0; i < QUIESCE_TRIES; i++) {
		if (atomic_load(&vm->stopping))
			return rv_failx(err, ECANCELED, "the VM stopped");
		if (!vsock_idle(&vm->vsock)) {
			sleep_ms(QUIESCE_SLEEP_MS);
			continue;
		}
		if (vm_pause(vm, err) < 0)
			return -1;
		if (vcpus_between_exits(vm) && vsock_idle(&vm->vsock))
			return 0;
		if (vm_resume(vm, err) < 0)
			return -1;
		sleep_ms(QUIESCE_SLEEP_MS);
	}
	return rv_failx(err, EBUSY, "the guest was still busy after %u tries",
			QUIESCE_TRIES);
}

/* Every device locked from the first saved byte to the last, memory
 * included: the main loop may still be serving a kick that came before the
 * pause, and its writes to a ring must land wholly before or after. */
static void lock_devices(struct vm *vm, bool lock)
{
	for (unsigned i = 0; i < vm->nslots; i++)
		(lock ? pthread_mutex_lock : pthread_mutex_unlock)(&vm->slots[i].dev->lock);
}

/* A virtio-fs request in a worker's hands lives outside the saved state:
 * none may be (the agent mounts nothing before it is told to). */
static int fs_quiet_locked(const struct vm *vm, struct rv_err *err)
{
	if (!vm->cfg->fs)
		return 0;
	bool waiting = false;
	for (unsigned q = 0; q < vm->fs.dev.ops->num_queues; q++)
		waiting |= vm->fs.dev.queues[q].ready && vm->fs.dev.queues[q].avail &&
			   virtq_has_avail(&vm->fs.dev.queues[q]);
	if (vm->fs.busy || waiting)
		return rv_failx(err, EBUSY, "virtio-fs had requests in flight at agent ready");
	return 0;
}

static int save_machine(struct vm *vm, struct snapbuf *b, struct rv_err *err)
{
	struct saved_header h = { .magic = TEMPLATE_MAGIC, .cpus = vm->cfg->cpus,
				  .nslots = vm->nslots, .mem_bytes = vm->cfg->mem_bytes };
	struct serial_regs serial;

	memcpy(h.key, vm->tpl.key, TEMPLATE_KEY_BYTES);
	snapbuf_put(b, TAG_HEADER, &h, sizeof(h));
	snapbuf_put(b, TAG_SHAPE, vm->tpl.shape, strlen(vm->tpl.shape));
	if (x86_vm_state_save(vm->kvm.vm_fd, b, err) < 0)
		return -1;
	for (unsigned i = 0; i < vm->cfg->cpus; i++)
		if (x86_vcpu_state_save(vm->kvm.sys_fd, vm->vcpus[i].fd, i, b, err) < 0)
			return -1;
	serial_save(&vm->serial, &serial);
	snapbuf_put(b, TAG_SERIAL, &serial, sizeof(serial));
	lock_devices(vm, true);
	/* A host connection may have opened between quiesce's look and the locks. */
	int rc = vsock_idle_locked(&vm->vsock) ? fs_quiet_locked(vm, err)
					       : rv_failx(err, EBUSY, "a vsock connection opened");
	for (unsigned i = 0; i < vm->nslots && rc == 0; i++)
		virtio_dev_save_locked(vm->slots[i].dev, b);
	if (rc == 0)
		rc = template_writer_memory(&vm->tpl.writer, vm->mem.memfd, vm->mem.base,
					    vm->cfg->mem_bytes, err);
	lock_devices(vm, false);
	snapbuf_put(b, TEMPLATE_END_TAG, NULL, 0);
	return rc < 0 ? -1 : snapbuf_check(b, err);
}

void vm_template_save(struct vm *vm)
{
	struct vm_template *t = &vm->tpl;
	struct snapbuf b = { 0 };
	struct rv_err err, resume;
	uint64_t start = rv_now_ms(CLOCK_MONOTONIC);

	int rc = quiesce(vm, &err);
	if (rc == 0) {
		rc = save_machine(vm, &b, &err);
		uint64_t paused = rv_now_ms(CLOCK_MONOTONIC) - start;
		if (vm_resume(vm, &resume) < 0 && rc == 0) {
			err = resume;
			rc = -1;
		}
		if (rc == 0)
			rc = template_writer_state(&t->writer, b.data, b.len, &err);
		if (rc == 0)
			rv_logf(vm->cfg->log, RV_LOG_DEBUG, "saved template %s (%zu bytes of state, "
				"guest paused %llu ms); runvm create publishes it", t->key, b.len,
				(unsigned long long)paused);
	}
	if (rc < 0)
		rv_logf(vm->cfg->log, RV_LOG_WARN, "no template saved: %s", err.msg);
	snapbuf_free(&b);
	/* From here on this VMM holds nothing of the store, and its guest,
	 * which never ran a tenant's code before the save, cannot reach it. */
	template_writer_end(&t->writer);
}

void vm_template_end(struct vm *vm)
{
	struct vm_template *t = &vm->tpl;

	template_writer_end(&t->writer);
	template_store_close(&t->store);
	if (t->mem_fd >= 0)
		close(t->mem_fd);
	free(t->state);
	t->state = NULL;
	t->mem_fd = -1;
}
