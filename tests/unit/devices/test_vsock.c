/* virtio-vsock and its connection muxer, with the test driver playing the
 * guest (CID 3; rx queue 0, tx queue 1, event queue 2) and real host sockets
 * on the other side: connections, malformed packets, many connections.
 * Flow control and shutdown are in test_vsock_flow.c. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/devices/vsock_harness.h"

/* --- connections both ways ----------------------------------------------------------- */

Test(vsock, host_connect_sends_request_and_then_carries_data_both_ways, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = host_connect(5000, &fd);
	cr_assert_eq(vs.nconns, 1);
	vdriver_irqs(&drv);
	vdriver_isr_ack(&drv);

	host_write(fd, "hello", 5);
	expect_rx(VSOCK_OP_RW);
	cr_assert_geq(vdriver_irqs(&drv), 1, "data for the guest raises its interrupt");
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_USED);
	cr_assert_eq(pk.h.len, 5);
	cr_assert_arr_eq(pk.data, "hello", 5);
	cr_assert_eq(pk.h.src_port, c->host_port);
	cr_assert_eq(pk.h.dst_port, 5000);

	gsend(c, VSOCK_OP_RW, 0, "world!", 6);
	char buf[16];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 6);
	cr_assert_arr_eq(buf, "world!", 6);
	expect_no_rx();
	close(fd);
}

Test(vsock, host_connect_before_driver_ok_fails)
{
	struct rv_err err;
	cr_assert_eq(guest_mem_create(&mem, 1 << 20, &err), 0);
	cr_assert_eq(evloop_init(&loop, &err), 0);
	vsock_init(&vs, VSOCK_GUEST_CID, &mem, &loop, NULL);
	cr_assert_eq(vsock_connect(&vs, 5000, &err), -1);
	cr_assert_eq(err.code, ENOTCONN);
	vsock_destroy(&vs);
	evloop_destroy(&loop);
	guest_mem_destroy(&mem);
}

Test(vsock, host_data_waits_for_the_guest_response, .init = start, .fini = stop)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000, &err);
	cr_assert_geq(fd, 0);
	host_write(fd, "early", 5);
	expect_rx(VSOCK_OP_REQUEST);
	expect_no_rx();
	struct gconn *c = gconn_new(pk.h.src_port, 5000);
	gsend(c, VSOCK_OP_RESPONSE, 0, NULL, 0);
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "early", 5);
	close(fd);
}

Test(vsock, refused_host_connect_reads_as_eof, .init = start, .fini = stop)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000, &err);
	expect_rx(VSOCK_OP_REQUEST);
	struct gconn *c = gconn_new(pk.h.src_port, 5000);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	cr_assert_eq(host_drain_to_eof(fd), 0);
	cr_assert_eq(vs.nconns, 0);
	expect_no_rx();
	close(fd);
}

Test(vsock, host_connections_get_distinct_host_ports, .init = start, .fini = stop)
{
	int a, b;
	struct gconn *ca = host_connect(5000, &a);
	struct gconn *cb = host_connect(5000, &b);
	cr_assert_neq(ca->host_port, cb->host_port);
	close(a);
	close(b);
}

Test(vsock, guest_connect_to_listening_port_is_accepted, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	cr_assert_eq(vs.nconns, 1);
	cr_assert_eq(pk.h.fwd_cnt, 0);

	gsend(c, VSOCK_OP_RW, 0, "ping", 4);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "ping", 4);
	host_write(fd, "pong", 4);
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "pong", 4);
	cr_assert_eq(pk.h.fwd_cnt, 4, "the header reports what reached the host");
}

