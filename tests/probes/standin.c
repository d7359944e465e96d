/* A stand-in for QEMU in the probe tests and benchmarks (compiled with gcc at test time).
 *
 * It exports memory_region_set_enabled(MemoryRegion *mr, bool enabled) and
 * memory_region_transaction_commit(void) with QEMU's signatures, and issues VFIO_DEVICE_SET_IRQS
 * ioctls (on /dev/null: they fail with ENOTTY, which is fine: the tracepoints see them).
 *
 * usage: standin MODE N DELAY_US [OTHER]
 *   toggle   N calls of memory_region_set_enabled on the "msix-pba" region (enabled alternating
 *            1,0,1,...) plus OTHER calls on a "vfio-bar2" region; each sleeps DELAY_US inside and then
 *            tail-calls memory_region_transaction_commit()
 *   ioctl    N SET_IRQS ioctls; even i: ACTION_TRIGGER|DATA_EVENTFD start=i, odd i: ACTION_MASK|DATA_NONE
 *   both     toggle and ioctl, interleaved
 *   spin     N calls of memory_region_set_enabled with no delay (probe overhead benchmark)
 *   flood    N ioctls as fast as possible (ring buffer throughput)
 *   noise    N ioctls of another command (FIONREAD) as fast as possible: what every other ioctl on
 *            the machine pays for a SET_IRQS probe's tracepoint program (exporter benchmark)
 *   mask     N interrupts of a guest that masks on every interrupt, in stock QEMU's order: SET_IRQS
 *            (mask: vector release), memory_region_set_enabled(pba, 1) and msix_notify(dev) (the
 *            interrupt arrives masked: pending), SET_IRQS (unmask: do_use), set_enabled(pba, 0),
 *            msix_notify(dev) (delivery); plus OTHER msix_notify calls of another device (an emulated
 *            one); DELAY_US sleep between interrupts. The PBA region's opaque is dev, as in QEMU.
 *   nomask   N interrupts QEMU delivers without masking (msix_notify(dev) each, no ioctl, no toggle),
 *            plus OTHER msix_notify calls of another device; DELAY_US sleep between interrupts
 *   outlier  one slow PBA toggle among fast ones (the flight recorder): OUTLIER_FAR_BEFORE fast calls,
 *            a pause of OUTLIER_GAP_US, N fast calls, one call that sleeps DELAY_US inside, OTHER fast
 *            calls, the same pause, OUTLIER_FAR_AFTER fast calls (every call on "msix-pba", flipping
 *            it, so none takes the fast path; the fast ones do not sleep)
 * Protocol on stdio: prints "ready PID", waits for a line on stdin, runs, prints
 * "done CALLS ELAPSED_NS", waits for a line (or EOF) on stdin, exits 0.
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/ioctl.h>

#define VFIO_DEVICE_SET_IRQS 0x3b6e

struct vfio_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	int32_t data[1];
};

/* Shaped like QEMU's MemoryRegion: an Object header of pointers, flags, ops/opaque/container
 * pointers, then the name at an offset the tracer has to discover. */
typedef struct MemoryRegion {
	const void *klass;
	void *free_fn;
	void *properties;
	uint32_t ref;
	uint32_t pad0;
	void *parent;
	bool romd_mode, ram, subpage, readonly, nonvolatile, rom_device, flush_coalesced_mmio, enabled;
	const void *ops;
	void *opaque;
	struct MemoryRegion *container;
	uint64_t size;
	uint64_t addr;
	const char *name;
	uint64_t tail[4];
} MemoryRegion;

static const uint64_t fake_class[8] = {0x8877665544332211ULL, 0x0102030405060708ULL, 0, 7};
static uint64_t fake_device[8] = {0xdeadbeefcafef00dULL, 0x1122334455667788ULL};
static MemoryRegion pba = {.klass = fake_class, .opaque = fake_device, .size = 4096};
static MemoryRegion bar = {.klass = fake_class, .opaque = fake_device, .size = 1 << 20};

static uint64_t other_device[8] = {0x0badc0de0badc0deULL};

static unsigned delay_us;
volatile unsigned long commits;

#define OUTLIER_FAR_BEFORE 11
#define OUTLIER_FAR_AFTER 13
#define OUTLIER_GAP_US 1500000

/* Memory listeners, called on every commit as QEMU does (it also keeps the function's prologue a
 * push, like QEMU's: a uprobe there is emulated, not single-stepped). */
typedef void (*listener_fn)(unsigned long);
static void listener_count(unsigned long n) { commits = n; }
static void listener_nop(unsigned long n) { (void)n; __asm__ volatile("" ::: "memory"); }
listener_fn listeners[] = {listener_count, listener_nop};
unsigned n_listeners = 2;

__attribute__((noinline)) void memory_region_transaction_commit(void)
{
	unsigned long n = commits + 1;
	for (unsigned i = 0; i < n_listeners; i++)
		listeners[i](n);
}

