/* What the kernel reads at entry: for PVH the hvm_start_info structure (rbx),
 * for bzImage the zero page (rsi). Both carry the command line, the initrd and
 * the e820 memory map. */
#include <errno.h>
#include <string.h>

#include "vmm/x86/kernel.h"
#include "vmm/x86/layout.h"

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic, version, flags, nr_modules;
	uint64_t modlist_paddr, cmdline_paddr, rsdp_paddr, memmap_paddr;
	uint32_t memmap_entries, reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr, size, cmdline_paddr, reserved;
};

struct hvm_memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

_Static_assert(sizeof(struct hvm_start_info) == 56, "hvm_start_info ABI");
_Static_assert(sizeof(struct hvm_modlist_entry) == 32, "hvm_modlist_entry ABI");
_Static_assert(sizeof(struct hvm_memmap_entry) == 24, "hvm_memmap_table_entry ABI");

#define PVH_MODLIST_GPA (PVH_START_INFO_GPA + 0x40)
#define PVH_MEMMAP_GPA  (PVH_START_INFO_GPA + 0x80)

/* Zero-page offsets (arch/x86/include/uapi/asm/bootparam.h). */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE  0x0c4
#define BP_EXT_CMD_LINE_PTR  0x0c8
#define BP_E820_ENTRIES      0x1e8
#define BP_SETUP_HEADER      0x1f1
#define BP_TYPE_OF_LOADER    0x210
#define BP_RAMDISK_IMAGE     0x218
#define BP_RAMDISK_SIZE      0x21c
#define BP_CMD_LINE_PTR      0x228
#define BP_E820_TABLE        0x2d0
#define BP_BYTES             4096
#define LOADER_UNDEFINED     0xff

static void put32(uint8_t *page, size_t off, uint64_t v)
{
	uint32_t x = (uint32_t)v;
	memcpy(page + off, &x, sizeof(x));
}

static int write_pvh(const struct guest_mem *mem, const struct boot_info *info, struct rv_err *err)
{
	struct hvm_start_info *si = guest_mem_slice(mem, PVH_START_INFO_GPA, sizeof(*si));
	struct hvm_modlist_entry *mod = guest_mem_slice(mem, PVH_MODLIST_GPA, sizeof(*mod));
	struct hvm_memmap_entry *map = guest_mem_slice(mem, PVH_MEMMAP_GPA,
						       E820_MAX_ENTRIES * sizeof(*map));
	if (!si || !mod || !map)
		return rv_failx(err, ENOMEM, "guest RAM too small for PVH boot information");
	*si = (struct hvm_start_info){
		.magic = HVM_START_MAGIC, .version = 1, .cmdline_paddr = CMDLINE_GPA,
		.memmap_paddr = PVH_MEMMAP_GPA, .memmap_entries = info->e820_count,
	};
	if (info->initrd_size) {
		*mod = (struct hvm_modlist_entry){ .paddr = info->initrd_gpa, .size = info->initrd_size };
		si->nr_modules = 1;
		si->modlist_paddr = PVH_MODLIST_GPA;
	}
	for (unsigned i = 0; i < info->e820_count; i++)
		map[i] = (struct hvm_memmap_entry){ info->e820[i].addr, info->e820[i].size,
						    info->e820[i].type, 0 };
	return 0;
}

static int write_zero_page(const struct guest_mem *mem, const struct kernel_image *img,
			   const struct boot_info *info, struct rv_err *err)
{
	uint8_t *bp = guest_mem_slice(mem, BOOT_PARAMS_GPA, BP_BYTES);
	if (!bp)
		return rv_failx(err, ENOMEM, "guest RAM too small for the zero page");
	memset(bp, 0, BP_BYTES);
	memcpy(bp + BP_SETUP_HEADER, img->setup_header, img->setup_header_len);
	bp[BP_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	put32(bp, BP_CMD_LINE_PTR, CMDLINE_GPA);
	put32(bp, BP_EXT_CMD_LINE_PTR, CMDLINE_GPA >> 32);
	put32(bp, BP_RAMDISK_IMAGE, info->initrd_gpa);
	put32(bp, BP_RAMDISK_SIZE, info->initrd_size);
	put32(bp, BP_EXT_RAMDISK_IMAGE, info->initrd_gpa >> 32);
	put32(bp, BP_EXT_RAMDISK_SIZE, info->initrd_size >> 32);
	bp[BP_E820_ENTRIES] = (uint8_t)info->e820_count;
	memcpy(bp + BP_E820_TABLE, info->e820, info->e820_count * sizeof(*info->e820));
	return 0;
}

int boot_info_write(const struct guest_mem *mem, const struct kernel_image *img,
		    const struct boot_info *info, struct rv_err *err)
{
	size_t len = strlen(info->cmdline);
	if (len > img->cmdline_max)
		return rv_failx(err, E2BIG, "kernel command line is %zu bytes, this kernel takes %u",
				len, img->cmdline_max);
	char *dst = guest_mem_slice(mem, CMDLINE_GPA, len + 1);
	if (!dst)
		return rv_failx(err, ENOMEM, "guest RAM too small for the command line");
	memcpy(dst, info->cmdline, len + 1);
	return img->format == KERNEL_ELF_PVH ? write_pvh(mem, info, err)
					     : write_zero_page(mem, img, info, err);
}
