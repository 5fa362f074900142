/* The vsock device tests' guest (the test driver playing CID 3) and host
 * side, shared by test_vsock.c and test_vsock_flow.c. */
#ifndef RV_TEST_VSOCK_HARNESS_H
#define RV_TEST_VSOCK_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "common/evloop.h"
#include "devices/virtio/mmio.h"
#include "devices/vsock/packet.h"
#include "devices/vsock/vsock.h"
#include "tests/unit/devices/vdriver.h"

#define MEM_BYTES (64ull << 20)
#define RXQ 0u
#define TXQ 1u
#define EVQ 2u
#define QSIZE 256u
#define RX_PAYLOAD_BYTES 4096u
#define TX_SCRATCH_BYTES (VSOCK_HDR_BYTES + 2 * VSOCK_MAX_PKT_BYTES)
#define LISTEN_PORT 1024u
#define GUEST_BUF_ALLOC (256u * 1024)
#define MAX_GCONNS 1100

/* What the test's guest knows of each of its connections. */
struct gconn {
	uint32_t host_port, guest_port;
	uint32_t buf_alloc, fwd_cnt;          /* our receive side */
	uint32_t tx_cnt;                      /* bytes we sent */
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	bool manual_fwd;                      /* the test decides when bytes are consumed */
	uint32_t rx_cnt;
	uint8_t *rx_data;                     /* optional: where RW payload is collected */
	uint32_t rx_cap;
	bool got_shutdown, got_rst;
	uint32_t shutdown_flags;
};

struct pkt {
	struct vsock_hdr h;
	uint32_t used_len;
	uint8_t data[VSOCK_MAX_PKT_BYTES];
};

/* One device, one driver, one loop: each test starts them (start/stop). */
extern struct guest_mem mem;
extern struct evloop loop;
extern struct vsock vs;
extern struct virtio_mmio mmio;
extern struct vdriver drv;
extern uint64_t tx_gpa;
extern uint64_t rx_gpa_of_head[VIRTQ_MAX_SIZE];
extern bool rx_split;
extern bool rx_repost;
extern struct gconn gconns[MAX_GCONNS];
extern unsigned ngconns;
extern int accepted[MAX_GCONNS];
extern unsigned naccepted;
extern struct pkt pk;

void on_accept(void *ctx, int fd);
void post_rx(uint64_t gpa);
void post_rx_buffers(unsigned n);
void start_with(uint64_t features, unsigned rx_buffers);
void start(void);
void stop(void);
void pump(void);
struct gconn *gconn_find(uint32_t host_port, uint32_t guest_port);
struct gconn *gconn_new(uint32_t host_port, uint32_t guest_port);
void send_raw_split(const struct vsock_hdr *h, const void *payload, uint32_t plen,
		    uint32_t split_at);
void send_raw(const struct vsock_hdr *h, const void *payload, uint32_t plen);
struct vsock_hdr ghdr(const struct gconn *c, uint16_t op, uint32_t flags, uint32_t len);
void gsend(struct gconn *c, uint16_t op, uint32_t flags, const void *data, uint32_t len);
uint32_t gcredit(const struct gconn *c);
int guest_rx(void);
void expect_rx(uint16_t op);
void expect_no_rx(void);
struct gconn *guest_connect(uint32_t guest_port, int *fd);
struct gconn *host_connect(uint32_t guest_port, int *fd);
uint8_t pattern(uint32_t seed, uint32_t off);
void fill_pattern(uint8_t *b, uint32_t seed, uint32_t off, uint32_t len);
void check_pattern(const uint8_t *b, uint32_t seed, uint32_t off, uint32_t len);
ssize_t host_read(int fd, void *buf, size_t len);
void host_write(int fd, const void *buf, size_t len);
size_t host_drain_to_eof(int fd);
int host_queued(int fd);

#endif
