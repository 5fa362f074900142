/* The kernel loaders on images built in memory: well-formed and malformed. */
#include <criterion/criterion.h>
#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/x86/kernel.h"
#include "vmm/x86/ksym.h"
#include "vmm/x86/layout.h"

static struct guest_mem mem;
static uint8_t image[8192];

static void setup(void)
{
	struct rv_err err;
	cr_assert_eq(guest_mem_create(&mem, 64 * MiB, &err), 0, "%s", err.msg);
	memset(image, 0, sizeof(image));
}

static void teardown(void)
{
	guest_mem_destroy(&mem);
}

TestSuite(elf_pvh, .init = setup, .fini = teardown);
TestSuite(bzimage, .init = setup, .fini = teardown);
TestSuite(ksym, .init = setup, .fini = teardown);
TestSuite(guest_mem_discard, .init = setup, .fini = teardown);

#define LOAD_GPA 0x1000000ull
#define ENTRY 0x1000abcull

/* ELF header, a PT_LOAD of 16 bytes (+16 of bss) and a PT_NOTE with the PVH note. */
static size_t make_elf(bool with_note)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)image;
	Elf64_Phdr *ph = (Elf64_Phdr *)(image + sizeof(*eh));
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_machine = EM_X86_64;
	eh->e_phoff = sizeof(*eh);
	eh->e_phentsize = sizeof(*ph);
	eh->e_phnum = 2;
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_offset = 0x1000, .p_paddr = LOAD_GPA,
			      .p_filesz = 16, .p_memsz = 32 };
	memset(image + 0x1000, 0xab, 16);
	uint8_t *note = image + 0x800;
	Elf64_Nhdr nh = { .n_namesz = 4, .n_descsz = 8, .n_type = 18 };
	memcpy(note, &nh, sizeof(nh));
	memcpy(note + sizeof(nh), "Xen", 4);
	uint64_t entry = ENTRY;
	memcpy(note + sizeof(nh) + 4, &entry, 8);
	ph[1] = (Elf64_Phdr){ .p_type = with_note ? PT_NOTE : PT_NULL, .p_offset = 0x800,
			      .p_filesz = sizeof(nh) + 12 };
	return 0x1000 + 16;
}

Test(elf_pvh, loads_segments_zeroes_bss_and_finds_the_entry)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_elf(true) };
	uint8_t *dst = guest_mem_slice(&mem, LOAD_GPA, 32);

	memset(dst, 0xee, 32);
	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(img.format, KERNEL_ELF_PVH);
	cr_assert_eq(img.entry, ENTRY);
	cr_assert_eq(img.end, LOAD_GPA + 32);
	cr_assert_eq(dst[0], 0xab);
	cr_assert_eq(dst[15], 0xab);
	cr_assert_eq(dst[16], 0);
	cr_assert_eq(dst[31], 0);
}

Test(elf_pvh, without_the_note_says_to_enable_pvh)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_elf(false) };

	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "CONFIG_PVH=y"), "got: %s", err.msg);
}

Test(elf_pvh, truncated_file_is_refused)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_elf(true) - 1 };

	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "truncated"), "got: %s", err.msg);
	f.size = 40;
	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), -1);
}

Test(elf_pvh, segment_outside_ram_is_refused)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_elf(true) };
	Elf64_Phdr *ph = (Elf64_Phdr *)(image + sizeof(Elf64_Ehdr));

	ph[0].p_paddr = 63 * MiB + MiB - 8;
	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "does not fit in guest RAM"), "got: %s", err.msg);
	ph[0].p_paddr = UINT64_MAX - 4;
	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), -1);
}

Test(elf_pvh, hostile_note_sizes_do_not_overrun)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_elf(true) };
	Elf64_Nhdr nh = { .n_namesz = 0xfffffff0u, .n_descsz = 8, .n_type = 18 };

	memcpy(image + 0x800, &nh, sizeof(nh));
	cr_assert_eq(elf_pvh_load(&f, -1, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "no PVH entry note"), "got: %s", err.msg);
}

