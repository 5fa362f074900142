#include "vmm/x86/vcpu_state.h"

#include <errno.h>
#include <linux/kvm.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#define TAG_PIT SNAP_TAG('p', 'i', 't', '2')
#define TAG_CLOCK SNAP_TAG('c', 'l', 'c', 'k')
#define TAG_IRQCHIP SNAP_TAG('i', 'r', 'q', 'c')
#define TAG_MP_STATE SNAP_TAG('m', 'p', 's', 't')
#define TAG_REGS SNAP_TAG('r', 'e', 'g', 's')
#define TAG_SREGS SNAP_TAG('s', 'r', 'e', 'g')
#define TAG_XSAVE SNAP_TAG('x', 's', 'a', 'v')
#define TAG_XCRS SNAP_TAG('x', 'c', 'r', 's')
#define TAG_DEBUGREGS SNAP_TAG('d', 'b', 'g', 'r')
#define TAG_LAPIC SNAP_TAG('l', 'a', 'p', 'c')
#define TAG_MSRS SNAP_TAG('m', 's', 'r', 's')
#define TAG_EVENTS SNAP_TAG('e', 'v', 'n', 't')

#define MSR_LIST_MAX 1024u

/* PIC master, PIC slave, I/O APIC: KVM_GET_IRQCHIP's chip ids 0..2. */
#define IRQCHIPS 3

int x86_vm_state_save(int vm_fd, struct snapbuf *b, struct rv_err *err)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock = { 0 };

	if (ioctl(vm_fd, KVM_GET_PIT2, &pit) < 0)
		return rv_fail(err, errno, "KVM_GET_PIT2");
	snapbuf_put(b, TAG_PIT, &pit, sizeof(pit));
	if (ioctl(vm_fd, KVM_GET_CLOCK, &clock) < 0)
		return rv_fail(err, errno, "KVM_GET_CLOCK");
	snapbuf_put(b, TAG_CLOCK, &clock, sizeof(clock));
	for (unsigned id = 0; id < IRQCHIPS; id++) {
		struct kvm_irqchip chip = { .chip_id = id };
		if (ioctl(vm_fd, KVM_GET_IRQCHIP, &chip) < 0)
			return rv_fail(err, errno, "KVM_GET_IRQCHIP %u", id);
		snapbuf_put(b, TAG_IRQCHIP, &chip, sizeof(chip));
	}
	return 0;
}

int x86_vm_state_restore(int vm_fd, struct snapreader *r, struct rv_err *err)
{
	struct kvm_pit_state2 pit;
	struct kvm_clock_data clock;

	if (snapreader_get(r, TAG_PIT, &pit, sizeof(pit), err) < 0)
		return -1;
	if (ioctl(vm_fd, KVM_SET_PIT2, &pit) < 0)
		return rv_fail(err, errno, "KVM_SET_PIT2");
	if (snapreader_get(r, TAG_CLOCK, &clock, sizeof(clock), err) < 0)
		return -1;
	/* The guest's clock goes on from where the template stopped (the agent
	 * is then told the wall-clock time); KVM takes only the value. */
	clock = (struct kvm_clock_data){ .clock = clock.clock };
	if (ioctl(vm_fd, KVM_SET_CLOCK, &clock) < 0)
		return rv_fail(err, errno, "KVM_SET_CLOCK");
	for (unsigned id = 0; id < IRQCHIPS; id++) {
		struct kvm_irqchip chip;
		if (snapreader_get(r, TAG_IRQCHIP, &chip, sizeof(chip), err) < 0)
			return -1;
		if (chip.chip_id != id)
			return rv_failx(err, EPROTO, "saved state: interrupt controller %u where %u "
					"belongs", chip.chip_id, id);
		if (ioctl(vm_fd, KVM_SET_IRQCHIP, &chip) < 0)
			return rv_fail(err, errno, "KVM_SET_IRQCHIP %u", id);
	}
	return 0;
}

/* Every MSR KVM can save and this vCPU can read: KVM_GET_MSRS stops at the
 * first it cannot, so each is asked alone (once, when a template is made). */
static int save_msrs(int sys_fd, int vcpu_fd, struct snapbuf *b, struct rv_err *err)
{
	struct kvm_msr_list probe = { .nmsrs = 0 };
	_Alignas(struct kvm_msr_entry) uint8_t one_buf[sizeof(struct kvm_msrs) + sizeof(struct kvm_msr_entry)];
	struct kvm_msrs *one = (struct kvm_msrs *)one_buf;

	if (ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, &probe) < 0 && errno != E2BIG)
		return rv_fail(err, errno, "KVM_GET_MSR_INDEX_LIST");
	if (probe.nmsrs > MSR_LIST_MAX)
		return rv_failx(err, E2BIG, "KVM lists %u MSRs to save, more than %u", probe.nmsrs,
				MSR_LIST_MAX);
	struct kvm_msr_list *list = calloc(1, sizeof(*list) + probe.nmsrs * sizeof(uint32_t));
	struct kvm_msr_entry *saved = calloc(probe.nmsrs ? probe.nmsrs : 1, sizeof(*saved));
	int rc = -1;
	if (!list || !saved) {
		rv_fail(err, ENOMEM, "list MSRs");
		goto out;
	}
	list->nmsrs = probe.nmsrs;
	if (ioctl(sys_fd, KVM_GET_MSR_INDEX_LIST, list) < 0) {
		rv_fail(err, errno, "KVM_GET_MSR_INDEX_LIST");
		goto out;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < list->nmsrs; i++) {
		memset(one_buf, 0, sizeof(one_buf));
		one->nmsrs = 1;
		one->entries[0].index = list->indices[i];
		if (ioctl(vcpu_fd, KVM_GET_MSRS, one) == 1)
			saved[n++] = one->entries[0];
	}
	snapbuf_put(b, TAG_MSRS, saved, n * sizeof(*saved));
	rc = 0;
