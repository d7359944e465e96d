"""Exclusive ("self") time of nested calls, vectorised.

Probed operations nest within a thread: ``vfio_msi_set_vector_signal`` runs inside the SET_IRQS
ioctl, ``memory_region_transaction_commit`` inside ``memory_region_set_enabled`` (a tail jump, so
the toggle's duration includes the commit) and inside other commits. Adding their durations would
count nested time twice; :func:`exclusive_ns` gives each call its duration minus the durations of
its direct children, so the exclusive times of all calls sum to the time the thread spent inside any
probed call.

Method (exact for properly nested intervals, which per-thread entry/return pairing guarantees):
sort calls per thread by (start, longer first); a call's depth is the number of earlier calls still
open at its start (``position - #calls ended by its start``, one ``searchsorted``); its direct parent
is the last earlier call of depth ``depth - 1``; children's durations are summed into parents with
``np.bincount``. Durations below 1 ns are treated as 1 ns for the ordering only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]


def exclusive_ns(ts_ns: npt.ArrayLike, dur_ns: npt.ArrayLike, tid: npt.ArrayLike) -> I64:
    """Exclusive time of each call (its duration minus its direct children's), input order.

    Args:
        ts_ns: entry timestamps.
        dur_ns: durations (entry to return).
        tid: thread of each call; calls only nest within a thread.

    Returns:
        int64 array, same length and order as the inputs; never negative (a child that overlaps its
        parent improperly, e.g. after a lost return event, is clipped).
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    dur = np.asarray(dur_ns, dtype=np.int64)
    n = ts.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, tcode = np.unique(np.asarray(tid), return_inverse=True)
    tcode = tcode.astype(np.int64).ravel()
    d1 = np.maximum(dur, 1)
    t0 = int(ts.min())
    span = int((ts + d1).max()) - t0 + 1
    start = (ts - t0) + tcode * span
    end = start + d1
    order = np.lexsort((-d1, start))
    s_start = start[order]
    s_end = end[order]
    ends_sorted = np.sort(s_end)
    ended = np.searchsorted(ends_sorted, s_start, side="right")
    depth = np.arange(n, dtype=np.int64) - ended
    parent = np.full(n, -1, dtype=np.int64)
    pos = np.arange(n, dtype=np.int64)
    for d in range(1, int(depth.max()) + 1):
        here = pos[depth == d]
        above = pos[depth == d - 1]
        if here.size == 0 or above.size == 0:
            continue
        k = np.searchsorted(above, here, side="left") - 1
        ok = k >= 0
        parent[here[ok]] = above[k[ok]]
    s_dur = dur[order]
    has = parent >= 0
    child_sum = np.bincount(parent[has], weights=s_dur[has].astype(np.float64), minlength=n)
    excl_sorted = np.maximum(s_dur - np.rint(child_sum).astype(np.int64), 0)
    out = np.empty(n, dtype=np.int64)
    out[order] = excl_sorted
    return out


def union_ns(ts_ns: npt.ArrayLike, dur_ns: npt.ArrayLike, tid: npt.ArrayLike) -> int:
    """Total time covered by the calls, per thread, summed over threads (overlaps counted once)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    dur = np.asarray(dur_ns, dtype=np.int64)
    if ts.size == 0:
        return 0
    _, tcode = np.unique(np.asarray(tid), return_inverse=True)
    t0 = int(ts.min())
    span = int((ts + np.maximum(dur, 0)).max()) - t0 + 1
    start = (ts - t0) + tcode.astype(np.int64).ravel() * span
    end = start + np.maximum(dur, 0)
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    prev_end = np.concatenate(([np.iinfo(np.int64).min], np.maximum.accumulate(e)[:-1]))
    return int(np.maximum(e - np.maximum(s, prev_end), 0).sum())
