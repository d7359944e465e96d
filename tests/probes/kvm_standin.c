/* A stand-in for the KVM ioctls QEMU issues around an interrupt, for the kvm_ioctls probe tests.
 *
 * It makes a KVM VM with an in-kernel irqchip and one vCPU (this host's /dev/kvm allows that much
 * without vmx/svm), then issues, as QEMU does on the VM fd:
 *   KVM_SET_GSI_ROUTING  N times (kvm_irqchip_commit_routes on every unmask), the table holding
 *                        1 + i % 3 MSI routes (GSIs 24, 25, 26), each followed, as in QEMU's
 *                        vfio_msix_vector_do_use, by a VFIO_DEVICE_SET_IRQS ioctl (on /dev/null:
 *                        it fails with ENOTTY, the tracepoints see it all the same);
 *   KVM_IRQFD            N + 2 times on one eventfd for GSI 24, assign on even i and deassign
 *                        (KVM_IRQFD_FLAG_DEASSIGN) on odd i, as QEMU switches the irqfd bypass;
 *   KVM_SIGNAL_MSI       OTHER times (QEMU sending an MSI itself), address 0xfee00000, data 0x40 + i % 16.
 * Every ioctl must return 0: the vCPU's local APIC is software-disabled after reset, so an MSI is
 * accepted and delivered to no one (0), rather than finding no vCPU at all (-1, EPERM).
 *
 * usage: kvm_standin kvm N DELAY_US [OTHER]
 * Protocol on stdio as standin.c: "ready PID", a line on stdin, run (DELAY_US sleep after each
 * routing commit), "done CALLS ELAPSED_NS" (CALLS: the three kinds of KVM ioctls), a line (or
 * EOF) on stdin, exit 0. When KVM is unusable, or an ioctl fails, it prints "error WHY (errno E)"
 * instead of "done".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#define ROUTES 3
#define VFIO_DEVICE_SET_IRQS 0x3b6e

struct vfio_irq_set {
	uint32_t argsz;
	uint32_t flags;
	uint32_t index;
	uint32_t start;
	uint32_t count;
	int32_t data[1];
};

struct routing {
	struct kvm_irq_routing hdr;
	struct kvm_irq_routing_entry entries[ROUTES];
};

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int vm_setup(int *vm, const char **why)
{
	int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	if (kvm < 0) {
		*why = "cannot open /dev/kvm";
		return -1;
	}
	*vm = ioctl(kvm, KVM_CREATE_VM, 0);
	if (*vm < 0) {
		*why = "KVM_CREATE_VM failed";
		return -1;
	}
	if (ioctl(*vm, KVM_CREATE_IRQCHIP, 0) < 0) {
		*why = "KVM_CREATE_IRQCHIP failed";
		return -1;
	}
	if (ioctl(*vm, KVM_CREATE_VCPU, 0) < 0) {
		*why = "KVM_CREATE_VCPU failed";
		return -1;
	}
	return 0;
}

static int kvm_ioctls(int vm, unsigned long n, unsigned long msis, unsigned delay_us, const char **why)
{
	static struct routing r;
	int efd = eventfd(0, EFD_CLOEXEC);
	int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (efd < 0 || null < 0) {
		*why = "eventfd or /dev/null failed";
		return -1;
	}
	for (unsigned long i = 0; i < n; i++) {
		r.hdr.nr = 1 + (unsigned)(i % ROUTES);
		r.hdr.flags = 0;
		for (unsigned k = 0; k < r.hdr.nr; k++) {
			r.entries[k] = (struct kvm_irq_routing_entry){.gsi = 24 + k, .type = KVM_IRQ_ROUTING_MSI};
			r.entries[k].u.msi.address_lo = 0xfee00000u;
			r.entries[k].u.msi.data = 0x40 + k;
		}
		if (ioctl(vm, KVM_SET_GSI_ROUTING, &r) != 0) {
			*why = "KVM_SET_GSI_ROUTING failed";
			return -1;
		}
		struct vfio_irq_set set = {.argsz = sizeof(set), .flags = 0x24, .index = 2, .start = 0, .count = 1};
		(void)ioctl(null, VFIO_DEVICE_SET_IRQS, &set);
		if (delay_us)
			usleep(delay_us);
	}
	for (unsigned long i = 0; i < n + 2; i++) {
		struct kvm_irqfd fd = {.fd = (uint32_t)efd, .gsi = 24, .flags = i % 2 ? KVM_IRQFD_FLAG_DEASSIGN : 0};
		if (ioctl(vm, KVM_IRQFD, &fd) != 0) {
			*why = i % 2 ? "KVM_IRQFD deassign failed" : "KVM_IRQFD assign failed";
			return -1;
		}
	}
	for (unsigned long i = 0; i < msis; i++) {
		struct kvm_msi msi = {.address_lo = 0xfee00000u, .data = 0x40 + (unsigned)(i % 16)};
		if (ioctl(vm, KVM_SIGNAL_MSI, &msi) != 0) {
			*why = "KVM_SIGNAL_MSI did not return 0";
			return -1;
		}
	}
	close(efd);
	close(null);
	return 0;
}

int main(int argc, char **argv)
{
	char line[64];
	if (argc < 4 || strcmp(argv[1], "kvm")) {
		fprintf(stderr, "usage: %s kvm N DELAY_US [OTHER]\n", argv[0]);
		return 2;
	}
	unsigned long n = strtoul(argv[2], NULL, 0);
	unsigned delay_us = (unsigned)strtoul(argv[3], NULL, 0);
	unsigned long other = argc > 4 ? strtoul(argv[4], NULL, 0) : 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready %d\n", getpid());
	if (!fgets(line, sizeof(line), stdin))
		return 1;
	uint64_t t0 = now_ns();
	const char *why = "";
	int vm = -1;
	if (vm_setup(&vm, &why) < 0 || kvm_ioctls(vm, n, other, delay_us, &why) < 0) {
		printf("error %s (errno %d)\n", why, errno);
		(void)fgets(line, sizeof(line), stdin);
		return 0;
	}
	printf("done %lu %llu\n", n + (n + 2) + other, (unsigned long long)(now_ns() - t0));
	(void)fgets(line, sizeof(line), stdin);
	return 0;
}
