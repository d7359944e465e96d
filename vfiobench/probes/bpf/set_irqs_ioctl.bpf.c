/* set_irqs_ioctl: VFIO_DEVICE_SET_IRQS ioctls of the target process.
 * sys_enter_ioctl filtered on cmd == SET_IRQS_CMD and the target tgid, paired with sys_exit_ioctl
 * through a per-thread map (the exit tracepoint has no cmd). The tracepoint records are
 * struct vb_sys_{enter,exit}_ioctl_args (vfiobench.bpf.h), shared with kvm_ioctls.bpf.c. */
#ifndef SET_IRQS_CMD
#define SET_IRQS_CMD 0x3b6e
#endif

/* One slot per thread, kept for the thread's life (no map insert/delete per ioctl): ts != 0 while a
 * SET_IRQS ioctl of that thread is in flight. */
struct vb_set_irqs_start {
	u64 ts;
	s32 fd;
	u32 hdr_ok;
	u32 hdr[5]; /* struct vfio_irq_set: argsz, flags, index, start, count */
	u32 _pad;
};

BPF_HASH(set_irqs_inflight, u32, struct vb_set_irqs_start, 4096);
#ifndef VB_HISTOGRAM
BPF_RINGBUF_OUTPUT(set_irqs_ioctl_events, RINGBUF_PAGES);
#endif

int vb_ioctl_enter(struct vb_sys_enter_ioctl_args *args)
{
	if ((u32)args->cmd != SET_IRQS_CMD)
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_set_irqs_start zero = {};
	struct vb_set_irqs_start *s = set_irqs_inflight.lookup_or_try_init(&tid, &zero);
	if (!s)
		return 0;
	s->fd = (s32)args->fd;
	s->hdr_ok = bpf_probe_read_user(s->hdr, sizeof(s->hdr), (void *)args->arg) == 0;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

int vb_ioctl_exit(struct vb_sys_exit_ioctl_args *args)
{
	u64 now = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_set_irqs_start *s = set_irqs_inflight.lookup(&tid);
	if (!s || !s->ts)
		return 0;
	u64 ts = s->ts;
	s->ts = 0;
#ifdef VB_HISTOGRAM
	vb_hist_add(VB_SET_IRQS_IOCTL, now - ts);
#else
	struct vb_set_irqs_event *e = set_irqs_ioctl_events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		vb_count_lost(VB_SET_IRQS_IOCTL);
		return 0;
	}
	e->ts_ns = ts;
	e->dur_ns = now - ts;
	e->pid = (u32)(id >> 32);
	e->tid = tid;
	e->fd = s->fd;
	e->ret = (s32)args->ret;
	e->argsz = s->hdr[0];
	e->flags = s->hdr[1];
	e->index = s->hdr[2];
	e->start = s->hdr[3];
	e->count = s->hdr[4];
	e->hdr_ok = s->hdr_ok;
	set_irqs_ioctl_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
#endif
	return 0;
}
