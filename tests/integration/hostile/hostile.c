/* hostile: the hostile-guest suite's guest program (test_hostile_vm.sh), the
 * /init of a tiny initramfs. It does what DESIGN §8 says any guest may do to
 * the VMM: write every port, read and write every MMIO register and unmapped
 * address, and drive the virtio devices itself with rings no driver would
 * publish. The guest kernel's own drivers stay bound: this program resets a
 * device under them and takes it over through /dev/mem.
 *
 * Kernel command line: runvm_hostile=MODE and mem=RESERVED, below the VM's
 * RAM: the RAM above mem= is this program's, for its rings and buffers.
 *   ports   every I/O port, each width, reads and garbage writes
 *   mmio    every register of every virtio-mmio window, and unmapped MMIO
 *   virtq   on every queue of every device: descriptors outside RAM, address
 *           wrap, huge lengths, loops, indexes out of the table, bad indirect
 *           tables, avail index jumps, and rings rewritten while the device
 *           reads them
 *   vsock   raw packets on virtio-vsock: a flood of connection requests,
 *           data with no connection, lengths past the buffer, forged CIDs,
 *           unknown ops and types, credit that cannot be true
 *   virtq-fs  virtq on virtio-fs alone, run by the agent as a command over a
 *           --rootfs (a payload boot has no file service): locked in memory,
 *           as its own files go with the device
 *   spin    every vCPU spins forever (the host must still stop the VM)
 * The mode may also come as the first argument.
 * Each attack prints "hostile: ..." on the console. A VMM still serving at
 * the end gets status 0 on the status port, and the guest resets. */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <time.h>
#include <unistd.h>

#include "hostile.h"
#include "tests/payloads/init_world.h"

/* The reserved RAM: each queue's rings at q * RING_BYTES, buffers after
 * them; desc, avail and used are the rings of the queue under attack. */
#define MAX_QUEUES 8u
#define RING_BYTES (16u << 10)
#define BUF_OFFSET (MAX_QUEUES * RING_BYTES)
struct ram {
	uint8_t *va;
	uint64_t gpa;
	struct desc *desc;
	struct avail *avail;
	struct used *used;
	uint64_t buf_gpa;
	uint8_t *buf;
};

static struct ram ram;
static int devmem = -1;

void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("hostile: ", stdout);
	vprintf(fmt, ap);
	fputc('\n', stdout);
	fflush(stdout);
	va_end(ap);
}

static void finish(unsigned status)
{
	say("done, reporting %u", status);
	if (getpid() != 1)
		exit((int)status);    /* the agent's command: it reports for us */
	if (ioperm(STATUS_PORT, 4, 1) == 0)
		outl(status, STATUS_PORT);
	reboot(RB_AUTOBOOT);
	for (;;)
		pause();
}

static void die(const char *what)
{
	say("cannot %s: %m", what);
	finish(99);
}

static void *map_phys(uint64_t gpa, size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, devmem, (off_t)gpa);
	return p == MAP_FAILED ? NULL : p;
}

void ms_sleep(unsigned ms)
{
	nanosleep(&(struct timespec){ ms / 1000, (long)(ms % 1000) * 1000000 }, NULL);
}

/* "virtio_mmio.device=4K@0xd0000000:5" for each device the VMM announced. */
static unsigned find_devices(struct dev *devs)
{
	char line[4096], *p;
	unsigned n = 0;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f || !fgets(line, sizeof(line), f))
		die("read /proc/cmdline");
	fclose(f);
	for (p = line; (p = strstr(p, "virtio_mmio.device=")) && n < MAX_DEVICES; p++) {
		unsigned long long gpa;
		if (sscanf(p, "virtio_mmio.device=%*[^@]@%llx", &gpa) != 1)
			continue;
		devs[n].gpa = gpa;
		devs[n].regs = map_phys(gpa, 4096);
		if (!devs[n].regs)
			die("map a virtio-mmio window");
		devs[n].id = rd(&devs[n], R_DEVICE_ID);
		n++;
	}
	return n;
}

