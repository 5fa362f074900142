/* virtio-vsock flow control, shutdown and reset (harness: vsock_harness.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/unit/devices/vsock_harness.h"

/* --- flow control ---------------------------------------------------------------------- */

Test(vsock, guest_exceeding_its_credit_is_reset, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES];
	uint32_t sent = 0;

	/* The host reads nothing. The guest ignores the credit it is given. */
	for (unsigned i = 0; i < 64; i++) {
		fill_pattern(chunk, 3, sent, sizeof(chunk));
		uint32_t queued_before = (uint32_t)host_queued(fd);
		gsend(c, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		pump();
		uint32_t pending = sent + (uint32_t)sizeof(chunk) - (uint32_t)host_queued(fd);
		while (guest_rx()) {
			if (pk.h.op == VSOCK_OP_RST)
				break;
			cr_assert_eq(pk.h.op, VSOCK_OP_CREDIT_UPDATE);
		}
		if (c->got_rst) {
			cr_assert_gt(sent + sizeof(chunk) - queued_before, VSOCK_CONN_BUF_BYTES,
				     "reset while within credit: %u bytes pending", pending);
			break;
		}
		cr_assert_leq(pending, VSOCK_CONN_BUF_BYTES);
		sent += sizeof(chunk);
	}
	cr_assert(c->got_rst, "the device took %u bytes without complaint", sent);
	cr_assert_eq(vs.nconns, 0);

	/* What reached the socket is intact, then EOF. */
	static uint8_t buf[1 << 16];
	uint32_t got = 0;
	for (;;) {
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "no EOF after the reset");
		if (n == 0)
			break;
		check_pattern(buf, 3, got, (uint32_t)n);
		got += (uint32_t)n;
	}
	cr_assert_leq(got, sent);
}

/* The host writes `total` bytes of stream `seed` (it fits in the socket). */
static void host_write_pattern(int fd, uint32_t seed, uint32_t total)
{
	uint8_t *data = malloc(total);
	fill_pattern(data, seed, 0, total);
	host_write(fd, data, total);
	free(data);
}

static uint32_t rx_all(struct gconn *c)
{
	uint32_t before = c->rx_cnt;
	while (guest_rx())
		;
	return c->rx_cnt - before;
}

Test(vsock, host_data_stops_at_guest_credit_and_resumes_after_credit_update, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 10000;
	c->manual_fwd = true;
	c->rx_data = malloc(30000);
	c->rx_cap = 30000;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);

	host_write_pattern(fd, 11, 30000);
	cr_assert_eq(rx_all(c), 10000, "exactly the credit was sent");
	cr_assert(c->got_rst == false);

	/* The device asked for credit once it ran out, and waits. */
	c->fwd_cnt = 10000;
	gsend(c, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	cr_assert_eq(rx_all(c), 10000);
	c->fwd_cnt = 20000;
	gsend(c, VSOCK_OP_CREDIT_UPDATE, 0, NULL, 0);
	cr_assert_eq(rx_all(c), 10000);
	check_pattern(c->rx_data, 11, 0, 30000);
	free(c->rx_data);
}

Test(vsock, host_data_asks_for_credit_when_it_runs_out, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 5000;
	c->manual_fwd = true;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);
	host_write_pattern(fd, 1, 8000);
	unsigned credit_requests = 0;
	while (guest_rx())
		credit_requests += pk.h.op == VSOCK_OP_CREDIT_REQUEST;
	cr_assert_eq(c->rx_cnt, 5000);
	cr_assert_eq(credit_requests, 1);

	/* A CREDIT_REQUEST from the guest is answered with our numbers. */
	gsend(c, VSOCK_OP_CREDIT_REQUEST, 0, NULL, 0);
	expect_rx(VSOCK_OP_CREDIT_UPDATE);
	cr_assert_eq(pk.h.buf_alloc, VSOCK_CONN_BUF_BYTES);
	expect_no_rx();
}

