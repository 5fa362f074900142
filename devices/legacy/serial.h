/* A 16550A UART, transmit side: enough for the Linux 8250 driver's console and
 * /dev/ttyS0 writes. Output goes to an optional fd and always into a small ring,
 * so that a panic can be reported with the guest's last words. */
#ifndef RV_SERIAL_H
#define RV_SERIAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SERIAL_COM1_PORT 0x3f8
#define SERIAL_COM1_IRQ 4
#define SERIAL_PORT_COUNT 8
#define SERIAL_TAIL_BYTES 8192

struct serial {
	pthread_mutex_t lock;
	int out_fd;                  /* -1: keep output in the ring only */
	int irq_fd;                  /* eventfd wired to the IRQ line with KVM_IRQFD */
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	int thr_irq_pending;
	uint8_t tail[SERIAL_TAIL_BYTES];
	size_t tail_pos, tail_len;
};

void serial_init(struct serial *s, int out_fd, int irq_fd);
void serial_destroy(struct serial *s);
void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len);
void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len);

/* Template clones (vmm/template.h): the registers the guest's driver set. */
struct serial_regs {
	uint8_t ier, lcr, mcr, scr, dll, dlm, thr_irq_pending, pad;
};
void serial_save(struct serial *s, struct serial_regs *out);
void serial_restore(struct serial *s, const struct serial_regs *in);
/* Copies the last output (up to size-1 bytes, NUL-terminated) into buf. */
size_t serial_tail(struct serial *s, char *buf, size_t size);

#endif
