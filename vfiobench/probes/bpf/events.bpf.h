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

#endif
