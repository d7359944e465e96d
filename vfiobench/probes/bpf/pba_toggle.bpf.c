/* pba_toggle: QEMU's void memory_region_set_enabled(MemoryRegion *mr, bool enabled).
 * uprobe (placed on the first instruction the kernel emulates, see vfiobench/qemu/binary.py) +
 * uretprobe, paired through a per-thread stack. Every call is recorded; user space marks the
 * calls on the MSI-X PBA region (vfiobench/probes/regions.py). */
BPF_HASH(pba_toggle_stack, u32, struct vb_stack, 4096);
#ifndef VB_HISTOGRAM
BPF_RINGBUF_OUTPUT(pba_toggle_events, RINGBUF_PAGES);
#endif

int vb_pba_enter(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_stack zero = {};
	struct vb_stack *st = pba_toggle_stack.lookup_or_try_init(&tid, &zero);
	if (!st) {
		vb_count_lost(VB_PBA_TOGGLE);
		return 0;
	}
	u32 d = st->depth;
	st->depth = d + 1;
	if (d >= MAX_DEPTH)
		return 0;
	struct vb_frame *f = VB_FRAME(st, d);
	f->arg0 = PT_REGS_PARM1(ctx);
	f->arg1 = PT_REGS_PARM2(ctx) & 0xff; /* bool */
	f->ts = bpf_ktime_get_ns();
	return 0;
}

int vb_pba_return(struct pt_regs *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct vb_stack *st = pba_toggle_stack.lookup(&tid);
	if (!st || st->depth == 0)
		return 0;
	u32 d = st->depth - 1;
	st->depth = d;
	if (d >= MAX_DEPTH) {
		vb_count_lost(VB_PBA_TOGGLE);
		return 0;
	}
	struct vb_frame *f = VB_FRAME(st, d);
#ifdef VB_HISTOGRAM
	vb_hist_add(VB_PBA_TOGGLE, now - f->ts);
#else
	struct vb_pba_toggle_event *e = pba_toggle_events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		vb_count_lost(VB_PBA_TOGGLE);
		return 0;
	}
	e->ts_ns = f->ts;
	e->dur_ns = now - f->ts;
	e->mr = f->arg0;
	e->tid = tid;
	e->enabled = (u32)f->arg1;
	pba_toggle_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
#endif
	return 0;
}
