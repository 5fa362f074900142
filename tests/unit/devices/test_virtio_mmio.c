/* The virtio-mmio v2 transport and the device core, driven through the
 * registers by the test driver, with virtio-rng as the device behind them. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "devices/rng/rng.h"
#include "devices/virtio/mmio.h"
#include "devices/vsock/vsock.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (16ull << 20)
#define ALL_STATUS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK)

static struct guest_mem mem;
static struct rng rng;
static struct virtio_mmio mmio;
static struct vdriver drv;

static void setup(void)
{
	struct rv_err err;

	cr_assert_eq(guest_mem_create(&mem, MEM_BYTES, &err), 0, "%s", err.msg);
	rng_init(&rng, &mem, NULL);
	cr_assert_eq(virtio_mmio_init(&mmio, &rng.dev, 0xd0000000ull, 5, -1, NULL, &err), 0, "%s", err.msg);
	vdriver_init(&drv, &mem, &mmio);
}

static void teardown(void)
{
	virtio_mmio_destroy(&mmio);
	rng_destroy(&rng);
	guest_mem_destroy(&mem);
}

TestSuite(virtio_mmio, .init = setup, .fini = teardown);

/* --- identity and features --------------------------------------------------- */

Test(virtio_mmio, identifies_as_modern_virtio_mmio)
{
	cr_assert_eq(vdriver_read32(&drv, VD_MAGIC), 0x74726976u, "\"virt\"");
	cr_assert_eq(vdriver_read32(&drv, VD_VERSION), 2);
	cr_assert_eq(vdriver_read32(&drv, VD_DEVICE_ID), VIRTIO_ID_RNG);
	cr_assert_neq(vdriver_read32(&drv, VD_VENDOR_ID), 0);
}

Test(virtio_mmio, ignores_unaligned_and_narrow_register_access)
{
	uint8_t b[4] = { 0xff, 0xff, 0xff, 0xff };
	virtio_mmio_read(&mmio, VD_MAGIC, b, 2);
	cr_assert_eq(b[0] | b[1], 0, "16-bit register reads read as zero");
	virtio_mmio_read(&mmio, VD_MAGIC + 1, b, 4);
	cr_assert_eq(b[0] | b[1] | b[2] | b[3], 0);
	uint8_t one[4] = { VIRTIO_STATUS_ACKNOWLEDGE, 0, 0, 0 };
	virtio_mmio_write(&mmio, VD_STATUS, one, 1);
	cr_assert_eq(vdriver_status(&drv), 0, "a byte write to a 32-bit register is ignored");
}

Test(virtio_mmio, offers_version_1_indirect_and_event_idx)
{
	uint64_t f = vdriver_device_features(&drv);
	cr_assert(f & VIRTIO_F_VERSION_1);
	cr_assert(f & VIRTIO_F_RING_INDIRECT_DESC);
	cr_assert(f & VIRTIO_F_RING_EVENT_IDX);
	vdriver_write32(&drv, VD_DEVICE_FEATURES_SEL, 2);
	cr_assert_eq(vdriver_read32(&drv, VD_DEVICE_FEATURES), 0, "no feature word 2");
}

Test(virtio_mmio, accepts_offered_features)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX), 0);
	cr_assert_eq(vdriver_status(&drv), ALL_STATUS);
	cr_assert_eq(rng.dev.driver_features, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
}

Test(virtio_mmio, refuses_features_ok_for_a_feature_not_offered)
{
	vdriver_write32(&drv, VD_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vdriver_write_features(&drv, VIRTIO_F_VERSION_1 | (1ull << 5));
	vdriver_write32(&drv, VD_STATUS, ALL_STATUS);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_FEATURES_OK, 0);
}

Test(virtio_mmio, refuses_features_ok_without_version_1)
{
	vdriver_write32(&drv, VD_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vdriver_write_features(&drv, VIRTIO_F_RING_EVENT_IDX);
	vdriver_write32(&drv, VD_STATUS, ALL_STATUS);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_FEATURES_OK, 0);
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_RING_EVENT_IDX), -1, "a legacy driver is refused");
}

Test(virtio_mmio, freezes_driver_features_once_features_ok)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	vdriver_write_features(&drv, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX);
	cr_assert_eq(rng.dev.driver_features, VIRTIO_F_VERSION_1);
}

