/* Mount points a read-only root lacks, made on the host before boot
 * (vmm/boot_fs.c: boot_fs_make_mount_points, boot_fs_make_mount_point), and
 * which destinations an earlier mount holds (boot_fs_below): in a scratch
 * rootfs, with symlinks that lead out of it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vmm/boot_fs.h"

static char top[64], root[96], outside[96];

static void setup(void)
{
	snprintf(top, sizeof(top), "/tmp/runvm-boot-fs.XXXXXX");
	cr_assert_not_null(mkdtemp(top));
	snprintf(root, sizeof(root), "%s/rootfs", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	cr_assert_eq(mkdir(root, 0755), 0);
	cr_assert_eq(mkdir(outside, 0755), 0);
}

static void teardown(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", top);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(boot_fs, .init = setup, .fini = teardown);

/* dir/rel's file type and permission bits, or 0 when it is missing. */
static mode_t mode_of(const char *dir, const char *rel)
{
	char path[PATH_MAX + sizeof(root)];
	struct stat st;

	snprintf(path, sizeof(path), "%s%s", dir, rel);
	return lstat(path, &st) == 0 ? st.st_mode & (S_IFMT | 07777) : 0;
}

static void make_ok(const char *dst, bool file)
{
	struct rv_err err = { 0 };

	cr_assert_eq(boot_fs_make_mount_point(root, dst, file, &err), 0, "%s: %s", dst, err.msg);
}

Test(boot_fs, below_means_the_path_itself_or_under_it_by_whole_names)
{
	cr_assert(boot_fs_below("/a/b", "/a"));
	cr_assert(boot_fs_below("/a", "/a"));
	cr_assert(boot_fs_below("/a/b", "/a/"));
	cr_assert(boot_fs_below("/dev/pts", "/"), "everything is below the root");
	cr_assert_not(boot_fs_below("/ab", "/a"), "a longer name is another directory");
	cr_assert_not(boot_fs_below("/a", "/a/b"));
	cr_assert_not(boot_fs_below("/b/a", "/a"));
}

Test(boot_fs, makes_every_missing_directory_0755_whatever_the_umask)
{
	mode_t old = umask(077);

	make_ok("/made/for/a/bind", false);
	umask(old);
	cr_assert_eq(mode_of(root, "/made"), S_IFDIR | 0755);
	cr_assert_eq(mode_of(root, "/made/for/a"), S_IFDIR | 0755);
	cr_assert_eq(mode_of(root, "/made/for/a/bind"), S_IFDIR | 0755);
}

Test(boot_fs, makes_an_empty_file_for_a_file_bind)
{
	struct stat st;
	char path[PATH_MAX];
	mode_t old = umask(077);

	make_ok("/etc/missing.conf", true);
	umask(old);
	cr_assert_eq(mode_of(root, "/etc"), S_IFDIR | 0755);
	cr_assert_eq(mode_of(root, "/etc/missing.conf"), S_IFREG | 0644);
	snprintf(path, sizeof(path), "%s/etc/missing.conf", root);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_size, 0);
}

Test(boot_fs, leaves_what_is_there_as_it_is)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/etc", root);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/etc/hosts", root);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("kept\n", f);
	fclose(f);
	make_ok("/etc/hosts", true);
	make_ok("/etc", false);
	cr_assert_eq(mode_of(root, "/etc"), S_IFDIR | 0700, "an existing directory keeps its mode");
	char buf[16] = "";
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "kept\n");
}

Test(boot_fs, follows_symlinks_inside_the_rootfs_never_out_of_it)
{
	char link[PATH_MAX], cmd[PATH_MAX], mirror[PATH_MAX];
	struct rv_err err = { 0 };

	/* An absolute link to the host's directory, a relative one that climbs
	 * far above the rootfs, and one to nowhere: where they lead inside the
	 * rootfs exists for the first two only. */
	snprintf(link, sizeof(link), "%s/abs", root);
	cr_assert_eq(symlink(outside, link), 0);
	snprintf(link, sizeof(link), "%s/rel", root);
	cr_assert_eq(symlink("../../../../../../outside", link), 0);
	snprintf(link, sizeof(link), "%s/dangling", root);
	cr_assert_eq(symlink(outside, link), 0);
	snprintf(cmd, sizeof(cmd), "mkdir -p %s%s %s/outside", root, outside, root);
	cr_assert_eq(system(cmd), 0);
	make_ok("/abs/sub", false);
	make_ok("/rel/file", true);
	cr_assert_eq(mode_of(outside, "/sub"), 0, "made through a link in the host's directory");
	cr_assert_eq(mode_of(outside, "/file"), 0, "made through a link in the host's directory");
	snprintf(mirror, sizeof(mirror), "%s/sub", outside);
	cr_assert_eq(mode_of(root, mirror), S_IFDIR | 0755, "the absolute link leads from the rootfs");
	cr_assert_eq(mode_of(root, "/outside/file"), S_IFREG | 0644, "'..' stops at the rootfs");
	snprintf(cmd, sizeof(cmd), "rm -rf %s%s", root, outside);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(boot_fs_make_mount_point(root, "/dangling/x", false, &err), -1);
	cr_assert_eq(err.code, ENOENT, "errno %d (%s)", err.code, err.msg);
	cr_assert_eq(mode_of(outside, "/x"), 0, "made through a link in the host's directory");
}

