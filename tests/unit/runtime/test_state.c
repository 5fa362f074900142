#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "runtime/state.h"

/* Each test runs in its own process (Criterion forks), with its own root. */
static char tmp[] = "/tmp/runvm-state-test.XXXXXX";
static char root[sizeof(tmp) + 16];

static void make_root(void)
{
	cr_assert_not_null(mkdtemp(tmp));
	snprintf(root, sizeof(root), "%s/root", tmp);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void drop_root(void)
{
	nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(state, .init = make_root, .fini = drop_root);

static char *path_in(const char *rel)
{
	static char buf[4][512];
	static int next;
	char *p = buf[next++ % 4];

	snprintf(p, sizeof(buf[0]), "%s/%s", tmp, rel);
	return p;
}

static void put_bytes(int dirfd, const char *name, const char *data, size_t len)
{
	_cleanup_close_ int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, data, len), (ssize_t)len);
}

static void put_file(int dirfd, const char *name, const char *text)
{
	put_bytes(dirfd, name, text, strlen(text));
}

static char *slurp_at(int dirfd, const char *name)
{
	static char buf[8192];
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "open %s", name);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	cr_assert_geq(n, 0);
	buf[n] = '\0';
	return buf;
}

static int make_container(const char *id)
{
	struct rv_err err;
	int fd = -1;

	cr_assert_eq(state_create(root, id, &fd, &err), 0, "%s", err.msg);
	return fd;
}

static struct ct_annotation sample_annotations[] = {
	{ "org.example.z", "last" },
	{ "io.runvm.cpus", "2" },
};

static struct ct_state sample_state(void)
{
	return (struct ct_state){
		.id = "web-1", .bundle = "/b/web", .rootfs = "/b/web/rootfs",
		.created = "2024-01-02T03:04:05.123456789Z", .status = "running",
		.pid = 4242, .pid_start = 99887766, .owner = "",
		.annotations = sample_annotations, .nannotations = 2,
	};
}

/* ---- ids ---- */

Test(state, id_accepts_runc_ids_up_to_1024_bytes)
{
	struct rv_err err;
	char long_id[STATE_ID_MAX + 1];

	memset(long_id, 'a', STATE_ID_MAX);
	long_id[STATE_ID_MAX] = '\0';
	cr_assert_eq(state_check_id("a", &err), 0);
	cr_assert_eq(state_check_id("Web_1.2+3-x", &err), 0);
	cr_assert_eq(state_check_id("0abc", &err), 0);
	cr_assert_eq(state_check_id(long_id, &err), 0);
}

Test(state, id_empty_is_rejected)
{
	struct rv_err err;

	cr_assert_eq(state_check_id("", &err), -1);
	cr_assert_eq(err.code, EINVAL);
	cr_assert_str_eq(err.msg, "container id is empty");
}

Test(state, id_with_slash_names_the_id_and_the_rule)
{
	struct rv_err err;

	cr_assert_eq(state_check_id("a/b", &err), -1);
	cr_assert_str_eq(err.msg, "container id 'a/b': use letters, digits and _ . + - only "
			 "(starting with a letter or digit)");
}

Test(state, id_dotdot_and_leading_punctuation_are_rejected)
{
	struct rv_err err;

	cr_assert_eq(state_check_id("..", &err), -1);
	cr_assert_eq(state_check_id(".", &err), -1);
	cr_assert_eq(state_check_id("-x", &err), -1);
	cr_assert_eq(state_check_id("_x", &err), -1);
	cr_assert_eq(state_check_id("a b", &err), -1);
	cr_assert_eq(state_check_id("a\nb", &err), -1);
	cr_assert_not_null(strstr(err.msg, "'a?b'"), "control bytes are not echoed: %s", err.msg);
}

Test(state, id_of_1025_bytes_is_rejected_with_its_length)
{
	struct rv_err err;
	char long_id[STATE_ID_MAX + 2];

	memset(long_id, 'a', STATE_ID_MAX + 1);
	long_id[STATE_ID_MAX + 1] = '\0';
	cr_assert_eq(state_check_id(long_id, &err), -1);
	cr_assert_not_null(strstr(err.msg, "1025 bytes"), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "at most 1024"), "%s", err.msg);
}

/* ---- create, open ---- */

