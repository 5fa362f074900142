/* bzImage through the 64-bit boot protocol (Documentation/arch/x86/boot.rst):
 * the protected-mode part is loaded at its preferred address and entered at
 * +0x200 in long mode, with the setup header copied into the zero page. */
#include <errno.h>
#include <string.h>

#include "vmm/x86/kernel.h"
#include "vmm/x86/layout.h"

#define BZ_SETUP_SECTS     0x1f1
#define BZ_BOOT_FLAG       0x1fe
#define BZ_JUMP            0x200
#define BZ_HEADER_MAGIC    0x202
#define BZ_VERSION         0x206
#define BZ_INITRD_ADDR_MAX 0x22c
#define BZ_XLOADFLAGS      0x236
#define BZ_CMDLINE_SIZE    0x238
#define BZ_PREF_ADDRESS    0x258
#define BZ_INIT_SIZE       0x260
#define BZ_MIN_VERSION     0x020c     /* 2.12: xloadflags and the 64-bit entry */
#define XLF_KERNEL_64      (1u << 0)
#define BZ_ENTRY_64_OFFSET 0x200

static uint64_t le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int check_header(const struct file_bytes *f, struct rv_err *err)
{
	if (f->size < BZ_INIT_SIZE + 4 || le(f->data + BZ_BOOT_FLAG, 2) != 0xaa55 ||
	    memcmp(f->data + BZ_HEADER_MAGIC, "HdrS", 4) != 0)
		return rv_failx(err, EINVAL, "not a bzImage (no HdrS setup header)");
	uint64_t version = le(f->data + BZ_VERSION, 2);
	if (version < BZ_MIN_VERSION)
		return rv_failx(err, ENOEXEC, "boot protocol %llu.%02llu is too old: need 2.12",
				(unsigned long long)(version >> 8), (unsigned long long)(version & 0xff));
	if (!(le(f->data + BZ_XLOADFLAGS, 2) & XLF_KERNEL_64))
		return rv_failx(err, ENOEXEC, "bzImage has no 64-bit entry point");
	return 0;
}

int bzimage_load(const struct file_bytes *f, const struct guest_mem *mem,
		 struct kernel_image *img, struct rv_err *err)
{
	if (check_header(f, err) < 0)
		return -1;
	size_t header_end = BZ_JUMP + 2 + f->data[BZ_JUMP + 1];
	unsigned sects = f->data[BZ_SETUP_SECTS] ? f->data[BZ_SETUP_SECTS] : 4;
	size_t offset = ((size_t)sects + 1) * 512;
	if (offset >= f->size || header_end > f->size || header_end - BZ_SETUP_SECTS > BZ_SETUP_HEADER_MAX_BYTES)
		return rv_failx(err, EINVAL, "bzImage is truncated (setup of %u sectors)", sects);

	uint64_t load = le(f->data + BZ_PREF_ADDRESS, 8);
	uint64_t init_size = le(f->data + BZ_INIT_SIZE, 4);
	uint64_t footprint = init_size > f->size - offset ? init_size : f->size - offset;
	if (load < HIGH_RAM_START_GPA || !guest_mem_slice(mem, load, footprint) ||
	    load + footprint > guest_mem_low_end(mem))
		return rv_failx(err, ENOMEM, "kernel needs RAM at 0x%llx-0x%llx: raise --total-memory",
				(unsigned long long)load, (unsigned long long)(load + footprint));
	memcpy(guest_mem_slice(mem, load, f->size - offset), f->data + offset, f->size - offset);

	memset(img, 0, sizeof(*img));
	img->format = KERNEL_BZIMAGE;
	img->entry = load + BZ_ENTRY_64_OFFSET;
	img->end = load + footprint;
	img->initrd_max = le(f->data + BZ_INITRD_ADDR_MAX, 4) + 1;
	if (img->initrd_max > guest_mem_low_end(mem))
		img->initrd_max = guest_mem_low_end(mem);
	img->cmdline_max = (uint32_t)le(f->data + BZ_CMDLINE_SIZE, 4);
	if (img->cmdline_max == 0 || img->cmdline_max >= CMDLINE_MAX_BYTES)
		img->cmdline_max = CMDLINE_MAX_BYTES - 1;
	img->setup_header_len = header_end - BZ_SETUP_SECTS;
	memcpy(img->setup_header, f->data + BZ_SETUP_SECTS, img->setup_header_len);
	return 0;
}
