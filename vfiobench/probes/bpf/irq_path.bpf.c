/* irq_path: one interrupt's path through the host kernel and QEMU, as point/call events in one ring.
 *
 *   host_irq          (raw) tracepoints irq:irq_handler_entry/exit, only for handlers whose name starts
 *                     with IRQ_NAME_PREFIX ("vfio-msix": vfio-pci names them "vfio-msix[N](BDF)");
 *                     vector N parsed from the name here; one event per handler run, at its exit
 *   eventfd_signal    kprobe eventfd_signal, only while such a handler runs on this CPU (the
 *                     vfio_msihandler -> eventfd_signal call; everything else returns at once)
 *   kvm_msi           (raw) tracepoint kvm:kvm_msi_set_irq inside such a handler: the KVM irqfd route,
 *                     injected in atomic context (vector from the handler)
 *   kvm_signal_msi    the same tracepoint elsewhere, from the target process: QEMU delivering an
 *                     MSI through KVM itself (KVM_SIGNAL_MSI; vector -1). Without a pid, from any
 *                     process; an irqfd injection KVM defers to a kworker then lands here too (with
 *                     a pid it is not recorded).
 *   qemu_irq          uprobe+uretprobe QEMU vfio_msi_interrupt(void *opaque) (vector -1)
 *   msix_notify       uprobe+uretprobe msix_notify(PCIDevice *dev, unsigned vector)
 *   msix_set_pending  uprobe+uretprobe msix_set_pending(PCIDevice *dev, unsigned vector); and a
 *                     uprobe (point event) on each copy the compiler inlined into msix_notify,
 *                     whose vector is the enclosing msix_notify's (QEMU 7.2 -O2 inlines it there)
 *
 * Hard IRQ handlers do not nest on a CPU, so the "inside a vfio handler" window is one per-CPU slot.
 * QEMU's three functions are not recursive: one in-flight slot each per thread, kept for the
 * thread's life. Streams events only (no histogram mode). The tracepoint records are declared
 * here; vfiobench/probes/resolve.py checks their offsets against tracefs before loading.
 *
 * The kernel parts come twice: as raw tracepoint programs (*_raw, used where the kernel has raw
 * tracepoints) and as classic tracepoint programs (the fallback). A classic tracepoint program is
 * skipped whenever any kprobe, tracepoint or uprobe program is running on that CPU (one per-CPU
 * guard, bpf_prog_active): a hard IRQ arriving during another tool's program (or a QEMU uprobe of
 * ours) goes unseen. A raw tracepoint program is only kept from recursing into itself. */
#ifdef VB_HISTOGRAM
#error "irq_path streams events; it has no histogram mode"
#endif
#include "irq_name.bpf.h"
#include <linux/interrupt.h>

struct vb_irq_handler_entry_args {
	u64 common;
	s32 irq;       /* offset 8 */
	u32 name_loc;  /* offset 12: __data_loc char[] name (offset | len << 16) */
};

struct vb_irq_handler_exit_args {
	u64 common;
	s32 irq;       /* offset 8 */
	s32 ret;       /* offset 12 */
};

struct vb_kvm_msi_set_irq_args {
	u64 common;
	u64 address;   /* offset 8 */
	u64 data;      /* offset 16 */
};

struct vb_irq_window {
	u64 ts;
	u64 task;      /* pid_tgid of the interrupted task: the same inside the handler */
	s32 irq;
	s32 vector;
	u32 active;
	u32 _pad;
};

/* A window left open by a missed exit (the kernel skips a program while another BPF program runs
 * on the CPU) must not take later events: inside the handler the task is the interrupted one and
 * little time has passed. */
#define VB_IRQ_WINDOW_NS 10000000ULL

static __always_inline int vb_in_window(struct vb_irq_window *w, u64 now)
{
	return w && w->active && w->task == bpf_get_current_pid_tgid() && now - w->ts < VB_IRQ_WINDOW_NS;
}