Test(state, create_makes_root_0711_and_container_dir_0700)
{
	struct stat st;
	_cleanup_close_ int fd = make_container("c1");

	cr_assert_eq(stat(root, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0711);
	cr_assert_eq(fstat(fd, &st), 0);
	cr_assert(S_ISDIR(st.st_mode));
	cr_assert_eq(st.st_mode & 07777, 0700);
}

Test(state, create_twice_says_already_exists)
{
	struct rv_err err;
	int fd = -1;

	close(make_container("c1"));
	cr_assert_eq(state_create(root, "c1", &fd, &err), -1);
	cr_assert_eq(err.code, EEXIST);
	cr_assert_str_eq(err.msg, "container 'c1' already exists");
}

Test(state, create_under_uncreatable_root_names_root_and_suggests_flag)
{
	struct rv_err err;
	int fd = -1;
	char bad[600];
	_cleanup_close_ int tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	put_file(tmpfd, "plain", "x");
	snprintf(bad, sizeof(bad), "%s/sub", path_in("plain"));
	cr_assert_eq(state_create(bad, "c1", &fd, &err), -1);
	cr_assert_eq(err.code, ENOTDIR);
	cr_assert_not_null(strstr(err.msg, bad), "%s", err.msg);
	cr_assert_not_null(strstr(err.msg, "--root"), "%s", err.msg);
}

Test(state, create_rejects_a_bad_id_before_touching_disk)
{
	struct rv_err err;
	int fd = -1;

	cr_assert_eq(state_create(root, "../escape", &fd, &err), -1);
	cr_assert_eq(access(root, F_OK), -1, "nothing was created");
}

Test(state, open_missing_says_does_not_exist)
{
	struct rv_err err;
	int fd = -1;

	cr_assert_eq(state_open(root, "nope", &fd, &err), -1);
	cr_assert_eq(err.code, ENOENT);
	cr_assert_str_eq(err.msg, "container 'nope' does not exist");
	close(make_container("other"));
	cr_assert_eq(state_open(root, "nope", &fd, &err), -1);
	cr_assert_str_eq(err.msg, "container 'nope' does not exist");
}

Test(state, open_finds_a_created_container)
{
	struct rv_err err;
	int fd = -1;

	close(make_container("c1"));
	cr_assert_eq(state_open(root, "c1", &fd, &err), 0, "%s", err.msg);
	cr_assert_eq(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	close(fd);
}

/* ---- state.json ---- */

Test(state, write_read_round_trip_keeps_every_field)
{
	struct rv_err err;
	struct ct_annotation ann[] = {
		{ "quote\"d", "back\\slash" },
		{ "unicode", "caf\xc3\xa9 \xf0\x9f\x98\x80 \xe2\x80\xa8" },
		{ "ctl", "line1\nline2\ttab\x01" },
		{ "empty", "" },
	};
	struct ct_state in = sample_state(), out;
	_cleanup_close_ int fd = make_container("web-1");

	in.annotations = ann;
	in.nannotations = 4;
	cr_assert_eq(state_write(fd, &in, &err), 0, "%s", err.msg);
	cr_assert_eq(state_read(fd, &out, &err), 0, "%s", err.msg);
	cr_assert_str_eq(out.id, in.id);
	cr_assert_str_eq(out.bundle, in.bundle);
	cr_assert_str_eq(out.rootfs, in.rootfs);
	cr_assert_str_eq(out.created, in.created);
	cr_assert_str_eq(out.status, in.status);
	cr_assert_str_eq(out.owner, "");
	cr_assert_eq(out.pid, 4242);
	cr_assert_eq(out.pid_start, 99887766);
	cr_assert_eq(out.nannotations, 4);
	for (size_t i = 0; i < 4; i++) {   /* a map: its order is not kept */
		size_t k = 0;
		while (k < 4 && strcmp(out.annotations[k].key, ann[i].key) != 0)
			k++;
		cr_assert_lt(k, 4, "annotation %s lost", ann[i].key);
		cr_assert_str_eq(out.annotations[k].value, ann[i].value);
	}
	ct_state_free(&out);
	cr_assert_null(out.id);
}

Test(state, write_is_0600_and_leaves_no_temp_file)
{
	struct rv_err err;
	struct ct_state s = sample_state();
	struct stat st;
	_cleanup_close_ int fd = make_container("web-1");

	cr_assert_eq(state_write(fd, &s, &err), 0, "%s", err.msg);
	s.status = "stopped";
	cr_assert_eq(state_write(fd, &s, &err), 0, "%s", err.msg);
	cr_assert_eq(fstatat(fd, STATE_FILE, &st, 0), 0);
	cr_assert_eq(st.st_mode & 07777, 0600);

	DIR *d = fdopendir(dup(fd));
	struct dirent *e;
	int entries = 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			entries++;
		else
			cr_assert(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0,
				  "temp file left: %s", e->d_name);
	closedir(d);
	cr_assert_eq(entries, 1);
}

Test(state, state_json_is_the_oci_state_plus_pid_start)
{
	struct rv_err err;
	struct ct_state s = sample_state();
	_cleanup_close_ int fd = make_container("web-1");

	s.nannotations = 0;
	cr_assert_eq(state_write(fd, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(slurp_at(fd, STATE_FILE),
			 "{\n"
			 "  \"ociVersion\": \"1.0.2\",\n"
			 "  \"id\": \"web-1\",\n"
			 "  \"pid\": 4242,\n"
			 "  \"pidStart\": 99887766,\n"
			 "  \"status\": \"running\",\n"
			 "  \"bundle\": \"/b/web\",\n"
			 "  \"rootfs\": \"/b/web/rootfs\",\n"
			 "  \"created\": \"2024-01-02T03:04:05.123456789Z\",\n"
			 "  \"owner\": \"\"\n"
			 "}");
}

Test(state, read_decodes_escapes_and_skips_unknown_members)
{
	struct rv_err err;
	struct ct_state s;
	_cleanup_close_ int fd = make_container("c1");

	put_file(fd, STATE_FILE,
		 " {\"id\":\"c1\",\"pid\":0,\"pidStart\":18446744073709551615,\"status\":\"created\","
		 "\"bundle\":\"/b\\/x\",\"rootfs\":\"\\u00e9\\ud83d\\ude00\",\"created\":\"t\","
		 "\"future\":\"x\",\"futureNum\":7,"
		 "\"annotations\":{\"k\":\"\\\"\\\\\\b\\f\\n\\r\\t\"}}\n");
	cr_assert_eq(state_read(fd, &s, &err), 0, "%s", err.msg);
	cr_assert_str_eq(s.bundle, "/b/x");
	cr_assert_str_eq(s.rootfs, "\xc3\xa9\xf0\x9f\x98\x80");
	cr_assert_eq(s.pid_start, UINT64_MAX);
	cr_assert_str_eq(s.owner, "", "a missing owner reads as root's \"\"");
	cr_assert_eq(s.nannotations, 1);
	cr_assert_str_eq(s.annotations[0].value, "\"\\\b\f\n\r\t");
	ct_state_free(&s);
}

static void assert_corrupt_bytes(const char *text, size_t len, const char *why)
{
	struct rv_err err;
	struct ct_state s;
	_cleanup_close_ int fd = -1;
	char expect[600];
	struct rv_err ignored;

	if (state_open(root, "bad", &fd, &ignored) < 0)
		fd = make_container("bad");
	put_bytes(fd, STATE_FILE, text, len);
	cr_assert_eq(state_read(fd, &s, &err), -1, "accepted %s: %s", why, text);
	cr_assert_eq(err.code, EINVAL, "%s", why);
	snprintf(expect, sizeof(expect), "corrupt state file %s/bad/%s: ", root, STATE_FILE);
	cr_assert_eq(strncmp(err.msg, expect, strlen(expect)), 0, "%s: %s", why, err.msg);
	cr_assert_null(s.id, "a failed read leaves nothing to free");
}

static void assert_corrupt(const char *text, const char *why)
{
	assert_corrupt_bytes(text, strlen(text), why);
}

#define GOOD_HEAD "{\"id\":\"c\",\"pid\":1,\"pidStart\":2,\"status\":\"s\",\"bundle\":\"b\",\"rootfs\":\"r\""

Test(state, corrupt_state_json_is_an_error_naming_the_file)
{
	assert_corrupt("", "empty file");
	assert_corrupt("   \n", "only whitespace");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\"", "truncated before '}'");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t", "truncated in a string");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\"}}", "junk after");
	assert_corrupt(GOOD_HEAD "}", "missing created");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\",\"id\":\"d\"}", "duplicate id");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\\x\"}", "bad escape");
	assert_corrupt(GOOD_HEAD ",\"created\":\"\\ud800\"}", "lone high surrogate");
	assert_corrupt(GOOD_HEAD ",\"created\":\"\\udc00\"}", "lone low surrogate");
	assert_corrupt(GOOD_HEAD ",\"created\":\"\\u0000\"}", "NUL");
	assert_corrupt(GOOD_HEAD ",\"created\":\"\\u12\"}", "short \\u");
	assert_corrupt(GOOD_HEAD ",\"created\":\"a\nb\"}", "raw newline in a string");
	assert_corrupt(GOOD_HEAD ",\"created\":7}", "number for a string");
	assert_corrupt("{\"id\":\"c\",\"pid\":-1}", "negative pid");
	assert_corrupt("{\"id\":\"c\",\"pid\":2147483648}", "pid beyond pid_t");
	assert_corrupt("{\"id\":\"c\",\"pid\":01}", "leading zero");
	assert_corrupt("{\"id\":\"c\",\"pidStart\":18446744073709551616}", "u64 overflow");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\",\"annotations\":{\"k\":1}}", "annotation not a string");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\",\"annotations\":{\"k\":\"v\",}}", "trailing comma");
	assert_corrupt(GOOD_HEAD ",\"created\":\"t\",\"x\":[1]}", "unknown array member");
	assert_corrupt("[]", "not an object");
	assert_corrupt_bytes("\0\0\0", 3, "zeros from a crash");
	assert_corrupt_bytes(GOOD_HEAD ",\"created\":\"a\0b\"}", sizeof(GOOD_HEAD) + 16,
			     "raw NUL in a string");
}