Test(vsock, credit_carried_by_a_data_packet_resumes_host_data, .init = start, .fini = stop)
{
	/* Linux learns credit from every header and sends no CREDIT_UPDATE when
	 * its own data packets already carried the new fwd_cnt. */
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 10000;
	c->manual_fwd = true;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);
	host_write_pattern(fd, 5, 20000);
	cr_assert_eq(rx_all(c), 10000);

	c->fwd_cnt = 10000;
	gsend(c, VSOCK_OP_RW, 0, "reply", 5);
	cr_assert_eq(rx_all(c), 10000, "the credit in the RW header was not used");
}

Test(vsock, credit_carried_by_a_shutdown_resumes_host_data, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = gconn_new(LISTEN_PORT, 40000);
	c->buf_alloc = 10000;
	c->manual_fwd = true;
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);
	fd = accepted[0];
	expect_rx(VSOCK_OP_RESPONSE);
	host_write_pattern(fd, 5, 20000);
	cr_assert_eq(rx_all(c), 10000);

	c->fwd_cnt = 10000;
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	cr_assert_eq(rx_all(c), 10000);
}

Test(vsock, host_data_waits_for_rx_buffers_then_flows, .fini = stop)
{
	start_with(VIRTIO_F_VERSION_1 | VIRTIO_F_RING_EVENT_IDX, 2);
	rx_repost = false;
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	c->rx_data = malloc(20000);
	c->rx_cap = 20000;
	host_write_pattern(fd, 4, 20000);
	cr_assert_eq(rx_all(c), RX_PAYLOAD_BYTES, "one buffer was left after the RESPONSE");
	post_rx_buffers(2);
	cr_assert_eq(rx_all(c), 2 * RX_PAYLOAD_BYTES);
	post_rx_buffers(10);
	cr_assert_eq(rx_all(c), 20000 - 3 * RX_PAYLOAD_BYTES);
	check_pattern(c->rx_data, 4, 0, 20000);
	free(c->rx_data);
}

Test(vsock, backpressure_bounds_pending_bytes_then_flushes_when_the_host_reads, .init = start, .fini = stop, .timeout = 60)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	const uint32_t total = 4u << 20;
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES], buf[100000];
	uint32_t got = 0;
	unsigned stalls = 0;

	c->peer_buf_alloc = pk.h.buf_alloc;
	c->peer_fwd_cnt = pk.h.fwd_cnt;
	for (unsigned round = 0; got < total; round++) {
		cr_assert_lt(round, 100000, "no progress: sent %u, host got %u", c->tx_cnt, got);
		/* The guest sends while it has credit, as Linux does. */
		while (c->tx_cnt < total && gcredit(c) > 0) {
			uint32_t n = gcredit(c);
			if (n > sizeof(chunk))
				n = sizeof(chunk);
			if (n > total - c->tx_cnt)
				n = total - c->tx_cnt;
			fill_pattern(chunk, 8, c->tx_cnt, n);
			gsend(c, VSOCK_OP_RW, 0, chunk, n);
			while (guest_rx())
				cr_assert_eq(pk.h.op, VSOCK_OP_CREDIT_UPDATE, "got %s", vsock_op_name(pk.h.op));
		}
		/* What the device holds for the unread host socket stays bounded. */
		uint32_t parked = c->tx_cnt - got - (uint32_t)host_queued(fd);
		cr_assert_leq(parked, VSOCK_CONN_BUF_BYTES, "the device parked %u bytes", parked);
		if (gcredit(c) == 0)
			stalls++;
		/* Only now does the host read, a little at a time. */
		ssize_t n = host_read(fd, buf, sizeof(buf));
		if (n > 0) {
			check_pattern(buf, 8, got, (uint32_t)n);
			got += (uint32_t)n;
		}
		pump();
		while (guest_rx())
			cr_assert_eq(pk.h.op, VSOCK_OP_CREDIT_UPDATE, "got %s", vsock_op_name(pk.h.op));
	}
	cr_assert_gt(stalls, 0, "the guest never ran out of credit: the test tested nothing");
	cr_assert_eq(vs.nconns, 1);
}

