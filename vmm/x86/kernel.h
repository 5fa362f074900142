/* Loading a guest kernel: an ELF vmlinux entered through its PVH note, or a
 * bzImage entered through the 64-bit boot protocol; then the initrd and the
 * boot information each protocol expects. Every offset read from a kernel or
 * initrd file is bounds-checked: the files are the user's, not ours. */
#ifndef RV_X86_KERNEL_H
#define RV_X86_KERNEL_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "vmm/guest_mem.h"
#include "vmm/x86/e820.h"

enum kernel_format { KERNEL_ELF_PVH, KERNEL_BZIMAGE };

#define BZ_SETUP_HEADER_MAX_BYTES 0x80

struct kernel_image {
	enum kernel_format format;
	uint64_t entry;              /* PVH: 32-bit entry; bzImage: 64-bit entry */
	uint64_t end;                /* first GPA above what the kernel may occupy */
	uint64_t initrd_max;         /* highest GPA the initrd may end at */
	uint32_t cmdline_max;        /* bytes of command line the kernel takes */
	uint8_t setup_header[BZ_SETUP_HEADER_MAX_BYTES];   /* bzImage: from 0x1f1 */
	size_t setup_header_len;
};

struct file_bytes {
	const uint8_t *data;
	size_t size;
};

/* Map a file read-only; `what` names it in errors (e.g. "--kernel"). */
int file_bytes_map(struct file_bytes *f, const char *path, const char *what, struct rv_err *err);
/* The same from an open fd (left open); path only names it in errors. */
int file_bytes_map_fd(struct file_bytes *f, int fd, const char *path, const char *what,
		      struct rv_err *err);
void file_bytes_unmap(struct file_bytes *f);
/* Exactly len bytes at off into dst; a file that ends first has shrunk. */
int file_read_at(int fd, uint8_t *dst, uint64_t len, uint64_t off, struct rv_err *err);

/* Parsers of the two formats, on bytes already in memory (fuzzable, testable). */
/* The ELF loader reads segments from `fd` (the file f maps) straight into guest
 * RAM when it is >= 0, else copies them from f. Pages the guest never needs
 * (zeros, int3 padding in code) are then handed back to the host. */
int elf_pvh_load(const struct file_bytes *f, int fd, const struct guest_mem *mem,
		 struct kernel_image *img, struct rv_err *err);
int bzimage_load(const struct file_bytes *f, const struct guest_mem *mem,
		 struct kernel_image *img, struct rv_err *err);

/* Picks the format from the file's first bytes. *fd_out gets the kernel file,
 * open, for symbols in crash reports (the caller closes it). */
int kernel_load(const char *path, const struct guest_mem *mem, struct kernel_image *img,
		int *fd_out, struct rv_err *err);

/* Places the initrd as high as it can go below img->initrd_max. */
int initrd_load(const char *path, const struct guest_mem *mem, const struct kernel_image *img,
		uint64_t *gpa, uint64_t *size, struct rv_err *err);

struct boot_info {
	const char *cmdline;
	uint64_t initrd_gpa, initrd_size;    /* size 0: no initrd */
	const struct e820_entry *e820;
	unsigned e820_count;
};

/* Writes the command line plus hvm_start_info (PVH) or the zero page (bzImage). */
int boot_info_write(const struct guest_mem *mem, const struct kernel_image *img,
		    const struct boot_info *info, struct rv_err *err);

#endif