static size_t make_bzimage(uint16_t version, uint16_t xloadflags)
{
	image[0x1f1] = 1;                         /* setup_sects: kernel at 1024 */
	image[0x1fe] = 0x55;
	image[0x1ff] = 0xaa;
	image[0x200] = 0xeb;
	image[0x201] = 0x66;                      /* header ends at 0x268 */
	memcpy(image + 0x202, "HdrS", 4);
	memcpy(image + 0x206, &version, 2);
	uint32_t initrd_max = 0x7fffffff, cmdline_size = 2047, init_size = 0x100000;
	memcpy(image + 0x22c, &initrd_max, 4);
	memcpy(image + 0x236, &xloadflags, 2);
	memcpy(image + 0x238, &cmdline_size, 4);
	uint64_t pref = LOAD_GPA;
	memcpy(image + 0x258, &pref, 8);
	memcpy(image + 0x260, &init_size, 4);
	memset(image + 1024, 0xcd, 2048);
	return 1024 + 2048;
}

Test(bzimage, loads_at_pref_address_and_enters_at_0x200)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_bzimage(0x020f, 1) };

	cr_assert_eq(bzimage_load(&f, &mem, &img, &err), 0, "%s", err.msg);
	cr_assert_eq(img.format, KERNEL_BZIMAGE);
	cr_assert_eq(img.entry, LOAD_GPA + 0x200);
	cr_assert_eq(img.end, LOAD_GPA + 0x100000, "init_size reserves room to decompress");
	cr_assert_eq(img.cmdline_max, 2047);
	cr_assert_eq(img.initrd_max, 64 * MiB, "capped by RAM");
	cr_assert_eq(img.setup_header_len, 0x268 - 0x1f1);
	cr_assert_eq(img.setup_header[0x202 - 0x1f1], 'H');
	cr_assert_eq(*(uint8_t *)guest_mem_slice(&mem, LOAD_GPA + 2047, 1), 0xcd);
}

Test(bzimage, old_protocol_or_32_bit_only_is_refused)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_bzimage(0x020a, 1) };

	cr_assert_eq(bzimage_load(&f, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "2.10 is too old"), "got: %s", err.msg);
	f.size = make_bzimage(0x020f, 0);
	cr_assert_eq(bzimage_load(&f, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "no 64-bit entry"), "got: %s", err.msg);
}

Test(bzimage, garbage_and_truncation_are_refused)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, 0x300 };

	cr_assert_eq(bzimage_load(&f, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "not a bzImage"), "got: %s", err.msg);
	f.size = make_bzimage(0x020f, 1);
	image[0x1f1] = 200;                      /* setup larger than the file */
	cr_assert_eq(bzimage_load(&f, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "truncated"), "got: %s", err.msg);
}

Test(bzimage, kernel_bigger_than_ram_says_raise_memory)
{
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { image, make_bzimage(0x020f, 1) };
	uint32_t init_size = 60 * MiB;

	memcpy(image + 0x260, &init_size, 4);
	cr_assert_eq(bzimage_load(&f, &mem, &img, &err), -1);
	cr_assert_not_null(strstr(err.msg, "raise --total-memory"), "got: %s", err.msg);
}