/* --- shutdown and reset -------------------------------------------------------------------- */

Test(vsock, guest_shutdown_send_gives_the_host_eof, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RW, 0, "last", 4);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);
	pump();
	char buf[8];
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 4);
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 0, "EOF after the data");

	/* The other direction still works. */
	host_write(fd, "more", 4);
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "more", 4);

	/* Data after SHUTDOWN(SEND) is a protocol error. */
	gsend(c, VSOCK_OP_RW, 0, "late", 4);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, guest_shutdown_send_waits_for_parked_bytes, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES];
	uint32_t sent = 0;

	/* Fill the socket and park some bytes in the device, then shut down. */
	while (sent < 128u * 1024 || (uint32_t)host_queued(fd) == sent) {
		fill_pattern(chunk, 2, sent, sizeof(chunk));
		gsend(c, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		pump();
		while (guest_rx())
			;
		cr_assert_lt(sent, 2u << 20, "the host socket never filled up");
	}
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND, NULL, 0);

	static uint8_t buf[1 << 16];
	uint32_t got = 0;
	for (;;) {
		pump();
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "stalled after %u of %u bytes", got, sent);
		if (n == 0)
			break;
		check_pattern(buf, 2, got, (uint32_t)n);
		got += (uint32_t)n;
	}
	cr_assert_eq(got, sent, "EOF only after every byte");
}

/* Parks bytes in the device behind a full host socket; returns how many were sent. */
static uint32_t park_bytes(struct gconn *c, int fd, uint32_t seed)
{
	static uint8_t chunk[VSOCK_MAX_PKT_BYTES];
	uint32_t sent = 0;

	while (sent < 128u * 1024 || (uint32_t)host_queued(fd) == sent) {
		fill_pattern(chunk, seed, sent, sizeof(chunk));
		gsend(c, VSOCK_OP_RW, 0, chunk, sizeof(chunk));
		sent += sizeof(chunk);
		pump();
		while (guest_rx())
			;
		cr_assert_lt(sent, 2u << 20, "the host socket never filled up");
	}
	return sent;
}

static void expect_all_then_eof(int fd, uint32_t seed, uint32_t sent)
{
	static uint8_t buf[1 << 16];
	uint32_t got = 0;

	for (;;) {
		pump();
		ssize_t n = host_read(fd, buf, sizeof(buf));
		cr_assert_neq(n, -1, "stalled after %u of %u bytes", got, sent);
		if (n == 0)
			break;
		check_pattern(buf, seed, got, (uint32_t)n);
		got += (uint32_t)n;
	}
	cr_assert_eq(got, sent, "EOF only after every byte");
}

/* Linux waits 8 s for our RST after closing, then resets and forgets: the RST
 * goes out at once, and what the guest sent still reaches a slow host reader. */
Test(vsock, guest_close_is_answered_at_once_and_parked_bytes_still_arrive, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	uint32_t sent = park_bytes(c, fd, 3);

	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	gsend(c, VSOCK_OP_REQUEST, 0, NULL, 0);   /* the port pair is free again at once */
	expect_rx(VSOCK_OP_RESPONSE);
	expect_all_then_eof(fd, 3, sent);
}

Test(vsock, guest_rst_keeps_parked_bytes_for_the_host, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	uint32_t sent = park_bytes(c, fd, 4);

	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	expect_no_rx();
	expect_all_then_eof(fd, 4, sent);
	cr_assert_eq(vs.nconns, 0, "freed once flushed");
}

Test(vsock, guest_shutdown_both_ways_resets_and_closes, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV, NULL, 0);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(host_drain_to_eof(fd), 0);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, guest_shutdown_rcv_stops_host_data, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV, NULL, 0);
	host_write(fd, "unwanted", 8);
	expect_no_rx();
	gsend(c, VSOCK_OP_RW, 0, "still", 5);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 5);
}

