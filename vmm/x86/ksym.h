/* Kernel symbol for a guest RIP, read from the vmlinux symbol table only when
 * something went wrong: it costs nothing on the boot path. */
#ifndef RV_X86_KSYM_H
#define RV_X86_KSYM_H

#include <stddef.h>
#include <stdint.h>

#include "vmm/x86/kernel.h"

/* "name+0xoff" for addr in the ELF file open at fd (opened before the VMM's
 * seccomp filters, which let no vCPU open a file); -1 when there is no symbol
 * table (a bzImage, a stripped vmlinux) or no symbol below addr. */
int ksym_lookup(int fd, uint64_t addr, char *buf, size_t size);

/* The same on bytes in memory (fuzzable). */
int ksym_lookup_bytes(const struct file_bytes *f, uint64_t addr, char *buf, size_t size);

#endif
