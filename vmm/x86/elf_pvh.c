/* ELF vmlinux with a PVH entry note (CONFIG_PVH): the fastest way into Linux,
 * no decompressor and no real-mode setup code. */
#include <elf.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "vmm/x86/kernel.h"
#include "vmm/x86/layout.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define X86_INT3 0xcc
#define NOTE_ALIGN(x) (((x) + 3u) & ~(size_t)3u)

static const void *bytes_at(const struct file_bytes *f, uint64_t off, uint64_t len)
{
	if (off > f->size || len > f->size - off)
		return NULL;
	return f->data + off;
}

/* Walks one PT_NOTE segment for Xen's PHYS32_ENTRY; returns 1 when found. */
static int find_pvh_note(const uint8_t *p, size_t len, uint64_t *entry)
{
	while (len >= sizeof(Elf64_Nhdr)) {
		Elf64_Nhdr nh;
		memcpy(&nh, p, sizeof(nh));
		size_t name_len = NOTE_ALIGN((size_t)nh.n_namesz), desc_len = NOTE_ALIGN((size_t)nh.n_descsz);
		if (name_len > len - sizeof(nh) || desc_len > len - sizeof(nh) - name_len)
			return 0;
		const uint8_t *name = p + sizeof(nh), *desc = name + name_len;
		if (nh.n_type == XEN_ELFNOTE_PHYS32_ENTRY && nh.n_namesz == 4 &&
		    memcmp(name, "Xen", 4) == 0 && nh.n_descsz >= 4) {
			uint32_t e;
			memcpy(&e, desc, sizeof(e));   /* a .quad in Linux; the entry is 32-bit */
			*entry = e;
			return 1;
		}
		p = desc + desc_len;
		len -= sizeof(nh) + name_len + desc_len;
	}
	return 0;
}

#define CODE_RANGES_MAX 16

/* The virtual ranges of the executable sections (SHF_EXECINSTR): only there is
 * a page of int3 alone padding between functions. An executable segment also
 * carries rodata or init data, where such bytes would be data. */
struct code_ranges {
	unsigned n;
	uint64_t start[CODE_RANGES_MAX], end[CODE_RANGES_MAX];
};

static void find_code(const struct file_bytes *f, const Elf64_Ehdr *eh, struct code_ranges *c)
{
	c->n = 0;
	if (eh->e_shentsize != sizeof(Elf64_Shdr) ||
	    !bytes_at(f, eh->e_shoff, (uint64_t)eh->e_shnum * sizeof(Elf64_Shdr)))
		return;    /* no sections: no page counts as padding */
	for (unsigned i = 0; i < eh->e_shnum && c->n < CODE_RANGES_MAX; i++) {
		Elf64_Shdr sh;
		memcpy(&sh, f->data + eh->e_shoff + i * sizeof(sh), sizeof(sh));
		if ((sh.sh_flags & SHF_EXECINSTR) && sh.sh_type == SHT_PROGBITS &&
		    sh.sh_size >= PAGE_BYTES && sh.sh_addr + sh.sh_size > sh.sh_addr) {
			c->start[c->n] = sh.sh_addr;
			c->end[c->n++] = sh.sh_addr + sh.sh_size;
		}
	}
}

static bool page_in_code(const struct code_ranges *c, uint64_t va)
{
	for (unsigned i = 0; i < c->n; i++)
		if (va >= c->start[i] && va <= c->end[i] - PAGE_BYTES)
			return true;
	return false;
}

/* Whether a page need not stay in guest RAM: zeros, which the discard
 * leaves, and in code, int3 alone. Linux aligns its entry code and rodata to
 * 2 MiB and pads .text with int3, about 3 MiB of a 6 MiB text segment, which
 * only a jump gone wrong would reach (it then meets zeros, not a trap: the
 * guest kernel is untrusted anyway, SECURITY.md). */
static bool skippable(const uint8_t *page, bool code)
{
	static const uint8_t zeros[PAGE_BYTES];
	uint8_t fill = page[0];

	if (fill != 0 && !(code && fill == X86_INT3))
		return false;
	return fill == 0 ? memcmp(page, zeros, PAGE_BYTES) == 0
			 : memcmp(page, page + 1, PAGE_BYTES - 1) == 0;
}