Test(virtio_mmio, does_not_activate_without_features_ok)
{
	vdriver_write32(&drv, VD_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
	vdriver_write_features(&drv, VIRTIO_F_RING_EVENT_IDX);   /* refused below */
	vdriver_write32(&drv, VD_STATUS, ALL_STATUS);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, 8), 0);
	vdriver_driver_ok(&drv);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 0, "no queue runs without FEATURES_OK");
}

/* --- queues ------------------------------------------------------------------------ */

Test(virtio_mmio, reports_queue_max_and_only_existing_queues)
{
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_NUM_MAX), RNG_QUEUE_SIZE);
	vdriver_write32(&drv, VD_QUEUE_SEL, 1);
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_NUM_MAX), 0, "rng has one queue");
	vdriver_write32(&drv, VD_QUEUE_SEL, 0x7fffffff);
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_NUM_MAX), 0);
	vdriver_write32(&drv, VD_QUEUE_READY, 1);   /* to no queue: nothing happens */
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_READY), 0);
}

Test(virtio_mmio, sets_up_a_queue_through_registers)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, 16), 0);
	struct virtq *q = &rng.dev.queues[0];
	cr_assert(q->ready);
	cr_assert_eq(q->size, 16);
	cr_assert_eq(q->desc_gpa, drv.q[0].desc_gpa);
	cr_assert_eq(q->avail_gpa, drv.q[0].avail_gpa);
	cr_assert_eq(q->used_gpa, drv.q[0].used_gpa);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, 128), -1, "QueueNum above QueueNumMax");
}

Test(virtio_mmio, ignores_queue_address_writes_while_ready)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, 16), 0);
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	vdriver_write32(&drv, VD_QUEUE_DESC_LOW, 0x1230);
	vdriver_write32(&drv, VD_QUEUE_NUM, 4);
	cr_assert_eq(rng.dev.queues[0].desc_gpa, drv.q[0].desc_gpa);
	cr_assert_eq(rng.dev.queues[0].size, 16);
}

Test(virtio_mmio, takes_64_bit_ring_addresses)
{
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	vdriver_write32(&drv, VD_QUEUE_DESC_LOW, 0x1000);
	vdriver_write32(&drv, VD_QUEUE_DESC_HIGH, 0x1);
	vdriver_write32(&drv, VD_QUEUE_DRIVER_HIGH, 0x2);
	vdriver_write32(&drv, VD_QUEUE_DRIVER_LOW, 0x3000);
	cr_assert_eq(rng.dev.queues[0].desc_gpa, 0x100001000ull);
	cr_assert_eq(rng.dev.queues[0].avail_gpa, 0x200003000ull);
}

Test(virtio_mmio, reset_clears_status_features_queues_and_interrupts)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, 1, 16), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_neq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), 0);

	vdriver_reset(&drv);
	cr_assert_eq(vdriver_status(&drv), 0);
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), 0);
	cr_assert_eq(rng.dev.driver_features, 0);
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_READY), 0);
	cr_assert_eq(rng.dev.queues[0].size, 0);
	cr_assert_null(rng.dev.queues[0].used);

	/* And the device comes up again from scratch. */
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	b.gpa = vdriver_alloc(&drv, 16, 16);
	int head = vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	uint16_t h;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(h, head);
	cr_assert_eq(len, 16);
}

Test(virtio_mmio, activates_a_queue_enabled_after_driver_ok)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	vdriver_driver_ok(&drv);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, 8), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 1);
}

Test(virtio_mmio, ignores_kicks_before_driver_ok_and_for_unknown_queues)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, 8), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 0, "not live before DRIVER_OK");
	vdriver_driver_ok(&drv);
	vdriver_write32(&drv, VD_QUEUE_NOTIFY, 3);
	vdriver_write32(&drv, VD_QUEUE_NOTIFY, 0xffffffffu);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 0);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 1);
}

/* --- interrupts ---------------------------------------------------------------- */

Test(virtio_mmio, interrupt_status_is_set_by_used_buffers_and_cleared_by_ack)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	cr_assert_eq(vdriver_irqs(&drv), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_irqs(&drv), 1, "the irq eventfd was signalled");
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), VIRTIO_INT_USED);
	vdriver_write32(&drv, VD_INTERRUPT_ACK, VIRTIO_INT_CONFIG);
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), VIRTIO_INT_USED, "ack clears only its bits");
	vdriver_write32(&drv, VD_INTERRUPT_ACK, VIRTIO_INT_USED);
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), 0);
}

