#include "vmm/bus.h"

#include <errno.h>
#include <string.h>

int bus_add(struct bus *bus, const struct bus_device *dev, struct rv_err *err)
{
	if (dev->len == 0 || dev->base + dev->len < dev->base)
		return rv_failx(err, EINVAL, "device %s: empty or wrapping range", dev->name);
	if (bus->n == BUS_MAX_DEVICES)
		return rv_failx(err, ENOSPC, "device %s: bus full (%d devices)", dev->name,
				BUS_MAX_DEVICES);
	for (unsigned i = 0; i < bus->n; i++) {
		const struct bus_device *o = &bus->devs[i];
		if (dev->base < o->base + o->len && o->base < dev->base + dev->len)
			return rv_failx(err, EBUSY, "device %s at 0x%llx overlaps %s at 0x%llx",
					dev->name, (unsigned long long)dev->base, o->name,
					(unsigned long long)o->base);
	}
	bus->devs[bus->n++] = *dev;
	return 0;
}

static const struct bus_device *find(const struct bus *bus, uint64_t addr, uint32_t len)
{
	for (unsigned i = 0; i < bus->n; i++) {
		const struct bus_device *d = &bus->devs[i];
		if (addr >= d->base && addr - d->base < d->len && len <= d->len - (addr - d->base))
			return d;
	}
	return NULL;
}

int bus_read(const struct bus *bus, uint64_t addr, uint8_t *data, uint32_t len)
{
	const struct bus_device *d = find(bus, addr, len);
	if (!d || !d->read) {
		memset(data, 0xff, len);
		return -1;
	}
	d->read(d->opaque, addr - d->base, data, len);
	return 0;
}

int bus_write(const struct bus *bus, uint64_t addr, const uint8_t *data, uint32_t len)
{
	const struct bus_device *d = find(bus, addr, len);
	if (!d || !d->write)
		return -1;
	d->write(d->opaque, addr - d->base, data, len);
	return 0;
}