Test(boot_fs, a_file_on_the_way_is_an_error_naming_it)
{
	struct rv_err err = { 0 };
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/plain", root);
	cr_assert_eq(close(open(path, O_CREAT | O_WRONLY, 0644)), 0);
	cr_assert_eq(boot_fs_make_mount_point(root, "/plain/sub/dir", false, &err), -1);
	cr_assert_eq(err.code, ENOTDIR, "errno %d (%s)", err.code, err.msg);
	cr_assert(strstr(err.msg, "/plain: "), "%s", err.msg);
}

Test(boot_fs, makes_the_missing_mount_points_of_a_read_only_root_in_order)
{
	const struct boot_mount_point mp[] = {
		{ "/proc", false },                  /* there already */
		{ "/dev", false },                   /* missing: a tmpfs, say */
		{ "/dev/pts", false },               /* below it: the guest's to make */
		{ "/made/for/bind", false },
		{ "/etc/made.conf", true },
		{ "/made/for/bind/inner", false },   /* below the bind */
		{ "/made/for", false },              /* above an earlier one: there by now */
	};
	struct rv_err err = { 0 };
	char path[PATH_MAX];
	size_t failed = 99;

	snprintf(path, sizeof(path), "%s/proc", root);
	cr_assert_eq(mkdir(path, 0555), 0);
	cr_assert_eq(boot_fs_make_mount_points(root, mp, sizeof(mp) / sizeof(mp[0]), &failed, &err), 0,
		     "%s", err.msg);
	cr_assert_eq(mode_of(root, "/proc"), S_IFDIR | 0555, "what is there stays");
	cr_assert_eq(mode_of(root, "/dev"), S_IFDIR | 0755);
	cr_assert_eq(mode_of(root, "/dev/pts"), 0, "below an earlier mount: left to the guest");
	cr_assert_eq(mode_of(root, "/made/for/bind"), S_IFDIR | 0755);
	cr_assert_eq(mode_of(root, "/etc/made.conf"), S_IFREG | 0644);
	cr_assert_eq(mode_of(root, "/made/for/bind/inner"), 0, "below the bind: left to the guest");
}

Test(boot_fs, a_mount_point_lands_where_the_containers_lookups_take_it)
{
	const struct boot_mount_point mp[] = { { "/var/run/app", false } };
	struct rv_err err = { 0 };
	char path[PATH_MAX];
	size_t failed;

	/* /var/run -> /run, as in most images: the mount point is made in /run. */
	snprintf(path, sizeof(path), "%s/var", root);
	cr_assert_eq(mkdir(path, 0755), 0);
	snprintf(path, sizeof(path), "%s/var/run", root);
	cr_assert_eq(symlink("/run", path), 0);
	cr_assert_eq(boot_fs_make_mount_points(root, mp, 1, &failed, &err), 0, "%s", err.msg);
	cr_assert_eq(mode_of(root, "/run/app"), S_IFDIR | 0755);
}

Test(boot_fs, a_mount_point_that_cannot_be_made_names_its_mount)
{
	const struct boot_mount_point mp[] = { { "/fine", false }, { "/plain/sub", false } };
	struct rv_err err = { 0 };
	char path[PATH_MAX];
	size_t failed = 99;

	snprintf(path, sizeof(path), "%s/plain", root);
	cr_assert_eq(close(open(path, O_CREAT | O_WRONLY, 0644)), 0);
	cr_assert_eq(boot_fs_make_mount_points(root, mp, 2, &failed, &err), -1);
	cr_assert_eq(failed, 1);
	cr_assert_eq(err.code, ENOTDIR, "errno %d (%s)", err.code, err.msg);
	cr_assert(strstr(err.msg, "/plain"), "%s", err.msg);
}

Test(boot_fs, a_volume_missing_from_a_read_only_root_is_refused_unless_its_points_were_made)
{
	struct boot_fs f = { .rootfs = root, .readonly = true };
	struct boot_volume v = { .arg = "SRC:/work/tmp/inner" };
	struct rv_err err = { 0 };

	snprintf(v.src, sizeof(v.src), "%s", outside);
	snprintf(v.dst, sizeof(v.dst), "/work/tmp/inner");
	cr_assert_eq(boot_fs_check_volume(&f, &v, &err), -1);
	cr_assert_eq(err.code, EROFS, "errno %d (%s)", err.code, err.msg);
	/* boot_fs_make_mount_points left it to the guest: below an earlier mount. */
	f.points_made = true;
	snprintf(v.dst, sizeof(v.dst), "/work/tmp/inner");
	cr_assert_eq(boot_fs_check_volume(&f, &v, &err), 0, "%s", err.msg);
	cr_assert_str_eq(v.dst, "/work/tmp/inner");
}