Test(virtio_mmio, no_interrupt_flag_suppresses_the_irq)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	vdriver_disable_cb(&drv, 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 1);
	cr_assert_eq(vdriver_irqs(&drv), 0);
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), 0);
}

Test(virtio_mmio, event_idx_suppresses_irqs_and_kicks)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, 1, 8), 0);
	uint64_t gpa = vdriver_alloc(&drv, 16, 16);
	struct vdriver_buf b = { gpa, 16, true };
	uint16_t h;
	uint32_t len;

	vdriver_add(&drv, 0, &b, 1, false);
	cr_assert(vdriver_kick(&drv, 0), "the first buffer is always kicked");
	cr_assert_eq(vdriver_irqs(&drv), 1);
	cr_assert_eq(vdriver_avail_event(&drv, 0), 1, "the device asks for a kick at the next buffer");

	/* The driver does not reap: used_event stays 0, so no further irqs. */
	vdriver_add(&drv, 0, &b, 1, false);
	cr_assert(vdriver_kick(&drv, 0));
	cr_assert_eq(vdriver_used_idx(&drv, 0), 2);
	cr_assert_eq(vdriver_irqs(&drv), 0, "used_event 0 was passed already");

	/* Reaping moves used_event to 2: the next used buffer interrupts. */
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_kick(&drv, 0);
	cr_assert_eq(vdriver_irqs(&drv), 1);
}

/* --- a broken driver ------------------------------------------------------------- */

static void assert_needs_reset(void)
{
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, "status 0x%x",
		  vdriver_status(&drv));
	cr_assert(vdriver_read32(&drv, VD_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
	cr_assert_geq(vdriver_irqs(&drv), 1, "a config interrupt was raised");
	cr_assert_neq(vdriver_read32(&drv, VD_CONFIG_GENERATION), 0);
}

Test(virtio_mmio, malformed_ring_sets_needs_reset_and_raises_config_interrupt)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	vdriver_set_avail_idx(&drv, 0, 100);   /* 100 buffers in a ring of 8 */
	vdriver_notify(&drv, 0);
	assert_needs_reset();

	/* Nothing is processed until the driver resets the device. */
	vdriver_set_avail_idx(&drv, 0, 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 0);

	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

Test(virtio_mmio, bad_chain_is_returned_empty_and_the_queue_goes_on)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	struct vdriver_buf bad = { MEM_BYTES - 4, 64, true };
	struct vdriver_buf good = { vdriver_alloc(&drv, 16, 16), 16, true };
	int h1 = vdriver_add(&drv, 0, &bad, 1, false);
	int h2 = vdriver_add(&drv, 0, &good, 1, false);
	vdriver_notify(&drv, 0);
	uint16_t h;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(h, h1);
	cr_assert_eq(len, 0);
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(h, h2);
	cr_assert_eq(len, 16);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, 0);
}

Test(virtio_mmio, rings_outside_ram_at_driver_ok_set_needs_reset)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	vdriver_write32(&drv, VD_QUEUE_NUM, 8);
	vdriver_write32(&drv, VD_QUEUE_DESC_LOW, 0x1000);
	vdriver_write32(&drv, VD_QUEUE_DRIVER_LOW, 0x2000);
	vdriver_write32(&drv, VD_QUEUE_DEVICE_LOW, (uint32_t)MEM_BYTES);   /* just past RAM */
	vdriver_write32(&drv, VD_QUEUE_READY, 1);
	vdriver_driver_ok(&drv);
	assert_needs_reset();
	vdriver_notify(&drv, 0);       /* must not touch the half-checked rings */
}

Test(virtio_mmio, misaligned_ring_enabled_after_driver_ok_sets_needs_reset)
{
	cr_assert_eq(vdriver_negotiate(&drv, VIRTIO_F_VERSION_1), 0);
	vdriver_driver_ok(&drv);
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	vdriver_write32(&drv, VD_QUEUE_NUM, 8);
	vdriver_write32(&drv, VD_QUEUE_DESC_LOW, 0x1008);
	vdriver_write32(&drv, VD_QUEUE_DRIVER_LOW, 0x2000);
	vdriver_write32(&drv, VD_QUEUE_DEVICE_LOW, 0x3000);
	vdriver_write32(&drv, VD_QUEUE_READY, 1);
	assert_needs_reset();
}

