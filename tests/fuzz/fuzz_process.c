/* libFuzzer target for a process object alone (runtime/spec_process.c):
 * `runvm exec --process FILE`, runc's process.json, which an engine writes
 * from what a user asked for. A bad one must be an error naming the field,
 * never a crash. Beyond "no crash, no leak, no UB" it checks what a process
 * it accepts promises: args non-empty, env entries NAME=VALUE, cwd absolute,
 * vectors NULL-terminated with counts that match. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/json.h"
#include "runtime/spec.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct oci_process p;
	struct json_doc *doc = NULL;
	struct rv_err err = { 0 };

	memset(&p, 0, sizeof(p));
	if (spec_parse_process((const char *)data, size, &p, &doc, &err) < 0) {
		CHECK(err.code != 0 && err.msg[0] != '\0');
		spec_process_free(&p);
		json_free(doc);
		return 0;
	}
	CHECK(p.nargs >= 1 && p.args[0][0] != '\0');
	fuzz_check_strv(p.args, p.nargs);
	fuzz_check_strv(p.env, p.nenv);
	for (size_t i = 0; i < p.nenv; i++)
		CHECK(strchr(p.env[i], '=') > p.env[i]);
	CHECK(p.cwd && p.cwd[0] == '/');
	CHECK(!p.nadditional_gids || p.additional_gids);
	spec_process_free(&p);
	json_free(doc);
	return 0;
}
