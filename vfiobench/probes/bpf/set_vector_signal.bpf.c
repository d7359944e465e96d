/* set_vector_signal: the kernel's vfio_msi_set_vector_signal() (drivers/vfio/pci/vfio_pci_intrs.c).
 * Linux 6.1: static int vfio_msi_set_vector_signal(struct vfio_pci_core_device *vdev, int vector,
 *                                                  int fd, bool msix);
 * kprobe + kretprobe; needs a kernel with kprobes (the lab VM, a real host). One slot per thread,
 * kept for the thread's life: ts != 0 while a call is in flight. */
struct vb_svs_start {
	u64 ts;
	s32 vector;
	s32 fd;
	u32 msix;
	u32 _pad;
};

BPF_HASH(svs_inflight, u32, struct vb_svs_start, 4096);
#ifndef VB_HISTOGRAM
BPF_RINGBUF_OUTPUT(set_vector_signal_events, RINGBUF_PAGES);
#endif

int vb_svs_enter(struct pt_regs *ctx, void *vdev, int vector, int fd, bool msix)
{
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_svs_start zero = {};
	struct vb_svs_start *s = svs_inflight.lookup_or_try_init(&tid, &zero);
	if (!s)
		return 0;
	s->vector = vector;
	s->fd = fd;
	s->msix = msix ? 1 : 0;
	s->ts = bpf_ktime_get_ns();
	return 0;
}

int vb_svs_return(struct pt_regs *ctx)
{
	u64 now = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_svs_start *s = svs_inflight.lookup(&tid);
	if (!s || !s->ts)
		return 0;
	u64 ts = s->ts;
	s->ts = 0;
#ifdef VB_HISTOGRAM
	vb_hist_add(VB_SET_VECTOR_SIGNAL, now - ts);
#else
	struct vb_set_vector_signal_event *e = set_vector_signal_events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		vb_count_lost(VB_SET_VECTOR_SIGNAL);
		return 0;
	}
	e->ts_ns = ts;
	e->dur_ns = now - ts;
	e->tid = tid;
	e->vector = s->vector;
	e->fd = s->fd;
	e->ret = (s32)PT_REGS_RC(ctx);
	e->msix = s->msix;
	e->_pad = 0;
	set_vector_signal_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
#endif
	return 0;
}
