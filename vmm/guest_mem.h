/* Guest RAM: one memfd mapped shared (so snapshots and clones can reuse it),
 * registered with KVM as one slot below the 32-bit MMIO hole and one above 4 GiB.
 * guest_mem_slice() is the one place where guest addresses are bounds-checked. */
#ifndef RV_GUEST_MEM_H
#define RV_GUEST_MEM_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define GUEST_MEM_MAX_REGIONS 2

struct guest_region {
	uint64_t gpa;
	uint64_t size;
	uint8_t *host;
};

struct guest_mem {
	int memfd;
	uint8_t *base;               /* the whole mapping; regions point into it */
	uint64_t size;               /* bytes of RAM */
	unsigned nregions;
	struct guest_region regions[GUEST_MEM_MAX_REGIONS];
};

/* Split `size` bytes of RAM around the MMIO hole. Pure: no memory is mapped. */
void guest_mem_layout(struct guest_mem *mem, uint64_t size);

int guest_mem_create(struct guest_mem *mem, uint64_t size, struct rv_err *err);
/* Template clones (vmm/template.h): RAM that starts as the file's contents,
 * mapped copy-on-write. The guest's writes stay private to this VM; pages it
 * only reads are the file's, shared with every clone of it. fd must be a
 * file of exactly size bytes; the mapping keeps it, the caller closes fd. */
int guest_mem_create_cow(struct guest_mem *mem, uint64_t size, int fd, struct rv_err *err);
int guest_mem_register(const struct guest_mem *mem, int vm_fd, struct rv_err *err);
void guest_mem_destroy(struct guest_mem *mem);

/* Host pointer to [gpa, gpa+len) when it lies wholly inside one RAM region,
 * else NULL. Never forms a pointer from an unchecked guest address. */
void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len);

/* Makes [gpa, gpa+len) read as zeros and hands its pages back to the host,
 * which then costs nothing until the guest touches it again. Both must be
 * page-aligned and inside one region. */
int guest_mem_discard(const struct guest_mem *mem, uint64_t gpa, uint64_t len, struct rv_err *err);

/* Highest end of RAM below 4 GiB: where loaders may place the initrd. */
uint64_t guest_mem_low_end(const struct guest_mem *mem);

#endif