Test(vsock, host_close_sends_data_then_shutdown_to_the_guest, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	host_write(fd, "bye", 3);
	close(fd);
	accepted[0] = -1;
	expect_rx(VSOCK_OP_RW);
	cr_assert_arr_eq(pk.data, "bye", 3);
	expect_rx(VSOCK_OP_SHUTDOWN);
	cr_assert_eq(pk.h.flags, VSOCK_SHUTDOWN_SEND | VSOCK_SHUTDOWN_RCV);
	cr_assert_eq(vs.nconns, 0, "a closed host end frees the connection");

	/* Linux answers a full shutdown with an RST: nothing comes back. */
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	expect_no_rx();
}

Test(vsock, host_half_close_sends_shutdown_send_only, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	host_write(fd, "x", 1);
	cr_assert_eq(shutdown(fd, SHUT_WR), 0);
	expect_rx(VSOCK_OP_RW);
	expect_rx(VSOCK_OP_SHUTDOWN);
	cr_assert_eq(pk.h.flags, VSOCK_SHUTDOWN_SEND);
	gsend(c, VSOCK_OP_RW, 0, "reply", 5);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 5);
	cr_assert_eq(vs.nconns, 1);
}

Test(vsock, host_close_with_guest_receive_shut_frees_the_connection, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_SHUTDOWN, VSOCK_SHUTDOWN_RCV, NULL, 0);
	close(fd);
	accepted[0] = -1;
	pump();
	while (guest_rx())
		;
	cr_assert_eq(vs.nconns, 0, "the connection outlived both of its ends");
}

Test(vsock, host_close_before_response_resets, .init = start, .fini = stop)
{
	struct rv_err err;
	int fd = vsock_connect(&vs, 5000, &err);
	expect_rx(VSOCK_OP_REQUEST);
	close(fd);
	expect_rx(VSOCK_OP_RST);
	cr_assert_eq(vs.nconns, 0);
}

Test(vsock, guest_rst_gives_the_host_eof, .init = start, .fini = stop)
{
	int fd;
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RW, 0, "abc", 3);
	gsend(c, VSOCK_OP_RST, 0, NULL, 0);
	cr_assert_eq(host_drain_to_eof(fd), 3);
	cr_assert_eq(vs.nconns, 0);
	expect_no_rx();
}

Test(vsock, device_reset_closes_every_host_end, .init = start, .fini = stop)
{
	int fds[6];
	for (unsigned i = 0; i < 3; i++)
		guest_connect(40000 + i, &fds[i]);
	for (unsigned i = 3; i < 6; i++)
		host_connect(5000 + i, &fds[i]);
	cr_assert_eq(vs.nconns, 6);

	vdriver_reset(&drv);
	cr_assert_eq(vs.nconns, 0);
	for (unsigned i = 0; i < 6; i++)
		cr_assert_eq(host_drain_to_eof(fds[i]), 0, "connection %u", i);
	for (unsigned i = 3; i < 6; i++)
		close(fds[i]);

	struct rv_err err;
	cr_assert_eq(vsock_connect(&vs, 5000, &err), -1, "no connections while the device is down");
}

Test(vsock, works_again_after_a_device_reset, .init = start, .fini = stop)
{
	int fd;
	guest_connect(40000, &fd);
	vdriver_reset(&drv);
	pump();
	ngconns = 0;
	cr_assert_eq(vdriver_start(&drv, VIRTIO_F_VERSION_1, 3, 64), 0);
	post_rx_buffers(8);
	struct gconn *c = guest_connect(40000, &fd);
	gsend(c, VSOCK_OP_RW, 0, "again", 5);
	char buf[8];
	pump();
	cr_assert_eq(host_read(fd, buf, sizeof(buf)), 5);
}