/* --- virtio-rng --------------------------------------------------------------------- */

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

Test(virtio_mmio, rng_fills_buffers_with_random_bytes_and_raises_the_irq)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_INDIRECT_DESC, 1, 16), 0);
	uint64_t a = vdriver_alloc(&drv, 4096, 16), b = vdriver_alloc(&drv, 4096, 16);
	struct vdriver_buf one = { a, 4096, true };
	struct vdriver_buf two[] = { { b, 100, true }, { b + 100, 3996, true } };
	int ha = vdriver_add(&drv, 0, &one, 1, false);
	int hb = vdriver_add(&drv, 0, two, 2, true);
	cr_assert(vdriver_kick(&drv, 0));

	uint16_t h;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(h, ha);
	cr_assert_eq(len, 4096);
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(h, hb);
	cr_assert_eq(len, 4096);
	cr_assert_geq(vdriver_irqs(&drv), 1);
	cr_assert_eq(vdriver_isr_ack(&drv), VIRTIO_INT_USED);

	uint8_t *pa = vdriver_host(&drv, a, 4096), *pb = vdriver_host(&drv, b, 4096);
	cr_assert(!all_zero(pa, 4096) && !all_zero(pa + 4064, 32));
	cr_assert(!all_zero(pb + 96, 8), "both segments of the indirect chain were filled");
	cr_assert(!all_zero(pb + 4064, 32));
	cr_assert(memcmp(pa, pb, 4096) != 0);
}

Test(virtio_mmio, rng_caps_one_request)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	uint64_t gpa = vdriver_alloc(&drv, 2 * RNG_MAX_REQUEST_BYTES, 16);
	struct vdriver_buf big = { gpa, 2 * RNG_MAX_REQUEST_BYTES, true };
	vdriver_add(&drv, 0, &big, 1, false);
	vdriver_notify(&drv, 0);
	uint16_t h;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(len, RNG_MAX_REQUEST_BYTES);
	cr_assert(all_zero(vdriver_host(&drv, gpa + RNG_MAX_REQUEST_BYTES, 64), 64));
}

Test(virtio_mmio, rng_writes_nothing_into_readable_buffers)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	uint64_t gpa = vdriver_alloc(&drv, 64, 16);
	struct vdriver_buf ro = { gpa, 64, false };
	vdriver_add(&drv, 0, &ro, 1, false);
	vdriver_notify(&drv, 0);
	uint16_t h;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, 0, &h, &len), 1);
	cr_assert_eq(len, 0);
	cr_assert(all_zero(vdriver_host(&drv, gpa, 64), 64));
}

Test(virtio_mmio, rng_serves_every_buffer_of_a_full_ring)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, 1, RNG_QUEUE_SIZE), 0);
	uint64_t gpa = vdriver_alloc(&drv, 32 * RNG_QUEUE_SIZE, 16);
	for (unsigned round = 0; round < 3; round++) {
		for (unsigned i = 0; i < RNG_QUEUE_SIZE; i++) {
			struct vdriver_buf b = { gpa + 32 * i, 32, true };
			cr_assert_geq(vdriver_add(&drv, 0, &b, 1, false), 0);
		}
		vdriver_kick(&drv, 0);
		uint16_t h;
		uint32_t len;
		unsigned n = 0;
		while (vdriver_get_used(&drv, 0, &h, &len) == 1) {
			cr_assert_eq(len, 32);
			n++;
		}
		cr_assert_eq(n, RNG_QUEUE_SIZE, "round %u", round);
	}
}

/* --- other transport details --------------------------------------------------------- */

