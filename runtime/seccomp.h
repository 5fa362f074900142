/* linux.seccomp compiled with libseccomp into the classic BPF program that
 * the guest kernel loads for the container's processes. The guest runs the
 * host's architecture (x86-64), so the host compiles it; the agent only
 * installs it (agent protocol v5, EXEC's seccomp). */
#ifndef RV_SECCOMP_H
#define RV_SECCOMP_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "runtime/spec.h"

struct seccomp_prog {
	uint64_t *insns;       /* struct sock_filter, one per u64 (little-endian layout) */
	size_t n;              /* 0: no filter */
	uint32_t flags;        /* SECCOMP_FILTER_FLAG_* */
};

/* Compiles s's linux.seccomp (none: *out empty). Errors name the field:
 * "linux.seccomp.syscalls[2].names[0]: unknown syscall \"frobnicate\"". */
int seccomp_compile(const struct oci_spec *s, struct seccomp_prog *out, struct rv_err *err);
void seccomp_prog_free(struct seccomp_prog *p);

#endif
