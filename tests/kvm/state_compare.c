#include "tests/kvm/state_compare.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MSR_IA32_TSC 0x10u

/* The records of a snapbuf in order (common/snapbuf.h: tag, length, bytes). */
size_t split_records(const struct snapbuf *b, struct record *out, size_t max)
{
	size_t n = 0, off = 0;

	while (n < max && b->len - off >= SNAP_RECORD_HDR_BYTES) {
		memcpy(&out[n].tag, b->data + off, 4);
		memcpy(&out[n].len, b->data + off + 4, 4);
		out[n].data = b->data + off + SNAP_RECORD_HDR_BYTES;
		off += SNAP_RECORD_HDR_BYTES + out[n].len;
		n++;
	}
	return n;
}

/* MSRs that move on their own between two reads (the TSC counts). */
static bool msr_ticks(uint32_t index)
{
	return index == MSR_IA32_TSC;
}

struct kvm_msr_entry record_msr(const struct record *r, size_t i)
{
	struct kvm_msr_entry e;
	memcpy(&e, r->data + i * sizeof(e), sizeof(e));
	return e;
}

static int compare_msrs(const struct record *a, const struct record *b, char *why, size_t size)
{
	size_t n = a->len / sizeof(struct kvm_msr_entry), off = 0;
	int bad = 0;

	if (a->len != b->len) {
		snprintf(why, size, "%zu MSRs saved, %zu read back", n,
			 b->len / sizeof(struct kvm_msr_entry));
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		struct kvm_msr_entry ea = record_msr(a, i), eb = record_msr(b, i);
		if (ea.index != eb.index) {
			snprintf(why, size, "MSR #%zu is 0x%x, read back 0x%x", i, ea.index, eb.index);
			return -1;
		}
		if (msr_ticks(ea.index) || ea.data == eb.data)
			continue;
		bad = -1;
		if (off < size)
			off += (size_t)snprintf(why + off, size - off, "%sMSR 0x%x: 0x%llx, read back 0x%llx",
						off ? "; " : "", ea.index,
						(unsigned long long)ea.data, (unsigned long long)eb.data);
	}
	return bad;
}

/* First byte where two records differ, for the message. */
static size_t first_difference(const struct record *a, const struct record *b)
{
	size_t i = 0;

	while (i < a->len && a->data[i] == b->data[i])
		i++;
	return i;
}

/* a: the template's vCPU records; b: the clone's, read back after the
 * restore. Every record must be equal, the ticking MSRs aside. */
int compare_vcpu_state(const struct snapbuf *a, size_t a_skip, const struct snapbuf *b,
			      struct rv_err *err)
{
	struct record ra[MAX_RECORDS], rb[MAX_RECORDS];
	size_t na = split_records(a, ra, MAX_RECORDS), nb = split_records(b, rb, MAX_RECORDS);
	char name[5], why[512];

	if (na - a_skip != nb)
		return rv_failx(err, EIO, "the template's vCPU has %zu records, the clone's %zu",
				na - a_skip, nb);
	for (size_t i = 0; i < nb; i++) {
		const struct record *x = &ra[a_skip + i], *y = &rb[i];
		snap_tag_name(x->tag, name);
		if (x->tag != y->tag)
			return rv_failx(err, EIO, "record %zu is '%s' in the template only", i, name);
		if (x->tag == SNAP_TAG('m', 's', 'r', 's')) {
			if (compare_msrs(x, y, why, sizeof(why)) < 0)
				return rv_failx(err, EIO, "the clone's MSRs differ: %s", why);
			continue;
		}
		if (x->len != y->len || memcmp(x->data, y->data, x->len))
			return rv_failx(err, EIO, "the clone's '%s' (%u bytes) differs from the "
					"template's from byte %zu", name, x->len, first_difference(x, y));
	}
	return 0;
}

/* struct kvm_regs, in its order. */
static const char *const reg_names[] = {
	"rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11", "r12",
	"r13", "r14", "r15", "rip", "rflags",
};

int compare_regs(const struct kvm_regs *saved, const struct kvm_regs *restored,
			struct rv_err *err)
{
	uint64_t a[sizeof(*saved) / 8], b[sizeof(*saved) / 8];

	_Static_assert(sizeof(reg_names) / sizeof(reg_names[0]) == sizeof(*saved) / 8,
		       "one name per register");
	memcpy(a, saved, sizeof(a));
	memcpy(b, restored, sizeof(b));
	for (size_t i = 0; i < sizeof(a) / sizeof(a[0]); i++)
		if (a[i] != b[i])
			return rv_failx(err, EIO, "the clone's %s reads 0x%llx, the template's was "
					"0x%llx", reg_names[i], (unsigned long long)b[i],
					(unsigned long long)a[i]);
	return 0;
}

