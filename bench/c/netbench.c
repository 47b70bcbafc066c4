/* netbench: the small, static programs bench/kernel.ts runs in its containers (built on the host
 * with `cc -O2 -static`, bind-mounted read-only). C, not Python: the datapath's hook costs a few
 * hundred nanoseconds per connect(), far below an interpreter's own per-call overhead.
 *
 *   serve FIRST LAST               TCP listeners on ports FIRST..LAST (all addresses); each accepted
 *                                  connection gets "<port>\n" and is closed. Prints "ready".
 *   connect IP PORT N WARMUP       N timed connect() calls (after WARMUP untimed ones), each on a new
 *                                  socket closed with an RST (SO_LINGER 0: no TIME_WAIT, so the
 *                                  ephemeral ports never run out). Prints two lines of nanoseconds:
 *                                  "connect ..." (around connect() alone, CLOCK_MONOTONIC) and
 *                                  "cycle ..." (socket() + connect() + close()).
 *   probe IP PORT                  one connection: "ok <banner>" or "err <errno name>".
 *   poll IP PORT WANT TIMEOUT_MS SLEEP_US CONNECT_MS
 *                                  connects again and again (each connect given up after CONNECT_MS,
 *                                  SLEEP_US between attempts) until one succeeds with a banner that
 *                                  satisfies WANT ("*": any successful connect; "!B": a banner other
 *                                  than B; "B": exactly B). Prints "ready <first result>" after the
 *                                  first attempt, then "done <CLOCK_MONOTONIC ns at the start of the
 *                                  winning attempt> <attempts> <banner>" (exit 0) or "timeout" (exit 1).
 *   dns-serve PORT ANSWER          a DNS server over UDP: every A question is answered with ANSWER
 *                                  (TTL 60), every other type with an empty NOERROR.
 *   dns-query SERVER PORT NAME N WARMUP
 *                                  N timed A queries, one at a time, on one connected UDP socket.
 *                                  Prints "answer <a.b.c.d>" and "rtt ..." (nanoseconds).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn)) static void die(const char *what)
{
	fprintf(stderr, "netbench: %s: %s\n", what, strerror(errno));
	exit(2);
}

static struct sockaddr_in addr_of(const char *ip, const char *port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(port)) };
	if (inet_pton(AF_INET, ip, &sa.sin_addr) != 1) {
		fprintf(stderr, "netbench: not an IPv4 address: %s\n", ip);
		exit(2);
	}
	return sa;
}

static void close_rst(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

static void print_samples(const char *label, const uint64_t *v, long n)
{
	printf("%s", label);
	for (long i = 0; i < n; i++)
		printf(" %llu", (unsigned long long)v[i]);
	printf("\n");
}

/* ---- serve ------------------------------------------------------------------------------ */

static int cmd_serve(int first, int last)
{
	int ep = epoll_create1(0);
	if (ep < 0)
		die("epoll_create1");
	for (int port = first; port <= last; port++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		int one = 1;
		if (fd < 0)
			die("socket");
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_ANY) };
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
			die("bind");
		if (listen(fd, 4096) < 0)
			die("listen");
		struct epoll_event ev = { .events = EPOLLIN, .data.u64 = ((uint64_t)port << 32) | (uint32_t)fd };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl");
	}
	printf("ready\n");
	fflush(stdout);
	struct epoll_event events[64];
	for (;;) {
		int n = epoll_wait(ep, events, 64, -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			int lfd = (int)(uint32_t)events[i].data.u64;
			int port = (int)(events[i].data.u64 >> 32);
			char banner[16];
			int len = snprintf(banner, sizeof(banner), "%d\n", port);
			for (;;) {
				int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
				if (c < 0)
					break; /* EAGAIN: drained; anything else: the peer is already gone */
				send(c, banner, (size_t)len, MSG_DONTWAIT | MSG_NOSIGNAL);
				close(c);
			}
		}
	}
}

/* ---- connect ---------------------------------------------------------------------------- */

static int cmd_connect(const char *ip, const char *port, long n, long warmup)
{
	struct sockaddr_in sa = addr_of(ip, port);
	uint64_t *conn = calloc((size_t)n, sizeof(uint64_t));
	uint64_t *cycle = calloc((size_t)n, sizeof(uint64_t));
	for (long i = -warmup; i < n; i++) {
		uint64_t t0 = now_ns();
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0)
			die("socket");
		uint64_t t1 = now_ns();
		int r = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		uint64_t t2 = now_ns();
		if (r < 0) {
			fprintf(stderr, "netbench: connect %s:%s (attempt %ld): %s\n", ip, port, i, strerror(errno));
			return 1;
		}
		close_rst(fd);
		uint64_t t3 = now_ns();
		if (i >= 0) {
			conn[i] = t2 - t1;
			cycle[i] = t3 - t0;
		}
	}
	print_samples("connect", conn, n);
	print_samples("cycle", cycle, n);
	return 0;
}