Test(vsock, guest_connect_to_unbound_port_gets_rst, .init = start, .fini = stop)
{
	struct gconn *c = gconn_new(9999, 40000);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(pk.h.src_port, 9999);
	cr_assert_eq(pk.h.dst_port, 40000);
	cr_assert_eq(naccepted, 0);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, packet_for_no_connection_gets_rst_but_rst_gets_nothing, .init = start, .fini = stop)
{
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	gsend(c, VSOCK_OP_RW, 0, "x", 1);
	expect_rx(VSOCK_OP_RST);
	gsend(c, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	expect_no_rx();
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, second_request_on_a_live_connection_resets_it, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(host_drain_to_eof(fd), 0);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, rx_and_tx_chains_split_anywhere_work, .init = start, .fini = stop)
{
	int fd;
	rx_split = true;
	struct gconn *c = guest_connect(40000, &fd);
	uint8_t data[300];
	fill_pattern(data, 1, 0, sizeof(data));

	/* Split inside the header, and inside the payload. */
	struct vsock_hdr h = ghdr(c, VSOCK_OP_RW, 0, 300);
	send_raw_split(&h, data, 300, 10);
	send_raw_split(&h, data, 300, VSOCK_HDR_BYTES + 123);
	uint8_t buf[600];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 600);
	check_pattern(buf, 1, 0, 300);
	check_pattern(buf + 300, 1, 0, 300);

	/* The rx pass posts [header][payload] chains: both get filled. */
	post_rx_buffers(4);
	host_write(fd, data, 300);
	expect_rx(VSOCK_OP_RW);
	cr_assert_eq(pk.h.len, 300);
	check_pattern(pk.data, 1, 0, 300);
}

/* --- malformed packets are dropped ---------------------------------------------------- */

Test(vsock, drops_malformed_packets_and_keeps_the_connection, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t big[VSOCK_MAX_PKT_BYTES + 16];
	struct vsock_hdr h;

	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.src_cid = 4;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.src_cid = VSOCK_HOST_CID;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.dst_cid = 1;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.dst_cid = VSOCK_GUEST_CID;
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.src_cid |= 1ull << 32;        /* CIDs are 64 bits on the wire */
	send_raw(&h, "evil", 4);

	h = ghdr(c, VSOCK_OP_INVALID, 0, 0);
	send_raw(&h, NULL, 0);
	h = ghdr(c, VSOCK_OP_CREDIT_REQUEST + 1, 0, 0);
	send_raw(&h, NULL, 0);
	h = ghdr(c, 0xffff, 0, 0);
	send_raw(&h, NULL, 0);

	h = ghdr(c, VSOCK_OP_RW, 0, 4);
	h.type = 2;                     /* SOCK_SEQPACKET */
	send_raw(&h, "evil", 4);

	h = ghdr(c, VSOCK_OP_RW, 0, 100);   /* only 10 bytes follow */
	send_raw_split(&h, "0123456789", 10, VSOCK_HDR_BYTES);
	h = ghdr(c, VSOCK_OP_RW, 0, UINT32_MAX);
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RW, 0, VSOCK_MAX_PKT_BYTES + 1);
	send_raw(&h, big, VSOCK_MAX_PKT_BYTES + 1);

	h = ghdr(c, VSOCK_OP_CREDIT_UPDATE, 0, 4);
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, 4);
	send_raw(&h, "evil", 4);
	h = ghdr(c, VSOCK_OP_RST, 0, 4);
	send_raw(&h, "evil", 4);

	/* A chain shorter than a header, and a header whose tail is writable. */
	uint8_t *tx = vdriver_host(&drv, tx_gpa, VSOCK_HDR_BYTES);
	h = ghdr(c, VSOCK_OP_RST, 0, 0);
	vsock_hdr_encode(&h, tx);
	struct vdriver_buf shortb = { tx_gpa, VSOCK_HDR_BYTES - 1, false };
	vdriver_add(&drv, TXQ, &shortb, 1, false);
	struct vdriver_buf halfw[] = { { tx_gpa, 20, false }, { tx_gpa + 20, VSOCK_HDR_BYTES - 20, true } };
	vdriver_add(&drv, TXQ, halfw, 2, false);
	vdriver_kick(&drv, TXQ);
	uint16_t head;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 1);
	cr_assert_eq(vdriver_get_used(&drv, TXQ, &head, &len), 1);

	expect_no_rx();
	char buf[8];
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), -1, "nothing reached the host, not even EOF");
	cr_assert_eq(vs.nconns, 1);
	cr_assert_eq(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, 0);

	/* The connection works as before. */
	gsend(c, VSOCK_OP_RW, 0, "fine", 4);
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "fine", 4);
}

