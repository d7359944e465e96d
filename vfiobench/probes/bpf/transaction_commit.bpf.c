/* transaction_commit: QEMU's void memory_region_transaction_commit(void): what each toggle costs
 * downstream. uprobe + uretprobe with a per-thread stack; memory_region_set_enabled tail-jumps
 * into it, so both return probes fire on the same return, innermost first. */
BPF_HASH(transaction_commit_stack, u32, struct vb_stack, 4096);
#ifndef VB_HISTOGRAM
BPF_RINGBUF_OUTPUT(transaction_commit_events, RINGBUF_PAGES);
#endif

int vb_commit_enter(struct pt_regs *ctx)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_stack zero = {};
	struct vb_stack *st = transaction_commit_stack.lookup_or_try_init(&tid, &zero);
	if (!st) {
		vb_count_lost(VB_TRANSACTION_COMMIT);
		return 0;
	}
	u32 d = st->depth;
	st->depth = d + 1;
	if (d >= MAX_DEPTH)
		return 0;
	struct vb_frame *f = VB_FRAME(st, d);
	f->arg0 = d;
	f->ts = bpf_ktime_get_ns();
	return 0;
}

int vb_commit_return(struct pt_regs *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u32 tid = (u32)bpf_get_current_pid_tgid();
	struct vb_stack *st = transaction_commit_stack.lookup(&tid);
	if (!st || st->depth == 0)
		return 0;
	u32 d = st->depth - 1;
	st->depth = d;
	if (d >= MAX_DEPTH) {
		vb_count_lost(VB_TRANSACTION_COMMIT);
		return 0;
	}
	struct vb_frame *f = VB_FRAME(st, d);
#ifdef VB_HISTOGRAM
	vb_hist_add(VB_TRANSACTION_COMMIT, now - f->ts);
#else
	struct vb_transaction_commit_event *e = transaction_commit_events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		vb_count_lost(VB_TRANSACTION_COMMIT);
		return 0;
	}
	e->ts_ns = f->ts;
	e->dur_ns = now - f->ts;
	e->tid = tid;
	e->depth = (u32)f->arg0;
	transaction_commit_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
#endif
	return 0;
}
