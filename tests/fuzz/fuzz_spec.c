/* libFuzzer target for config.json (runtime/spec.c over runtime/json.c): the
 * bundle is the caller's, but a runtime is often fed generated or copied
 * specs, and a bad one must be an error, never a crash. Beyond "no crash, no
 * leak, no UB" it checks what spec.h promises of a spec it accepts:
 *   - the required fields are there and the paths are absolute;
 *   - vectors are NULL-terminated and their counts match;
 *   - spec_vm_shape yields 1..SPEC_MAX_CPUS vCPUs and at least the minimum RAM;
 * and of one it refuses: a message that names config.json, nothing left to free. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/spec.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_accepted(const struct oci_spec *s)
{
	CHECK(s->doc && s->oci_version && strncmp(s->oci_version, "1.", 2) == 0);
	CHECK(s->bundle && strcmp(s->bundle, "/bundle") == 0);
	CHECK(s->root_path && s->root_path[0] == '/');
	CHECK(s->process.nargs >= 1 && s->process.args[0][0] != '\0');
	fuzz_check_strv(s->process.args, s->process.nargs);
	fuzz_check_strv(s->process.env, s->process.nenv);
	for (size_t i = 0; i < s->process.nenv; i++)
		CHECK(strchr(s->process.env[i], '=') > s->process.env[i]);
	CHECK(s->process.cwd && s->process.cwd[0] == '/');
	CHECK(!s->process.nadditional_gids || s->process.additional_gids);
	for (size_t i = 0; i < s->nmounts; i++) {
		CHECK(s->mounts[i].destination[0] == '/');
		fuzz_check_strv(s->mounts[i].options, s->mounts[i].noptions);
	}
	for (size_t i = 0; i < s->nannotations; i++) {
		CHECK(s->annotations[i].key && s->annotations[i].value);
		CHECK(spec_annotation(s, s->annotations[i].key) == s->annotations[i].value);
	}
	CHECK(!s->ndevices || s->devices);
	for (size_t i = 0; i < s->ndevices; i++) {   /* what the agent's MKNOD takes */
		const struct proto_mknod *d = &s->devices[i];
		CHECK(d->target && d->target[0] == '/' && !strstr(d->target, "/../"));
		CHECK(d->kind == 'c' || d->kind == 'b' || d->kind == 'p');
		CHECK(d->mode <= 07777 && d->major <= PROTO_MAX_DEV_MAJOR && d->minor <= PROTO_MAX_DEV_MINOR);
	}
	for (size_t i = 0; i < s->nnamespaces; i++)
		CHECK(s->namespaces[i].type && (!s->namespaces[i].path || s->namespaces[i].path[0] == '/'));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oci_spec s;
	struct rv_err err = { 0 };
	unsigned cpus;
	uint64_t mem;

	if (spec_parse((const char *)data, size, "/bundle", &s, &err) < 0) {
		CHECK(strncmp(err.msg, "config.json: ", 13) == 0 && err.code != 0);
		CHECK(s.doc == NULL && s.oci_version == NULL);
		return 0;
	}
	check_accepted(&s);
	if (spec_vm_shape(&s, &cpus, &mem, &err) == 0) {
		CHECK(cpus >= 1 && cpus <= SPEC_MAX_CPUS);
		CHECK(mem >= SPEC_MIN_MEM_BYTES && mem % (1 << 20) == 0);
	} else {
		CHECK(err.msg[0] != '\0');
	}
	spec_free(&s);
	spec_free(&s);   /* freeing twice is allowed */
	return 0;
}
