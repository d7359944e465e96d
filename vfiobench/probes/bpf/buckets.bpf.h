/* Log-linear bucket index (pure C, no kernel types: tests compile it with gcc too).
 * The integer formula of vfiobench/analysis/buckets.py, b = SUB_BUCKET_BITS:
 *   v = min(v, 2**MAX_BITS - 1); shift = max(0, msb(v) - b); index = (shift << b) + (v >> shift)
 * msb is a 6-step binary search (BPF has no clz instruction). */
#ifndef VFIOBENCH_BUCKETS_BPF_H
#define VFIOBENCH_BUCKETS_BPF_H

static __always_inline unsigned int vb_msb(unsigned long long v)
{
	unsigned int r = 0;
	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

static __always_inline unsigned int vb_bucket(unsigned long long v)
{
	if (v > VB_MAX_VALUE)
		v = VB_MAX_VALUE;
	unsigned int m = vb_msb(v);
	unsigned int shift = m > SUB_BUCKET_BITS ? m - SUB_BUCKET_BITS : 0;
	return (shift << SUB_BUCKET_BITS) + (unsigned int)(v >> shift);
}

#endif