__attribute__((noinline)) void memory_region_set_enabled(MemoryRegion *mr, bool enabled)
{
	if (enabled == mr->enabled)
		return; /* QEMU's fast path; gcc puts this cmp before the prologue, as in QEMU's binary */
	if (delay_us)
		usleep(delay_us);
	mr->enabled = enabled;
	memory_region_transaction_commit();
}

/* QEMU's void msix_notify(PCIDevice *dev, unsigned vector): the device's pending bit or delivery.
 * It calls the listeners, so it saves registers first (a push: an emulated uprobe, as in QEMU). */
volatile unsigned long notified;
__attribute__((noinline)) void msix_notify(void *dev, unsigned vector)
{
	for (unsigned i = 0; i < n_listeners; i++)
		listeners[i](notified + vector);
	notified += dev != NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* n PBA toggles, each flipping the region (never QEMU's fast path), sleeping delay inside */
static unsigned long toggles(unsigned long n, unsigned delay)
{
	delay_us = delay;
	for (unsigned long i = 0; i < n; i++)
		memory_region_set_enabled(&pba, !pba.enabled);
	delay_us = 0;
	return n;
}

static void set_irqs(int fd, unsigned i)
{
	struct vfio_irq_set s = {.argsz = sizeof(s), .index = 2, .start = i, .count = 1};
	s.flags = (i % 2 == 0) ? (0x4 | 0x20) : (0x1 | 0x8);
	s.data[0] = 42;
	(void)ioctl(fd, VFIO_DEVICE_SET_IRQS, &s);
}

int main(int argc, char **argv)
{
	char line[64];
	if (argc < 4) {
		fprintf(stderr, "usage: %s toggle|ioctl|both|spin|flood|mask|nomask|outlier N DELAY_US [OTHER]\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	unsigned long n = strtoul(argv[2], NULL, 0);
	delay_us = (unsigned)strtoul(argv[3], NULL, 0);
	unsigned long other = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0)
		return 1;
	/* QEMU g_strdup()s region names: they live on the heap */
	pba.name = strdup("msix-pba");
	bar.name = strdup("vfio-bar2");
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", getpid());
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	uint64_t t0 = now_ns();
	unsigned long calls = 0;
	if (!strcmp(mode, "toggle") || !strcmp(mode, "both")) {
		for (unsigned long i = 0; i < n; i++) {
			memory_region_set_enabled(&pba, i % 2 == 0);
			if (!strcmp(mode, "both"))
				set_irqs(fd, (unsigned)i);
			calls++;
		}
		for (unsigned long i = 0; i < other; i++)
			memory_region_set_enabled(&bar, i % 2 == 0);
	} else if (!strcmp(mode, "ioctl")) {
		for (unsigned long i = 0; i < n; i++) {
			set_irqs(fd, (unsigned)i);
			if (delay_us)
				usleep(delay_us);
			calls++;
		}
	} else if (!strcmp(mode, "spin")) {
		for (unsigned long i = 0; i < n; i++)
			memory_region_set_enabled(&bar, !(i & 1)); /* never the fast path */
		calls = n;
	} else if (!strcmp(mode, "mask") || !strcmp(mode, "nomask")) {
		bool masking = !strcmp(mode, "mask");
		for (unsigned long i = 0; i < n; i++) {
			unsigned vector = (unsigned)(i % 3);
			if (masking) {
				set_irqs(fd, 2 * vector + 1);               /* mask: the vector's release */
				memory_region_set_enabled(&pba, true);      /* it fires masked: pending */
				msix_notify(fake_device, vector);
				set_irqs(fd, 2 * vector);                   /* unmask: do_use */
				memory_region_set_enabled(&pba, false);
			}
			msix_notify(fake_device, vector);           /* delivery */
			if (delay_us)
				usleep(delay_us);
			calls++;
		}
		for (unsigned long i = 0; i < other; i++)
			msix_notify(other_device, 0);
	} else if (!strcmp(mode, "outlier")) {
		unsigned slow_us = delay_us;
		calls += toggles(OUTLIER_FAR_BEFORE, 0);
		usleep(OUTLIER_GAP_US);
		calls += toggles(n, 0);
		calls += toggles(1, slow_us);
		calls += toggles(other, 0);
		usleep(OUTLIER_GAP_US);
		calls += toggles(OUTLIER_FAR_AFTER, 0);
	} else if (!strcmp(mode, "noise")) {
		int avail;
		for (unsigned long i = 0; i < n; i++)
			(void)ioctl(fd, FIONREAD, &avail);
		calls = n;
	} else if (!strcmp(mode, "flood")) {
		for (unsigned long i = 0; i < n; i++)
			set_irqs(fd, (unsigned)i);
		calls = n;
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	printf("done %lu %llu\n", calls, (unsigned long long)(now_ns() - t0));
	(void)fgets(line, sizeof(line), stdin);
	close(fd);
	return 0;
}