/* The segment's bytes into guest RAM: read from the file straight into it
 * when there is one (a mapped file's pages would fault in one by one: slow on
 * 9p or NFS, and each a copy anyway; one cut short would be a SIGBUS), else
 * copied. */
static int copy_segment(const struct file_bytes *f, int fd, const Elf64_Phdr *ph, uint8_t *dst,
			struct rv_err *err)
{
	if (fd >= 0)
		return file_read_at(fd, dst, ph->p_filesz, ph->p_offset, err);
	memcpy(dst, f->data + ph->p_offset, ph->p_filesz);
	return 0;
}

/* Hands the segment's skippable whole pages back to the host, in runs: each
 * page kept is host memory for the VM's life. A failed discard keeps them. */
static void discard_skippable(const struct guest_mem *mem, const Elf64_Phdr *ph, uint8_t *dst,
			      const struct code_ranges *code)
{
	uint64_t gpa = ph->p_paddr, len = ph->p_filesz;
	uint64_t at = (PAGE_BYTES - (gpa & (PAGE_BYTES - 1))) & (PAGE_BYTES - 1);
	struct rv_err ignored;

	while (at + PAGE_BYTES <= len) {
		uint64_t run = 0;
		while (at + run + PAGE_BYTES <= len &&
		       skippable(dst + at + run, page_in_code(code, ph->p_vaddr + at + run)))
			run += PAGE_BYTES;
		if (run)
			guest_mem_discard(mem, gpa + at, run, &ignored);
		at += run ? run : PAGE_BYTES;
	}
}

static int load_segment(const struct file_bytes *f, int fd, const Elf64_Phdr *ph,
			const struct code_ranges *code, const struct guest_mem *mem,
			struct kernel_image *img, struct rv_err *err)
{
	if (!bytes_at(f, ph->p_offset, ph->p_filesz) || ph->p_memsz < ph->p_filesz)
		return rv_failx(err, EINVAL, "segment at file offset 0x%llx is truncated or malformed",
				(unsigned long long)ph->p_offset);
	uint8_t *dst = guest_mem_slice(mem, ph->p_paddr, ph->p_memsz);
	if (!dst || ph->p_paddr < HIGH_RAM_START_GPA)
		return rv_failx(err, ENOMEM, "segment for 0x%llx-0x%llx does not fit in guest RAM",
				(unsigned long long)ph->p_paddr,
				(unsigned long long)(ph->p_paddr + ph->p_memsz));
	if (copy_segment(f, fd, ph, dst, err) < 0)
		return -1;
	discard_skippable(mem, ph, dst, code);
	memset(dst + ph->p_filesz, 0, ph->p_memsz - ph->p_filesz);
	if (ph->p_paddr + ph->p_memsz > img->end)
		img->end = ph->p_paddr + ph->p_memsz;
	return 0;
}

int elf_pvh_load(const struct file_bytes *f, int fd, const struct guest_mem *mem,
		 struct kernel_image *img, struct rv_err *err)
{
	const Elf64_Ehdr *eh = bytes_at(f, 0, sizeof(*eh));
	int found = 0;

	if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_machine != EM_X86_64)
		return rv_failx(err, EINVAL, "not a 64-bit x86 ELF kernel");
	if (eh->e_phentsize != sizeof(Elf64_Phdr) ||
	    !bytes_at(f, eh->e_phoff, (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr)))
		return rv_failx(err, EINVAL, "ELF program headers are truncated");
	struct code_ranges code;
	find_code(f, eh, &code);
	memset(img, 0, sizeof(*img));
	img->format = KERNEL_ELF_PVH;
	for (unsigned i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;
		memcpy(&ph, f->data + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_LOAD && load_segment(f, fd, &ph, &code, mem, img, err) < 0)
			return -1;
		const uint8_t *note = ph.p_type == PT_NOTE ? bytes_at(f, ph.p_offset, ph.p_filesz) : NULL;
		if (note && !found)
			found = find_pvh_note(note, ph.p_filesz, &img->entry);
	}
	if (!found)
		return rv_failx(err, ENOEXEC, "no PVH entry note: build the kernel with CONFIG_PVH=y "
				"or pass its bzImage");
	if (img->end == 0)
		return rv_failx(err, EINVAL, "ELF kernel has no loadable segments");
	img->initrd_max = guest_mem_low_end(mem);
	img->cmdline_max = CMDLINE_MAX_BYTES - 1;
	return 0;
}