#define VB_QEMU_IRQ_SLOT 0
#define VB_PENDING_SLOT 1
#define VB_NOTIFY_SLOT 2
struct vb_irq_path_calls {
	u64 ts[3];     /* entry time, 0 when not in the call */
	u64 arg0[3];
	s32 vector[3];
	u32 inlined_seen; /* an inlined msix_set_pending copy was hit in this msix_notify call */
};

BPF_PERCPU_ARRAY(irq_path_window, struct vb_irq_window, 1);
BPF_HASH(irq_path_calls, u32, struct vb_irq_path_calls, 4096);
BPF_RINGBUF_OUTPUT(irq_path_events, RINGBUF_PAGES);

static __always_inline void vb_irq_emit(u32 event, u64 ts, u64 dur, s32 vector, u64 arg0, u64 arg1)
{
	struct vb_irq_path_event *e = irq_path_events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		vb_count_lost(VB_IRQ_PATH);
		return;
	}
	e->ts_ns = ts;
	e->dur_ns = dur;
	e->arg0 = arg0;
	e->arg1 = arg1;
	e->tid = (u32)bpf_get_current_pid_tgid();
	e->cpu = bpf_get_smp_processor_id();
	e->vector = vector;
	e->event = event;
	irq_path_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
}

/* ---- host_irq ---------------------------------------------------------------------------------- */

static __always_inline int vb_irq_begin(const char *name, s32 irq)
{
	if (!vb_irq_name_match(name))
		return 0;
	s32 vector = vb_irq_name_vector(name);
	u32 zero = 0;
	struct vb_irq_window *w = irq_path_window.lookup(&zero);
	if (!w)
		return 0;
	w->irq = irq;
	w->vector = vector;
	w->task = bpf_get_current_pid_tgid();
	w->active = 1;
	w->ts = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int vb_irq_end(s32 irq, s32 ret)
{
	u64 now = bpf_ktime_get_ns();
	u32 zero = 0;
	struct vb_irq_window *w = irq_path_window.lookup(&zero);
	if (!w || !w->active || w->irq != irq)
		return 0;
	w->active = 0;
	vb_irq_emit(VB_EV_HOST_IRQ, w->ts, now - w->ts, w->vector, (u64)(s64)irq, (u64)(s64)ret);
	return 0;
}

int vb_irq_entry(struct vb_irq_handler_entry_args *args)
{
	char name[VB_IRQ_NAME_LEN] = {};
	u32 loc = args->name_loc;
	if (bpf_probe_read_kernel_str(name, sizeof(name), (char *)args + (loc & 0xffff)) < 0)
		return 0;
	return vb_irq_begin(name, args->irq);
}

int vb_irq_exit(struct vb_irq_handler_exit_args *args)
{
	return vb_irq_end(args->irq, args->ret);
}

/* raw irq_handler_entry(int irq, struct irqaction *action) */
int vb_irq_entry_raw(struct bpf_raw_tracepoint_args *ctx)
{
	char name[VB_IRQ_NAME_LEN] = {};
	struct irqaction *action = (struct irqaction *)ctx->args[1];
	const char *namep = NULL;
	if (bpf_probe_read_kernel(&namep, sizeof(namep), &action->name) < 0 || !namep)
		return 0;
	if (bpf_probe_read_kernel_str(name, sizeof(name), namep) < 0)
		return 0;
	return vb_irq_begin(name, (s32)ctx->args[0]);
}

/* raw irq_handler_exit(int irq, struct irqaction *action, int ret) */
int vb_irq_exit_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return vb_irq_end((s32)ctx->args[0], (s32)ctx->args[2]);
}

/* ---- eventfd_signal, kvm_msi ------------------------------------------------------------------- */

int vb_eventfd_signal(struct pt_regs *ctx)
{
	u32 zero = 0;
	u64 now = bpf_ktime_get_ns();
	struct vb_irq_window *w = irq_path_window.lookup(&zero);
	if (!w || !vb_in_window(w, now))
		return 0;
	vb_irq_emit(VB_EV_EVENTFD_SIGNAL, now, (u64)-1, w->vector, (u64)(s64)w->irq, PT_REGS_PARM1(ctx));
	return 0;
}

