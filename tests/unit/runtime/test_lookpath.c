/* runvm create's lookup of the container's executable on the host
 * (runtime/lookpath.c): refused only where the guest surely finds nothing,
 * in a scratch rootfs with busybox-style links and a /bin symlink. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/lookpath.h"

static char top[64], root[96];

static void put(const char *rel, mode_t mode)
{
	char path[256];

	snprintf(path, sizeof(path), "%s%s", root, rel);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fclose(f);
	cr_assert_eq(chmod(path, mode), 0);
}

static void setup(void)
{
	char path[256];

	snprintf(top, sizeof(top), "/tmp/runvm-lookpath.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(root, sizeof(root), "%s/rootfs", top);
	cr_assert_eq(mkdir(root, 0755), 0);
	const char *dirs[] = { "/usr", "/usr/bin", "/opt", "/work" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s%s", root, dirs[i]);
		cr_assert_eq(mkdir(path, 0755), 0);
	}
	put("/usr/bin/busybox", 0755);
	put("/usr/bin/notes.txt", 0644);
	put("/work/tool", 0755);
	/* /bin -> /usr/bin (absolute: inside the rootfs, not the host's) */
	snprintf(path, sizeof(path), "%s/bin", root);
	cr_assert_eq(symlink("/usr/bin", path), 0);
	snprintf(path, sizeof(path), "%s/usr/bin/true", root);
	cr_assert_eq(symlink("busybox", path), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(lookpath, .init = setup, .fini = teardown);

struct fixture {
	struct oci_spec spec;
	char *args[2], *env[4];
	struct oci_mount mounts[2];
};

static void make(struct fixture *f, const char *arg0, const char *path_env)
{
	memset(f, 0, sizeof(*f));
	f->spec.root_path = root;
	f->args[0] = (char *)arg0;
	f->spec.process.args = f->args;
	f->spec.process.nargs = 1;
	f->env[0] = (char *)"HOME=/root";
	f->env[1] = (char *)path_env;
	f->spec.process.env = f->env;
	f->spec.process.cwd = (char *)"/work";
}

static int check(struct fixture *f, struct rv_err *err)
{
	memset(err, 0, sizeof(*err));
	return lookpath_check(&f->spec, err);
}

Test(lookpath, found_through_symlinks_in_the_rootfs)
{
	struct fixture f;
	struct rv_err err;

	make(&f, "true", "PATH=/sbin:/bin");
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	make(&f, "/bin/true", "PATH=/nowhere");
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	make(&f, "./tool", "PATH=/bin");   /* relative to process.cwd */
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
}

Test(lookpath, missing_in_path_is_runcs_error)
{
	struct fixture f;
	struct rv_err err;

	make(&f, "no-such-program", "PATH=/usr/local/bin:/bin");
	cr_assert_eq(check(&f, &err), -1);
	cr_expect_eq(err.code, ENOENT);
	cr_expect(strstr(err.msg, "exec: \"no-such-program\": executable file not found in $PATH"),
		  "%s", err.msg);
	cr_expect(strstr(err.msg, "process.args[0]"), "%s", err.msg);
}

Test(lookpath, missing_path_and_not_executable_are_refused_in_gos_words)
{
	struct fixture f;
	struct rv_err err;

	make(&f, "/bin/no-such", "PATH=/bin");
	cr_assert_eq(check(&f, &err), -1);
	cr_expect(strstr(err.msg, "exec: \"/bin/no-such\": stat /bin/no-such: no such file or "
			 "directory"), "%s", err.msg);
	make(&f, "/usr/bin/notes.txt", "PATH=/bin");   /* there, but no exec bit */
	cr_assert_eq(check(&f, &err), -1);
	cr_expect(strstr(err.msg, "exec: \"/usr/bin/notes.txt\": permission denied"), "%s", err.msg);
	make(&f, "/usr", "PATH=/bin");
	cr_assert_eq(check(&f, &err), -1);
	cr_expect(strstr(err.msg, "exec: \"/usr\": is a directory"), "%s", err.msg);
	make(&f, "notes.txt", "PATH=/bin");   /* in PATH without an exec bit: not found */
	cr_assert_eq(check(&f, &err), -1);
	cr_expect(strstr(err.msg, "executable file not found in $PATH"), "%s", err.msg);
	/* A file on the way could be below a mount the host cannot see: let the guest say. */
	make(&f, "/bin/busybox/x", "PATH=/bin");
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
}

Test(lookpath, the_first_path_is_the_one_execvp_takes)
{
	struct fixture f;
	struct rv_err err;

	make(&f, "true", "PATH=/bin");
	f.env[2] = (char *)"PATH=/nowhere";
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
}

Test(lookpath, a_mount_or_an_unknown_place_could_supply_it)
{
	struct fixture f;
	struct rv_err err;

	/* A PATH dir below a mount: the guest sees the mount, not the rootfs. */
	make(&f, "tool-from-a-volume", "PATH=/opt/tools/bin:/bin");
	f.mounts[0] = (struct oci_mount){ .destination = (char *)"/opt/tools", .type = (char *)"bind",
					  .source = (char *)"/nonexistent" };
	f.spec.mounts = f.mounts;
	f.spec.nmounts = 1;
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	/* The same through the /bin symlink: it lands on a mount at /usr/bin. */
	make(&f, "from-volume", "PATH=/bin");
	f.mounts[0] = (struct oci_mount){ .destination = (char *)"/usr/bin" };
	f.spec.mounts = f.mounts;
	f.spec.nmounts = 1;
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	/* A destination written through a symlink, or not clean, is where it lands. */
	make(&f, "/usr/bin/from-volume", "PATH=/bin");
	f.mounts[0] = (struct oci_mount){ .destination = (char *)"/bin" };
	f.spec.mounts = f.mounts;
	f.spec.nmounts = 1;
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	make(&f, "tool", "PATH=/opt/tools/bin");
	f.mounts[0] = (struct oci_mount){ .destination = (char *)"/opt/y/../tools" };
	f.mounts[1] = (struct oci_mount){ .destination = (char *)"/opt//x" };
	f.spec.mounts = f.mounts;
	f.spec.nmounts = 2;
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	/* No PATH in a non-empty environment: execvp's own default. */
	make(&f, "no-such-program", NULL);
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	/* A relative PATH entry is the cwd's at exec. */
	make(&f, "no-such-program", "PATH=bin:/bin");
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
}

Test(lookpath, hooks_before_the_process_could_make_it)
{
	struct fixture f;
	struct rv_err err;
	struct oci_hook *hook = NULL;

	make(&f, "no-such-program", "PATH=/bin");
	f.spec.hooks.list[HOOK_CREATE_RUNTIME] = hook;
	f.spec.hooks.n[HOOK_CREATE_RUNTIME] = 1;
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	f.spec.hooks.n[HOOK_CREATE_RUNTIME] = 0;
	f.spec.hooks.n[HOOK_POSTSTART] = 1;   /* after the exec: no help */
	cr_expect_eq(check(&f, &err), -1);
}

Test(lookpath, an_empty_environment_gets_the_agents_path)
{
	struct fixture f;
	struct rv_err err;

	make(&f, "true", NULL);
	f.env[0] = NULL;
	cr_expect_eq(check(&f, &err), 0, "%s", err.msg);
	make(&f, "no-such-program", NULL);
	f.env[0] = NULL;
	cr_expect_eq(check(&f, &err), -1);
}
