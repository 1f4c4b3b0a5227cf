// UDP flood generator for the storm test and benchmark: sends COUNT datagrams of SIZE bytes to
// ADDR:PORT (IPv4) with sendmmsg in batches, from PROCS processes, as fast as the kernel allows.
// Prints {"sent":N,"seconds":S} on stdout. Built at test time with the system clang (see flood.ts).
// RATE (packets/s per process, 0 = unpaced) paces the batches (the capture benchmark's rate steps).
//   udpflood ADDR PORT COUNT [SIZE] [PROCS] [RATE]
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static long flood(const char *addr, int port, long count, int size, long rate)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1)
		return -1;
	static char buf[65536];
	memset(buf, 'x', sizeof(buf));
	struct mmsghdr msgs[BATCH];
	struct iovec iov = { .iov_base = buf, .iov_len = (size_t)size };
	for (int i = 0; i < BATCH; i++) {
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = &sa;
		msgs[i].msg_hdr.msg_namelen = sizeof(sa);
		msgs[i].msg_hdr.msg_iov = &iov;
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	long sent = 0;
	double start = now();
	while (sent < count) {
		int n = count - sent < BATCH ? (int)(count - sent) : BATCH;
		if (rate > 0) {
			int batch = rate / 1000 > 1 ? (int)(rate / 1000) : 1; /* ~1 ms of packets per call */
			if (n > batch)
				n = batch;
			while (sent > (now() - start) * rate)
				;
		}
		int r = sendmmsg(fd, msgs, n, 0);
		if (r < 0)
			continue; /* ENOBUFS / ECONNREFUSED from an earlier ICMP: retry */
		sent += r;
	}
	close(fd);
	return sent;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: udpflood ADDR PORT COUNT [SIZE] [PROCS] [RATE]\n");
		return 2;
	}
	long count = atol(argv[3]);
	int size = argc > 4 ? atoi(argv[4]) : 16;
	int procs = argc > 5 ? atoi(argv[5]) : 1;
	long rate = argc > 6 ? atol(argv[6]) : 0;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	long per = count / procs;
	for (int p = 0; p < procs; p++) {
		long mine = p == procs - 1 ? count - per * (procs - 1) : per;
		pid_t pid = fork();
		if (pid == 0)
			_exit(flood(argv[1], atoi(argv[2]), mine, size, rate) == mine ? 0 : 1);
	}
	int ok = 1, st;
	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			ok = 0;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("{\"sent\":%ld,\"seconds\":%.3f}\n", ok ? count : -1, s);
	return ok ? 0 : 1;
}
