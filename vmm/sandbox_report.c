#include "vmm/sandbox_report.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/jsonw.h"

/* Appends printf output at *len; false once it no longer fits. */
static bool appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static bool appendf(char *buf, size_t size, size_t *len, const char *fmt, ...)
{
	va_list ap;

	if (*len >= size)
		return false;
	va_start(ap, fmt);
	int n = vsnprintf(buf + *len, size - *len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= size - *len)
		return false;
	*len += (size_t)n;
	return true;
}

static bool append_quoted(char *buf, size_t size, size_t *len, const char *s)
{
	if (*len >= size)
		return false;
	size_t n = jsonw_quote(buf + *len, size - *len, s);
	if (n >= size - *len)
		return false;
	*len += n;
	return true;
}

int sandbox_agent_signal(struct sandbox *sb, int sig, bool all, struct rv_err *err)
{
	if (!sb->agent)
		return rv_failx(err, ESRCH, "container not running");
	return all ? agent_signal_all(sb->agent, sig, err) :
	       agent_signal(sb->agent, sb->exec_id, sig, err);
}

static bool append_proc(char *buf, size_t size, size_t *len, const struct agent_proc *p, bool first)
{
	return appendf(buf, size, len, "%s{\"pid\":%u,\"ppid\":%u,\"uid\":%u,\"state\":\"%c\","
		       "\"utime\":%llu,\"stime\":%llu,\"start\":%llu,\"comm\":", first ? "" : ",",
		       p->pid, p->ppid, p->uid, p->state >= 'A' && p->state <= 'Z' ? p->state : '?',
		       (unsigned long long)p->utime_ticks, (unsigned long long)p->stime_ticks,
		       (unsigned long long)p->start_ticks) &&
	       append_quoted(buf, size, len, p->comm) &&
	       appendf(buf, size, len, ",\"cmd\":") &&
	       append_quoted(buf, size, len, p->cmdline ? p->cmdline : "") &&
	       appendf(buf, size, len, "}");
}

int sandbox_report_ps(struct sandbox *sb, char *reply, size_t size, struct rv_err *err)
{
	struct agent_ps_info info;
	struct agent_proc *procs;
	size_t n, len = 0;

	if (!sb->agent)
		return rv_failx(err, ESRCH, "container not running");
	if (agent_ps(sb->agent, &procs, &n, &info, err) < 0)
		return -1;
	bool ok = appendf(reply, size, &len, "{\"clk_tck\":%u,\"boot_time\":%llu,"
			  "\"uptime_ns\":%llu,\"procs\":[", info.clk_tck,
			  (unsigned long long)info.boot_time_s, (unsigned long long)info.uptime_ns);
	for (size_t i = 0; ok && i < n; i++)
		ok = append_proc(reply, size, &len, &procs[i], i == 0);
	ok = ok && appendf(reply, size, &len, "]}");
	agent_ps_free(procs, n);
	return ok ? 0 : rv_failx(err, EMSGSIZE, "the process list is too long for one reply");
}

int sandbox_report_stats(struct sandbox *sb, char *reply, size_t size, struct rv_err *err)
{
	struct agent_stats st;
	size_t len = 0;

	if (!sb->agent)
		return rv_failx(err, ESRCH, "container not running");
	if (agent_stats(sb->agent, &st, err) < 0)
		return -1;
	bool ok = appendf(reply, size, &len, "{\"cpu\":{\"usage\":{\"total\":%llu,\"percpu\":[",
			  (unsigned long long)st.cpu_total_ns);
	for (uint32_t i = 0; ok && i < st.ncpus && i < AGENT_MAX_CPUS; i++)
		ok = appendf(reply, size, &len, "%s%llu", i ? "," : "",
			     (unsigned long long)st.percpu_ns[i]);
	ok = ok && appendf(reply, size, &len, "],\"kernel\":%llu,\"user\":%llu},\"throttling\":{}},"
			   "\"memory\":{\"usage\":{\"limit\":%llu,\"usage\":%llu,\"max\":0,\"failcnt\":0},"
			   "\"cache\":%llu},\"pids\":{\"current\":%u}}",
			   (unsigned long long)st.cpu_kernel_ns, (unsigned long long)st.cpu_user_ns,
			   (unsigned long long)st.mem_total_bytes, (unsigned long long)st.mem_used_bytes,
			   (unsigned long long)st.mem_cache_bytes, st.pids_current);
	return ok ? 0 : rv_failx(err, EMSGSIZE, "stats too long for one reply");
}
