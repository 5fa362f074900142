#include "vmm/guest_mem.h"

#include <errno.h>
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "vmm/x86/layout.h"

void guest_mem_layout(struct guest_mem *mem, uint64_t size)
{
	uint64_t low = size < MMIO_GAP_START_GPA ? size : MMIO_GAP_START_GPA;

	mem->size = size;
	mem->nregions = 1;
	mem->regions[0] = (struct guest_region){ .gpa = 0, .size = low };
	if (size > low) {
		mem->regions[1] = (struct guest_region){ .gpa = MMIO_GAP_END_GPA, .size = size - low };
		mem->nregions = 2;
	}
}

static int map_ram(struct guest_mem *mem, uint64_t size, int fd, int flags, struct rv_err *err)
{
	/* MAP_NORESERVE: RAM the guest never touches costs the host nothing. */
	void *base = mmap(NULL, size, PROT_READ | PROT_WRITE, flags | MAP_NORESERVE, fd, 0);
	if (base == MAP_FAILED)
		return rv_fail(err, errno, "map %llu MiB of guest memory",
			       (unsigned long long)(size >> 20));
	mem->base = base;
	/* A crashing VMM must not write a tenant's memory into a host core file
	 * (QEMU's dump-guest-core=off); where the kernel lacks it, dumps carry it. */
	madvise(base, size, MADV_DONTDUMP);
	uint64_t offset = 0;
	for (unsigned i = 0; i < mem->nregions; i++) {
		mem->regions[i].host = mem->base + offset;
		offset += mem->regions[i].size;
	}
	return 0;
}

int guest_mem_create(struct guest_mem *mem, uint64_t size, struct rv_err *err)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	guest_mem_layout(mem, size);
	mem->memfd = memfd_create("runvm-guest-ram", MFD_CLOEXEC);
	if (mem->memfd < 0)
		return rv_fail(err, errno, "create guest memory (memfd)");
	if (ftruncate(mem->memfd, (off_t)size) < 0)
		return rv_fail(err, errno, "size guest memory to %llu MiB",
			       (unsigned long long)(size >> 20));
	return map_ram(mem, size, mem->memfd, MAP_SHARED, err);
}

/* Anonymous memory, and the file mapped over it where it has data: a fault
 * on a hole of a privately mapped tmpfs file would allocate that page in the
 * file, so the template would grow with every clone's touches. */
int guest_mem_create_cow(struct guest_mem *mem, uint64_t size, int fd, struct rv_err *err)
{
	memset(mem, 0, sizeof(*mem));
	mem->memfd = -1;
	guest_mem_layout(mem, size);
	if (map_ram(mem, size, -1, MAP_PRIVATE | MAP_ANONYMOUS, err) < 0)
		return -1;
	off_t off = 0;
	for (;;) {
		off_t data = lseek(fd, off, SEEK_DATA);
		if (data < 0 && errno == ENXIO)
			return 0;
		off_t hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (hole < 0)
			return rv_fail(err, errno, "find the template memory's data");
		if ((uint64_t)hole > size || (data | hole) & (off_t)(sysconf(_SC_PAGESIZE) - 1))
			return rv_failx(err, EPROTO, "template memory: data at 0x%llx-0x%llx is not "
					"whole pages of guest RAM", (unsigned long long)data,
					(unsigned long long)hole);
		if (mmap(mem->base + data, (size_t)(hole - data), PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, fd, data) == MAP_FAILED)
			return rv_fail(err, errno, "map the template memory at 0x%llx",
				       (unsigned long long)data);
		madvise(mem->base + data, (size_t)(hole - data), MADV_DONTDUMP);
		off = hole;
	}
}

int guest_mem_register(const struct guest_mem *mem, int vm_fd, struct rv_err *err)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		struct kvm_userspace_memory_region r = {
			.slot = i,
			.guest_phys_addr = mem->regions[i].gpa,
			.memory_size = mem->regions[i].size,
			.userspace_addr = (uintptr_t)mem->regions[i].host,
		};
		if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
			return rv_fail(err, errno, "register guest memory at 0x%llx",
				       (unsigned long long)r.guest_phys_addr);
	}
	return 0;
}

void guest_mem_destroy(struct guest_mem *mem)
{
	if (mem->base)
		munmap(mem->base, mem->size);
	if (mem->memfd >= 0)
		close(mem->memfd);
	mem->base = NULL;
	mem->memfd = -1;
}

void *guest_mem_slice(const struct guest_mem *mem, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < mem->nregions; i++) {
		const struct guest_region *r = &mem->regions[i];
		/* Written so that no sum can overflow, whatever the guest passes. */
		if (gpa >= r->gpa && gpa - r->gpa <= r->size && len <= r->size - (gpa - r->gpa))
			return r->host ? r->host + (gpa - r->gpa) : NULL;
	}
	return NULL;
}

int guest_mem_discard(const struct guest_mem *mem, uint64_t gpa, uint64_t len, struct rv_err *err)
{
	const uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
	uint8_t *p = guest_mem_slice(mem, gpa, len);

	if (!p || (gpa | len) & (page - 1))
		return rv_failx(err, EINVAL, "discard guest 0x%llx+0x%llx: not page-aligned guest RAM",
				(unsigned long long)gpa, (unsigned long long)len);
	/* On the shared memfd mapping, MADV_REMOVE frees the backing pages. */
	if (len && madvise(p, len, MADV_REMOVE) < 0)
		return rv_fail(err, errno, "discard guest 0x%llx+0x%llx", (unsigned long long)gpa,
			       (unsigned long long)len);
	return 0;
}

uint64_t guest_mem_low_end(const struct guest_mem *mem)
{
	return mem->regions[0].size;
}
