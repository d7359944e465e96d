"""In-kernel histogram mode: durations counted in log-linear buckets in a BPF per-CPU array.

For event rates too high to stream, ``--histogram`` compiles the probes with ``-DVB_HISTOGRAM``: each
return probe adds one to ``hist[probe * NBUCKETS + bucket(dur_ns)]`` and nothing goes through a ring
buffer. The bucket formula is :class:`vfiobench.buckets.LogLinearBuckets`
(``shift = max(0, msb(v) - b); index = (shift << b) + (v >> shift)``), written in C in
``bpf/buckets.bpf.h``; a test checks that the C and the class agree.

A probe's table in histogram mode has the probe's own name and the columns ``bucket`` (index),
``count``, ``lo_ns`` (inclusive lower bound) and ``hi_ns`` (exclusive upper bound); only non-empty
buckets are stored.

:class:`DurationCounts` counts streamed durations into the same buckets in Python, for what
summarises a streamed recording as it goes (the live views, the flight recorder's whole-period
histograms): its :meth:`~DurationCounts.table` is a histogram-mode table.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfiobench.buckets import DEFAULT_SUB_BUCKET_BITS, LogLinearBuckets
from vfiobench.schema import HIST_DTYPE


def hist_table(
    counts: np.ndarray[Any, Any], sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS
) -> np.ndarray[Any, Any]:
    """The histogram-mode table from dense per-bucket counts (non-empty buckets only).

    Returns:
        Structured array with columns ``bucket``, ``count``, ``lo_ns``, ``hi_ns``.
    """
    nz = np.flatnonzero(counts)
    layout = LogLinearBuckets(sub_bucket_bits)
    lo, hi = layout.lower(nz), layout.upper(nz)
    out = np.empty(nz.size, dtype=HIST_DTYPE)
    out["bucket"] = nz
    out["count"] = np.asarray(counts)[nz]
    out["lo_ns"] = lo
    out["hi_ns"] = hi
    return out


def read_hist_map(
    table: Any, probe_id: int, sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS
) -> np.ndarray[Any, Any]:
    """Dense counts of one probe from BCC's per-CPU ``hist`` array, summed over CPUs."""
    nb = LogLinearBuckets(sub_bucket_bits).n_buckets
    first = probe_id * nb
    counts = np.zeros(nb, dtype=np.uint64)
    for i in range(nb):
        counts[i] = sum(int(x) for x in table[table.Key(first + i)])
    return counts


class DurationCounts:
    """Durations counted in log-linear buckets as they stream by: bounded memory, any run length.

    Args:
        sub_bucket_bits: precision (``2**bits`` sub-buckets per power of two), as in histogram mode.

    Example:
        >>> d = DurationCounts()
        >>> d.add(np.array([1_000, 1_000, 2_000_000]))
        >>> d.total, round(d.percentile(0.5) or 0, 1)
        (3, 1.0)
    """

    def __init__(self, sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS) -> None:
        self.sub_bucket_bits = sub_bucket_bits
        self.layout = LogLinearBuckets(sub_bucket_bits)
        self.counts = np.zeros(0, dtype=np.int64)

    @property
    def total(self) -> int:
        """Durations counted so far."""
        return int(self.counts.sum())

    def add(self, dur_ns: np.ndarray[Any, Any]) -> None:
        """Count a batch of durations (ns)."""
        if dur_ns.size == 0:
            return
        new = np.bincount(self.layout.index(dur_ns))
        if new.size > self.counts.size:
            new[: self.counts.size] += self.counts
            self.counts = new
        else:
            self.counts[: new.size] += new

    def percentile(self, q: float) -> float | None:
        """The duration at quantile ``q`` (its bucket's midpoint), in µs; None when empty."""
        total = self.total
        if total == 0:
            return None
        i = int(np.searchsorted(np.cumsum(self.counts), q * total, side="left"))
        return float((self.layout.lower(i) + self.layout.upper(i)) / 2) / 1e3

    def table(self) -> np.ndarray[Any, Any]:
        """The histogram-mode table of what was counted (:func:`hist_table`)."""
        return hist_table(self.counts, self.sub_bucket_bits)