Test(state, read_with_no_state_json_names_the_file)
{
	struct rv_err err;
	struct ct_state s;
	_cleanup_close_ int fd = make_container("c1");
	char expect[600];

	cr_assert_eq(state_read(fd, &s, &err), -1);
	cr_assert_eq(err.code, ENOENT);
	snprintf(expect, sizeof(expect), "read %s/c1/state.json: No such file or directory", root);
	cr_assert_str_eq(err.msg, expect);
}

Test(state, oversized_state_json_is_refused)
{
	struct rv_err err;
	struct ct_state s;
	_cleanup_close_ int fd = make_container("c1");
	_cleanup_close_ int f = openat(fd, STATE_FILE, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);

	cr_assert_eq(ftruncate(f, STATE_JSON_MAX_BYTES + 1), 0);
	cr_assert_eq(state_read(fd, &s, &err), -1);
	cr_assert_eq(err.code, EFBIG, "%s", err.msg);
}

/* ---- remove ---- */

Test(state, remove_deletes_the_dir_and_all_it_holds)
{
	struct rv_err err;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	_cleanup_close_ int fd = make_container("c1");
	int lockfd;

	put_file(fd, "exit", "0");
	cr_assert_eq(state_lock(fd, &lockfd, &err), 0, "%s", err.msg);
	cr_assert_eq(mkfifoat(fd, "fifo", 0600), 0);
	cr_assert_eq(mkdirat(fd, "sub", 0700), 0);
	cr_assert_eq(mkdirat(fd, "sub/deeper", 0700), 0);
	_cleanup_close_ int sub = openat(fd, "sub/deeper", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	put_file(sub, "f", "x");
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/c1/%s", root, STATE_CONTROL_SOCK);
	_cleanup_close_ int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(sock, (struct sockaddr *)&sa, sizeof(sa)), 0);

	cr_assert_eq(state_remove(root, "c1", &err), 0, "%s", err.msg);
	cr_assert_eq(faccessat(AT_FDCWD, path_in("root/c1"), F_OK, 0), -1);
	cr_assert_eq(errno, ENOENT);
	close(lockfd);
}

