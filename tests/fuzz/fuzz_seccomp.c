/* libFuzzer target for linux.seccomp (runtime/seccomp.c, over config.json's
 * parser): the profile an engine passes (Docker's and containerd's defaults
 * run to hundreds of rules) is compiled on the host with libseccomp into the
 * program the guest kernel loads. A bad profile must be an error naming the
 * field, never a crash; an accepted one a program of whole instructions. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/seccomp.h"
#include "runtime/spec.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A classic BPF program holds at most BPF_MAXINSNS (4096) instructions. */
#define BPF_MAX_INSNS 4096u

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oci_spec s;
	struct seccomp_prog prog = { 0 };
	struct rv_err err = { 0 };

	if (spec_parse((const char *)data, size, "/bundle", &s, &err) < 0)
		return 0;
	if (seccomp_compile(&s, &prog, &err) < 0) {
		CHECK(err.code != 0 && err.msg[0] != '\0');
		CHECK(prog.insns == NULL && prog.n == 0);
	} else {
		CHECK((prog.n == 0) == (prog.insns == NULL));
		CHECK(prog.n <= BPF_MAX_INSNS);
	}
	seccomp_prog_free(&prog);
	spec_free(&s);
	return 0;
}
