#include "vmm/x86/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "vmm/x86/layout.h"

/* The kernel and initrd are opened O_NONBLOCK: a FIFO named as one would
 * otherwise block open() for good; a regular file reads the same. */
static int open_input(const char *path, const char *what, struct rv_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	return fd < 0 ? rv_fail(err, errno, "%s %s", what, path) : fd;
}

/* The size of a regular, non-empty file; anything else is the user's error. */
static int regular_size(int fd, const char *path, const char *what, size_t *size,
			struct rv_err *err)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return rv_fail(err, errno, "%s %s", what, path);
	if (!S_ISREG(st.st_mode))
		return rv_failx(err, EINVAL, "%s %s is not a regular file", what, path);
	if (st.st_size == 0)
		return rv_failx(err, EINVAL, "%s %s is empty", what, path);
	*size = (size_t)st.st_size;
	return 0;
}

int file_bytes_map(struct file_bytes *f, const char *path, const char *what, struct rv_err *err)
{
	f->data = NULL;
	f->size = 0;
	_cleanup_close_ int fd = open_input(path, what, err);
	return fd < 0 ? -1 : file_bytes_map_fd(f, fd, path, what, err);
}

int file_bytes_map_fd(struct file_bytes *f, int fd, const char *path, const char *what,
		      struct rv_err *err)
{
	size_t size;

	f->data = NULL;
	f->size = 0;
	if (regular_size(fd, path, what, &size, err) < 0)
		return -1;
	void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return rv_fail(err, errno, "%s %s: map", what, path);
	f->data = p;
	f->size = size;
	return 0;
}

int file_read_at(int fd, uint8_t *dst, uint64_t len, uint64_t off, struct rv_err *err)
{
	for (uint64_t done = 0; done < len;) {
		ssize_t n = pread(fd, dst + done, len - done, (off_t)(off + done));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return rv_fail(err, errno, "read");
		if (n == 0)
			return rv_failx(err, EIO, "the file shrank while it was read");
		done += (uint64_t)n;
	}
	return 0;
}

void file_bytes_unmap(struct file_bytes *f)
{
	if (f->data)
		munmap((void *)f->data, f->size);
	f->data = NULL;
}

int kernel_load(const char *path, const struct guest_mem *mem, struct kernel_image *img,
		int *fd_out, struct rv_err *err)
{
	struct file_bytes f;
	int rc;

	_cleanup_close_ int fd = open_input(path, "--kernel", err);
	if (fd < 0 || file_bytes_map_fd(&f, fd, path, "--kernel", err) < 0)
		return -1;
	if (f.size >= 4 && memcmp(f.data, "\177ELF", 4) == 0)
		rc = elf_pvh_load(&f, fd, mem, img, err);
	else
		rc = bzimage_load(&f, mem, img, err);
	file_bytes_unmap(&f);
	if (rc < 0)
		return rv_wrap(err, "--kernel %s", path);
	*fd_out = fd;
	fd = -1;
	return 0;
}

/* Read straight into guest RAM: a mapping of the file would fault its pages
 * in one by one, which on 9p or NFS is a round trip each. */
int initrd_load(const char *path, const struct guest_mem *mem, const struct kernel_image *img,
		uint64_t *gpa, uint64_t *size, struct rv_err *err)
{
	size_t len;
	_cleanup_close_ int fd = open_input(path, "--initrd", err);

	if (fd < 0 || regular_size(fd, path, "--initrd", &len, err) < 0)
		return -1;
	uint64_t top = img->initrd_max & ~(PAGE_BYTES - 1);
	uint64_t at = len <= top ? (top - len) & ~(PAGE_BYTES - 1) : 0;
	uint8_t *dst = at >= img->end ? guest_mem_slice(mem, at, len) : NULL;
	if (!dst)
		return rv_failx(err, ENOMEM, "--initrd %s (%llu MiB) does not fit in guest RAM above "
				"the kernel: raise --total-memory", path,
				(unsigned long long)((len + MiB - 1) >> 20));
	if (file_read_at(fd, dst, len, 0, err) < 0)
		return rv_wrap(err, "--initrd %s", path);
	*gpa = at;
	*size = len;
	return 0;
}