Test(state, remove_never_follows_a_planted_symlink)
{
	struct rv_err err;
	_cleanup_close_ int tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int fd = make_container("c1");

	cr_assert_eq(mkdirat(tmpfd, "outside", 0700), 0);
	put_file(tmpfd, "outside/precious", "keep me");
	put_file(tmpfd, "outside-file", "keep me too");
	cr_assert_eq(symlinkat(path_in("outside"), fd, "to-dir"), 0);
	cr_assert_eq(symlinkat(path_in("outside-file"), fd, "to-file"), 0);
	cr_assert_eq(symlinkat(path_in("outside"), fd, STATE_FILE), 0);

	cr_assert_eq(state_remove(root, "c1", &err), 0, "%s", err.msg);
	cr_assert_eq(access(path_in("root/c1"), F_OK), -1);
	cr_assert_str_eq(slurp_at(tmpfd, "outside/precious"), "keep me");
	cr_assert_str_eq(slurp_at(tmpfd, "outside-file"), "keep me too");
}

Test(state, remove_of_a_symlinked_container_dir_leaves_its_target)
{
	struct rv_err err;
	_cleanup_close_ int tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	close(make_container("real"));
	cr_assert_eq(mkdirat(tmpfd, "outside", 0700), 0);
	put_file(tmpfd, "outside/precious", "keep me");
	cr_assert_eq(symlink(path_in("outside"), path_in("root/evil")), 0);
	cr_assert_eq(state_remove(root, "evil", &err), -1);
	cr_assert_str_eq(slurp_at(tmpfd, "outside/precious"), "keep me");
}

