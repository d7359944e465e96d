/* A stand-in for QEMU's MSI-X interrupt path, for the irq_path probe tests (built with gcc -O2 -g).
 *
 * Like QEMU 7.2 built by the project: static vfio_msi_interrupt(void *opaque) (a local symbol, in
 * .symtab only) calls msix_notify(PCIDevice *dev, unsigned vector), which has msix_set_pending()
 * inlined into it (flatten) while the out-of-line msix_set_pending stays exported and callable.
 *
 * usage: irqpath_standin MODE N DELAY_US [OTHER]
 *   qemu  N interrupts through vfio_msi_interrupt on vector i % 3, masked when i is even (so
 *         msix_notify sets the pending bit through the inlined copy), then OTHER direct calls of the
 *         out-of-line msix_set_pending(dev, 7); DELAY_US sleep between interrupts
 *   kvm   a KVM VM with an in-kernel irqchip, then N KVM_SIGNAL_MSI ioctls (data 0x40 + i % 16);
 *         prints "error WHY" instead of "done" when KVM is unusable
 * Protocol on stdio as standin.c: "ready PID", a line on stdin, run, "done CALLS ELAPSED_NS", a line
 * (or EOF) on stdin, exit 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

typedef struct PCIDevice {
	unsigned msix_entries_nr;
	unsigned char masked[8];
	unsigned char pba[8];
	volatile unsigned long sent;
} PCIDevice;

typedef struct VFIOMSIVector {
	int fd;
	PCIDevice *dev;
	unsigned nr;
} VFIOMSIVector;

void msix_set_pending(PCIDevice *dev, unsigned vector)
{
	dev->pba[vector / 8] |= (unsigned char)(1u << (vector % 8));
}

__attribute__((noipa, flatten)) void msix_notify(PCIDevice *dev, unsigned vector)
{
	if (vector >= dev->msix_entries_nr)
		return;
	if (dev->masked[vector]) {
		msix_set_pending(dev, vector);
		return;
	}
	dev->sent++;
}

__attribute__((noipa)) static int event_notifier_test_and_clear(VFIOMSIVector *v)
{
	return v->fd >= 0;
}

/* as in QEMU: it reads the eventfd first, so it has a frame (a push first: an emulated uprobe) */
__attribute__((noipa, used)) static void vfio_msi_interrupt(void *opaque)
{
	VFIOMSIVector *v = opaque;
	if (!event_notifier_test_and_clear(v))
		return;
	msix_notify(v->dev, v->nr);
}

/* called through pointers, as QEMU's fd handlers are: never inlined into main */
void (*volatile irq_handler)(void *) = vfio_msi_interrupt;
void (*volatile set_pending)(PCIDevice *, unsigned) = msix_set_pending;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int kvm_msis(unsigned long n, unsigned delay_us, const char **why)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		*why = "cannot open /dev/kvm";
		return -1;
	}
	int vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (vm < 0) {
		*why = "KVM_CREATE_VM failed";
		return -1;
	}
	if (ioctl(vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		*why = "KVM_CREATE_IRQCHIP failed";
		return -1;
	}
	for (unsigned long i = 0; i < n; i++) {
		struct kvm_msi msi = {.address_lo = 0xfee00000u, .data = 0x40 + (unsigned)(i % 16)};
		/* no vCPU receives it: the ioctl returns -1 with errno EPERM (delivered to none), after
		 * KVM has routed it (kvm_msi_set_irq fired); EINVAL would mean no in-kernel irqchip */
		if (ioctl(vm, KVM_SIGNAL_MSI, &msi) < 0 && errno != EPERM) {
			*why = "KVM_SIGNAL_MSI failed";
			return -1;
		}
		if (delay_us)
			usleep(delay_us);
	}
	close(vm);
	close(kvm);
	return 0;
}

int main(int argc, char **argv)
{
	char line[64];
	if (argc < 4) {
		fprintf(stderr, "usage: %s qemu|kvm N DELAY_US [OTHER]\n", argv[0]);
		return 2;
	}
	const char *mode = argv[1];
	unsigned long n = strtoul(argv[2], NULL, 0);
	unsigned delay_us = (unsigned)strtoul(argv[3], NULL, 0);
	unsigned long other = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	static PCIDevice dev = {.msix_entries_nr = 8};
	static VFIOMSIVector vectors[3] = {{10, &dev, 0}, {11, &dev, 1}, {12, &dev, 2}};
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", getpid());
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	uint64_t t0 = now_ns();
	unsigned long calls = 0;
	if (!strcmp(mode, "qemu")) {
		for (unsigned long i = 0; i < n; i++) {
			VFIOMSIVector *v = &vectors[i % 3];
			dev.masked[v->nr] = (i % 2 == 0);
			irq_handler(v);
			if (delay_us)
				usleep(delay_us);
			calls++;
		}
		for (unsigned long i = 0; i < other; i++)
			set_pending(&dev, 7);
	} else if (!strcmp(mode, "kvm")) {
		const char *why = "";
		if (kvm_msis(n, delay_us, &why) < 0) {
			printf("error %s (errno %d)\n", why, errno);
			(void)fgets(line, sizeof(line), stdin);
			return 0;
		}
		calls = n;
	} else {
		fprintf(stderr, "unknown mode %s\n", mode);
		return 2;
	}
	printf("done %lu %llu\n", calls, (unsigned long long)(now_ns() - t0));
	(void)fgets(line, sizeof(line), stdin);
	return 0;
}
