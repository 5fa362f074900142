#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vmm/guest_mem.h"
#include "vmm/template.h"

#define MEM (1u << 20)
#define PG 4096u

static char dir[64], store[96], kernel[96];

static void setup(void)
{
	strcpy(dir, "/tmp/rv-template.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(store, sizeof(store), "%s/templates", dir);
	snprintf(kernel, sizeof(kernel), "%s/vmlinux", dir);
	FILE *f = fopen(kernel, "w");
	fputs("kernel", f);
	fclose(f);
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct template_shape shape(void)
{
	return (struct template_shape){ .kernel = kernel, .cpus = 1, .mem_bytes = MEM,
					.cmdline = "quiet", .devices = "rng,vsock,fs" };
}

TestSuite(template, .init = setup, .fini = teardown);

Test(template, the_key_changes_with_anything_the_guest_depends_on)
{
	struct rv_err err;
	char a[TEMPLATE_KEY_BYTES], b[TEMPLATE_KEY_BYTES];
	struct template_shape s = shape();

	cr_assert_eq(template_key(&s, a, &err), 0);
	cr_assert_eq(strlen(a), 16);
	cr_assert_eq(template_key(&s, b, &err), 0);
	cr_assert_str_eq(a, b);
	s.cpus = 2;
	cr_assert_eq(template_key(&s, b, &err), 0);
	cr_assert_str_neq(a, b);
	s = shape();
	s.cmdline = "loud";
	cr_assert_eq(template_key(&s, b, &err), 0);
	cr_assert_str_neq(a, b);
	s = shape();
	s.devices = "rng,vsock";
	cr_assert_eq(template_key(&s, b, &err), 0);
	cr_assert_str_neq(a, b);
	/* A kernel rewritten in place is another kernel. */
	s = shape();
	FILE *f = fopen(kernel, "w");
	fputs("kernel, rebuilt", f);
	fclose(f);
	cr_assert_eq(template_key(&s, b, &err), 0);
	cr_assert_str_neq(a, b);
	s.initrd = "/nonexistent/initrd";
	cr_assert_eq(template_key(&s, b, &err), -1);
	cr_assert(strstr(err.msg, "initrd /nonexistent/initrd"), "%s", err.msg);
}

Test(template, a_store_others_can_write_is_refused)
{
	struct template_store st;
	struct rv_err err;

	cr_assert_eq(template_store_open(store, &st, &err), 0);
	template_store_close(&st);
	chmod(store, 0777);
	cr_assert_eq(template_store_open(store, &st, &err), -1);
	cr_assert(strstr(err.msg, "chmod 700"), "%s", err.msg);
}

/* Guest RAM with pages of data, a page of zeros that was touched, and
 * pages never touched: only the data reaches the file. */
static int guest_ram(uint8_t **base)
{
	int fd = memfd_create("ram", MFD_CLOEXEC);
	cr_assert_geq(fd, 0);
	cr_assert_eq(ftruncate(fd, MEM), 0);
	*base = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	cr_assert_neq(*base, MAP_FAILED);
	memset(*base + 0, 0xaa, PG);
	memset(*base + 3 * PG, 0, PG);             /* touched, zeros */
	memset(*base + 4 * PG, 0xbb, 2 * PG);
	(*base)[MEM - 1] = 0xcc;
	return fd;
}

/* "state!" and the end record: what a VMM writes, then what create does. */
static const uint32_t end_rec[2] = { TEMPLATE_END_TAG, 0 };

static int save(struct template_store *st, const char *key, int memfd, const uint8_t *base)
{
	struct template_writer w;
	struct rv_err err;
	uint8_t state[6 + sizeof(end_rec)];

	memcpy(state, "state!", 6);
	memcpy(state + 6, end_rec, sizeof(end_rec));
	cr_assert_eq(template_writer_begin(st, key, MEM, &w, &err), 1, "%s", err.msg);
	cr_assert_eq(template_writer_memory(&w, memfd, base, MEM, &err), 0, "%s", err.msg);
	cr_assert_eq(template_writer_state(&w, state, sizeof(state), &err), 0, "%s", err.msg);
	template_writer_end(&w);
	return template_publish(store, getpid(), &err);
}

Test(template, memory_is_saved_sparse_and_comes_back_whole)
{
	struct template_store st;
	struct rv_err err;
	uint8_t *base;
	int memfd = guest_ram(&base);

	cr_assert_eq(template_store_open(store, &st, &err), 0);
	cr_assert_eq(save(&st, "0123456789abcdef", memfd, base), 0);
	int fd;
	uint8_t *state;
	size_t len;
	cr_assert_eq(template_open(&st, "0123456789abcdef", MEM, &fd, &state, &len, &err), 1, "%s",
		     err.msg);
	cr_assert_eq(len, 6 + sizeof(end_rec));
	cr_assert_eq(memcmp(state, "state!", 6), 0);
	free(state);
	struct guest_mem clone;
	cr_assert_eq(guest_mem_create_cow(&clone, MEM, fd, &err), 0, "%s", err.msg);
	cr_assert_eq(memcmp(clone.base, base, MEM), 0);
	/* Short runs of zeros are data (fewer mappings); a long one is a hole,
	 * as is RAM never touched, up to the last page of data. */
	cr_assert_eq(lseek(fd, 0, SEEK_HOLE), 6 * PG);
	cr_assert_eq(lseek(fd, 6 * PG, SEEK_DATA), MEM - PG);
	/* Copy-on-write: a clone's writes stay its own, and its touches of the
	 * file's holes do not grow the file. */
	struct stat before, after;
	cr_assert_eq(fstat(fd, &before), 0);
	clone.base[0] = 1;
	memset(clone.base + 8 * PG, 7, 64 * PG);
	cr_assert_eq(fstat(fd, &after), 0);
	cr_assert_eq(after.st_blocks, before.st_blocks);
	uint8_t first;
	cr_assert_eq(pread(fd, &first, 1, 0), 1);
	cr_assert_eq(first, 0xaa);
	guest_mem_destroy(&clone);
	close(fd);
	template_store_close(&st);
}

Test(template, none_another_size_and_a_second_publisher)
{
	struct template_store st;
	struct rv_err err;
	uint8_t *base, *state;
	size_t len;
	int memfd = guest_ram(&base), fd;

	cr_assert_eq(template_store_open(store, &st, &err), 0);
	cr_assert_eq(template_open(&st, "0000000000000000", MEM, &fd, &state, &len, &err), 0);
	cr_assert_eq(save(&st, "0000000000000001", memfd, base), 0);
	cr_assert_eq(save(&st, "0000000000000001", memfd, base), 0, "the second one loses quietly");
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q '^\\.tmp'", store);
	cr_assert_neq(system(cmd), 0, "the loser's copy is gone");
	cr_assert_eq(template_open(&st, "0000000000000001", 2 * MEM, &fd, &state, &len, &err), -1);
	cr_assert(strstr(err.msg, "not a file of 2097152 bytes"), "%s", err.msg);
	template_discard(&st, "0000000000000001");
	cr_assert_eq(template_open(&st, "0000000000000001", MEM, &fd, &state, &len, &err), 0);
	template_store_close(&st);
}

Test(template, what_dead_writers_left_is_swept)
{
	struct template_store st;
	struct template_writer w;
	struct rv_err err;
	char path[256];
	pid_t child = fork();

	cr_assert_geq(child, 0);
	if (child == 0) {
		/* A VMM that dies mid-save leaves its directory. */
		_exit(template_store_open(store, &st, &err) == 0 &&
		      template_writer_begin(&st, "00000000000000aa", MEM, &w, &err) == 1 ? 0 : 1);
	}
	int status;
	waitpid(child, &status, 0);
	cr_assert_eq(status, 0);
	cr_assert_eq(template_store_open(store, &st, &err), 0);
	cr_assert_eq(template_writer_begin(&st, "00000000000000bb", MEM, &w, &err), 1);   /* ours */
	template_store_close(&st);
	cr_assert_eq(template_store_open(store, &st, &err), 0);
	snprintf(path, sizeof(path), "%s/%s", store, w.tmp_name);
	cr_assert_eq(access(path, F_OK), 0, "a live writer's directory stays");
	snprintf(path, sizeof(path), "ls -A %s | grep -c '^\\.tmp' | grep -qx 1", store);
	cr_assert_eq(system(path), 0, "the dead writer's directory is gone");
	template_writer_end(&w);
	template_store_close(&st);
}

Test(template, one_writer_per_key_and_an_unfinished_one_is_not_published)
{
	struct template_store st;
	struct template_writer a, b;
	struct rv_err err;
	uint8_t *state;
	size_t len;
	int fd;

	cr_assert_eq(template_store_open(store, &st, &err), 0);
	cr_assert_eq(template_writer_begin(&st, "00000000000000cc", MEM, &a, &err), 1);
	cr_assert_eq(template_writer_begin(&st, "00000000000000cc", MEM, &b, &err), 0,
		     "a second writer of the key boots without saving");
	cr_assert_eq(template_writer_state(&a, "cut", 3, &err), 0);   /* no end record */
	template_writer_end(&a);
	cr_assert_eq(template_publish(store, getpid(), &err), 0);
	cr_assert_eq(template_open(&st, "00000000000000cc", MEM, &fd, &state, &len, &err), 0);
	cr_assert_eq(template_writer_begin(&st, "00000000000000cc", MEM, &b, &err), 1,
		     "the lock went with the first writer");
	template_writer_end(&b);
	template_store_close(&st);
}

Test(template, a_failed_clone_forgets_its_template)
{
	struct template_store st;
	struct rv_err err;
	uint8_t *base, *state;
	size_t len;
	int memfd = guest_ram(&base), fd;

	cr_assert_eq(template_store_open(store, &st, &err), 0);
	cr_assert_eq(save(&st, "00000000000000dd", memfd, base), 0);
	template_forget_failed(store, "run x: clone of template 00000000000000de: the guest...");
	cr_assert_eq(template_open(&st, "00000000000000dd", MEM, &fd, &state, &len, &err), 1);
	free(state);
	close(fd);
	template_forget_failed(store, "run x: clone of template 00000000000000dd: the guest...");
	cr_assert_eq(template_open(&st, "00000000000000dd", MEM, &fd, &state, &len, &err), 0);
	template_store_close(&st);
}
