/* kvm_ioctls: the KVM ioctls QEMU issues around an interrupt, on the VM fd of the target process:
 *   KVM_SET_GSI_ROUTING  kvm_irqchip_commit_routes (QEMU commits its MSI routes on every unmask of a
 *                        vector with a KVM route, and when it adds or removes one);
 *   KVM_IRQFD            an irqfd assigned or deassigned (the KVM bypass of a vector switched);
 *   KVM_SIGNAL_MSI       QEMU injecting an MSI itself (kvm_irqchip_send_msi).
 * sys_enter_ioctl filtered on those three cmds and the target tgid, paired with sys_exit_ioctl
 * through a per-thread map, as set_irqs_ioctl.bpf.c does; both may sit on the same tracepoints
 * (each keeps its own map, and a thread runs one ioctl at a time). The first four 32-bit words of
 * the argument struct are kept (see struct vb_kvm_ioctl_event). In histogram mode the three ioctls
 * share the probe's one histogram.
 *
 * The cmd numbers are _IOW(KVMIO = 0xAE, nr, struct) from <linux/kvm.h>; tests/probes checks them
 * against the header. */
#define KVM_SET_GSI_ROUTING_CMD 0x4008ae6a /* _IOW(KVMIO, 0x6a, struct kvm_irq_routing): 8 bytes */
#define KVM_IRQFD_CMD 0x4020ae76           /* _IOW(KVMIO, 0x76, struct kvm_irqfd): 32 bytes */
#define KVM_SIGNAL_MSI_CMD 0x4020aea5      /* _IOW(KVMIO, 0xa5, struct kvm_msi): 32 bytes */

/* One slot per thread, kept for the thread's life: ts != 0 while one of the three ioctls of that
 * thread is in flight. */
struct vb_kvm_ioctl_start {
	u64 ts;
	s32 fd;
	u32 cmd;
	u32 arg_ok;
	u32 arg[4];
	u32 _pad;
};

BPF_HASH(kvm_ioctl_inflight, u32, struct vb_kvm_ioctl_start, 4096);
#ifndef VB_HISTOGRAM
BPF_RINGBUF_OUTPUT(kvm_ioctls_events, RINGBUF_PAGES);
#endif

int vb_kvm_ioctl_enter(struct vb_sys_enter_ioctl_args *args)
{
	u32 cmd = (u32)args->cmd;
	if (cmd != KVM_SET_GSI_ROUTING_CMD && cmd != KVM_IRQFD_CMD && cmd != KVM_SIGNAL_MSI_CMD)
		return 0;
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_kvm_ioctl_start zero = {};
	struct vb_kvm_ioctl_start *s = kvm_ioctl_inflight.lookup_or_try_init(&tid, &zero);
	if (!s)
		return 0;
	s->fd = (s32)args->fd;
	s->cmd = cmd;
	/* a routing table with no entries is 8 bytes: read its header alone when 16 cannot be read */
	s->arg_ok = bpf_probe_read_user(s->arg, sizeof(s->arg), (void *)args->arg) == 0;
	if (!s->arg_ok) {
		s->arg[2] = s->arg[3] = 0;
		s->arg_ok = bpf_probe_read_user(s->arg, 2 * sizeof(u32), (void *)args->arg) == 0;
	}
	s->ts = bpf_ktime_get_ns();
	return 0;
}

int vb_kvm_ioctl_exit(struct vb_sys_exit_ioctl_args *args)
{
	u64 now = bpf_ktime_get_ns();
	u64 id = bpf_get_current_pid_tgid();
	if (!vb_pid_ok(id))
		return 0;
	u32 tid = (u32)id;
	struct vb_kvm_ioctl_start *s = kvm_ioctl_inflight.lookup(&tid);
	if (!s || !s->ts)
		return 0;
	u64 ts = s->ts;
	s->ts = 0;
#ifdef VB_HISTOGRAM
	vb_hist_add(VB_KVM_IOCTLS, now - ts);
#else
	struct vb_kvm_ioctl_event *e = kvm_ioctls_events.ringbuf_reserve(sizeof(*e));
	if (!e) {
		vb_count_lost(VB_KVM_IOCTLS);
		return 0;
	}
	e->ts_ns = ts;
	e->dur_ns = now - ts;
	e->pid = (u32)(id >> 32);
	e->tid = tid;
	e->fd = s->fd;
	e->ret = (s32)args->ret;
	e->cmd = s->cmd;
	e->arg_ok = s->arg_ok;
	e->arg0 = s->arg[0];
	e->arg1 = s->arg[1];
	e->arg2 = s->arg[2];
	e->arg3 = s->arg[3];
	kvm_ioctls_events.ringbuf_submit(e, BPF_RB_NO_WAKEUP);
#endif
	return 0;
}