static __always_inline int vb_kvm_msi_common(u64 address, u64 data)
{
	u64 now = bpf_ktime_get_ns();
	u32 zero = 0;
	s32 vector = -1;
	struct vb_irq_window *w = irq_path_window.lookup(&zero);
	u32 event = VB_EV_KVM_MSI;
	if (w && vb_in_window(w, now))
		vector = w->vector;
	else if (vb_pid_ok(bpf_get_current_pid_tgid()))
		event = VB_EV_KVM_SIGNAL_MSI;
	else
		return 0;
	vb_irq_emit(event, now, (u64)-1, vector, address, data);
	return 0;
}

int vb_kvm_msi(struct vb_kvm_msi_set_irq_args *args)
{
	return vb_kvm_msi_common(args->address, args->data);
}

/* raw kvm_msi_set_irq(__u64 address, __u64 data) */
int vb_kvm_msi_raw(struct bpf_raw_tracepoint_args *ctx)
{
	return vb_kvm_msi_common(ctx->args[0], ctx->args[1]);
}

/* ---- QEMU -------------------------------------------------------------------------------------- */

static __always_inline void vb_call_enter(struct pt_regs *ctx, int slot, s32 vector)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return;
	u32 tid = (u32)id;
	struct vb_irq_path_calls zero = {};
	struct vb_irq_path_calls *c = irq_path_calls.lookup_or_try_init(&tid, &zero);
	if (!c) {
		vb_count_lost(VB_IRQ_PATH);
		return;
	}
	c->arg0[slot] = PT_REGS_PARM1(ctx);
	c->vector[slot] = vector;
	if (slot == VB_NOTIFY_SLOT)
		c->inlined_seen = 0;
	c->ts[slot] = bpf_ktime_get_ns();
}

static __always_inline void vb_call_return(int slot, u32 event)
{
	u64 now = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return;
	u32 tid = (u32)id;
	struct vb_irq_path_calls *c = irq_path_calls.lookup(&tid);
	if (!c || !c->ts[slot])
		return;
	u64 ts = c->ts[slot];
	c->ts[slot] = 0;
	vb_irq_emit(event, ts, now - ts, c->vector[slot], c->arg0[slot], 0);
}

int vb_qemu_irq_enter(struct pt_regs *ctx)
{
	vb_call_enter(ctx, VB_QEMU_IRQ_SLOT, -1);
	return 0;
}

int vb_qemu_irq_return(struct pt_regs *ctx)
{
	vb_call_return(VB_QEMU_IRQ_SLOT, VB_EV_QEMU_IRQ);
	return 0;
}

int vb_pending_enter(struct pt_regs *ctx)
{
	vb_call_enter(ctx, VB_PENDING_SLOT, (s32)PT_REGS_PARM2(ctx));
	return 0;
}

int vb_pending_return(struct pt_regs *ctx)
{
	vb_call_return(VB_PENDING_SLOT, VB_EV_MSIX_SET_PENDING);
	return 0;
}

int vb_notify_enter(struct pt_regs *ctx)
{
	vb_call_enter(ctx, VB_NOTIFY_SLOT, (s32)PT_REGS_PARM2(ctx));
	return 0;
}

int vb_notify_return(struct pt_regs *ctx)
{
	vb_call_return(VB_NOTIFY_SLOT, VB_EV_MSIX_NOTIFY);
	return 0;
}

/* msix_set_pending inlined into msix_notify: a point event with the enclosing call's vector. The
 * DWARF may split one inlined copy into several runs (interleaved code): one event per call. */
int vb_pending_inlined(struct pt_regs *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_irq_path_calls *c = irq_path_calls.lookup(&tid);
	s32 vector = -1;
	u64 dev = 0;
	if (c && c->ts[VB_NOTIFY_SLOT]) {
		if (c->inlined_seen)
			return 0;
		c->inlined_seen = 1;
		vector = c->vector[VB_NOTIFY_SLOT];
		dev = c->arg0[VB_NOTIFY_SLOT];
	}
	vb_irq_emit(VB_EV_MSIX_SET_PENDING, now, (u64)-1, vector, dev, 1);
	return 0;
}
