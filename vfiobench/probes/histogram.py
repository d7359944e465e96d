"""In-kernel histogram mode: durations counted in log-linear buckets in a BPF per-CPU array.

For event rates too high to stream, ``--histogram`` compiles the probes with ``-DVB_HISTOGRAM``: each
return probe adds one to ``hist[probe * NBUCKETS + bucket(dur_ns)]`` and nothing goes through a ring
buffer. The bucket formula is the analysis layer's :class:`vfiobench.analysis.buckets.LogLinearBuckets`
(``shift = max(0, msb(v) - b); index = (shift << b) + (v >> shift)``), written in C in
``bpf/buckets.bpf.h`` and in numpy below; a test checks the C, this module and the analysis class agree.
(The probes layer does not import the analysis layer: layers only import downwards.)

A probe's table in histogram mode has the probe's own name and the columns ``bucket`` (index),
``count``, ``lo_ns`` (inclusive lower bound) and ``hi_ns`` (exclusive upper bound); only non-empty
buckets are stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from vfiobench.schema import HIST_DTYPE

DEFAULT_SUB_BUCKET_BITS = 6
MAX_BITS = 63


def n_buckets(sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS, max_bits: int = MAX_BITS) -> int:
    """Number of buckets per probe (``VB_NBUCKETS`` in C)."""
    return (max_bits - sub_bucket_bits + 1) << sub_bucket_bits


def bucket_index(
    values: np.ndarray[Any, Any], sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS
) -> np.ndarray[Any, Any]:
    """Bucket index of each uint64 value (the C ``vb_bucket``), exact integer arithmetic."""
    v = np.minimum(np.asarray(values, dtype=np.uint64), np.uint64((1 << MAX_BITS) - 1))
    msb = np.zeros(v.shape, dtype=np.uint64)
    w = v.copy()
    for step in (32, 16, 8, 4, 2, 1):
        big = (w >> np.uint64(step)) != 0
        w = np.where(big, w >> np.uint64(step), w)
        msb += np.where(big, np.uint64(step), np.uint64(0))
    b = np.uint64(sub_bucket_bits)
    shift = np.where(msb > b, msb - b, np.uint64(0))
    return ((shift << b) + (v >> shift)).astype(np.int64)


def bucket_bounds(
    idx: np.ndarray[Any, Any], sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS
) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    """Inclusive lower and exclusive upper bound (ns) of each bucket index."""
    i = np.asarray(idx, dtype=np.int64)
    shift = np.maximum((i >> sub_bucket_bits) - 1, 0)
    lo = (i - (shift << sub_bucket_bits)) << shift
    with np.errstate(over="ignore"):
        hi = lo + (np.int64(1) << shift)
    hi = np.where(hi < lo, np.iinfo(np.int64).max, hi)
    return lo.astype(np.int64), hi.astype(np.int64)


def hist_table(
    counts: np.ndarray[Any, Any], sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS
) -> np.ndarray[Any, Any]:
    """The histogram-mode table from dense per-bucket counts (non-empty buckets only).

    Returns:
        Structured array with columns ``bucket``, ``count``, ``lo_ns``, ``hi_ns``.
    """
    nz = np.flatnonzero(counts)
    lo, hi = bucket_bounds(nz, sub_bucket_bits)
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
    nb = n_buckets(sub_bucket_bits)
    first = probe_id * nb
    counts = np.zeros(nb, dtype=np.uint64)
    for i in range(nb):
        counts[i] = sum(int(x) for x in table[table.Key(first + i)])
    return counts
