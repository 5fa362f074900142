/* What template clones need of the vsock device (vsock.h): whether it is idle
 * enough to be saved, and the transport-reset event that gives a clone's
 * guest its own CID, with the test driver playing the guest's virtio-vsock
 * driver (event queue 2 with 4-byte buffers, as Linux posts them). */
#include <criterion/criterion.h>
#include <endian.h>
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/snapbuf.h"
#include "devices/virtio/persist.h"
#include "tests/unit/devices/vsock_harness.h"

#define EVENT_BYTES 4u                  /* struct virtio_vsock_event: le32 id */
#define EVENT_TRANSPORT_RESET 0u
#define LINUX_EVENT_BUFFERS 8u          /* virtio_transport.c's event_list[] */
#define NEW_CID 1234u

static uint64_t event_gpa[QSIZE];

/* One event buffer made available, filled with a pattern the device must
 * overwrite. Returns its head. */
static int post_event(uint32_t len)
{
	uint64_t gpa = vdriver_alloc(&drv, len, 4);
	struct vdriver_buf b = { gpa, len, true };

	cr_assert_neq(gpa, 0);
	memset(vdriver_host(&drv, gpa, len), 0xa5, len);
	int head = vdriver_add(&drv, EVQ, &b, 1, false);
	cr_assert_geq(head, 0);
	event_gpa[head] = gpa;
	vdriver_kick(&drv, EVQ);
	return head;
}

static uint64_t config_cid(void)
{
	uint8_t cfg[8];
	uint64_t cid;

	virtio_mmio_read(&mmio, VD_CONFIG, cfg, sizeof(cfg));
	memcpy(&cid, cfg, sizeof(cid));
	return le64toh(cid);
}

/* Linux reads the 64-bit CID as two 32-bit halves (virtio_mmio's vm_get). */
static uint64_t config_cid_halves(void)
{
	return (uint64_t)vdriver_read32(&drv, VD_CONFIG + 4) << 32 | vdriver_read32(&drv, VD_CONFIG);
}

/* The one event the driver finds on its event queue. */
static void expect_reset_event(int head)
{
	uint16_t h;
	uint32_t len, id;

	cr_assert_eq(vdriver_get_used(&drv, EVQ, &h, &len), 1, "no event on the event queue");
	cr_assert_eq(h, head, "the event went into buffer %u, not the first posted %d", h, head);
	cr_assert_eq(len, EVENT_BYTES);
	memcpy(&id, vdriver_host(&drv, event_gpa[h], EVENT_BYTES), sizeof(id));
	cr_assert_eq(le32toh(id), EVENT_TRANSPORT_RESET, "event id 0x%x", le32toh(id));
	cr_assert_eq(vdriver_get_used(&drv, EVQ, &h, &len), 0, "more than one event");
}

/* --- the transport reset ------------------------------------------------------- */

Test(vsock_persist, transport_reset_gives_one_event_and_the_new_cid, .init = start, .fini = stop)
{
	struct rv_err err;
	int first = post_event(EVENT_BYTES);

	for (unsigned i = 1; i < LINUX_EVENT_BUFFERS; i++)
		post_event(EVENT_BYTES);
	cr_assert_eq(config_cid(), VSOCK_GUEST_CID);
	vdriver_irqs(&drv);
	vdriver_isr_ack(&drv);

	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), 0, "%s", err.msg);
	expect_reset_event(first);
	cr_assert_geq(vdriver_irqs(&drv), 1, "the guest is interrupted for the event");
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_USED);
	cr_assert_eq(config_cid(), NEW_CID);
	cr_assert_eq(config_cid_halves(), NEW_CID);
}

Test(vsock_persist, transport_reset_is_seen_once_the_driver_posts_its_buffer_again,
     .init = start, .fini = stop)
{
	struct rv_err err;
	uint16_t h;
	uint32_t len;

	for (unsigned i = 0; i < LINUX_EVENT_BUFFERS; i++)
		post_event(EVENT_BYTES);
	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), 0, "%s", err.msg);
	cr_assert_not(vsock_transport_reset_seen(&vs), "the driver has not run yet");

	/* Linux's event handler: take the event, read the CID, give the buffer back. */
	cr_assert_eq(vdriver_get_used(&drv, EVQ, &h, &len), 1);
	cr_assert_not(vsock_transport_reset_seen(&vs), "taken, not yet given back");
	cr_assert_eq(config_cid_halves(), NEW_CID);
	struct vdriver_buf b = { event_gpa[h], EVENT_BYTES, true };
	cr_assert_geq(vdriver_add(&drv, EVQ, &b, 1, false), 0);
	vdriver_kick(&drv, EVQ);
	cr_assert(vsock_transport_reset_seen(&vs));
}

