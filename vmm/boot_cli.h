/* `runvm boot`: the VMM process of one sandbox, shaped like `runsc boot`. */
#ifndef RV_BOOT_CLI_H
#define RV_BOOT_CLI_H

#include <stdio.h>

#include "common/err.h"
#include "common/log.h"
#include "vmm/agent_client.h"
#include "vmm/vm.h"

/* Parses boot's flags, runs the VM and sets *exit_code to the guest's status.
 * `boot [FLAGS] -- CMD ARGS...` (the developer entry before the OCI verbs) boots
 * with the agent's initramfs, runs CMD in the guest with our stdio over vsock
 * and exits with CMD's status; without CMD the guest is a payload that reports
 * its status on VM_STATUS_PORT.
 * When the guest process died of a signal (or the VMM got SIGTERM/SIGINT), it
 * re-raises that signal after tearing everything down, so the VMM's wait status
 * is the container's, as containerd's shim expects (DESIGN §1). */
int vmm_boot(int argc, char **argv, const struct rv_log *log, int *exit_code, struct rv_err *err);

struct boot_fs;

/* One command in a VM, with our stdio (`boot -- CMD`, `runvm do`). */
struct boot_command {
	char **argv;
	const char *const *envp;     /* NULL: the agent's default environment */
	const char *cwd;             /* NULL: "/" */
	const char *hostname;        /* NULL: the guest's own */
	bool tty;                    /* a guest pty relayed to stdin/stdout (agent_exec.tty) */
	uint16_t rows, cols;
	const struct boot_fs *fs;    /* NULL: CMD runs in the initramfs */
	/* The guest's interface (vm_config.net), configured before CMD runs;
	 * NULL: none. */
	const struct proto_netconf *netconf;
	/* Optional: told once the process runs and once it has ended, on the
	 * controller's thread; agent is valid in between. Must not block. */
	void (*started)(void *arg, const struct agent_client *agent, uint32_t exec_id);
	void (*ended)(void *arg);
	void *arg;
	int exec_failed;             /* set: the exit status of a command that never started */
	int signal;                  /* set: the signal that ended it (or the VMM), for
				      * the caller to re-raise once it has cleaned up */
};

/* Boots cfg (its kernel and initramfs given), serves fs (rootfs NULL:
 * none), runs bc in the guest and sets *exit_code to its status (128 + the
 * signal, named in bc->signal, when one ended it). */
int boot_run_command(struct vm_config *cfg, struct boot_fs *fs, struct boot_command *bc,
		     int *exit_code, struct rv_err *err);

/* "512M", "2G", "1048576": bytes; -1 with err naming --total-memory on junk. */
int parse_mem_size(const char *s, unsigned long long *bytes, struct rv_err *err);

/* How a VM's end is a host process's status: the guest's exit code, or 128 +
 * the signal that ended it (the guest process's, or the one the VMM got),
 * which *sig then names so that the caller can re-raise it (boot_reraise)
 * once it has cleaned up. */
int boot_exit_status(const struct vm_result *res, int *sig);
void boot_reraise(int sig);

/* The guest's last console lines, for an error that ended the VM. */
void boot_print_console_tail(const struct vm_result *res, FILE *out);

/* The guest kernel and initramfs shipped next to the runvm binary
 * (bin/../share/runvm/): into buf, NULL when the path does not fit. */
#define BOOT_DEFAULT_KERNEL_REL "../share/runvm/vmlinux"
#define BOOT_DEFAULT_INITRD_REL "../share/runvm/initramfs.img"
const char *boot_shipped_file(const char *rel, char *buf, size_t size);

#endif