out:
	free(list);
	free(saved);
	return rc;
}

/* A vCPU's state but its MSRs and events, in the order KVM wants both ways:
 * MP state first (reading it delivers a pending INIT/SIPI into the LAPIC,
 * setting it first lets the rest land on a vCPU in that state), the LAPIC
 * last (then the MSRs: the TSC deadline needs the LAPIC's mode). */
union vcpu_part_buf {
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_xsave xsave;
	struct kvm_xcrs xcrs;
	struct kvm_debugregs dregs;
	struct kvm_lapic_state lapic;
};

static const struct vcpu_part {
	uint32_t tag;
	unsigned long get, set;
	size_t size;
	const char *name;
} vcpu_parts[] = {
	{ TAG_MP_STATE, KVM_GET_MP_STATE, KVM_SET_MP_STATE, sizeof(struct kvm_mp_state), "MP_STATE" },
	{ TAG_REGS, KVM_GET_REGS, KVM_SET_REGS, sizeof(struct kvm_regs), "REGS" },
	{ TAG_SREGS, KVM_GET_SREGS, KVM_SET_SREGS, sizeof(struct kvm_sregs), "SREGS" },
	{ TAG_XSAVE, KVM_GET_XSAVE, KVM_SET_XSAVE, sizeof(struct kvm_xsave), "XSAVE" },
	{ TAG_XCRS, KVM_GET_XCRS, KVM_SET_XCRS, sizeof(struct kvm_xcrs), "XCRS" },
	{ TAG_DEBUGREGS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS, sizeof(struct kvm_debugregs),
	  "DEBUGREGS" },
	{ TAG_LAPIC, KVM_GET_LAPIC, KVM_SET_LAPIC, sizeof(struct kvm_lapic_state), "LAPIC" },
};

#define VCPU_PARTS (sizeof(vcpu_parts) / sizeof(vcpu_parts[0]))

int x86_vcpu_state_save(int sys_fd, int vcpu_fd, unsigned index, struct snapbuf *b,
			struct rv_err *err)
{
	union vcpu_part_buf buf;
	struct kvm_vcpu_events events;

	for (size_t i = 0; i < VCPU_PARTS; i++) {
		if (ioctl(vcpu_fd, vcpu_parts[i].get, &buf) < 0)
			return rv_fail(err, errno, "KVM_GET_%s on vCPU %u", vcpu_parts[i].name, index);
		snapbuf_put(b, vcpu_parts[i].tag, &buf, vcpu_parts[i].size);
	}
	if (save_msrs(sys_fd, vcpu_fd, b, err) < 0)
		return rv_wrap(err, "vCPU %u", index);
	if (ioctl(vcpu_fd, KVM_GET_VCPU_EVENTS, &events) < 0)
		return rv_fail(err, errno, "KVM_GET_VCPU_EVENTS on vCPU %u", index);
	snapbuf_put(b, TAG_EVENTS, &events, sizeof(events));
	return 0;
}

static int restore_msrs(int vcpu_fd, unsigned index, struct snapreader *r, struct rv_err *err)
{
	const void *p;
	size_t len;

	if (snapreader_get_var(r, TAG_MSRS, &p, &len, MSR_LIST_MAX * sizeof(struct kvm_msr_entry),
			       err) < 0)
		return -1;
	if (len % sizeof(struct kvm_msr_entry))
		return rv_failx(err, EPROTO, "saved state: vCPU %u's MSR record is %zu bytes, not "
				"whole entries", index, len);
	unsigned n = (unsigned)(len / sizeof(struct kvm_msr_entry));
	struct kvm_msrs *msrs = calloc(1, sizeof(*msrs) + len);
	if (!msrs)
		return rv_fail(err, ENOMEM, "restore vCPU %u's MSRs", index);
	msrs->nmsrs = n;
	memcpy(msrs->entries, p, len);
	int set = ioctl(vcpu_fd, KVM_SET_MSRS, msrs);
	int rc = 0;
	if (set < 0)
		rc = rv_fail(err, errno, "KVM_SET_MSRS on vCPU %u", index);
	else if ((unsigned)set < n)
		rc = rv_failx(err, EINVAL, "vCPU %u: KVM refused MSR 0x%x (%d of %u set)", index,
			      msrs->entries[set].index, set, n);
	free(msrs);
	return rc;
}

/* Firecracker's order (vcpu_parts), then the MSRs, pending events last. */
int x86_vcpu_state_restore(int vcpu_fd, unsigned index, struct snapreader *r, struct rv_err *err)
{
	union vcpu_part_buf buf;
	struct kvm_vcpu_events events;

	for (size_t i = 0; i < VCPU_PARTS; i++) {
		if (snapreader_get(r, vcpu_parts[i].tag, &buf, vcpu_parts[i].size, err) < 0)
			return rv_wrap(err, "vCPU %u", index);
		if (ioctl(vcpu_fd, vcpu_parts[i].set, &buf) < 0)
			return rv_fail(err, errno, "KVM_SET_%s on vCPU %u", vcpu_parts[i].name, index);
	}
	if (restore_msrs(vcpu_fd, index, r, err) < 0)
		return -1;
	if (snapreader_get(r, TAG_EVENTS, &events, sizeof(events), err) < 0)
		return rv_wrap(err, "vCPU %u", index);
	if (ioctl(vcpu_fd, KVM_SET_VCPU_EVENTS, &events) < 0)
		return rv_fail(err, errno, "KVM_SET_VCPU_EVENTS on vCPU %u", index);
	return 0;
}
