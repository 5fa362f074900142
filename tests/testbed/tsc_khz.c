/* Print the host's TSC rate in kHz. Under TCG the L2 guest's TSC runs at the
 * host's rate; L2 calibrating it itself under load can come out as 0, and KVM in
 * L2 then spins in KVM_RUN forever, so the testbed passes tsc_early_khz= instead. */
#include <stdint.h>
#include <stdio.h>
#include <time.h>
#include <x86intrin.h>

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int main(void)
{
	const struct timespec interval = { 0, 50 * 1000 * 1000 };
	uint64_t khz[3];

	/* Both clocks advance together across a sleep, so only a preemption between
	 * the paired reads skews a sample; the median of three drops such a one. */
	for (int i = 0; i < 3; i++) {
		uint64_t t0 = now_ns(), c0 = __rdtsc();
		nanosleep(&interval, NULL);
		uint64_t t1 = now_ns(), c1 = __rdtsc();
		khz[i] = (c1 - c0) * 1000000u / (t1 - t0);
	}
	uint64_t lo = khz[0] < khz[1] ? khz[0] : khz[1], hi = khz[0] ^ khz[1] ^ lo;
	uint64_t best = khz[2] < lo ? lo : khz[2] > hi ? hi : khz[2];
	if (best == 0) {
		fprintf(stderr, "tsc-khz: the TSC does not advance\n");
		return 1;
	}
	printf("%llu\n", (unsigned long long)best);
	return 0;
}