void negotiate(const struct dev *d)
{
	wr(d, R_STATUS, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER);
	wr(d, R_DRV_FEAT_SEL, 1);
	wr(d, R_DRV_FEAT, 1);                  /* VIRTIO_F_VERSION_1 and nothing else */
	wr(d, R_DRV_FEAT_SEL, 0);
	wr(d, R_DRV_FEAT, 0);
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK);
}

void queue_rings(const struct dev *d, unsigned q, uint64_t gpa)
{
	wr(d, R_QUEUE_SEL, q);
	wr(d, R_QUEUE_NUM, QSIZE);
	wr(d, R_DESC_LO, (uint32_t)gpa);
	wr(d, R_DESC_HI, (uint32_t)(gpa >> 32));
	wr(d, R_AVAIL_LO, (uint32_t)(gpa + 4096));
	wr(d, R_AVAIL_HI, (uint32_t)((gpa + 4096) >> 32));
	wr(d, R_USED_LO, (uint32_t)(gpa + 8192));
	wr(d, R_USED_HI, (uint32_t)((gpa + 8192) >> 32));
	wr(d, R_QUEUE_READY, 1);
}

/* Takes the device over with fresh rings on every queue it has. */
static unsigned take_over(const struct dev *d)
{
	unsigned nq = 0;

	negotiate(d);
	memset(ram.va, 0, MAX_QUEUES * RING_BYTES);
	for (unsigned q = 0; q < MAX_QUEUES; q++) {
		wr(d, R_QUEUE_SEL, q);
		if (rd(d, R_QUEUE_NUM_MAX) < QSIZE)
			break;
		queue_rings(d, q, ram.gpa + q * RING_BYTES);
		nq++;
	}
	wr(d, R_STATUS, S_ACK | S_DRIVER | S_FEATURES_OK | S_DRIVER_OK);
	return nq;
}

static void use_rings(unsigned q)
{
	uint8_t *va = ram.va + q * RING_BYTES;

	ram.desc = (struct desc *)va;
	ram.avail = (struct avail *)(va + 4096);
	ram.used = (struct used *)(va + 8192);
}

static void publish(const struct dev *d, unsigned q, uint16_t head)
{
	ram.avail->ring[ram.avail->idx % QSIZE] = head;
	atomic_thread_fence(memory_order_release);
	ram.avail->idx++;
	atomic_thread_fence(memory_order_seq_cst);
	wr(d, R_QUEUE_NOTIFY, q);
}

static void set_desc(unsigned i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next)
{
	ram.desc[i] = (struct desc){ addr, len, flags, next };
}

/* Each attack fills the rings and returns the head to publish, or -1 when
 * it publishes by itself. */
typedef int (*attack_fn)(const struct dev *d, unsigned q);

static int outside_ram(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, 0xfffffffff000ull, 4096, D_WRITE, 0);
	return 0;
}
static int address_wraps(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, 0xfffffffffffff000ull, 0x2000, 0, 0);
	return 0;
}
static int huge_length(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, ram.buf_gpa, 0xffffffffu, D_WRITE, 0);
	return 0;
}
static int chain_loop(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, ram.buf_gpa, 64, D_NEXT, 1);
	set_desc(1, ram.buf_gpa, 64, D_NEXT, 0);
	return 0;
}
static int next_past_table(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, ram.buf_gpa, 64, D_NEXT, 0xfff0);
	return 0;
}
static int head_past_table(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	return 0xfff;
}
static int readable_after_writable(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, ram.buf_gpa, 64, D_WRITE | D_NEXT, 1);
	set_desc(1, ram.buf_gpa + 64, 64, 0, 0);
	return 0;
}
static int indirect_outside_ram(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, 0xfffffffff000ull, 16 * 8, D_INDIRECT, 0);
	return 0;
}
static int indirect_nested_and_looping(const struct dev *d, unsigned q)
{
	struct desc *ind = (struct desc *)ram.buf;

	(void)d; (void)q;
	ind[0] = (struct desc){ ram.buf_gpa, 32, D_INDIRECT | D_NEXT, 1 };
	ind[1] = (struct desc){ ram.buf_gpa, 32, D_NEXT, 0 };
	set_desc(0, ram.buf_gpa, 32, D_INDIRECT, 0);
	return 0;
}
static int indirect_huge(const struct dev *d, unsigned q)
{
	(void)d; (void)q;
	set_desc(0, ram.buf_gpa, 0xfffffff0u, D_INDIRECT, 0);
	return 0;
}
static int avail_index_jumps(const struct dev *d, unsigned q)
{
	for (unsigned i = 0; i < QSIZE; i++)
		ram.avail->ring[i] = 0xffff;
	ram.avail->idx += 0x8000;
	wr(d, R_QUEUE_NOTIFY, q);
	return -1;
}

