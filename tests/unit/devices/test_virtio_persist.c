/* A virtio device's saved state (devices/virtio/persist.h), as a template
 * clone uses it: a virtio-rng driven through the MMIO registers by the test
 * driver is saved, and a fresh device over the same guest memory (a second
 * window, as the clone's VMM makes it) takes the state back and goes on
 * serving the driver, which never noticed. A record that does not describe a
 * device the driver could have left behind is refused, and the device it
 * was meant for then serves nothing. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "common/snapbuf.h"
#include "devices/rng/rng.h"
#include "devices/virtio/mmio.h"
#include "devices/virtio/persist.h"
#include "devices/vsock/vsock.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (16ull << 20)
#define QSIZE 8u
#define REQ_BYTES 16u
#define LIVE_STATUS (VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | \
		     VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK)
#define FEATURES (VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX)

static struct guest_mem mem;
static struct rng tpl, cloned;             /* the template's device and the clone's */
static struct virtio_mmio tpl_mmio, clone_mmio;
static struct vdriver drv;
static struct snapbuf saved;

static void setup(void)
{
	struct rv_err err;

	cr_assert_eq(guest_mem_create(&mem, MEM_BYTES, &err), 0, "%s", err.msg);
	rng_init(&tpl, &mem, NULL);
	cr_assert_eq(virtio_mmio_init(&tpl_mmio, &tpl.dev, 0xd0000000ull, 5, -1, NULL, &err), 0,
		     "%s", err.msg);
	rng_init(&cloned, &mem, NULL);
	cr_assert_eq(virtio_mmio_init(&clone_mmio, &cloned.dev, 0xd0001000ull, 6, -1, NULL, &err), 0,
		     "%s", err.msg);
	vdriver_init(&drv, &mem, &tpl_mmio);
}

static void teardown(void)
{
	snapbuf_free(&saved);
	virtio_mmio_destroy(&clone_mmio);
	virtio_mmio_destroy(&tpl_mmio);
	rng_destroy(&cloned);
	rng_destroy(&tpl);
	guest_mem_destroy(&mem);
}

TestSuite(virtio_persist, .init = setup, .fini = teardown);

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* One request from the driver, served by whichever device drv.mmio leads
 * to: its head comes back with REQ_BYTES of random bytes. */
static void serve_one(void)
{
	uint64_t gpa = vdriver_alloc(&drv, REQ_BYTES, 16);
	struct vdriver_buf b = { gpa, REQ_BYTES, true };
	uint16_t head;
	uint32_t len;

	int h = vdriver_add(&drv, 0, &b, 1, false);
	cr_assert_geq(h, 0);
	cr_assert(vdriver_kick(&drv, 0), "the device asked for a kick at the next buffer");
	cr_assert_eq(vdriver_get_used(&drv, 0, &head, &len), 1, "request not served");
	cr_assert_eq(head, h);
	cr_assert_eq(len, REQ_BYTES);
	cr_assert(!all_zero(vdriver_host(&drv, gpa, REQ_BYTES), REQ_BYTES));
}

/* As the VMM saves: with the device's lock held. */
static void save_template(void)
{
	struct rv_err err;

	pthread_mutex_lock(&tpl.dev.lock);
	virtio_dev_save_locked(&tpl.dev, &saved);
	pthread_mutex_unlock(&tpl.dev.lock);
	cr_assert_eq(snapbuf_check(&saved, &err), 0, "%s", err.msg);
}

static int restore_clone(struct rv_err *err)
{
	struct snapreader r = { .data = saved.data, .len = saved.len };

	int rc = virtio_dev_restore(&cloned.dev, &r, err);
	if (rc == 0)
		cr_assert_eq(snapreader_end(&r, err), 0, "%s", err->msg);
	return rc;
}

/* From here on the guest's driver talks to the clone. */
static void switch_to_clone(void)
{
	drv.mmio = &clone_mmio;
}

/* --- a live device goes on --------------------------------------------------- */

