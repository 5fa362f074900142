/* Comparing the vCPU state read back from a clone with its template's, for
 * tests/kvm/vcpu_state_check.c: records of common/snapbuf.h side by side. */
#ifndef RV_TEST_STATE_COMPARE_H
#define RV_TEST_STATE_COMPARE_H

#include <linux/kvm.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/snapbuf.h"

#define MAX_RECORDS 32

struct record {
	uint32_t tag, len;
	const uint8_t *data;
};

/* The records of a snapbuf in order (tag, length, bytes). */
size_t split_records(const struct snapbuf *b, struct record *out, size_t max);
/* MSR i of an MSR record, copied out: records sit at any byte offset, and a
 * kvm_msr_entry wants 8-byte alignment. */
struct kvm_msr_entry record_msr(const struct record *r, size_t i);
/* a: the template's vCPU records (after a_skip of the VM's); b: the clone's,
 * read back after the restore. Every record must be equal, the ticking MSRs
 * aside. */
int compare_vcpu_state(const struct snapbuf *a, size_t a_skip, const struct snapbuf *b,
		       struct rv_err *err);
int compare_regs(const struct kvm_regs *saved, const struct kvm_regs *restored, struct rv_err *err);

#endif