Test(virtio_mmio, formats_the_kernel_command_line_device)
{
	char buf[64];
	cr_assert_eq(virtio_mmio_cmdline(0xd0000000ull, 5, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "virtio_mmio.device=4K@0xd0000000:5");
	cr_assert_eq(virtio_mmio_cmdline(0xd0000000ull, 5, buf, 10), -1);
}

Test(virtio_mmio, reads_vsock_config_as_the_guest_cid)
{
	struct vsock v;
	struct virtio_mmio m2;
	struct rv_err err;
	vsock_init(&v, 0x1122334455667788ull, &mem, NULL, NULL);
	cr_assert_eq(virtio_mmio_init(&m2, &v.dev, 0xd0001000ull, 6, -1, NULL, &err), 0);
	uint8_t cfg[8];
	virtio_mmio_read(&m2, VD_CONFIG, cfg, 8);
	uint64_t cid;
	memcpy(&cid, cfg, 8);
	cr_assert_eq(cid, 0x1122334455667788ull);
	uint32_t hi;
	virtio_mmio_read(&m2, VD_CONFIG + 4, (uint8_t *)&hi, 4);
	cr_assert_eq(hi, 0x11223344u);
	virtio_mmio_read(&m2, VD_CONFIG + 8, (uint8_t *)&hi, 4);
	cr_assert_eq(hi, 0, "beyond the config space reads as zero");
	cr_assert_eq(vdriver_read32(&(struct vdriver){ .mmio = &m2 }, VD_DEVICE_ID), VIRTIO_ID_VSOCK);
	virtio_mmio_destroy(&m2);
	vsock_destroy(&v);
}

/* --- the watchdog: notifications lost on their way ------------------------------ */

Test(virtio_mmio, watchdog_serves_buffers_whose_kick_was_lost)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);     /* published, never kicked */
	virtio_dev_watchdog(&rng.dev);
	virtio_dev_watchdog(&rng.dev);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 1, "a pass serves what sat there since the last one");
	cr_assert_eq(vdriver_irqs(&drv), 1);
}

Test(virtio_mmio, watchdog_leaves_a_queue_that_makes_progress_alone)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	virtio_dev_watchdog(&rng.dev);
	virtio_dev_watchdog(&rng.dev);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 0);
	cr_assert_eq(vdriver_irqs(&drv), 0, "nothing pending: no interrupt, no work");
}

Test(virtio_mmio, watchdog_raises_an_unacknowledged_interrupt_again)
{
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_irqs(&drv), 1);
	virtio_dev_watchdog(&rng.dev);
	cr_assert_eq(vdriver_irqs(&drv), 0, "not before VIRTIO_IRQ_RETRY_MS");
	usleep((VIRTIO_IRQ_RETRY_MS + 50) * 1000);
	virtio_dev_watchdog(&rng.dev);
	cr_assert_eq(vdriver_irqs(&drv), 1, "the lost interrupt comes again");
	cr_assert_eq(vdriver_isr_ack(&drv), VIRTIO_INT_USED);
	usleep((VIRTIO_IRQ_RETRY_MS + 50) * 1000);
	virtio_dev_watchdog(&rng.dev);
	cr_assert_eq(vdriver_irqs(&drv), 0, "an acknowledged interrupt is not raised again");
}

/* Without sleeping VIRTIO_IRQ_STALL_MS: each pass finds the last raise one
 * retry period old. */
static void age_and_watch(unsigned passes)
{
	for (unsigned i = 0; i < passes; i++) {
		rng.dev.isr_since_ms -= VIRTIO_IRQ_RETRY_MS;
		virtio_dev_watchdog(&rng.dev);
	}
}

Test(virtio_mmio, an_interrupt_unacknowledged_for_long_is_reported_once_as_a_warning)
{
	int p[2];
	char buf[1024] = { 0 };

	cr_assert_eq(pipe2(p, O_NONBLOCK), 0);
	struct rv_log log = { .fd = p[1], .format = RV_LOG_TEXT, .min_level = RV_LOG_WARN };
	rng.dev.log = &log;
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 1, 8), 0);
	struct vdriver_buf b = { vdriver_alloc(&drv, 16, 16), 16, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	age_and_watch(VIRTIO_IRQ_STALL_MS / VIRTIO_IRQ_RETRY_MS - 1);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), -1, "nothing said before VIRTIO_IRQ_STALL_MS");
	age_and_watch(5);
	cr_assert_gt(read(p[0], buf, sizeof(buf) - 1), 0);
	cr_assert(strstr(buf, "virtio-rng") && strstr(buf, "unacknowledged for 10 s"), "%s", buf);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), -1, "said once, not at every retry");

	/* Acknowledged, then raised again: a new interrupt with a clock of its own. */
	vdriver_isr_ack(&drv);
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	age_and_watch(VIRTIO_IRQ_STALL_MS / VIRTIO_IRQ_RETRY_MS - 1);
	cr_assert_eq(read(p[0], buf, sizeof(buf)), -1, "the count starts again at the new interrupt");
	age_and_watch(1);
	cr_assert_gt(read(p[0], buf, sizeof(buf)), 0);
	rng.dev.log = NULL;
	close(p[0]);
	close(p[1]);
}
