"""HDR-style log-linear histogram buckets, integer-only so BPF C can compute the same index.

The one definition of the bucket formula (numpy only): the probes' in-kernel histograms
(``probes/bpf/buckets.bpf.h``, decoded by :mod:`vfiobench.probes.histogram`) and the analysis
layer's histograms use this class; a test compiles the C and checks they agree bucket for bucket.

Within each power of two ``[2**m, 2**(m+1))`` there are ``2**b`` equal-width sub-buckets
(``b = sub_bucket_bits``); below ``2**(b+1)`` every integer has its own bucket. A bucket's width is
therefore at most ``2**-b`` of its lower bound (1/64 = 1.6 % for the default ``b = 6``), whereas
log2 buckets are 100 % wide and put 1.5 ms and 2 ms in the same bucket.

The bucket function, for an unsigned 64-bit value ``v`` (nanoseconds)::

    msb(v)   = index of the highest set bit of v        (msb(1) = 0; take msb(0) = 0)
    shift(v) = max(0, msb(v) - b)
    index(v) = (shift(v) << b) + (v >> shift(v))

``v >> shift`` keeps the top ``b + 1`` bits of ``v`` (the leading 1 and ``b`` bits below it), so it
lies in ``[2**b, 2**(b+1))`` once ``shift > 0``; adding ``shift << b`` moves each power of two to its
own block of ``2**b`` indices. For ``v < 2**(b+1)`` the index is ``v`` itself. The inverse::

    shift(i) = max(0, (i >> b) - 1)
    lower(i) = (i - (shift(i) << b)) << shift(i)          (inclusive)
    upper(i) = lower(i) + (1 << shift(i))                 (exclusive)

Values are clamped to ``[0, 2**max_bits - 1]`` (default ``max_bits = 63``: every bound fits a
signed 64-bit integer), which gives ``(max_bits - b + 1) << b`` indices: 3712 for ``b = 6``. In BPF C
(no floating point, no ``clz`` instruction) ``msb`` is a 6-step binary search over shifts; the rest
is two shifts and an add::

    static __always_inline u32 loglin_index(u64 v) {
        u32 msb = 0;
        if (v >> 32) { msb += 32; v >>= 32; } ... (16, 8, 4, 2, 1)   // on a copy of v
        u32 shift = msb > B ? msb - B : 0;
        return (shift << B) + (u32)(v_orig >> shift);
    }

Example:
    >>> b = LogLinearBuckets(sub_bucket_bits=6)
    >>> idx = b.index([1_500_000, 2_000_000])
    >>> [int(i) for i in idx], [int(x) for x in b.lower(idx)]
    ([987, 1018], [1490944, 1998848])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

IntArray = npt.NDArray[np.int64]

#: ``2**6`` sub-buckets per power of two: at most 1/64 = 1.6 % wide (the probes' and analysis' default).
DEFAULT_SUB_BUCKET_BITS = 6


@dataclass(frozen=True)
class LogLinearBuckets:
    """Log-linear (HDR-style) buckets over non-negative integer nanoseconds.

    Args:
        sub_bucket_bits: ``b``: ``2**b`` linear sub-buckets per power of two; the relative bucket
            width (the worst-case relative error of a value reported from its bucket) is ``2**-b``.
        max_bits: values ``>= 2**max_bits`` are clamped into the last bucket (at most 63, so that
            every bound fits in int64).
    """

    sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS
    max_bits: int = 63

    def __post_init__(self) -> None:
        if not 1 <= self.sub_bucket_bits <= 16:
            raise ValueError(f"sub_bucket_bits must be in 1..16, not {self.sub_bucket_bits}")
        if not self.sub_bucket_bits + 1 <= self.max_bits <= 63:
            raise ValueError(f"max_bits must be in {self.sub_bucket_bits + 1}..63, not {self.max_bits}")

    @property
    def n_buckets(self) -> int:
        """Number of bucket indices (``index`` returns values in ``[0, n_buckets)``)."""
        b = self.sub_bucket_bits
        return (self.max_bits - b + 1) << b

    @property
    def relative_error(self) -> float:
        """Worst-case bucket width relative to its lower bound: ``2**-sub_bucket_bits``."""
        return float(2.0**-self.sub_bucket_bits)

    def index(self, values_ns: npt.ArrayLike) -> IntArray:
        """Bucket index of each value (vectorised; negative values count as 0).

        Args:
            values_ns: integers (or floats, truncated) in nanoseconds.

        Returns:
            int64 array of indices in ``[0, n_buckets)``, same shape as the input.
        """
        b = self.sub_bucket_bits
        top = (1 << self.max_bits) - 1
        arr = np.asarray(values_ns)
        if arr.dtype.kind == "i":
            v = np.maximum(arr, 0, dtype=np.int64)  # max_bits <= 63: every int64 fits
            if self.max_bits < 63:
                np.minimum(v, top, out=v)
        elif arr.dtype.kind == "f":
            # the largest float64 below 2**max_bits: castable, and inside the last bucket
            ceiling = float(np.nextafter(2.0**self.max_bits, 0.0))
            arr = np.nan_to_num(arr, nan=0.0, posinf=ceiling, neginf=0.0)
            v = np.clip(arr, 0.0, ceiling).astype(np.int64)
        else:
            v = np.minimum(np.asarray(arr, dtype=np.uint64), np.uint64(top)).astype(np.int64)
        # in place from here (each branch made v a fresh array): at 10M samples every temporary
        # costs page faults
        v = np.atleast_1d(v)
        shift = _msb_nonneg(v)
        shift -= b
        np.maximum(shift, 0, out=shift)
        v >>= shift
        shift <<= b
        shift += v
        return np.asarray(shift, dtype=np.int64).reshape(np.shape(arr))

    def lower(self, idx: npt.ArrayLike) -> IntArray:
        """Inclusive lower bound (ns) of each bucket index."""
        i = np.asarray(idx, dtype=np.int64)
        b = self.sub_bucket_bits
        shift = np.maximum((i >> b) - 1, 0)
        return np.asarray((i - (shift << b)) << shift, dtype=np.int64)

    def upper(self, idx: npt.ArrayLike) -> IntArray:
        """Exclusive upper bound (ns) of each bucket index (saturates at ``2**63 - 1``)."""
        i = np.asarray(idx, dtype=np.int64)
        b = self.sub_bucket_bits
        shift = np.maximum((i >> b) - 1, 0)
        lo = np.asarray((i - (shift << b)) << shift, dtype=np.int64)
        width = np.left_shift(np.int64(1), shift)
        with np.errstate(over="ignore"):
            hi = lo + width
        return np.where(hi < lo, np.iinfo(np.int64).max, hi).astype(np.int64)

    def counts(self, values_ns: npt.ArrayLike) -> IntArray:
        """Dense per-bucket counts: ``np.bincount`` of :meth:`index` (length ``max index + 1``)."""
        idx = self.index(values_ns).ravel()
        if idx.size == 0:
            return np.zeros(0, dtype=np.int64)
        return np.bincount(idx).astype(np.int64)

    def describe(self) -> dict[str, Any]:
        """Parameters as a plain dict (stored beside in-kernel histograms so they can be decoded)."""
        return {"sub_bucket_bits": self.sub_bucket_bits, "max_bits": self.max_bits}


def _msb_nonneg(v: npt.NDArray[np.int64]) -> IntArray:
    """``msb`` of non-negative int64 values (``msb(0) = 0``), exact (see :func:`msb_u64`)."""
    flat = np.atleast_1d(v).ravel()
    msb = flat.astype(np.float64).view(np.int64)
    msb >>= 52
    msb -= 1023
    np.maximum(msb, 0, out=msb)
    # float64 rounding can turn 2**k - small into 2**k: then v >> msb == 0, step back one bit.
    big = np.flatnonzero(msb >= 53)
    if big.size:
        too_high = (flat[big] >> msb[big]) == 0
        msb[big[too_high]] -= 1
    return msb.reshape(np.shape(v))


def msb_u64(v: npt.NDArray[np.uint64]) -> IntArray:
    """Index of the highest set bit of each uint64 (``msb(0) = 0``), exact over the full range.

    Reads the exponent field of the value converted to float64 (one pass, no ``log2``), then
    corrects the values whose conversion rounded up to the next power of two (only possible at or
    above ``2**53``).
    """
    flat = np.atleast_1d(v).ravel()
    bits = flat.astype(np.float64).view(np.int64)
    msb = (bits >> 52) - 1023
    np.maximum(msb, 0, out=msb)
    big = np.flatnonzero(msb >= 53)
    if big.size:
        too_high = (flat[big] >> msb[big].astype(np.uint64)) == 0
        msb[big[too_high]] -= 1
    return msb.reshape(np.shape(v))
