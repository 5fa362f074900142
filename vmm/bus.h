/* Port-I/O and MMIO dispatch: each device claims a range; a vCPU exit finds
 * the device by address. Ranges are fixed before the first KVM_RUN, so lookups
 * need no lock. */
#ifndef RV_BUS_H
#define RV_BUS_H

#include <stdint.h>

#include "common/err.h"

#define BUS_MAX_DEVICES 32

struct bus_device {
	const char *name;
	uint64_t base, len;
	void *opaque;
	void (*read)(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
	void (*write)(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);
};

struct bus {
	unsigned n;
	struct bus_device devs[BUS_MAX_DEVICES];
};

int bus_add(struct bus *bus, const struct bus_device *dev, struct rv_err *err);

/* Reads from nothing see all ones, like an open bus; writes to nothing vanish.
 * Returns 0 when a device took the access, -1 when none did. */
int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len);
int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len);

#endif
