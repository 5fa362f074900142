/* Inside runtime/state: state.json's text, both ways. */
#ifndef RV_STATE_JSON_H
#define RV_STATE_JSON_H

#include <stddef.h>

#include "runtime/state.h"

/* state.json as state_write stores it: the OCI state plus pidStart and
 * cgroupPath. malloc'd, NULL on ENOMEM. */
char *state_json_private(const struct ct_state *s);

/* Parses buf (len bytes, the contents of file) into *s; a corrupt text is an
 * error naming file and the offset, and leaves *s empty. */
int state_json_parse(const char *buf, size_t len, const char *file, struct ct_state *s,
		     struct rv_err *err);

#endif