Test(vsock_persist, transport_reset_without_an_event_buffer_fails_with_enobufs,
     .init = start, .fini = stop)
{
	struct rv_err err = { 0 };

	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), -1);
	cr_assert_eq(err.code, ENOBUFS, "errno %d: %s", err.code, err.msg);
	cr_assert(strstr(err.msg, "vsock transport reset") && strstr(err.msg, "no vsock event buffer"),
		  "%s", err.msg);
	cr_assert_eq(vdriver_irqs(&drv), 0);
}

Test(vsock_persist, transport_reset_before_the_driver_runs_fails)
{
	struct rv_err err = { 0 };
	struct vsock v;

	cr_assert_eq(guest_mem_create(&mem, 1 << 20, &err), 0);
	vsock_init(&v, VSOCK_GUEST_CID, &mem, NULL, NULL);
	cr_assert_eq(vsock_transport_reset(&v, NEW_CID, &err), -1);
	cr_assert_eq(err.code, EIO, "%s", err.msg);
	cr_assert(strstr(err.msg, "driver is not running"), "%s", err.msg);
	vsock_destroy(&v);
	guest_mem_destroy(&mem);
}

Test(vsock_persist, transport_reset_gives_back_an_event_buffer_too_small, .init = start,
     .fini = stop)
{
	struct rv_err err = { 0 };
	uint16_t h;
	uint32_t len;

	int head = post_event(2);
	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), -1);
	cr_assert_eq(err.code, EPROTO, "%s", err.msg);
	cr_assert(strstr(err.msg, "2 writable bytes"), "%s", err.msg);
	cr_assert_eq(vdriver_get_used(&drv, EVQ, &h, &len), 1, "the buffer is given back");
	cr_assert_eq(h, head);
	cr_assert_eq(len, 0);
}

Test(vsock_persist, transport_reset_gives_back_an_event_buffer_outside_ram, .init = start,
     .fini = stop)
{
	struct rv_err err = { 0 };
	struct vdriver_buf b = { MEM_BYTES - 2, EVENT_BYTES, true };
	uint16_t h;
	uint32_t len;

	int head = vdriver_add(&drv, EVQ, &b, 1, false);
	cr_assert_geq(head, 0);
	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), -1);
	cr_assert_eq(err.code, EFAULT, "%s", err.msg);
	cr_assert(strstr(err.msg, "outside guest RAM"), "%s", err.msg);
	/* As every device does with a malformed chain (virtq_pop): returned
	 * empty, so the driver does not lose the buffer. */
	cr_assert_eq(vdriver_get_used(&drv, EVQ, &h, &len), 1, "the bad buffer was not given back");
	cr_assert_eq(h, head);
	cr_assert_eq(len, 0);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, 0, "one bad buffer is not a "
		     "broken ring");
}

Test(vsock_persist, transport_reset_on_a_broken_event_ring_fails_the_device, .init = start,
     .fini = stop)
{
	struct rv_err err = { 0 };

	vdriver_set_avail_idx(&drv, EVQ, QSIZE + 1);    /* more buffers than the ring holds */
	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), -1);
	cr_assert_eq(err.code, EPROTO, "%s", err.msg);
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, "status 0x%x",
		  vdriver_status(&drv));
	cr_assert(vdriver_read32(&drv, VD_INTERRUPT_STATUS) & VIRTIO_INT_CONFIG);
}

/* --- idle: nothing a template could not carry ----------------------------------------- */

Test(vsock_persist, a_new_device_is_idle)
{
	struct rv_err err;
	struct vsock v;

	cr_assert_eq(guest_mem_create(&mem, 1 << 20, &err), 0);
	vsock_init(&v, VSOCK_GUEST_CID, &mem, NULL, NULL);
	cr_assert(vsock_idle(&v));
	vsock_destroy(&v);
	guest_mem_destroy(&mem);
}

Test(vsock_persist, a_device_is_not_idle_while_a_connection_exists, .init = start, .fini = stop)
{
	int fd;

	cr_assert(vsock_idle(&vs), "started, with rx buffers waiting: idle");
	struct gconn *c = guest_connect(40000, &fd);
	cr_assert_not(vsock_idle(&vs));
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	pump();
	cr_assert_eq(vs.nconns, 0);
	cr_assert(vsock_idle(&vs), "the connection is gone");
}

Test(vsock_persist, a_device_is_not_idle_while_a_host_connection_exists, .init = start,
     .fini = stop)
{
	int fd;

	host_connect(5000, &fd);
	cr_assert_not(vsock_idle(&vs));
	close(fd);
	expect_rx(VSOCK_OP_SHUTDOWN);
	struct gconn *c = gconn_find(pk.h.src_port, 5000);
	cr_assert_not_null(c);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	pump();
	cr_assert(vsock_idle(&vs));
}

