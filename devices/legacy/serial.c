#include "devices/legacy/serial.h"

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#define UART_RBR_THR 0
#define UART_IER     1
#define UART_IIR_FCR 2
#define UART_LCR     3
#define UART_MCR     4
#define UART_LSR     5
#define UART_MSR     6
#define UART_SCR     7

#define UART_IER_THRI     0x02
#define UART_IIR_NO_INT   0x01
#define UART_IIR_THRI     0x02
#define UART_IIR_FIFO_ON  0xc0
#define UART_LCR_DLAB     0x80
#define UART_LSR_THRE     0x20
#define UART_LSR_TEMT     0x40
#define UART_MSR_IDLE     0xb0     /* DCD, DSR and CTS up: a cable is attached */

void serial_init(struct serial *s, int out_fd, int irq_fd)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	s->out_fd = out_fd;
	s->irq_fd = irq_fd;
}

void serial_save(struct serial *s, struct serial_regs *out)
{
	pthread_mutex_lock(&s->lock);
	*out = (struct serial_regs){ s->ier, s->lcr, s->mcr, s->scr, s->dll, s->dlm,
				     (uint8_t)(s->thr_irq_pending != 0), 0 };
	pthread_mutex_unlock(&s->lock);
}

void serial_restore(struct serial *s, const struct serial_regs *in)
{
	pthread_mutex_lock(&s->lock);
	s->ier = in->ier;
	s->lcr = in->lcr;
	s->mcr = in->mcr;
	s->scr = in->scr;
	s->dll = in->dll;
	s->dlm = in->dlm;
	s->thr_irq_pending = in->thr_irq_pending != 0;
	pthread_mutex_unlock(&s->lock);
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

static void raise_irq(struct serial *s)
{
	uint64_t one = 1;
	s->thr_irq_pending = 1;
	if (s->irq_fd >= 0 && write(s->irq_fd, &one, sizeof(one)) < 0) {
		/* The counter can only overflow after 2^64 edges; nothing to do. */
	}
}

static void transmit(struct serial *s, uint8_t byte)
{
	s->tail[s->tail_pos] = byte;
	s->tail_pos = (s->tail_pos + 1) % SERIAL_TAIL_BYTES;
	if (s->tail_len < SERIAL_TAIL_BYTES)
		s->tail_len++;
	/* The console is best effort: a stalled reader must not stall the vCPU
	 * forever, and a lost byte of console output harms no one. */
	if (s->out_fd >= 0 && write(s->out_fd, &byte, 1) < 0)
		s->out_fd = -1;
	if (s->ier & UART_IER_THRI)
		raise_irq(s);
}

void serial_write(void *opaque, uint64_t offset, const uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	if (len != 1)
		return;
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & UART_LCR_DLAB;
	switch (offset) {
	case UART_RBR_THR:
		if (dlab)
			s->dll = data[0];
		else
			transmit(s, data[0]);
		break;
	case UART_IER:
		if (dlab) {
			s->dlm = data[0];
			break;
		}
		/* Enabling the THR interrupt with an empty THR interrupts at once:
		 * the 8250 driver waits for that edge to start sending. */
		if (!(s->ier & UART_IER_THRI) && (data[0] & UART_IER_THRI))
			raise_irq(s);
		s->ier = data[0] & 0x0f;
		break;
	case UART_LCR: s->lcr = data[0]; break;
	case UART_MCR: s->mcr = data[0]; break;
	case UART_SCR: s->scr = data[0]; break;
	default: break;     /* FCR, LSR, MSR: nothing to emulate */
	}
	pthread_mutex_unlock(&s->lock);
}

void serial_read(void *opaque, uint64_t offset, uint8_t *data, uint32_t len)
{
	struct serial *s = opaque;
	if (len != 1) {
		memset(data, 0, len);
		return;
	}
	pthread_mutex_lock(&s->lock);
	bool dlab = s->lcr & UART_LCR_DLAB;
	switch (offset) {
	case UART_RBR_THR: data[0] = dlab ? s->dll : 0; break;
	case UART_IER: data[0] = dlab ? s->dlm : s->ier; break;
	case UART_IIR_FCR:
		data[0] = UART_IIR_FIFO_ON | (s->thr_irq_pending ? UART_IIR_THRI : UART_IIR_NO_INT);
		s->thr_irq_pending = 0;
		break;
	case UART_LCR: data[0] = s->lcr; break;
	case UART_MCR: data[0] = s->mcr; break;
	case UART_LSR: data[0] = UART_LSR_THRE | UART_LSR_TEMT; break;
	case UART_MSR: data[0] = UART_MSR_IDLE; break;
	case UART_SCR: data[0] = s->scr; break;
	default: data[0] = 0; break;
	}
	pthread_mutex_unlock(&s->lock);
}

size_t serial_tail(struct serial *s, char *buf, size_t size)
{
	pthread_mutex_lock(&s->lock);
	size_t n = s->tail_len < size - 1 ? s->tail_len : size - 1;
	size_t start = (s->tail_pos + SERIAL_TAIL_BYTES - n) % SERIAL_TAIL_BYTES;
	for (size_t i = 0; i < n; i++)
		buf[i] = (char)s->tail[(start + i) % SERIAL_TAIL_BYTES];
	buf[n] = '\0';
	pthread_mutex_unlock(&s->lock);
	return n;
}
