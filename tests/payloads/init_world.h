/* What a test payload does first as a guest's /init: /proc and /dev
 * mounted, its output on the console. Shared by report.c and the
 * hostile-guest suite's program (tests/integration/hostile/). */
#ifndef RV_PAYLOAD_INIT_WORLD_H
#define RV_PAYLOAD_INIT_WORLD_H

#include <fcntl.h>
#include <sys/mount.h>
#include <unistd.h>

static inline void payload_init_world(void)
{
	mount("proc", "/proc", "proc", 0, NULL);
	mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
	int console = open("/dev/console", O_WRONLY);
	if (console >= 0) {
		dup2(console, 1);
		dup2(console, 2);
	}
}

#endif
