/* Inside vmm/sandbox: the verbs that ask the agent, and the JSON they answer
 * the control socket with. The caller holds sb->lock, which keeps sb->agent. */
#ifndef RV_SANDBOX_REPORT_H
#define RV_SANDBOX_REPORT_H

#include <stddef.h>

#include "vmm/sandbox_ctl.h"

/* sig to the container's init, or with all to every container process. */
int sandbox_agent_signal(struct sandbox *sb, int sig, bool all, struct rv_err *err);

/* {"clk_tck":100,"boot_time":S,"uptime_ns":N,"procs":[{"pid":1,"ppid":0,"uid":0,"state":"S","utime":0,"stime":0,
 *   "start":0,"comm":"sh","cmd":"sh -c ..."},...]}, guest pids and clock ticks. */
int sandbox_report_ps(struct sandbox *sb, char *reply, size_t size, struct rv_err *err);

/* runc's stats "data" object: {"cpu":{...},"memory":{...},"pids":{...}}. */
int sandbox_report_stats(struct sandbox *sb, char *reply, size_t size, struct rv_err *err);

#endif
