// SPDX-License-Identifier: Apache-2.0
// A tight loop of non-blocking recv() on an empty UDP socket: each call fires the sock_recv_length
// tracepoint once (sock_recvmsg_nosec), in this thread's context. Prints this thread's CPU ns per call
// (CLOCK_THREAD_CPUTIME_ID). Used by benchmarks/suite/bpf-run-floor.ts.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 1000000;
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("socket/bind");
		return 1;
	}
	char b[16];
	struct timespec t0, t1;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
	for (long i = 0; i < n; i++)
		recv(s, b, sizeof(b), MSG_DONTWAIT);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
	double ns = (t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec);
	printf("%.3f\n", ns / n);
	return 0;
}
