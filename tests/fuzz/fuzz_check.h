/* A fuzz target's own checks beyond the sanitizers': a failed one names
 * itself and aborts, which libFuzzer reports as a crash with its input. */
#ifndef RV_FUZZ_CHECK_H
#define RV_FUZZ_CHECK_H

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)                                                                \
	do {                                                                       \
		if (!(cond)) {                                                     \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                   \
		}                                                                  \
	} while (0)

/* A string vector as spec.h promises one: n entries, then NULL. */
static inline void fuzz_check_strv(char **v, size_t n)
{
	CHECK(v != NULL);
	for (size_t i = 0; i < n; i++)
		CHECK(v[i] != NULL);
	CHECK(v[n] == NULL);
}

#endif