Test(state, remove_of_a_missing_container_succeeds)
{
	struct rv_err err;

	cr_assert_eq(state_remove(root, "never", &err), 0, "missing root: %s", err.msg);
	close(make_container("other"));
	cr_assert_eq(state_remove(root, "never", &err), 0, "missing dir: %s", err.msg);
}

/* ---- list ---- */

Test(state, list_is_sorted_and_skips_junk)
{
	struct rv_err err;
	char **ids;
	size_t n;
	_cleanup_close_ int rootfd = -1;

	close(make_container("b"));
	close(make_container("a"));
	close(make_container("C-1"));
	close(make_container("a.2"));
	rootfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	cr_assert_eq(mkdirat(rootfd, ".hidden", 0700), 0);
	cr_assert_eq(mkdirat(rootfd, "-dash", 0700), 0);
	cr_assert_eq(mkdirat(rootfd, "sp ace", 0700), 0);
	put_file(rootfd, "plainfile", "not a container");
	cr_assert_eq(symlinkat("/tmp", rootfd, "link"), 0);

	cr_assert_eq(state_list(root, &ids, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 4);
	cr_assert_str_eq(ids[0], "C-1");
	cr_assert_str_eq(ids[1], "a");
	cr_assert_str_eq(ids[2], "a.2");
	cr_assert_str_eq(ids[3], "b");
	state_list_free(ids, n);
}

Test(state, list_of_a_missing_root_is_empty)
{
	struct rv_err err;
	char **ids = (char **)1;
	size_t n = 7;

	cr_assert_eq(state_list(root, &ids, &n, &err), 0, "%s", err.msg);
	cr_assert_eq(n, 0);
	state_list_free(ids, n);
}

/* ---- processes ---- */

Test(state, pid_start_of_self_matches_and_is_alive)
{
	struct rv_err err;
	uint64_t a, b;

	cr_assert_eq(state_pid_start(getpid(), &a, &err), 0, "%s", err.msg);
	cr_assert_eq(state_pid_start(getpid(), &b, &err), 0, "%s", err.msg);
	cr_assert_eq(a, b);
	cr_assert(a > 0);
	cr_assert(state_pid_alive(getpid(), a));
}

Test(state, same_pid_with_another_start_is_not_alive)
{
	struct rv_err err;
	uint64_t start;

	cr_assert_eq(state_pid_start(getpid(), &start, &err), 0, "%s", err.msg);
	cr_assert_not(state_pid_alive(getpid(), start + 1));
	cr_assert_not(state_pid_alive(0, 0));
	cr_assert_not(state_pid_alive(-1, start));
}

Test(state, exited_and_reaped_pid_is_not_alive)
{
	struct rv_err err;
	uint64_t start;
	int fds[2];

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char c;
		_exit(read(fds[0], &c, 1) == 1 ? 0 : 1);
	}
	cr_assert_eq(state_pid_start(pid, &start, &err), 0, "%s", err.msg);
	cr_assert(state_pid_alive(pid, start));
	cr_assert_eq(write(fds[1], "x", 1), 1);
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_not(state_pid_alive(pid, start));
	cr_assert_eq(state_pid_start(pid, &start, &err), -1);
	cr_assert_eq(err.code, ENOENT);
}