/* An ELF with only section headers: null, .symtab, .strtab. */
static size_t make_symtab(void)
{
	Elf64_Ehdr *eh = (Elf64_Ehdr *)image;
	Elf64_Shdr *sh = (Elf64_Shdr *)(image + 0x100);
	Elf64_Sym *sym = (Elf64_Sym *)(image + 0x400);
	const char strs[] = "\0start_kernel\0rest_init";

	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_shoff = 0x100;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 3;
	sh[1] = (Elf64_Shdr){ .sh_type = SHT_SYMTAB, .sh_offset = 0x400, .sh_size = 3 * sizeof(*sym),
			      .sh_link = 2, .sh_entsize = sizeof(*sym) };
	sh[2] = (Elf64_Shdr){ .sh_type = SHT_STRTAB, .sh_offset = 0x600, .sh_size = sizeof(strs) };
	sym[1] = (Elf64_Sym){ .st_name = 1, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
			      .st_value = 0xffffffff81000000ull };
	sym[2] = (Elf64_Sym){ .st_name = 14, .st_info = ELF64_ST_INFO(STB_GLOBAL, STT_FUNC),
			      .st_value = 0xffffffff81000100ull };
	memcpy(image + 0x600, strs, sizeof(strs));
	return 0x600 + sizeof(strs);
}