Test(vsock_persist, a_device_is_not_idle_while_a_packet_waits_on_tx, .init = start, .fini = stop)
{
	struct gconn c = { .host_port = LISTEN_PORT, .guest_port = 40000, .buf_alloc = 4096 };
	struct vsock_hdr h = ghdr(&c, VSOCK_OP_RST, 0, 0);
	uint16_t head;
	uint32_t len;

	vsock_hdr_encode(&h, vdriver_host(&drv, tx_gpa, VSOCK_HDR_BYTES));
	struct vdriver_buf b = { tx_gpa, VSOCK_HDR_BYTES, false };
	cr_assert_geq(vdriver_add(&drv, TXQ, &b, 1, false), 0);     /* not kicked yet */
	cr_assert_not(vsock_idle(&vs));
	vdriver_kick(&drv, TXQ);
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 1);
	cr_assert(vsock_idle(&vs));
}

Test(vsock_persist, a_device_is_not_idle_while_it_owes_the_guest_a_reply, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, 0);
	struct gconn c = { .host_port = 9999, .guest_port = 40000, .buf_alloc = 4096 };
	gsend(&c, VSOCK_OP_REQUEST, 0, NULL, 0);     /* to no listener: an RST is owed */
	cr_assert_not(vsock_idle(&vs), "an RST waits for an rx buffer");
	post_rx_buffers(1);
	expect_rx(VSOCK_OP_RST);
	cr_assert(vsock_idle(&vs));
}

/* --- a clone's vsock: the template's device restored, then reset ------------------- */

Test(vsock_persist, a_restored_device_takes_its_new_cid_and_goes_on, .init = start, .fini = stop)
{
	struct rv_err err;
	struct snapbuf saved = { 0 };
	int fd;

	for (unsigned i = 0; i < LINUX_EVENT_BUFFERS; i++)
		post_event(EVENT_BYTES);
	/* Traffic before the save: the tx and rx indices are not at 0. */
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	pump();
	close(fd);
	naccepted = 0;
	cr_assert(vsock_idle(&vs));
	uint16_t tx_used = vdriver_used_idx(&drv, TXQ), rx_used = vdriver_used_idx(&drv, RXQ);
	cr_assert_gt(tx_used, 0);
	cr_assert_gt(rx_used, 0);
	pthread_mutex_lock(&vs.dev.lock);
	virtio_dev_save_locked(&vs.dev, &saved);
	pthread_mutex_unlock(&vs.dev.lock);
	cr_assert_eq(snapbuf_check(&saved, &err), 0);

	/* The clone's VMM: a new device with the clone's CID over the same memory. */
	virtio_mmio_destroy(&mmio);
	vsock_destroy(&vs);
	vsock_init(&vs, NEW_CID, &mem, &loop, NULL);
	cr_assert_eq(virtio_mmio_init(&mmio, &vs.dev, 0xd0000000ull, 5, -1, &loop, &err), 0, "%s",
		     err.msg);
	cr_assert_eq(vsock_listen(&vs, LISTEN_PORT, on_accept, NULL, &err), 0, "%s", err.msg);
	struct snapreader r = { .data = saved.data, .len = saved.len };
	cr_assert_eq(virtio_dev_restore(&vs.dev, &r, &err), 0, "%s", err.msg);
	cr_assert_eq(snapreader_end(&r, &err), 0, "%s", err.msg);
	snapbuf_free(&saved);
	cr_assert(vsock_idle(&vs));

	cr_assert_eq(vsock_transport_reset(&vs, NEW_CID, &err), 0, "%s", err.msg);
	expect_reset_event(0);
	cr_assert_eq(config_cid_halves(), NEW_CID);

	/* The guest, now CID 1234, asks for a port nobody listens on: the
	 * packet is taken from tx and the RST comes back on rx, addressed to
	 * the new CID, each ring's used index going on from the template's. */
	struct vsock_hdr h = { .src_cid = NEW_CID, .dst_cid = VSOCK_HOST_CID, .src_port = 40001,
			       .dst_port = 9999, .type = VSOCK_TYPE_STREAM, .op = VSOCK_OP_REQUEST,
			       .buf_alloc = 4096 };
	send_raw(&h, NULL, 0);
	cr_assert_eq(vdriver_used_idx(&drv, TXQ), (uint16_t)(tx_used + 1));
	pump();
	uint16_t head;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, RXQ, &head, &len), 1, "no reply from the clone");
	cr_assert_eq(vdriver_used_idx(&drv, RXQ), (uint16_t)(rx_used + 1));
	struct vsock_hdr reply;
	vsock_hdr_decode(vdriver_host(&drv, rx_gpa_of_head[head], VSOCK_HDR_BYTES), &reply);
	cr_assert_eq(reply.op, VSOCK_OP_RST);
	cr_assert_eq(reply.dst_cid, NEW_CID);
	cr_assert_eq(reply.dst_port, 40001);
}
