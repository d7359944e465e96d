/* The first part of every vfiobench program: shared maps and helpers. BCC compiles one text, the
 * concatenation of this file and each selected probe's file (vfiobench/probes/program.py); maps and
 * BPF functions must be in that text (BCC ignores them in #included files). */
#include "vfiobench.bpf.h"

/* lost[probe]: events dropped because the ring buffer was full (reserve failed) or, for
 * uprobes, because the per-thread nesting depth exceeded MAX_DEPTH. */
BPF_PERCPU_ARRAY(lost, u64, VB_NPROBES);

static __always_inline void vb_count_lost(u32 probe)
{
	u64 *v = lost.lookup(&probe);
	if (v)
		(*v)++;
}

#ifdef VB_PID_MAP
/* vb_pids: the tgids traced now (a tracer session: user space adds a process when its
 * measurement starts and removes it at the end; uprobes are attached per binary, system-wide). */
BPF_HASH(vb_pids, u32, u8, 64);

static __always_inline int vb_pid_ok(u64 pid_tgid)
{
	u32 tgid = (u32)(pid_tgid >> 32);
	return vb_pids.lookup(&tgid) != 0;
}
#else
static __always_inline int vb_pid_ok(u64 pid_tgid)
{
	return TARGET_PID == 0 || (u32)(pid_tgid >> 32) == TARGET_PID;
}
#endif

#ifdef VB_HISTOGRAM
/* Log-linear (HDR-style) buckets: the integer formula of vfiobench/analysis/buckets.py
 * (LogLinearBuckets), b = SUB_BUCKET_BITS, values clamped to 2**MAX_BITS - 1:
 *   shift = max(0, msb(v) - b);  index = (shift << b) + (v >> shift)
 * tests/probes/test_histogram.py checks this C against the Python on many values. */
#define VB_NBUCKETS ((MAX_BITS - SUB_BUCKET_BITS + 1) << SUB_BUCKET_BITS)
BPF_PERCPU_ARRAY(hist, u64, VB_NPROBES * VB_NBUCKETS);

#include "buckets.bpf.h"

/* hist_total[probe]: events counted so far (the live count while recording). */
BPF_PERCPU_ARRAY(hist_total, u64, VB_NPROBES);

static __always_inline void vb_hist_add(u32 probe, u64 dur)
{
	u32 idx = probe * VB_NBUCKETS + vb_bucket(dur);
	u64 *v = hist.lookup(&idx);
	if (v)
		(*v)++;
	u64 *t = hist_total.lookup(&probe);
	if (t)
		(*t)++;
}
#endif

