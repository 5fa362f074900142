#include "vmm/x86/ksym.h"

#include <elf.h>
#include <stdio.h>
#include <string.h>

static const void *at(const struct file_bytes *f, uint64_t off, uint64_t len)
{
	return off <= f->size && len <= f->size - off ? f->data + off : NULL;
}

static const Elf64_Shdr *section(const struct file_bytes *f, const Elf64_Ehdr *eh, unsigned i)
{
	if (i >= eh->e_shnum || eh->e_shentsize != sizeof(Elf64_Shdr))
		return NULL;
	return at(f, eh->e_shoff + (uint64_t)i * sizeof(Elf64_Shdr), sizeof(Elf64_Shdr));
}

int ksym_lookup_bytes(const struct file_bytes *f, uint64_t addr, char *buf, size_t size)
{
	const Elf64_Ehdr *eh = at(f, 0, sizeof(*eh));
	if (!eh || memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0 || eh->e_ident[EI_CLASS] != ELFCLASS64)
		return -1;
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		const Elf64_Shdr *sh = section(f, eh, i);
		if (!sh || sh->sh_type != SHT_SYMTAB || sh->sh_entsize != sizeof(Elf64_Sym))
			continue;
		const Elf64_Shdr *strsh = section(f, eh, sh->sh_link);
		const Elf64_Sym *syms = at(f, sh->sh_offset, sh->sh_size);
		const char *strs = strsh ? at(f, strsh->sh_offset, strsh->sh_size) : NULL;
		if (!syms || !strs)
			return -1;
		const Elf64_Sym *best = NULL;
		for (uint64_t k = 0; k < sh->sh_size / sizeof(Elf64_Sym); k++) {
			const Elf64_Sym *s = &syms[k];
			unsigned type = ELF64_ST_TYPE(s->st_info);
			if ((type == STT_FUNC || type == STT_NOTYPE) && s->st_name && s->st_value <= addr &&
			    s->st_name < strsh->sh_size && (!best || s->st_value > best->st_value))
				best = s;
		}
		if (!best)
			return -1;
		const char *name = strs + best->st_name;
		size_t max = strsh->sh_size - best->st_name;   /* the name must end inside */
		if (!memchr(name, '\0', max))
			return -1;
		snprintf(buf, size, "%s+0x%llx", name, (unsigned long long)(addr - best->st_value));
		return 0;
	}
	return -1;
}

int ksym_lookup(int fd, uint64_t addr, char *buf, size_t size)
{
	struct file_bytes f;
	struct rv_err ignored;

	if (fd < 0 || file_bytes_map_fd(&f, fd, "", "--kernel", &ignored) < 0)
		return -1;
	int rc = ksym_lookup_bytes(&f, addr, buf, size);
	file_bytes_unmap(&f);
	return rc;
}
