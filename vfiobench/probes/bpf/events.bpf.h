/* Event records shared by the BPF programs and by the dtype size test (tests/probes/).
 *
 * Every struct is laid out without implicit padding; vfiobench/probes/catalog.py mirrors each one as
 * a numpy dtype (same field names, same offsets) and a test compiles this header with gcc to check.
 * Times are CLOCK_MONOTONIC nanoseconds (bpf_ktime_get_ns).
 */
#ifndef VFIOBENCH_EVENTS_BPF_H
#define VFIOBENCH_EVENTS_BPF_H

/* set_irqs_ioctl: one VFIO_DEVICE_SET_IRQS ioctl, with the struct vfio_irq_set header it passed. */
struct vb_set_irqs_event {
	u64 ts_ns;   /* sys_enter_ioctl */
	u64 dur_ns;  /* sys_exit_ioctl - sys_enter_ioctl */
	u32 pid;
	u32 tid;
	s32 fd;
	s32 ret;     /* the syscall's return value (-errno on failure) */
	u32 argsz;   /* struct vfio_irq_set header, read from the user pointer */
	u32 flags;   /* VFIO_IRQ_SET_DATA_* | VFIO_IRQ_SET_ACTION_* */
	u32 index;   /* VFIO_PCI_MSIX_IRQ_INDEX = 2 */
	u32 start;
	u32 count;
	u32 hdr_ok;  /* 1 when the header could be read */
};

/* kvm_ioctls: one KVM_SET_GSI_ROUTING, KVM_IRQFD or KVM_SIGNAL_MSI ioctl (on the VM fd), with the
 * first four 32-bit words of the struct it passed:
 *   KVM_SET_GSI_ROUTING  struct kvm_irq_routing: nr, flags, entries[0].gsi, entries[0].type
 *   KVM_IRQFD            struct kvm_irqfd: fd (the eventfd), gsi, flags (1 = DEASSIGN), resamplefd
 *   KVM_SIGNAL_MSI       struct kvm_msi: address_lo, address_hi, data, flags */
struct vb_kvm_ioctl_event {
	u64 ts_ns;   /* sys_enter_ioctl */
	u64 dur_ns;  /* sys_exit_ioctl - sys_enter_ioctl */
	u32 pid;
	u32 tid;
	s32 fd;
	s32 ret;     /* the syscall's return value (-errno on failure) */
	u32 cmd;     /* the ioctl number */
	u32 arg_ok;  /* 1 when the words below could be read from the user pointer */
	u32 arg0;
	u32 arg1;
	u32 arg2;
	u32 arg3;
};

/* set_vector_signal: one call of the kernel's vfio_msi_set_vector_signal(). */
struct vb_set_vector_signal_event {
	u64 ts_ns;
	u64 dur_ns;
	u32 tid;
	s32 vector;
	s32 fd;
	s32 ret;
	u32 msix;
	u32 _pad;
};

/* pba_toggle: one call of QEMU's memory_region_set_enabled(mr, enabled). */
struct vb_pba_toggle_event {
	u64 ts_ns;
	u64 dur_ns;
	u64 mr;      /* MemoryRegion pointer in the target process */
	u32 tid;
	u32 enabled;
};

/* transaction_commit: one call of QEMU's memory_region_transaction_commit(). */
struct vb_transaction_commit_event {
	u64 ts_ns;
	u64 dur_ns;
	u32 tid;
	u32 depth;   /* open commit calls on this thread when it was entered (0 = outermost) */
};

/* irq_path: one event on an interrupt's path through the host kernel and QEMU (irq_path.bpf.c).
 * event is an index into VB_IRQ_PATH_EVENT_NAMES (mirrored by catalog.IRQ_PATH_EVENTS). */
#define VB_EV_HOST_IRQ 0         /* irq:irq_handler_entry..exit of a "vfio-msix[N](BDF)" handler */
#define VB_EV_EVENTFD_SIGNAL 1   /* kprobe eventfd_signal inside such a handler (same CPU) */
#define VB_EV_KVM_MSI 2          /* tracepoint kvm:kvm_msi_set_irq inside such a handler (irqfd route) */
#define VB_EV_QEMU_IRQ 3         /* uprobe+uretprobe QEMU vfio_msi_interrupt */
#define VB_EV_MSIX_SET_PENDING 4 /* uprobe(+uretprobe) QEMU msix_set_pending, or its copy inlined in msix_notify */
#define VB_EV_MSIX_NOTIFY 5      /* uprobe+uretprobe QEMU msix_notify */
#define VB_EV_KVM_SIGNAL_MSI 6   /* kvm:kvm_msi_set_irq from the target process (QEMU's KVM_SIGNAL_MSI) */

struct vb_irq_path_event {
	u64 ts_ns;   /* entry (or the point in time of a point event) */
	u64 dur_ns;  /* entry -> return; (u64)-1 for point events (read as int64: -1) */
	u64 arg0;    /* host_irq/eventfd_signal: Linux IRQ number; kvm_msi: MSI address;
	              * qemu_irq: the VFIOMSIVector pointer; msix_*: the PCIDevice pointer */
	u64 arg1;    /* host_irq: handler return (1 = handled); eventfd_signal: eventfd_ctx pointer;
	              * kvm_msi: MSI data; msix_set_pending: 1 when hit at a copy inlined in msix_notify */
	u32 tid;     /* current thread (in hard-IRQ context: whichever task was interrupted) */
	u32 cpu;
	s32 vector;  /* MSI-X vector (from the handler name, the 2nd argument, the enclosing call), or -1 */
	u32 event;   /* VB_EV_* */
};

#endif
