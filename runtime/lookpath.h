/* runc's create-time check of the container's executable (its init runs
 * exec.LookPath before it waits for start), made on the host against the
 * bundle's rootfs: so that `create` fails, in runc's words, on a command
 * the container does not have, and `start` only releases the process. */
#ifndef RV_RUNTIME_LOOKPATH_H
#define RV_RUNTIME_LOOKPATH_H

#include "common/err.h"
#include "runtime/spec.h"

/* Fails (ENOENT) only when process.args[0] is surely missing: every place
 * the guest would look lies in the rootfs itself, below no mount of the
 * spec, and holds no executable file of that name. A place below a mount,
 * a relative PATH entry or a spec whose hooks run before the process
 * (prestart, createRuntime, createContainer) could supply it: the guest's
 * exec at start decides then. */
int lookpath_check(const struct oci_spec *spec, struct rv_err *err);

#endif
