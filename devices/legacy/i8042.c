#include "devices/legacy/i8042.h"

#include <string.h>

#define I8042_COMMAND_OFFSET 4      /* port 0x64 */
#define I8042_CMD_PULSE_RESET 0xfe

void i8042_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	(void)opaque;
	(void)offset;
	/* Status 0: input buffer empty, so the kernel's kb_wait() returns at once. */
	memset(data, 0, len);
}

void i8042_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct i8042 *k = opaque;
	if (offset == I8042_COMMAND_OFFSET && len == 1 && data[0] == I8042_CMD_PULSE_RESET)
		k->reset(k->ctx);
}