Test(virtio_persist, a_restored_device_serves_the_next_request_where_the_template_stopped)
{
	struct rv_err err;

	cr_assert_eq(vdriver_start(&drv, FEATURES, 1, QSIZE), 0);
	/* More requests than the ring holds: the indices have wrapped the ring. */
	for (unsigned i = 0; i < QSIZE + 3; i++)
		serve_one();
	vdriver_isr_ack(&drv);
	vdriver_irqs(&drv);
	save_template();

	cr_assert_eq(restore_clone(&err), 0, "%s", err.msg);
	switch_to_clone();
	cr_assert_eq(vdriver_status(&drv), LIVE_STATUS);
	cr_assert_eq(vdriver_device_features(&drv), virtio_dev_features(&tpl.dev));
	cr_assert_eq(cloned.dev.driver_features, FEATURES, "what the driver accepted");
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_READY), 1);
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), 0, "acknowledged before the save");
	cr_assert_eq(cloned.dev.queues[0].desc_gpa, drv.q[0].desc_gpa);
	cr_assert_eq(cloned.dev.queues[0].avail_gpa, drv.q[0].avail_gpa);
	cr_assert_eq(cloned.dev.queues[0].used_gpa, drv.q[0].used_gpa);

	serve_one();
	cr_assert_eq(vdriver_used_idx(&drv, 0), QSIZE + 4, "the used index went on, not from 0");
	cr_assert_eq(vdriver_irqs(&drv), 1, "the clone interrupts as EVENT_IDX asks");
	cr_assert_eq(vdriver_isr_ack(&drv), VIRTIO_INT_USED);
	serve_one();
	cr_assert_eq(vdriver_used_idx(&drv, 0), QSIZE + 5);
}

Test(virtio_persist, an_interrupt_pending_at_the_save_is_raised_again_by_kick_saved)
{
	struct rv_err err;

	cr_assert_eq(vdriver_start(&drv, FEATURES, 1, QSIZE), 0);
	serve_one();
	vdriver_irqs(&drv);            /* the template's eventfd; the ISR stays set */
	save_template();

	cr_assert_eq(restore_clone(&err), 0, "%s", err.msg);
	switch_to_clone();
	cr_assert_eq(vdriver_read32(&drv, VD_INTERRUPT_STATUS), VIRTIO_INT_USED);
	cr_assert_eq(vdriver_irqs(&drv), 0, "nothing raised before the clone's vCPUs run");
	virtio_dev_kick_saved(&cloned.dev);
	cr_assert_eq(vdriver_irqs(&drv), 1);
	cr_assert_eq(vdriver_isr_ack(&drv), VIRTIO_INT_USED);
	virtio_dev_kick_saved(&cloned.dev);
	cr_assert_eq(vdriver_irqs(&drv), 0, "an acknowledged interrupt is not raised again");
}

Test(virtio_persist, a_device_saved_while_negotiating_restores_as_not_active)
{
	struct rv_err err;

	cr_assert_eq(vdriver_negotiate(&drv, FEATURES), 0);
	cr_assert_eq(vdriver_setup_queue(&drv, 0, QSIZE), 0);
	save_template();

	cr_assert_eq(restore_clone(&err), 0, "%s", err.msg);
	switch_to_clone();
	cr_assert_eq(vdriver_status(&drv), LIVE_STATUS & ~VIRTIO_STATUS_DRIVER_OK);
	cr_assert_not(virtio_dev_active(&cloned.dev));
	vdriver_write32(&drv, VD_QUEUE_SEL, 0);
	cr_assert_eq(vdriver_read32(&drv, VD_QUEUE_READY), 1, "the driver's queue setup is kept");
	cr_assert_null(cloned.dev.queues[0].used, "rings are mapped at DRIVER_OK, not before");

	struct vdriver_buf b = { vdriver_alloc(&drv, REQ_BYTES, 16), REQ_BYTES, true };
	vdriver_add(&drv, 0, &b, 1, false);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 0, "not live before DRIVER_OK");

	/* The driver finishes its probe on the clone, which then comes up. */
	vdriver_driver_ok(&drv);
	vdriver_notify(&drv, 0);
	cr_assert_eq(vdriver_used_idx(&drv, 0), 1);
}

Test(virtio_persist, a_device_never_probed_restores_as_new)
{
	struct rv_err err;

	save_template();
	cr_assert_eq(restore_clone(&err), 0, "%s", err.msg);
	switch_to_clone();
	cr_assert_eq(vdriver_status(&drv), 0);
	cr_assert_eq(vdriver_start(&drv, FEATURES, 1, QSIZE), 0);
	serve_one();
}

/* --- records that describe no device a driver could have left ------------------- */

/* A refused record leaves the clone as never driven, serving nothing: a
 * kick, and the watchdog's passes, find no rings to touch, and the used ring
 * stays as the template left it. (Before the fix in virtio_dev_restore, a
 * queue refused after the status was applied left a live device whose
 * indices started from 0: a kick served the template's old requests again.) */
static void assert_serves_nothing(void)
{
	uint16_t used = vdriver_used_idx(&drv, 0);
	uint64_t gpa = vdriver_alloc(&drv, REQ_BYTES, 16);
	struct vdriver_buf b = { gpa, REQ_BYTES, true };

	switch_to_clone();
	cr_assert_eq(vdriver_status(&drv), 0, "the refused clone is as never driven");
	cr_assert_geq(vdriver_add(&drv, 0, &b, 1, false), 0);
	vdriver_notify(&drv, 0);
	virtio_dev_watchdog(&cloned.dev);
	virtio_dev_watchdog(&cloned.dev);
	cr_assert_eq(vdriver_used_idx(&drv, 0), used, "the refused clone served a request");
	cr_assert(all_zero(vdriver_host(&drv, gpa, REQ_BYTES), REQ_BYTES));
	cr_assert_eq(vdriver_irqs(&drv), 0);
}

