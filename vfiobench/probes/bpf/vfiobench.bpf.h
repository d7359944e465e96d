/* Shared definitions (macros and structs only: BCC handles maps and BPF functions only in the main
 * text, see common.bpf.c) of the vfiobench probes. Specialised with -D flags only:
 *   TARGET_PID       tgid to trace (0 = every process)
 *   VB_PID_MAP       trace the tgids in the vb_pids map instead of TARGET_PID (a tracer session)
 *   RINGBUF_PAGES    pages per ring buffer (a power of two)
 *   VB_HISTOGRAM     aggregate durations into log-linear histograms instead of streaming events
 *   SUB_BUCKET_BITS  2**SUB_BUCKET_BITS linear sub-buckets per power of two (histogram mode)
 *   MAX_BITS         histogram values are clamped to 2**MAX_BITS - 1
 *   MAX_DEPTH        per-thread nesting depth tracked for uprobes (a power of two)
 */
#include <uapi/linux/ptrace.h>
#include <linux/types.h>

#ifndef TARGET_PID
#define TARGET_PID 0
#endif
#ifndef RINGBUF_PAGES
#define RINGBUF_PAGES 1024
#endif
#ifndef SUB_BUCKET_BITS
#define SUB_BUCKET_BITS 6
#endif
#ifndef MAX_BITS
#define MAX_BITS 63
#endif
#define VB_MAX_VALUE ((1ULL << MAX_BITS) - 1)
#ifndef MAX_DEPTH
#define MAX_DEPTH 8
#endif

#include "events.bpf.h"

/* Probe ids: index into the per-CPU counters below (mirrored by catalog.PROBES[*].probe_id). */
#define VB_SET_IRQS_IOCTL 0
#define VB_SET_VECTOR_SIGNAL 1
#define VB_PBA_TOGGLE 2
#define VB_TRANSACTION_COMMIT 3
#define VB_IRQ_PATH 4
#define VB_KVM_IOCTLS 5
#define VB_NPROBES 6

/* The records of the syscalls:sys_{enter,exit}_ioctl tracepoints (set_irqs_ioctl, kvm_ioctls),
 * declared here rather than by BCC's TRACEPOINT_PROBE (which only works in the main file);
 * vfiobench/probes/resolve.py checks these offsets against the events' format files in tracefs
 * before loading (syscall tracepoints: 8-byte common header, __syscall_nr, then one 8-byte slot per
 * argument). */
struct vb_sys_enter_ioctl_args {
	u64 common;       /* common_type, common_flags, common_preempt_count, common_pid */
	s64 syscall_nr;
	u64 fd;           /* offset 16 */
	u64 cmd;          /* offset 24 */
	u64 arg;          /* offset 32 */
};

struct vb_sys_exit_ioctl_args {
	u64 common;
	s64 syscall_nr;
	s64 ret;          /* offset 16 */
};

/* Per-thread call stack for uprobe/uretprobe pairing: nested (and tail-chained) calls return in
 * LIFO order, so a stack of entry frames pairs each return with its own entry. */
struct vb_frame {
	u64 ts;
	u64 arg0;
	u64 arg1;
};

struct vb_stack {
	u32 depth;
	u32 _pad;
	struct vb_frame f[MAX_DEPTH];
};

/* The frame at depth d (d < MAX_DEPTH already checked). The empty asm hides d's value from the
 * compiler: clang (LLVM 19, BCC 0.31 on trixie) otherwise drops the mask after the range check and
 * the verifier rejects the access as unbounded; the mask itself keeps it provably in range. */
#define VB_FRAME(st, d) ({ u32 _d = (d); asm volatile("" : "+r"(_d)); &(st)->f[_d & (MAX_DEPTH - 1)]; })
