"""Exclusive ("self") time of nested calls, vectorised.

Probed operations nest within a thread: ``vfio_msi_set_vector_signal`` runs inside the SET_IRQS
ioctl, ``memory_region_transaction_commit`` inside ``memory_region_set_enabled`` (a tail jump, so
the toggle's duration includes the commit) and inside other commits. Adding their durations would
count nested time twice; :func:`exclusive_ns` gives each call its duration minus the durations of
its direct children, so the exclusive times of all calls sum to the time the thread spent inside any
probed call.

Method (exact for properly nested intervals, which per-thread entry/return pairing guarantees):
sort calls per thread by (start, longer first); a call that starts after every earlier call ended
has depth 0 (one running maximum finds them); the same test on the remaining calls alone finds
depth 1, and so on, each level a pass over the calls still nested (a shrinking minority); a call's
direct parent is the last earlier call of the level above (:func:`direct_parents`); children's
durations are summed into parents with ``np.bincount``. Durations below 1 ns are treated as 1 ns
for the ordering only.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

I64 = npt.NDArray[np.int64]


def _thread_codes(tid: npt.ArrayLike, n: int) -> I64:
    codes, _ = pd.factorize(np.asarray(tid).ravel(), sort=False)
    if codes.size != n:
        raise ValueError("tid must have one entry per call")
    return np.asarray(codes, dtype=np.int64)


def thread_separated(ts: I64, d1: I64, tid: npt.ArrayLike) -> I64:
    """Start times moved so that each thread's calls occupy their own, disjoint time range.

    ``start = ts - min(ts) + code(thread) * span`` with ``span`` beyond every call's end, so one
    sort orders calls by (thread, start). Integer thread ids whose range fits are used as codes
    directly (Linux tids are below 2**22); anything else is factorised first.
    """
    start: I64 = ts - ts.min()
    t = np.asarray(tid).ravel()
    if t.size != ts.size:
        raise ValueError("tid must have one entry per call")
    lo, hi = t.min(), t.max()
    if lo == hi:
        return start
    span = int(start.max()) + int(d1.max()) + 1
    if t.dtype.kind in "iu" and (int(hi) - int(lo) + 1) * span < 2**62:
        code = t.astype(np.int64)
        code -= int(lo)
    else:
        code = _thread_codes(t, ts.size)
        if (int(code.max()) + 1) * span >= 2**62:
            raise ValueError("the calls span too long a time to be ordered by thread")
    code *= span
    start += code
    return start


def start_order(start: I64, d1: I64) -> tuple[I64, I64]:
    """Indices sorting calls by start, longer first among equal starts, and the sorted starts.

    A stable sort (fast on nearly sorted probe data) plus a fix-up of the rare tied runs: far
    cheaper than ``np.lexsort`` over everything. The fix-up only reorders calls of equal start,
    so the sorted starts hold for the final order too.
    """
    order = np.argsort(start, kind="stable")
    s = start[order]
    tied = np.flatnonzero(s[1:] == s[:-1])
    if tied.size:
        pos = np.union1d(tied, tied + 1)
        sub = order[pos]
        order[pos] = sub[np.lexsort((-d1[sub], start[sub]))]
    return np.asarray(order, dtype=np.int64), s


def _nested_in_set(start: I64, end: I64) -> npt.NDArray[np.bool_]:
    """Per call (in start order), whether it starts before some earlier call of the set has ended."""
    deeper = np.zeros(start.size, dtype=bool)
    if start.size > 1:
        np.less(start[1:], np.maximum.accumulate(end)[:-1], out=deeper[1:])
    return deeper


def direct_parents(ts_ns: npt.ArrayLike, dur_ns: npt.ArrayLike, tid: npt.ArrayLike) -> tuple[I64, I64]:
    """Every nested call and its direct parent, as input indices.

    Args:
        ts_ns: entry timestamps.
        dur_ns: durations (entry to return).
        tid: thread of each call; calls only nest within a thread.

    Returns:
        ``(child, parent)``: two int64 arrays of equal length; ``parent[k]`` is the innermost call
        enclosing ``child[k]``. Calls not enclosed by any other call do not appear as children.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    dur = np.asarray(dur_ns, dtype=np.int64)
    n = ts.size
    none = np.zeros(0, dtype=np.int64)
    if n == 0:
        return none, none
    # (in-place arithmetic below: at 10M calls every fresh temporary costs page faults)
    d1 = np.maximum(dur, 1)
    order, s_start = start_order(thread_separated(ts, d1, tid), d1)
    s_end = d1[order]
    s_end += s_start
    del d1
    # Peel the calls level by level. Among the calls of depth >= k (in start order), those of depth
    # exactly k are the ones that start after every earlier call of the set has ended (one running
    # maximum); the rest have depth > k. A depth-k call's direct parent is the last depth k-1 call
    # that started before it. Each level works only on the calls still nested, so after the first
    # pass over all calls the work shrinks to the nested minority: no sort of the end times, no
    # search over all of them.
    children: list[I64] = []
    parents: list[I64] = []
    deeper = _nested_in_set(s_start, s_end)
    above = np.flatnonzero(~deeper)  # sorted positions of the depth-0 calls
    rest = np.flatnonzero(deeper)  # ... and of the calls of depth >= k, k = 1, 2, ...
    while rest.size:
        deeper = _nested_in_set(s_start[rest], s_end[rest])
        level = rest[~deeper]
        k = np.searchsorted(above, level, side="left") - 1
        ok = k >= 0
        children.append(level[ok])
        parents.append(above[k[ok]])
        above = level
        rest = rest[deeper]
    child = np.concatenate(children) if children else none
    parent = np.concatenate(parents) if parents else none
    return np.asarray(order[child], dtype=np.int64), np.asarray(order[parent], dtype=np.int64)


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
    dur = np.asarray(dur_ns, dtype=np.int64)
    child, parent = direct_parents(ts_ns, dur, tid)
    if child.size == 0:
        return dur.copy()
    child_sum = np.bincount(parent, weights=dur[child], minlength=dur.size)
    return np.maximum(dur - np.rint(child_sum).astype(np.int64), 0)


def union_ns(ts_ns: npt.ArrayLike, dur_ns: npt.ArrayLike, tid: npt.ArrayLike) -> int:
    """Total time covered by the calls, per thread, summed over threads (overlaps counted once)."""
    ts = np.asarray(ts_ns, dtype=np.int64)
    dur = np.asarray(dur_ns, dtype=np.int64)
    if ts.size == 0:
        return 0
    dur = np.maximum(dur, 0)
    start = thread_separated(ts, dur, tid)
    end = start + dur
    order = np.argsort(start, kind="stable")
    s, e = start[order], end[order]
    prev_end = np.concatenate(([np.iinfo(np.int64).min], np.maximum.accumulate(e)[:-1]))
    return int(np.maximum(e - np.maximum(s, prev_end), 0).sum())
