/* TCP throughput and request/response latency, one tool for both ends, built
 * static so that it runs in a busybox container as well as on the host:
 *   net-bench server PORT            serves until killed
 *   net-bench stream HOST PORT MIB   sends MIB MiB, prints "mbps=…"
 *   net-bench rr HOST PORT ROUNDS    1-byte ping-pong, prints "rr_us=…" (median)
 * bench/net.sh runs it against a guest and against a veth peer in one run. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK_BYTES (128u << 10)
#define MAX_ROUNDS 100000u

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int full_write(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A sink that answers each byte it gets in "R" mode and swallows the rest. */
static void serve_one(int fd)
{
	static char buf[CHUNK_BYTES];
	char mode;

	if (read(fd, &mode, 1) != 1)
		return;
	for (;;) {
		ssize_t n = read(fd, buf, mode == 'R' ? 1 : sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		if (mode == 'R' && full_write(fd, buf, 1) < 0)
			return;
	}
}

static int server(int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	signal(SIGCHLD, SIG_IGN);
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(s, 16) < 0) {
		perror("net-bench: listen");
		return 1;
	}
	for (;;) {
		int c = accept(s, NULL, NULL);
		if (c < 0)
			continue;
		setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (fork() == 0) {
			serve_one(c);
			_exit(0);
		}
		close(c);
	}
}

static int connect_to(const char *host, int port, char mode)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

	if (s < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
	    connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "net-bench: connect %s:%d: %s\n", host, port, strerror(errno));
		exit(1);
	}
	setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (full_write(s, &mode, 1) < 0)
		exit(1);
	return s;
}

static int stream(const char *host, int port, unsigned mib)
{
	static char buf[CHUNK_BYTES];
	int s = connect_to(host, port, 'S');
	unsigned long long total = (unsigned long long)mib << 20;
	double t0 = now_us();

	memset(buf, 0x5a, sizeof(buf));
	for (unsigned long long sent = 0; sent < total; sent += sizeof(buf))
		if (full_write(s, buf, sizeof(buf)) < 0) {
			perror("net-bench: send");
			return 1;
		}
	/* Sent is not received: wait for the peer to have read it all. */
	shutdown(s, SHUT_WR);
	char c;
	while (read(s, &c, 1) > 0) {
	}
	double us = now_us() - t0;
	printf("mbps=%.1f\n", total * 8.0 / us);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int rr(const char *host, int port, unsigned rounds)
{
	static double t[MAX_ROUNDS];
	int s = connect_to(host, port, 'R');
	char c = 'x';

	if (rounds == 0 || rounds > MAX_ROUNDS)
		rounds = MAX_ROUNDS;
	for (unsigned i = 0; i < rounds; i++) {
		double t0 = now_us();
		if (full_write(s, &c, 1) < 0 || read(s, &c, 1) != 1) {
			perror("net-bench: round trip");
			return 1;
		}
		t[i] = now_us() - t0;
	}
	qsort(t, rounds, sizeof(t[0]), cmp_double);
	printf("rr_us=%.1f\n", t[rounds / 2]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "server"))
		return server(atoi(argv[2]));
	if (argc == 5 && !strcmp(argv[1], "stream"))
		return stream(argv[2], atoi(argv[3]), (unsigned)atoi(argv[4]));
	if (argc == 5 && !strcmp(argv[1], "rr"))
		return rr(argv[2], atoi(argv[3]), (unsigned)atoi(argv[4]));
	fprintf(stderr, "usage: net-bench server PORT | stream HOST PORT MIB | rr HOST PORT ROUNDS\n");
	return 2;
}