Test(state, zombie_is_not_alive)
{
	struct rv_err err;
	uint64_t start;
	int fds[2];

	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		char c;
		_exit(read(fds[0], &c, 1) == 1 ? 0 : 1);
	}
	cr_assert_eq(state_pid_start(pid, &start, &err), 0, "%s", err.msg);
	cr_assert_eq(write(fds[1], "x", 1), 1);
	siginfo_t si;
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT), 0, "exited, not reaped");
	cr_assert_not(state_pid_alive(pid, start));
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
}

/* comm is the process's own name, so a process can put ") 9 9" in it. */
Test(state, pid_start_survives_a_hostile_comm)
{
	struct rv_err err;
	uint64_t before, after;

	cr_assert_eq(state_pid_start(getpid(), &before, &err), 0, "%s", err.msg);
	cr_assert_eq(prctl(PR_SET_NAME, "a) b Z 1 2 (c)"), 0);
	cr_assert_eq(state_pid_start(getpid(), &after, &err), 0, "%s", err.msg);
	cr_assert_eq(before, after);
	cr_assert(state_pid_alive(getpid(), before));
}

/* ---- pid file ---- */

Test(state, pid_file_is_the_bare_pid_replaced_atomically)
{
	struct rv_err err;
	_cleanup_close_ int tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	struct stat st;

	put_file(tmpfd, "pid", "old contents that are longer");
	cr_assert_eq(stat(path_in("pid"), &st), 0);
	ino_t old_ino = st.st_ino;
	cr_assert_eq(state_write_pid_file(path_in("pid"), 12345, &err), 0, "%s", err.msg);
	cr_assert_str_eq(slurp_at(tmpfd, "pid"), "12345");
	cr_assert_eq(stat(path_in("pid"), &st), 0);
	cr_assert_neq(st.st_ino, old_ino, "renamed over, not rewritten in place");

	DIR *d = fdopendir(dup(tmpfd));
	struct dirent *e;
	while ((e = readdir(d)))
		cr_assert(strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
			  e->d_name[0] != '.', "temp file left: %s", e->d_name);
	closedir(d);
}

Test(state, pid_file_relative_path_lands_in_the_cwd)
{
	struct rv_err err;
	_cleanup_close_ int tmpfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	cr_assert_eq(chdir(tmp), 0);
	cr_assert_eq(state_write_pid_file("rel.pid", 7, &err), 0, "%s", err.msg);
	cr_assert_str_eq(slurp_at(tmpfd, "rel.pid"), "7");
}

Test(state, pid_file_in_a_missing_directory_names_it)
{
	struct rv_err err;
	char file[600], expect[1400];

	snprintf(file, sizeof(file), "%s/pid", path_in("nodir"));
	cr_assert_eq(state_write_pid_file(file, 1, &err), -1);
	cr_assert_eq(err.code, ENOENT);
	snprintf(expect, sizeof(expect), "pid file %s: directory %s does not exist",
		 file, path_in("nodir"));
	cr_assert_str_eq(err.msg, expect);
}

/* ---- lock ---- */

static int child_try_lock(void)
{
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct rv_err err;
		int dirfd, fd;
		if (state_open(root, "c1", &dirfd, &err) < 0)
			_exit(2);
		fd = openat(dirfd, STATE_LOCK_FILE, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			_exit(3);
		_exit(flock(fd, LOCK_EX | LOCK_NB) == 0 ? 0 : errno == EWOULDBLOCK ? 1 : 4);
	}
	int status;
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	return WEXITSTATUS(status);
}

