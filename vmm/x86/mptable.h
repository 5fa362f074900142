/* Intel MultiProcessor Specification 1.4 tables for an x86 guest without ACPI:
 * how Linux learns its CPUs, its I/O APIC and which I/O APIC pin each ISA IRQ
 * reaches. The caller copies the result into guest memory where Linux scans for
 * it (the first KiB of the EBDA, the last KiB of base memory, or 0xF0000-0xFFFFF). */
#ifndef RV_MPTABLE_H
#define RV_MPTABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/err.h"

/* APIC id 255 is the broadcast id, and the I/O APIC takes the id after the last
 * CPU: 254 CPUs use ids 0..253 and the I/O APIC 254. */
#define MPTABLE_MAX_CPUS 254

/* Size in bytes of the table mptable_build() writes for ncpus CPUs. */
size_t mptable_size(unsigned ncpus);

/* Write the MP floating pointer structure followed by the MP configuration table
 * into buf, which the caller places at guest physical address gpa (the pointers
 * inside the table are absolute guest physical addresses, so they are computed
 * from gpa). Returns the number of bytes written, mptable_size(ncpus), or -1 with
 * err set (EINVAL) when ncpus is 0 or above MPTABLE_MAX_CPUS, when size <
 * mptable_size(ncpus), or when gpa is not 16-byte aligned or the table would not
 * lie below 4 GiB (the guest finds it only there). Writes nothing on failure. */
ssize_t mptable_build(void *buf, size_t size, uint64_t gpa, unsigned ncpus,
		      struct rv_err *err);

#endif