static void assert_refused(int code, const char *what)
{
	struct rv_err err = { 0 };

	cr_assert_eq(restore_clone(&err), -1, "a bad record was restored");
	cr_assert_eq(err.code, code, "errno %d (%s), not %d", err.code, err.msg, code);
	cr_assert(strstr(err.msg, "virtio-rng"), "the error names the device: %s", err.msg);
	cr_assert(strstr(err.msg, what), "the error says '%s': %s", what, err.msg);
	assert_serves_nothing();
}

static void start_and_serve(void)
{
	cr_assert_eq(vdriver_start(&drv, FEATURES, 1, QSIZE), 0);
	serve_one();
}

Test(virtio_persist, refuses_the_record_of_another_device)
{
	struct vsock v;
	struct rv_err err;

	vsock_init(&v, VSOCK_GUEST_CID, &mem, NULL, NULL);
	pthread_mutex_lock(&v.dev.lock);
	virtio_dev_save_locked(&v.dev, &saved);
	pthread_mutex_unlock(&v.dev.lock);
	vsock_destroy(&v);
	cr_assert_eq(snapbuf_check(&saved, &err), 0);
	cr_assert_eq(vdriver_start(&drv, FEATURES, 1, QSIZE), 0);
	assert_refused(EPROTO, "virtio device 19 with 3 queues");
}

Test(virtio_persist, refuses_features_the_device_never_offered)
{
	start_and_serve();
	tpl.dev.driver_features |= 1ull << 5;     /* an edited state file */
	save_template();
	assert_refused(EPROTO, "features 0x120000020 were never offered");
}

Test(virtio_persist, refuses_a_device_the_driver_marked_failed)
{
	start_and_serve();
	vdriver_write32(&drv, VD_STATUS, LIVE_STATUS | VIRTIO_STATUS_FAILED);
	save_template();
	assert_refused(EPROTO, "status 0x8f");
}

Test(virtio_persist, refuses_a_device_that_needs_a_reset)
{
	start_and_serve();
	uint16_t avail = drv.q[0].avail_idx;
	vdriver_set_avail_idx(&drv, 0, (uint16_t)(avail + 100));    /* breaks the ring */
	vdriver_notify(&drv, 0);
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET);
	vdriver_set_avail_idx(&drv, 0, avail);
	vdriver_irqs(&drv);
	save_template();
	assert_refused(EPROTO, "status 0x4f");
}

Test(virtio_persist, refuses_rings_outside_guest_memory)
{
	start_and_serve();
	tpl.dev.queues[0].used_gpa = MEM_BYTES - 8;     /* the ring's tail leaves RAM */
	save_template();
	assert_refused(EINVAL, "used ring [0xfffff8, +70) is outside guest RAM");
}

Test(virtio_persist, refuses_indices_more_than_a_ring_apart)
{
	start_and_serve();
	/* The device cannot have taken more than a ring's worth ahead of what
	 * it gave back. */
	tpl.dev.queues[0].last_avail = (uint16_t)(tpl.dev.queues[0].used_idx + QSIZE + 1);
	save_template();
	assert_refused(EPROTO, "indices 10/1/1 are more than a ring apart");
}

Test(virtio_persist, refuses_a_used_index_more_than_a_ring_past_the_last_interrupt)
{
	start_and_serve();
	tpl.dev.queues[0].signalled_used = (uint16_t)(tpl.dev.queues[0].used_idx - QSIZE - 1);
	save_template();
	assert_refused(EPROTO, "more than a ring apart");
}

Test(virtio_persist, refuses_a_truncated_record)
{
	start_and_serve();
	save_template();
	saved.len--;
	assert_refused(EPROTO, "'virt' record says");
	/* Cut inside the record header too. */
	saved.len = SNAP_RECORD_HDR_BYTES - 1;
	assert_refused(EPROTO, "ends before its 'virt' record");
}

Test(virtio_persist, refuses_a_record_of_the_wrong_size)
{
	struct rv_err err;
	uint8_t small[16] = { 0 };

	snapbuf_put(&saved, SNAP_TAG('v', 'i', 'r', 't'), small, sizeof(small));
	cr_assert_eq(snapbuf_check(&saved, &err), 0);
	cr_assert_eq(vdriver_start(&drv, FEATURES, 1, QSIZE), 0);
	assert_refused(EPROTO, "'virt' record has 16 bytes");
}
