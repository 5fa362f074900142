#include "vmm/x86/kernel.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/cleanup.h"
#include "vmm/x86/layout.h"

#define PAGE_BYTES 4096ull

int file_bytes_map(struct file_bytes *f, const char *path, const char *what, struct rv_err *err)
{
	f->data = NULL;
	f->size = 0;
	f->fd = -1;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return rv_fail(err, errno, "%s %s", what, path);
	if (file_bytes_map_fd(f, fd, path, what, err) < 0)
		return -1;
	f->fd = fd;
	fd = -1;
	return 0;
}

int file_bytes_map_fd(struct file_bytes *f, int fd, const char *path, const char *what,
		      struct rv_err *err)
{
	struct stat st;

	f->data = NULL;
	f->size = 0;
	f->fd = -1;
	if (fstat(fd, &st) < 0)
		return rv_fail(err, errno, "%s %s", what, path);
	if (!S_ISREG(st.st_mode))
		return rv_failx(err, EINVAL, "%s %s is not a regular file", what, path);
	if (st.st_size == 0)
		return rv_failx(err, EINVAL, "%s %s is empty", what, path);
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	if (p == MAP_FAILED)
		return rv_fail(err, errno, "%s %s: map", what, path);
	f->data = p;
	f->size = (size_t)st.st_size;
	return 0;
}

void file_bytes_unmap(struct file_bytes *f)
{
	if (f->data)
		munmap((void *)f->data, f->size);
	if (f->fd >= 0)
		close(f->fd);
	f->data = NULL;
	f->fd = -1;
}

void file_bytes_place(const struct file_bytes *f, uint64_t off, uint64_t len,
		      const struct guest_mem *mem, uint64_t gpa, uint8_t *dst)
{
	uint64_t whole = len & ~(PAGE_BYTES - 1), mapped = 0;
	struct rv_err ignored;

	/* A map that fails leaves RAM in place: copying is always right. */
	if (f->fd >= 0 && whole && !((off | gpa) & (PAGE_BYTES - 1)) &&
	    guest_mem_map_file(mem, gpa, whole, f->fd, off, &ignored) == 0)
		mapped = whole;
	memcpy(dst + mapped, f->data + off + mapped, len - mapped);
}

int kernel_load(const char *path, const struct guest_mem *mem, struct kernel_image *img,
		struct rv_err *err)
{
	struct file_bytes f;
	int rc;

	if (file_bytes_map(&f, path, "--kernel", err) < 0)
		return -1;
	if (f.size >= 4 && memcmp(f.data, "\177ELF", 4) == 0)
		rc = elf_pvh_load(&f, mem, img, err);
	else
		rc = bzimage_load(&f, mem, img, err);
	file_bytes_unmap(&f);
	return rc < 0 ? rv_wrap(err, "--kernel %s", path) : 0;
}

int initrd_load(const char *path, const struct guest_mem *mem, const struct kernel_image *img,
		uint64_t *gpa, uint64_t *size, struct rv_err *err)
{
	struct file_bytes f;

	if (file_bytes_map(&f, path, "--initrd", err) < 0)
		return -1;
	uint64_t top = img->initrd_max & ~(PAGE_BYTES - 1);
	uint64_t at = f.size <= top ? (top - f.size) & ~(PAGE_BYTES - 1) : 0;
	void *dst = at >= img->end ? guest_mem_slice(mem, at, f.size) : NULL;
	if (!dst) {
		int rc = rv_failx(err, ENOMEM, "--initrd %s (%zu MiB) does not fit in guest RAM above "
				  "the kernel: raise --total-memory", path, (size_t)((f.size + MiB - 1) >> 20));
		file_bytes_unmap(&f);
		return rc;
	}
	file_bytes_place(&f, 0, f.size, mem, at, dst);
	*gpa = at;
	*size = f.size;
	file_bytes_unmap(&f);
	return 0;
}
