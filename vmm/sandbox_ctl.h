/* Inside vmm/sandbox: the container's state machine, shared by the
 * controller thread (which talks to the agent) and the control socket's
 * handlers (which the CLI drives). Not for other modules. */
#ifndef RV_SANDBOX_CTL_H
#define RV_SANDBOX_CTL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "vmm/boot_fs.h"
#include "vmm/sandbox.h"

/* runc's statuses; paused is a flag on top of running. */
enum sandbox_status { SB_CREATING, SB_CREATED, SB_RUNNING, SB_STOPPED };

struct sandbox {
	const struct sandbox_config *cfg;
	struct vm_config vm_cfg;
	struct boot_fs *fs;
	unsigned *vol_of;                /* mount index -> its volume */
	struct control_server *ctl;
	int (*mount)(struct sandbox *sb, const struct agent_client *a, struct rv_err *err);

	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum sandbox_status status;
	bool paused;
	bool start_wanted;
	int kill_before_start;           /* a signal `kill` sent to a created container */
	int exit_code;                   /* once stopped: code or 128 + signal; -1: the VM failed */
	struct vm *vm;                   /* while the controller runs */
	const struct agent_client *agent;
	uint32_t exec_id;
	bool prepared;                   /* exec_id is known */
	pthread_t winch;                 /* with a terminal: forwards window-size changes */
	bool winch_started;
	atomic_bool winch_stop;
};

void sandbox_init(struct sandbox *sb, const struct sandbox_config *cfg, struct boot_fs *fs,
		  unsigned *vol_of);
void sandbox_destroy(struct sandbox *sb);

/* The VM is over: wakes every waiter (wait, start) with exit_code. */
void sandbox_finish(struct sandbox *sb, int exit_code);

/* With a terminal: makes the console our controlling terminal and forwards
 * its window-size changes (SIGWINCH, which every thread must block) to the
 * guest process. */
int sandbox_console_start(struct sandbox *sb, struct rv_err *err);
void sandbox_console_stop(struct sandbox *sb);

/* The control socket's handler (vmm/control.h). */
int sandbox_handle(void *arg, const char *req, char *reply, size_t size, struct rv_err *err);

#endif
