/* `runvm boot`: the VMM process of one sandbox, shaped like `runsc boot`. */
#ifndef RV_BOOT_CLI_H
#define RV_BOOT_CLI_H

#include "common/err.h"
#include "common/log.h"

/* Parses boot's flags, runs the VM and sets *exit_code to the guest's status.
 * `boot [FLAGS] -- CMD ARGS...` (the developer entry before the OCI verbs) boots
 * with the agent's initramfs, runs CMD in the guest with our stdio over vsock
 * and exits with CMD's status; without CMD the guest is a payload that reports
 * its status on VM_STATUS_PORT.
 * When the guest process died of a signal (or the VMM got SIGTERM/SIGINT), it
 * re-raises that signal after tearing everything down, so the VMM's wait status
 * is the container's, as containerd's shim expects (DESIGN §1). */
int vmm_boot(int argc, char **argv, const struct rv_log *log, int *exit_code, struct rv_err *err);

/* "512M", "2G", "1048576": bytes; -1 with err naming --total-memory on junk. */
int parse_mem_size(const char *s, unsigned long long *bytes, struct rv_err *err);

#endif
