#include "common/jsonw.h"

#include <stdio.h>

static void put(char *buf, size_t size, size_t *n, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++, (*n)++)
		if (*n + 1 < size)
			buf[*n] = s[i];
}

size_t jsonw_quote(char *buf, size_t size, const char *s)
{
	size_t n = 0;

	put(buf, size, &n, "\"", 1);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		char esc[8];
		switch (*p) {
		case '"':  put(buf, size, &n, "\\\"", 2); break;
		case '\\': put(buf, size, &n, "\\\\", 2); break;
		case '\n': put(buf, size, &n, "\\n", 2); break;
		case '\r': put(buf, size, &n, "\\r", 2); break;
		case '\t': put(buf, size, &n, "\\t", 2); break;
		default:
			if (*p < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", *p);
				put(buf, size, &n, esc, 6);
			} else {
				put(buf, size, &n, (const char *)p, 1);
			}
		}
	}
	put(buf, size, &n, "\"", 1);
	if (size)
		buf[n < size ? n : size - 1] = '\0';
	return n;
}
