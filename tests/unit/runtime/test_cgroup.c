#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/cgroup.h"

static void expect_path(const char *in, bool systemd, const char *want)
{
	char out[256];
	struct rv_err err = { 0 };

	cr_assert_eq(cgroup_path(in, systemd, out, sizeof(out), &err), 0, "%s: %s", in, err.msg);
	cr_assert_str_eq(out, want);
}

static void expect_bad(const char *in, bool systemd, const char *words)
{
	char out[256];
	struct rv_err err = { 0 };

	cr_assert_eq(cgroup_path(in, systemd, out, sizeof(out), &err), -1, "%s accepted", in);
	cr_assert(strstr(err.msg, words), "%s: '%s' lacks '%s'", in, err.msg, words);
	cr_assert(strstr(err.msg, "linux.cgroupsPath"), "%s", err.msg);
}

Test(cgroup, cgroupfs_paths_hang_below_each_root)
{
	expect_path("/kubepods/pod1/abc", false, "/kubepods/pod1/abc");
	expect_path("machine/x", false, "/machine/x");
}

Test(cgroup, systemd_form_nests_slices_as_systemd_does)
{
	expect_path("system.slice:runvm:web", true, "/system.slice/runvm-web.scope");
	expect_path("kubepods-besteffort-pod12.slice:cri-containerd:abc", true,
		    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod12.slice/"
		    "cri-containerd-abc.scope");
	expect_path(":runvm:web", true, "/system.slice/runvm-web.scope");
	expect_path("-.slice:p:n", true, "/p-n.scope");
	expect_path("user.slice:p:sub.slice", true, "/user.slice/sub.slice");
}

Test(cgroup, rejects_escapes_and_malformed_units)
{
	expect_bad("/a/../b", false, "'..'");
	expect_bad("/", false, "root cgroup");
	expect_bad("system.slice:only", true, "slice:prefix:name");
	expect_bad("a:b:c:d", true, "slice:prefix:name");
	expect_bad("bad:p:n", true, "NAME.slice");
	expect_bad("a--b.slice:p:n", true, "empty part");
	expect_bad("system.slice:p:a/b", true, "no '/'");
}

/* Two fake hierarchies, a cpuset one among them: the directories are made,
 * the new cpuset inherits cpus and mems, and the pid lands in each. */
Test(cgroup, join_makes_the_cgroup_in_every_hierarchy)
{
	char tmp[] = "/tmp/runvm-cgroup-XXXXXX", info[1024], path[512], buf[64];
	struct rv_err err = { 0 };

	cr_assert(mkdtemp(tmp));
	snprintf(path, sizeof(path), "%s/cpuset", tmp);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/unified", tmp);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/cpuset/cpuset.cpus", tmp);
	FILE *f = fopen(path, "w");
	fputs("0-1\n", f);
	fclose(f);
	snprintf(info, sizeof(info),
		 "30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw\n"
		 "33 30 0:30 / %s/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
		 "40 30 0:37 / %s/unified rw,relatime - cgroup2 cgroup2 rw\n", tmp, tmp);
	cr_assert_eq(cgroup_join("/a/b", 4242, info, &err), -1, "files that do not exist yet");
	/* Real cgroupfs makes cgroup.procs itself; here the test does. */
	snprintf(path, sizeof(path), "mkdir -p %s/cpuset/a/b %s/unified/a/b && touch "
		 "%s/cpuset/a/b/cgroup.procs %s/unified/a/b/cgroup.procs", tmp, tmp, tmp, tmp);
	cr_assert_eq(system(path), 0);
	cr_assert_eq(cgroup_join("/a/b", 4242, info, &err), 0, "%s", err.msg);
	snprintf(path, sizeof(path), "%s/unified/a/b/cgroup.procs", tmp);
	f = fopen(path, "r");
	cr_assert(fgets(buf, sizeof(buf), f));
	fclose(f);
	cr_assert_str_eq(buf, "4242");
	snprintf(path, sizeof(path), "rm -rf %s", tmp);
	system(path);
}