Test(ksym, names_the_nearest_symbol_below)
{
	char buf[64];
	struct file_bytes f = { image, make_symtab() };

	cr_assert_eq(ksym_lookup_bytes(&f, 0xffffffff81000010ull, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "start_kernel+0x10");
	cr_assert_eq(ksym_lookup_bytes(&f, 0xffffffff81000100ull, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "rest_init+0x0");
	cr_assert_eq(ksym_lookup_bytes(&f, 0x1000, buf, sizeof(buf)), -1);
}

Test(ksym, hostile_tables_do_not_overrun)
{
	char buf[64];
	struct file_bytes f = { image, make_symtab() };
	Elf64_Shdr *sh = (Elf64_Shdr *)(image + 0x100);

	sh[2].sh_size = 3;                       /* names run past their table */
	cr_assert_eq(ksym_lookup_bytes(&f, 0xffffffff81000010ull, buf, sizeof(buf)), -1);
	sh[1].sh_size = 1u << 30;
	cr_assert_eq(ksym_lookup_bytes(&f, 0xffffffff81000010ull, buf, sizeof(buf)), -1);
	f.size = 0x80;
	cr_assert_eq(ksym_lookup_bytes(&f, 0xffffffff81000010ull, buf, sizeof(buf)), -1);
}

#define TEXT_VA 0xffffffff81000000ull

/* A segment of 4 pages at a page boundary: data, int3 alone, zeros, data;
 * one section over all of it, of code when `code_section`. */
static size_t make_padded_elf(uint8_t *buf, uint32_t flags, bool code_section)
{
	memset(buf, 0, 0x6000);
	memcpy(buf, image, make_elf(true));
	Elf64_Ehdr *eh = (Elf64_Ehdr *)buf;
	Elf64_Phdr *ph = (Elf64_Phdr *)(buf + sizeof(Elf64_Ehdr));
	Elf64_Shdr *sh = (Elf64_Shdr *)(buf + 0x1000);
	ph[0] = (Elf64_Phdr){ .p_type = PT_LOAD, .p_flags = flags, .p_offset = 0x2000,
			      .p_vaddr = TEXT_VA, .p_paddr = LOAD_GPA, .p_filesz = 0x4000,
			      .p_memsz = 0x4000 };
	eh->e_shoff = 0x1000;
	eh->e_shentsize = sizeof(Elf64_Shdr);
	eh->e_shnum = 2;
	sh[1] = (Elf64_Shdr){ .sh_type = SHT_PROGBITS, .sh_addr = TEXT_VA, .sh_offset = 0x2000,
			      .sh_size = 0x4000,
			      .sh_flags = SHF_ALLOC | (code_section ? SHF_EXECINSTR : SHF_WRITE) };
	memset(buf + 0x2000, 0x5a, 0x1000);
	memset(buf + 0x3000, 0xcc, 0x1000);
	memset(buf + 0x5000, 0xa5, 0x1000);
	return 0x6000;
}

static bool resident(const uint8_t *p)
{
	unsigned char v = 0;
	cr_assert_eq(mincore((void *)p, 4096, &v), 0);
	return v & 1;
}

/* Loads the padded ELF over RAM holding 0xee, from a file when asked (the
 * buffer's first data page then cleared, so that only the file holds it). */
static uint8_t *load_padded(uint32_t flags, bool code_section, bool from_file)
{
	static uint8_t buf[0x6000];
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { buf, make_padded_elf(buf, flags, code_section) };
	char path[] = "/tmp/runvm-elf-XXXXXX";
	uint8_t *dst = guest_mem_slice(&mem, LOAD_GPA, 0x4000);
	int fd = -1;

	if (from_file) {
		fd = mkstemp(path);
		cr_assert_geq(fd, 0);
		unlink(path);
		cr_assert_eq(write(fd, buf, sizeof(buf)), (ssize_t)sizeof(buf));
		memset(buf + 0x2000, 0, 0x1000);
	}
	memset(dst, 0xee, 0x4000);
	cr_assert_eq(elf_pvh_load(&f, fd, &mem, &img, &err), 0, "%s", err.msg);
	if (fd >= 0)
		close(fd);
	return dst;
}

/* Pages the guest never needs are not written: they read as zeros and cost
 * the host nothing, whatever the RAM held before. */
static void check_padding_left_out(const uint8_t *dst)
{
	cr_assert_eq(dst[0], 0x5a);
	cr_assert_eq(dst[0xfff], 0x5a);
	cr_assert_eq(dst[0x3000], 0xa5);
	cr_assert_eq(dst[0x3fff], 0xa5);
	cr_assert(!resident(dst + 0x1000) && !resident(dst + 0x2000), "padding and zeros were written");
	cr_assert_eq(dst[0x1000], 0);
	cr_assert_eq(dst[0x1fff], 0);
	cr_assert_eq(dst[0x2000], 0);
	cr_assert_eq(dst[0x2fff], 0);
}

Test(elf_pvh, leaves_int3_padding_and_zero_pages_unwritten)
{
	check_padding_left_out(load_padded(PF_R | PF_X, true, false));
}

/* From a file: the segment is read straight into guest RAM, then the same. */
Test(elf_pvh, reads_segments_from_the_file)
{
	check_padding_left_out(load_padded(PF_R | PF_X, true, true));
}

/* int3 bytes outside code sections are data like any other, in a data
 * segment or in an executable one (Linux's also holds rodata and init data). */
static void check_int3_kept(const uint8_t *dst)
{
	cr_assert_eq(dst[0x1000], 0xcc);
	cr_assert_eq(dst[0x1fff], 0xcc);
	cr_assert_eq(dst[0x2000], 0);
}

Test(elf_pvh, copies_an_int3_page_of_data)
{
	check_int3_kept(load_padded(PF_R | PF_W, false, false));
	check_int3_kept(load_padded(PF_R | PF_X, false, false));
}

Test(guest_mem_discard, refuses_unaligned_or_outside_ram)
{
	struct rv_err err;

	cr_assert_eq(guest_mem_discard(&mem, LOAD_GPA + 1, 4096, &err), -1);
	cr_assert_eq(err.code, EINVAL);
	cr_assert_eq(guest_mem_discard(&mem, 63 * MiB, 2 * MiB, &err), -1);
	cr_assert_eq(guest_mem_discard(&mem, LOAD_GPA, 4096, &err), 0, "%s", err.msg);
}

/* A kernel file cut short after it was mapped: an error, not a SIGBUS. */
Test(elf_pvh, a_file_shorter_than_its_mapping_is_an_error)
{
	static uint8_t buf[0x6000];
	struct kernel_image img;
	struct rv_err err;
	struct file_bytes f = { buf, make_padded_elf(buf, PF_R | PF_X, true) };
	char path[] = "/tmp/runvm-elf-XXXXXX";
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	cr_assert_eq(write(fd, buf, 0x3000), 0x3000);
	cr_assert_eq(elf_pvh_load(&f, fd, &mem, &img, &err), -1);
	cr_assert(strstr(err.msg, "shrank"), "%s", err.msg);
	close(fd);
}