Test(state, lock_excludes_a_second_locker_until_closed)
{
	struct rv_err err;
	_cleanup_close_ int fd = make_container("c1");
	int lockfd;

	cr_assert_eq(state_lock(fd, &lockfd, &err), 0, "%s", err.msg);
	cr_assert_eq(fcntl(lockfd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	cr_assert_eq(child_try_lock(), 1, "a second locker must be refused");
	close(lockfd);
	cr_assert_eq(child_try_lock(), 0, "closing the fd unlocks");
}

Test(state, lock_waiter_learns_the_container_was_removed)
{
	struct rv_err err;
	_cleanup_close_ int fd = make_container("c1");
	int lockfd, status;

	cr_assert_eq(state_lock(fd, &lockfd, &err), 0, "%s", err.msg);
	pid_t pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int l;
		close(lockfd);   /* the inherited copy would hold the parent's lock */
		if (state_lock(fd, &l, &err) == 0)
			_exit(1);
		_exit(err.code == ENOENT ? 0 : 2);
	}
	usleep(100 * 1000);   /* the child is most likely blocked in flock by now */
	cr_assert_eq(state_remove(root, "c1", &err), 0, "%s", err.msg);
	close(lockfd);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status));
	cr_assert_eq(WEXITSTATUS(status), 0, "the waiter must fail with ENOENT");
}

/* ---- OCI JSON ---- */

Test(state, oci_json_is_what_runc_state_prints)
{
	struct ct_state s = sample_state();
	_cleanup_free_ char *json = state_oci_json(&s, "running");

	cr_assert_str_eq(json,
			 "{\n"
			 "  \"ociVersion\": \"1.0.2\",\n"
			 "  \"id\": \"web-1\",\n"
			 "  \"pid\": 4242,\n"
			 "  \"status\": \"running\",\n"
			 "  \"bundle\": \"/b/web\",\n"
			 "  \"rootfs\": \"/b/web/rootfs\",\n"
			 "  \"created\": \"2024-01-02T03:04:05.123456789Z\",\n"
			 "  \"annotations\": {\n"
			 "    \"io.runvm.cpus\": \"2\",\n"
			 "    \"org.example.z\": \"last\"\n"
			 "  },\n"
			 "  \"owner\": \"\"\n"
			 "}");
}

Test(state, oci_json_of_a_stopped_container_has_pid_0_and_no_empty_annotations)
{
	struct ct_state s = sample_state();
	s.nannotations = 0;
	s.bundle = "/b/\"q\"";
	_cleanup_free_ char *json = state_oci_json(&s, "stopped");

	cr_assert_str_eq(json,
			 "{\n"
			 "  \"ociVersion\": \"1.0.2\",\n"
			 "  \"id\": \"web-1\",\n"
			 "  \"pid\": 0,\n"
			 "  \"status\": \"stopped\",\n"
			 "  \"bundle\": \"/b/\\\"q\\\"\",\n"
			 "  \"rootfs\": \"/b/web/rootfs\",\n"
			 "  \"created\": \"2024-01-02T03:04:05.123456789Z\",\n"
			 "  \"owner\": \"\"\n"
			 "}");
}

Test(state, list_json_entry_is_compact_in_runc_order)
{
	struct ct_state s = sample_state();
	s.owner = "root";
	_cleanup_free_ char *json = state_list_json_entry(&s, "paused");

	cr_assert_str_eq(json,
			 "{\"ociVersion\":\"1.0.2\",\"id\":\"web-1\",\"pid\":4242,\"status\":\"paused\","
			 "\"bundle\":\"/b/web\",\"rootfs\":\"/b/web/rootfs\","
			 "\"created\":\"2024-01-02T03:04:05.123456789Z\","
			 "\"annotations\":{\"io.runvm.cpus\":\"2\",\"org.example.z\":\"last\"},"
			 "\"owner\":\"root\"}");
}

/* ---- time ---- */

Test(state, rfc3339_prints_as_go_does)
{
	struct timespec full = { 1704164645, 123456789 }, part = { 1704164645, 120000000 },
			whole = { 0, 0 };
	_cleanup_free_ char *a = state_rfc3339(&full);
	_cleanup_free_ char *b = state_rfc3339(&part);
	_cleanup_free_ char *c = state_rfc3339(&whole);

	cr_assert_str_eq(a, "2024-01-02T03:04:05.123456789Z");
	cr_assert_str_eq(b, "2024-01-02T03:04:05.12Z");
	cr_assert_str_eq(c, "1970-01-01T00:00:00Z");
}

Test(state, now_is_an_rfc3339_utc_time)
{
	_cleanup_free_ char *now = state_now_rfc3339();

	cr_assert_not_null(now);
	cr_assert_geq(strlen(now), strlen("2024-01-02T03:04:05Z"));
	cr_assert_eq(now[4], '-');
	cr_assert_eq(now[10], 'T');
	cr_assert_eq(now[strlen(now) - 1], 'Z');
}
