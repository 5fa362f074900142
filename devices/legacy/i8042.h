/* The i8042 keyboard controller, only as far as the reset line: the guest
 * reboots with reboot=k, writing 0xfe to port 0x64, and we answer at once
 * (a guest spinning on a missing controller costs tens of seconds). */
#ifndef RV_I8042_H
#define RV_I8042_H

#include <stdint.h>

#define I8042_DATA_PORT 0x60
#define I8042_PORT_SPAN 5           /* 0x60..0x64 */

struct i8042 {
	void (*reset)(void *ctx);
	void *ctx;
};

void i8042_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);

#endif