Test(vsock, accepts_a_packet_of_exactly_the_maximum_length, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t data[VSOCK_MAX_PKT_BYTES], got[VSOCK_MAX_PKT_BYTES];
	fill_pattern(data, 7, 0, sizeof(data));
	gsend(c, VSOCK_OP_RW, 0, data, VSOCK_MAX_PKT_BYTES);
	pump();
	size_t n = 0;
	while (n < sizeof(got)) {
		ssize_t r = host_read(fd, got + n, sizeof(got) - n);
		cr_assert_gt(r, 0);
		n += (size_t)r;
	}
	check_pattern(got, 7, 0, sizeof(got));
}

Test(vsock, broken_tx_ring_sets_needs_reset, .init = start, .fini = stop)
{
	int fd;
	guest_connect(40000, &fd);
	vdriver_set_avail_idx(&drv, TXQ, (uint16_t)(drv.q[TXQ].avail_idx + QSIZE + 1));
	vdriver_notify(&drv, TXQ);
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET);
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_CONFIG);
	/* The host can no longer reach the guest, but nothing crashes either. */
	host_write(fd, "lost", 4);
	pump();
}

/* Linux never posts an rx buffer without room for a header: a driver that
 * does is not trusted any further (and cannot make the rx pass spin on it). */
Test(vsock, rx_chain_too_small_for_a_header_breaks_the_device, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1, 0);
	uint64_t small = vdriver_alloc(&drv, 16, 16);
	struct vdriver_buf b = { small, 16, true };
	cr_assert_geq(vdriver_add(&drv, RXQ, &b, 1, false), 0);
	post_rx_buffers(4);

	struct gconn *c = gconn_new(9999, 40000);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);   /* owes an RST */
	pump();
	uint16_t head;
	uint32_t len;
	cr_assert_eq(vdriver_get_used(&drv, RXQ, &head, &len), 0, "nothing is delivered");
	cr_assert(vdriver_status(&drv) & VIRTIO_STATUS_NEEDS_RESET, "status 0x%x", vdriver_status(&drv));
	cr_assert(vdriver_isr_ack(&drv) & VIRTIO_INT_CONFIG, "the guest is told by a config interrupt");
}

/* --- many connections --------------------------------------------------------------- */

Test(vsock, two_hundred_concurrent_connections_carry_distinct_data, .init = start, .fini = stop, .timeout = 60)
{
	enum { N = 200, BYTES = 20000 };
	int fds[N];
	struct gconn *cs[N];
	uint8_t *data = malloc(BYTES);

	rx_split = true;
	for (unsigned i = 0; i < N; i++) {
		if (i % 2)
			cs[i] = guest_connect(50000 + i, &fds[i]);
		else
			cs[i] = host_connect(6000 + i, &fds[i]);
		cs[i]->rx_data = malloc(BYTES);
		cs[i]->rx_cap = BYTES;
	}
	cr_assert_eq(vs.nconns, N);

	/* Every host end writes its own stream; every guest end sends its own. */
	for (unsigned i = 0; i < N; i++) {
		fill_pattern(data, 1000 + i, 0, BYTES);
		host_write(fds[i], data, BYTES);
	}
	for (unsigned i = 0; i < N; i++) {
		for (uint32_t off = 0; off < BYTES; off += 5000) {
			fill_pattern(data, 2000 + i, off, 5000);
			gsend(cs[i], VSOCK_OP_RW, 0, data, 5000);
		}
	}
	while (guest_rx())
		;
	for (unsigned i = 0; i < N; i++) {
		cr_assert_eq(cs[i]->rx_cnt, BYTES, "connection %u got %u bytes", i, cs[i]->rx_cnt);
		check_pattern(cs[i]->rx_data, 1000 + i, 0, BYTES);
		ssize_t n = recv(fds[i], data, BYTES, MSG_DONTWAIT | MSG_WAITALL);
		cr_assert_eq(n, BYTES, "host end %u read %zd", i, n);
		check_pattern(data, 2000 + i, 0, BYTES);
	}

	/* Closing every host end tells the guest, and frees every connection. */
	for (unsigned i = 0; i < N; i++)
		close(fds[i]);
	naccepted = 0;
	unsigned shutdowns = 0;
	while (guest_rx())
		shutdowns += pk.h.op == VSOCK_OP_SHUTDOWN;
	cr_assert_eq(shutdowns, N);
	cr_assert_eq(vs.nconns, 0);
	for (unsigned i = 0; i < N; i++)
		free(cs[i]->rx_data);
	free(data);
}

