/* Test payload, used as /init of a tiny initramfs: reports what the guest sees
 * and ends the VM the way a test asks, through the kernel command line
 * (unknown key=value options become init's environment):
 *
 *   runvm_payload=report    print "runvm-payload: cpus=N ram_bytes=N memtotal_kb=N",
 *                           report status 0 and reset (the default)
 *   runvm_payload=exit:N    report exit status N and reset
 *   runvm_payload=signal:N  report death by signal N and reset
 *   runvm_payload=panic     return from init: the kernel panics
 *   runvm_payload=hang      sleep forever
 *
 * The status goes to the VMM's status port (VM_STATUS_PORT in vmm/vm.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <unistd.h>

#include "init_world.h"

#define STATUS_PORT 0x4f0
#define STATUS_SIGNALED 0x100u

static unsigned count_cpus(void)
{
	char line[256];
	unsigned n = 0;
	FILE *f = fopen("/proc/cpuinfo", "r");

	while (f && fgets(line, sizeof(line), f))
		n += strncmp(line, "processor", 9) == 0;
	if (f)
		fclose(f);
	return n;
}

/* Sum of top-level "System RAM" ranges: exactly what the e820 map gave. */
static unsigned long long ram_bytes(void)
{
	char line[256];
	unsigned long long total = 0, start, end;
	FILE *f = fopen("/proc/iomem", "r");

	while (f && fgets(line, sizeof(line), f))
		if (line[0] != ' ' && strstr(line, "System RAM") &&
		    sscanf(line, "%llx-%llx", &start, &end) == 2)
			total += end - start + 1;
	if (f)
		fclose(f);
	return total;
}

static unsigned long memtotal_kb(void)
{
	char line[256];
	unsigned long kb = 0;
	FILE *f = fopen("/proc/meminfo", "r");

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %lu kB", &kb) == 1)
			break;
	if (f)
		fclose(f);
	return kb;
}

static void finish(unsigned status)
{
	if (ioperm(STATUS_PORT, 4, 1) == 0)
		outl(status, STATUS_PORT);
	else
		perror("runvm-payload: ioperm");
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

int main(void)
{
	const char *mode = getenv("runvm_payload");

	payload_init_world();
	if (!mode || strcmp(mode, "report") == 0) {
		printf("runvm-payload: cpus=%u ram_bytes=%llu memtotal_kb=%lu\n", count_cpus(),
		       ram_bytes(), memtotal_kb());
		fflush(stdout);
		finish(0);
	}
	if (strncmp(mode, "exit:", 5) == 0)
		finish((unsigned)atoi(mode + 5) & 0xff);
	if (strncmp(mode, "signal:", 7) == 0)
		finish(STATUS_SIGNALED | ((unsigned)atoi(mode + 7) & 0x7f));
	if (strcmp(mode, "hang") == 0)
		for (;;)
			pause();
	if (strcmp(mode, "panic") == 0)
		return 3;       /* init exiting is a kernel panic */
	fprintf(stderr, "runvm-payload: unknown runvm_payload=%s\n", mode);
	finish(2);
}
