"""In-kernel histogram mode: durations counted in log-linear buckets in a BPF per-CPU array.

For event rates too high to stream, ``--histogram`` compiles the probes with ``-DVB_HISTOGRAM``: each
return probe adds one to ``hist[probe * NBUCKETS + bucket(dur_ns)]`` and nothing goes through a ring
buffer. The bucket formula is :class:`vfiobench.buckets.LogLinearBuckets`
(``shift = max(0, msb(v) - b); index = (shift << b) + (v >> shift)``), written in C in
``bpf/buckets.bpf.h``; a test checks that the C and the class agree.

A probe's table in histogram mode has the probe's own name and the columns ``bucket`` (index),
``count``, ``lo_ns`` (inclusive lower bound) and ``hi_ns`` (exclusive upper bound); only non-empty
buckets are stored.
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