Test(vsock, refuses_connections_beyond_the_limit, .init = start, .fini = stop, .timeout = 60)
{
	for (unsigned i = 0; i < VSOCK_MAX_CONNS; i++) {
		struct gconn *c = gconn_new(LISTEN_PORT, 10000 + i);
		gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
		expect_rx(VSOCK_OP_RESPONSE);
	}
	cr_assert_eq(naccepted, VSOCK_MAX_CONNS);
	struct gconn *c = gconn_new(LISTEN_PORT, 9);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(naccepted, VSOCK_MAX_CONNS);

	/* One goes, another may come. */
	close(accepted[0]);
	accepted[0] = -1;
	while (guest_rx())
		;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_RESPONSE);
}

Test(vsock, many_resets_without_rx_buffers_stay_bounded, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1, 0);
	/* Requests to a closed port, and nowhere to put the answers. */
	for (unsigned i = 0; i < 1000; i++) {
		struct gconn c = { .host_port = 9999, .guest_port = 20000 + i, .buf_alloc = 4096 };
		gsend(&c, VSOCK_OP_REQUEST, 0, NULL, 0);
	}
	post_rx_buffers(QSIZE);
	unsigned rsts = 0;
	while (guest_rx()) {
		cr_assert_eq(pk.h.op, VSOCK_OP_RST);
		rsts++;
	}
	cr_assert_eq(rsts, VSOCK_CTL_QUEUE, "what did not fit was dropped, the rest delivered");
}

/* A guest that keeps its tx ring full must not keep the main loop to itself:
 * after VIRTIO_NOTIFY_BUDGET packets the device says there is more, and the
 * transport comes back after the loop's other events. */
Test(vsock, tx_stops_at_the_budget_and_says_there_is_more, .init = start, .fini = stop)
{
	struct gconn *c = gconn_new(9999, 40000);
	struct vsock_hdr h = ghdr(c, VSOCK_OP_RST, 0, 0);
	uint8_t *tx = vdriver_host(&drv, tx_gpa, VSOCK_HDR_BYTES);
	struct vdriver_buf b = { tx_gpa, VSOCK_HDR_BYTES, false };

	vsock_hdr_encode(&h, tx);
	for (unsigned i = 0; i < VIRTIO_NOTIFY_BUDGET; i++)
		cr_assert_geq(vdriver_add(&drv, TXQ, &b, 1, false), 0);
	cr_assert_eq(VIRTIO_NOTIFY_BUDGET, QSIZE, "the test fills exactly one ring");
	pthread_mutex_lock(&vs.dev.lock);
	bool more = vs.dev.ops->queue_notify(&vs.dev, TXQ);
	pthread_mutex_unlock(&vs.dev.lock);
	cr_assert(more, "a full budget of packets must report more work");
	cr_assert_eq(vdriver_used_idx(&drv, TXQ), VIRTIO_NOTIFY_BUDGET, "every packet taken was returned");
	pthread_mutex_lock(&vs.dev.lock);
	more = vs.dev.ops->queue_notify(&vs.dev, TXQ);
	pthread_mutex_unlock(&vs.dev.lock);
	cr_assert_not(more, "an empty ring has no more work");
}

Test(vsock, a_host_port_has_one_listener, .init = start, .fini = stop)
{
	struct rv_err err;

	cr_assert_eq(vsock_listen(&vs, LISTEN_PORT, on_accept, NULL, &err), -1);
	cr_assert_eq(err.code, EADDRINUSE);
	cr_assert(strstr(err.msg, "already has a listener"), "%s", err.msg);
}
