/* A fuzz input read as a script: little-endian numbers and byte runs taken
 * from the front, zeros once it runs out (a short input is a valid one). */
#ifndef RV_FUZZ_INPUT_H
#define RV_FUZZ_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct input {
	const uint8_t *p;
	size_t n;
};

static inline uint8_t take8(struct input *in)
{
	if (!in->n)
		return 0;
	in->n--;
	return *in->p++;
}

static inline uint16_t take16(struct input *in)
{
	return (uint16_t)(take8(in) | take8(in) << 8);
}

static inline uint32_t take32(struct input *in)
{
	return (uint32_t)take16(in) | (uint32_t)take16(in) << 16;
}

/* Up to *len bytes, fewer when the input ends first (*len then says how many). */
static inline const uint8_t *take_bytes(struct input *in, size_t *len)
{
	const uint8_t *p = in->p;
	if (*len > in->n)
		*len = in->n;
	in->p += *len;
	in->n -= *len;
	return p;
}

#endif