/* ---- probe / poll ----------------------------------------------------------------------- */

/* One connection: 0 and the banner (without the newline), or -1 and errno. The connect gives up
 * after connect_ms (ETIMEDOUT), so a SYN dropped without an answer does not stall a poll for the
 * second a blocking connect() would wait before retransmitting it. */
static int attempt(const struct sockaddr_in *sa, char *banner, size_t size, int connect_ms)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0)
		die("socket");
	banner[0] = 0;
	int r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	if (r < 0 && errno == EINPROGRESS) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int n = poll(&p, 1, connect_ms);
		int err = 0;
		socklen_t len = sizeof(err);
		if (n == 0)
			err = ETIMEDOUT;
		else if (n < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		r = err ? -1 : 0;
		errno = err;
	}
	if (r < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	int flags = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	struct timeval tv = { .tv_sec = 1 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	size_t got = 0;
	while (got + 1 < size) {
		ssize_t n = recv(fd, banner + got, size - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		if (banner[got - 1] == '\n')
			break;
	}
	banner[got] = 0;
	if (got && banner[got - 1] == '\n')
		banner[got - 1] = 0;
	close_rst(fd);
	return 0;
}

static const char *errno_name(int e)
{
	switch (e) {
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case ECONNREFUSED: return "ECONNREFUSED";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ENETUNREACH: return "ENETUNREACH";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EINPROGRESS: return "EINPROGRESS";
	case EAGAIN: return "EAGAIN";
	default: return "OTHER";
	}
}

static int cmd_probe(const char *ip, const char *port)
{
	struct sockaddr_in sa = addr_of(ip, port);
	char banner[64];
	if (attempt(&sa, banner, sizeof(banner), 1000) < 0)
		printf("err %s\n", errno_name(errno));
	else
		printf("ok %s\n", banner);
	return 0;
}

static int wanted(const char *want, int ok, const char *banner)
{
	if (!ok)
		return 0;
	if (strcmp(want, "*") == 0)
		return 1;
	if (want[0] == '!')
		return strcmp(banner, want + 1) != 0;
	return strcmp(banner, want) == 0;
}

static int cmd_poll(const char *ip, const char *port, const char *want, long timeout_ms, long sleep_us, int connect_ms)
{
	struct sockaddr_in sa = addr_of(ip, port);
	char banner[64];
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	for (long attempts = 1;; attempts++) {
		uint64_t start = now_ns();
		int ok = attempt(&sa, banner, sizeof(banner), connect_ms) == 0;
		int e = errno;
		if (wanted(want, ok, banner)) {
			if (attempts == 1)
				printf("ready already\n");
			printf("done %llu %ld %s\n", (unsigned long long)start, attempts, banner);
			return 0;
		}
		if (attempts == 1) {
			if (ok)
				printf("ready ok %s\n", banner);
			else
				printf("ready err %s\n", errno_name(e));
			fflush(stdout);
		}
		if (now_ns() > deadline) {
			printf("timeout %ld %s\n", attempts, ok ? banner : errno_name(e));
			return 1;
		}
		if (sleep_us > 0)
			usleep((useconds_t)sleep_us);
	}
}

/* ---- DNS -------------------------------------------------------------------------------- */

/* End of the question section (after QTYPE and QCLASS), or -1. */
static int question_end(const unsigned char *m, int len)
{
	int i = 12;
	while (i < len && m[i] != 0) {
		if (m[i] & 0xc0)
			return -1;
		i += 1 + m[i];
	}
	i += 1 + 4;
	return i <= len ? i : -1;
}

static int cmd_dns_serve(const char *port, const char *answer)
{
	struct sockaddr_in sa = addr_of("0.0.0.0", port);
	struct in_addr ans;
	if (inet_pton(AF_INET, answer, &ans) != 1) {
		fprintf(stderr, "netbench: not an IPv4 address: %s\n", answer);
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("bind");
	printf("ready\n");
	fflush(stdout);
	unsigned char m[1500];
	for (;;) {
		struct sockaddr_in peer;
		socklen_t plen = sizeof(peer);
		int len = (int)recvfrom(fd, m, sizeof(m) - 16, 0, (struct sockaddr *)&peer, &plen);
		if (len < 12)
			continue;
		int end = question_end(m, len);
		if (end < 0 || m[5] != 1)
			continue; /* not exactly one question */
		int qtype = (m[end - 4] << 8) | m[end - 3];
		unsigned char flags_hi = (unsigned char)(0x80 | (m[2] & 0x01)); /* QR, copy RD */
		m[2] = flags_hi;
		m[3] = 0x80; /* RA, NOERROR */
		m[6] = 0;
		m[7] = qtype == 1 ? 1 : 0;
		m[8] = m[9] = m[10] = m[11] = 0; /* no authority, no additional (drops an OPT record) */
		int out = end;
		if (qtype == 1) {
			const unsigned char rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4 };
			memcpy(m + out, rr, sizeof(rr));
			out += sizeof(rr);
			memcpy(m + out, &ans, 4);
			out += 4;
		}
		sendto(fd, m, (size_t)out, 0, (struct sockaddr *)&peer, plen);
	}
}

static int cmd_dns_query(const char *server, const char *port, const char *name, long n, long warmup)
{
	struct sockaddr_in sa = addr_of(server, port);
	unsigned char q[300];
	int qlen = 12;
	memset(q, 0, 12);
	q[2] = 0x01; /* RD */
	q[5] = 1;    /* one question */
	const char *label = name;
	while (*label) {
		const char *dot = strchr(label, '.');
		int l = dot ? (int)(dot - label) : (int)strlen(label);
		if (l == 0 || l > 63 || qlen + l + 6 > (int)sizeof(q)) {
			fprintf(stderr, "netbench: bad name %s\n", name);
			return 2;
		}
		q[qlen++] = (unsigned char)l;
		memcpy(q + qlen, label, (size_t)l);
		qlen += l;
		label += l + (dot ? 1 : 0);
	}
	q[qlen++] = 0;
	q[qlen++] = 0;
	q[qlen++] = 1; /* A */
	q[qlen++] = 0;
	q[qlen++] = 1; /* IN */

	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		die("socket");
	struct timeval tv = { .tv_sec = 2 };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		die("connect");
	uint64_t *rtt = calloc((size_t)n, sizeof(uint64_t));
	unsigned char r[1500];
	char answer[INET_ADDRSTRLEN] = "none";
	for (long i = -warmup; i < n; i++) {
		uint16_t id = (uint16_t)(i + warmup + 1);
		q[0] = (unsigned char)(id >> 8);
		q[1] = (unsigned char)id;
		uint64_t t0 = now_ns();
		if (send(fd, q, (size_t)qlen, 0) < 0)
			die("send");
		int len;
		do {
			len = (int)recv(fd, r, sizeof(r), 0);
			if (len < 0) {
				fprintf(stderr, "netbench: no DNS reply from %s:%s for query %ld: %s\n", server, port, i, strerror(errno));
				return 1;
			}
		} while (len < 12 || r[0] != q[0] || r[1] != q[1]);
		uint64_t t1 = now_ns();
		int rcode = r[3] & 0x0f;
		int ancount = (r[6] << 8) | r[7];
		if (rcode != 0 || ancount < 1 || len < 4) {
			fprintf(stderr, "netbench: DNS reply for %s from %s:%s: rcode %d, %d answers\n", name, server, port, rcode, ancount);
			return 1;
		}
		if (i == -warmup)
			inet_ntop(AF_INET, r + len - 4, answer, sizeof(answer));
		if (i >= 0)
			rtt[i] = t1 - t0;
	}
	printf("answer %s\n", answer);
	print_samples("rtt", rtt, n);
	return 0;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOFBF, 1 << 20);
	const char *cmd = argc > 1 ? argv[1] : "";
	if (strcmp(cmd, "serve") == 0 && argc == 4)
		return cmd_serve(atoi(argv[2]), atoi(argv[3]));
	if (strcmp(cmd, "connect") == 0 && argc == 6)
		return cmd_connect(argv[2], argv[3], atol(argv[4]), atol(argv[5]));
	if (strcmp(cmd, "probe") == 0 && argc == 4)
		return cmd_probe(argv[2], argv[3]);
	if (strcmp(cmd, "poll") == 0 && argc == 8)
		return cmd_poll(argv[2], argv[3], argv[4], atol(argv[5]), atol(argv[6]), atoi(argv[7]));
	if (strcmp(cmd, "dns-serve") == 0 && argc == 4)
		return cmd_dns_serve(argv[2], argv[3]);
	if (strcmp(cmd, "dns-query") == 0 && argc == 7)
		return cmd_dns_query(argv[2], argv[3], argv[4], atol(argv[5]), atol(argv[6]));
	fprintf(stderr, "usage: netbench serve FIRST LAST | connect IP PORT N WARMUP | probe IP PORT |\n"
			"       poll IP PORT WANT TIMEOUT_MS SLEEP_US CONNECT_MS | dns-serve PORT ANSWER | dns-query SERVER PORT NAME N WARMUP\n");
	return 2;
}
