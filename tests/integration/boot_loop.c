/* Boots the guest N times in one process and proves that nothing is left
 * behind: no fd, no thread, no guest-memory mapping.
 * usage: boot-loop KERNEL INITRD N */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/vm.h"

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

static int count_guest_mappings(void)
{
	char line[512];
	int n = 0;
	FILE *f = fopen("/proc/self/maps", "r");

	while (f && fgets(line, sizeof(line), f))
		n += strstr(line, "runvm-guest-ram") != NULL;
	if (f)
		fclose(f);
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: boot-loop KERNEL INITRD N\n");
		return 2;
	}
	/* One vCPU: the loop is about leaks; SMP has its own tests, and a loaded
	 * testbed makes SMP guests slow enough to hit the timeout. */
	struct vm_config cfg = { .cpus = 1, .mem_bytes = 128 << 20, .device_fd = -1,
				 .kernel = argv[1], .initrd = argv[2], .console_fd = -1,
				 .timeout_ms = 60000 };
	int runs = atoi(argv[3]);
	int fds = count_entries("/proc/self/fd"), threads = count_entries("/proc/self/task");

	for (int i = 0; i < runs; i++) {
		struct vm_result res;
		struct rv_err err;
		if (vm_run(&cfg, &res, &err) < 0 || !res.has_status || res.status != 0) {
			fprintf(stderr, "boot-loop: run %d: %s\n", i + 1, err.msg);
			return 1;
		}
	}
	int fds_after = count_entries("/proc/self/fd"), threads_after = count_entries("/proc/self/task");
	int maps = count_guest_mappings();
	printf("boot-loop: %d boots; fds %d -> %d, threads %d -> %d, guest mappings left %d\n",
	       runs, fds, fds_after, threads, threads_after, maps);
	return fds == fds_after && threads == threads_after && maps == 0 ? 0 : 1;
}