static atomic_bool racing;

static void *scribble(void *arg)
{
	uint32_t x = 2463534242u;

	(void)arg;
	while (atomic_load(&racing)) {
		x ^= x << 13, x ^= x >> 17, x ^= x << 5;
		uint8_t *p = (uint8_t *)ram.desc + (x % (2 * 4096));   /* descriptors, avail ring */
		*p = (uint8_t)(x >> 8);
	}
	return NULL;
}

/* Publishes sane-looking chains while another thread rewrites the rings
 * under the device: whatever it reads twice may have changed in between. */
static int rings_rewritten(const struct dev *d, unsigned q)
{
	pthread_t t;
	struct timespec end, now;

	atomic_store(&racing, true);
	if (pthread_create(&t, NULL, scribble, NULL))
		die("start the scribbler");
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += 1;
	do {
		for (unsigned i = 0; i < QSIZE; i++)
			set_desc(i, ram.buf_gpa + 256 * i, 256, i & 1 ? D_WRITE : D_NEXT, (uint16_t)(i + 1));
		publish(d, q, (uint16_t)(ram.avail->idx % QSIZE));
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec < end.tv_sec || (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
	atomic_store(&racing, false);
	pthread_join(t, NULL);
	return -1;
}

static const struct { const char *name; attack_fn fn; } attacks[] = {
	{ "descriptor outside RAM", outside_ram },
	{ "address that wraps", address_wraps },
	{ "4 GiB length", huge_length },
	{ "chain loop", chain_loop },
	{ "next past the table", next_past_table },
	{ "head past the table", head_past_table },
	{ "readable after writable", readable_after_writable },
	{ "indirect table outside RAM", indirect_outside_ram },
	{ "indirect nested and looping", indirect_nested_and_looping },
	{ "indirect table of 4 GiB", indirect_huge },
	{ "avail index jumps 32768", avail_index_jumps },
	{ "rings rewritten while read", rings_rewritten },
};

static void attack_queues(const struct dev *d)
{
	unsigned nq = take_over(d);

	say("device %u at 0x%llx: %u queues", d->id, (unsigned long long)d->gpa, nq);
	for (unsigned q = 0; q < nq; q++) {
		if (d->id == VIRTIO_ID_VSOCK && q == 2)
			say("device %u queue 2: the event queue, read only on a transport reset", d->id);
		for (size_t a = 0; a < sizeof(attacks) / sizeof(attacks[0]); a++) {
			take_over(d);
			use_rings(q);
			int head = attacks[a].fn(d, q);
			if (head >= 0)
				publish(d, q, (uint16_t)head);
			/* vsock reads a receive buffer only when it owes the guest
			 * a packet: a request to a port nobody serves earns a reset. */
			if (d->id == VIRTIO_ID_VSOCK && q == 0)
				vsock_owe_packet(d, ram.va + RING_BYTES, ram.gpa + RING_BYTES,
						 ram.buf + 65536, ram.buf_gpa + 65536);
			ms_sleep(20);
			say("device %u queue %u, %s: status 0x%x, used %u", d->id, q, attacks[a].name,
			    rd(d, R_STATUS), ram.used->idx);
			wr(d, R_INT_ACK, rd(d, R_INT_STATUS));
		}
	}
	wr(d, R_STATUS, 0);
}

/* only: a device id, or 0 for all. */
static void mode_virtq(uint32_t only)
{
	struct dev devs[MAX_DEVICES];
	unsigned n = find_devices(devs);

	for (unsigned i = 0; i < n; i++)
		if (!only || devs[i].id == only)
			attack_queues(&devs[i]);
}

/* The UART's registers at every width, then its line settings put back
 * (divisor latch off first, or the console's next byte sets the divisor). */
static void serial_garbage(void)
{
	const uint16_t base = 0x3f8;
	uint8_t ier = inb(base + 1), lcr = inb(base + 3), mcr = inb(base + 4);

	for (uint16_t off = 1; off < 8; off++) {
		(void)inb(base + off);
		outb(0xa5, base + off);
		if (!(off & 1)) {
			(void)inw(base + off);
			outw(0xffff, base + off);
		}
	}
	outl(0xffffffffu, base + 4);
	outb(lcr & 0x7f, base + 3);
	outb(ier, base + 1);
	outb(mcr, base + 4);
}

static void mode_ports(void)
{
	/* Left out: the status port (our report), the reset ports (0x64's
	 * 0xfe, 0xcf9), what KVM's in-kernel PIC and PIT own, and the serial
	 * port, our console, whose line control would keep our last words
	 * (it gets the same treatment, restored after). */
	static const struct { unsigned lo, hi; } skip[] = {
		{ 0x20, 0x21 }, { 0x40, 0x43 }, { 0x64, 0x64 }, { 0xa0, 0xa1 }, { 0x3f8, 0x3ff },
		{ 0xcf9, 0xcf9 }, { STATUS_PORT, STATUS_PORT + 3 },
	};
	unsigned long touched = 0;

	if (iopl(3) < 0)
		die("iopl");
	/* Every port at byte width, every even one at 16 bits and every
	 * fourth at 32, all read and written: about 250000 exits, which a
	 * nested testbed takes in well under a minute. */
	for (unsigned port = 0; port <= 0xffff; port++) {
		bool skipped = false;
		for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
			skipped |= port + 3 >= skip[i].lo && port <= skip[i].hi;   /* nor overlapping */
		if (skipped)
			continue;
		(void)inb((uint16_t)port);
		outb(0xff, (uint16_t)port);
		if (!(port & 1) && port <= 0xfffe)
			outw((uint16_t)port, (uint16_t)port);
		if (!(port & 3) && port <= 0xfffc) {
			(void)inl((uint16_t)port);
			outl(0xa5a5a5a5u, (uint16_t)port);
		}
		touched++;
	}
	serial_garbage();
	say("ports: %lu ports read and written at every width", touched);
}

/* Every 32-bit register of each window, then the same over addresses with
 * no device: the VMM sees them all as MMIO exits. */
static void mode_mmio(void)
{
	static const uint64_t unmapped[] = { 0xd0010000ull, 0xc0000000ull, 0xe0000000ull, 0xfe000000ull };
	static const uint32_t values[] = { 0xffffffffu, 0, 0x7fffffffu };
	struct dev devs[MAX_DEVICES];
	unsigned n = find_devices(devs);

	for (unsigned i = 0; i < n; i++) {
		for (size_t v = 0; v < 3; v++)
			for (unsigned off = 0; off < 4096; off += 4) {
				(void)rd(&devs[i], off);
				wr(&devs[i], off, values[v]);
			}
		/* Byte and half-word access, which the transport must refuse. */
		volatile uint8_t *b = (volatile uint8_t *)devs[i].regs;
		for (unsigned off = 0; off < 0x200; off++)
			b[off] = (uint8_t)off, (void)b[off];
		wr(&devs[i], R_STATUS, 0);
		say("mmio: device %u at 0x%llx: every register read and written", devs[i].id,
		    (unsigned long long)devs[i].gpa);
	}
	for (size_t i = 0; i < sizeof(unmapped) / sizeof(unmapped[0]); i++) {
		volatile uint32_t *p = map_phys(unmapped[i], 4096);
		if (!p) {
			say("mmio: cannot map 0x%llx: %m", (unsigned long long)unmapped[i]);
			continue;
		}
		for (unsigned off = 0; off < 1024; off++)
			(void)p[off], p[off] = 0xdeadbeef;
		munmap((void *)p, 4096);
		say("mmio: 0x%llx, where no device is: read and written", (unsigned long long)unmapped[i]);
	}
}

static void mode_spin(void)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	for (long i = 1; i < cpus; i++)
		if (fork() == 0)
			break;
	say("spinning");
	for (volatile unsigned long x = 0;; x++)
		;
}

static void setup_ram(void)
{
	char line[4096];
	unsigned long long mem = 0;
	char unit = 0;
	FILE *f = fopen("/proc/cmdline", "r");

	if (!f || !fgets(line, sizeof(line), f))
		die("read /proc/cmdline");
	fclose(f);
	char *p = strstr(line, " mem=");
	if (!p || sscanf(p, " mem=%llu%c", &mem, &unit) < 1)
		die("find mem= on the command line");
	mem <<= unit == 'M' ? 20 : unit == 'G' ? 30 : unit == 'K' ? 10 : 0;
	ram.gpa = mem;
	ram.va = map_phys(mem, RESERVED_BYTES);
	if (!ram.va)
		die("map the RAM above mem=");
	use_rings(0);
	ram.buf = ram.va + BUF_OFFSET;
	ram.buf_gpa = ram.gpa + BUF_OFFSET;
}

uint8_t *hostile_ram(uint64_t *gpa) { *gpa = ram.gpa; return ram.va; }

/* Run by the agent from the virtio-fs rootfs that virtq-fs breaks: the
 * kernel would wait forever for the file service to release our binary
 * as we exit. So we run from a copy in memory, and nothing of the rootfs
 * stays open. */
static void run_from_memory(char **argv)
{
	extern char **environ;
	char buf[65536];
	ssize_t n;

	if (getenv("HOSTILE_IN_MEMORY"))
		return;
	int src = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
	int fd = memfd_create("hostile", MFD_CLOEXEC);
	if (src < 0 || fd < 0)
		die("copy itself into memory");
	while ((n = read(src, buf, sizeof(buf))) > 0)
		if (write(fd, buf, (size_t)n) != n)
			die("copy itself into memory");
	close(src);
	setenv("HOSTILE_IN_MEMORY", "1", 1);
	if (chdir("/proc") < 0)
		die("leave the rootfs");
	fexecve(fd, argv, environ);
	die("run from memory");
}

int main(int argc, char **argv)
{
	char line[4096] = "", mode[32] = "";
	FILE *f;

	/* As /init it sets up its world; as the agent's command (virtq-fs,
	 * whose attack takes away the files it runs from) it has one already. */
	if (getpid() == 1)
		payload_init_world();
	if (argc > 1 && !strcmp(argv[1], "virtq-fs"))
		run_from_memory(argv);
	if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0)
		die("lock itself in memory");
	f = fopen("/proc/cmdline", "r");
	if (f && fgets(line, sizeof(line), f)) {
		char *p = strstr(line, "runvm_hostile=");
		if (p)
			sscanf(p, "runvm_hostile=%31s", mode);
	}
	if (f)
		fclose(f);
	if (argc > 1)
		snprintf(mode, sizeof(mode), "%s", argv[1]);
	devmem = open("/dev/mem", O_RDWR | O_SYNC);
	if (devmem < 0)
		die("open /dev/mem (CONFIG_DEVMEM)");
	say("mode %s", mode);
	if (!strcmp(mode, "ports")) {
		mode_ports();
	} else if (!strcmp(mode, "mmio")) {
		mode_mmio();
	} else if (!strcmp(mode, "virtq") || !strcmp(mode, "virtq-fs")) {
		setup_ram();
		mode_virtq(strcmp(mode, "virtq") ? VIRTIO_ID_FS : 0);
	} else if (!strcmp(mode, "vsock")) {
		struct dev devs[MAX_DEVICES];
		setup_ram();
		unsigned n = find_devices(devs);
		if (vsock_abuse(devs, n) < 0)
			finish(98);
	} else if (!strcmp(mode, "spin")) {
		mode_spin();
	} else {
		say("unknown mode '%s'", mode);
		finish(97);
	}
	finish(0);
}
