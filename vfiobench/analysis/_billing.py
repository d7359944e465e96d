"""The per-interrupt billing loop, compiled: one pass over a run's calls in (thread, start) order.

:func:`~vfiobench.analysis.per_interrupt.account_events` sorts the calls (numpy) and hands the
order to :func:`bill_calls`, which walks them once with a stack of open calls per thread:

* a call's cycle is found by moving a pointer through the ascending cycle starts (the calls of one
  thread arrive in start order; a binary search when the next thread starts earlier);
* it is billed to ``(cycle, op)``: one count, its duration as inclusive time, its duration as
  exclusive time, and (background calls) its duration as background exclusive time;
* open calls that ended at or before its start are popped; the one left on top is its direct
  parent, whose exclusive (and background) time loses the child's duration where the parent was
  billed. This is the same parent :func:`~vfiobench.analysis.nesting.direct_parents` finds.

In numpy the same needs about twenty 10M-element temporaries (nesting levels, keys, three weighted
``bincount`` calls); the loop needs none and is several times faster (``python -m benchmarks
analysis``). Compiled by numba on first use and cached on disk (``cache=True``), so only the first
process after an install pays the compile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np

#: Billing index of a call outside the analysis window (counted, billed nowhere).
OUTSIDE = -1
#: What :func:`bill` returns as its outside count when the calls nest deeper than its stack.
TOO_DEEP = -1


def _bill_loop(
    order: Any,
    s_start: Any,
    s_len: Any,
    ts: Any,
    dur: Any,
    op: Any,
    background: Any,
    starts: Any,
    begin: int,
    end: int,
    clamp_first: bool,
    n_ops: int,
    max_depth: int,
) -> tuple[Any, Any, Any, Any, int]:
    """Bill every call to the cycle it started in; see the module docstring.

    Args:
        order: call indices in (thread, start, longer first) order.
        s_start: the sort key of each call in that order (thread-separated start times).
        s_len: each call's duration for nesting (at least 1 ns), input order.
        ts: entry time, input order.
        dur: duration, input order.
        op: operation code, input order (``0 <= op < n_ops``).
        background: uint8 per call, input order: 1 when the call is off the interrupt's path.
        starts: ascending cycle starts (at least one).
        begin: calls starting before it are outside (only when ``clamp_first``).
        end: calls starting after it are outside.
        clamp_first: True: calls between ``begin`` and the first cycle go to the first cycle;
            False: calls before the first cycle are outside.
        n_ops: number of operation codes.
        max_depth: the deepest nesting the stack holds.

    Returns:
        ``(counts, incl_ns, excl_ns, background_excl_ns, outside)`` as int64 arrays of shape
        ``(n_cycles, n_ops)`` (the last ``(n_cycles,)``) and the number of calls outside, or
        :data:`TOO_DEEP` as the last when the calls nest deeper than ``max_depth``.
    """
    n = order.size
    n_cycles = starts.size
    counts = np.zeros((n_cycles, n_ops), dtype=np.int64)
    incl = np.zeros((n_cycles, n_ops), dtype=np.int64)
    excl = np.zeros((n_cycles, n_ops), dtype=np.int64)
    bg_excl = np.zeros(n_cycles, dtype=np.int64)
    # open calls, one row each: end (sort key), billing cycle (or OUTSIDE), op, background
    stack = np.empty((max_depth, 4), dtype=np.int64)
    depth = 0
    outside = 0
    cyc = 0
    prev_ts = np.iinfo(np.int64).max
    for j in range(n):
        i = order[j]
        t = ts[i]
        if t < prev_ts:  # a new thread (or the first call): search afresh
            cyc = np.searchsorted(starts, t, side="right") - 1
        else:
            while cyc + 1 < n_cycles and starts[cyc + 1] <= t:
                cyc += 1
        prev_ts = t
        c = cyc
        if clamp_first:
            if t < begin:
                c = OUTSIDE
            elif c < 0:
                c = 0
        elif c < 0:
            c = OUTSIDE
        if t > end:
            c = OUTSIDE
        d = dur[i]
        o = op[i]
        b = background[i]
        if c == OUTSIDE:
            outside += 1
        else:
            counts[c, o] += 1
            incl[c, o] += d
            excl[c, o] += d
            if b:
                bg_excl[c] += d
        start = s_start[j]
        while depth > 0 and stack[depth - 1, 0] <= start:
            depth -= 1
        if depth > 0:
            pc = stack[depth - 1, 1]
            if pc != OUTSIDE:
                excl[pc, stack[depth - 1, 2]] -= d
                if stack[depth - 1, 3]:
                    bg_excl[pc] -= d
        if depth == max_depth:
            return counts, incl, excl, bg_excl, TOO_DEEP
        stack[depth, 0] = start + s_len[i]
        stack[depth, 1] = c
        stack[depth, 2] = o
        stack[depth, 3] = b
        depth += 1
    return counts, incl, excl, bg_excl, outside


#: :func:`_bill_loop` compiled (nopython, cached on disk, without the GIL).
bill: Callable[..., tuple[Any, Any, Any, Any, int]] = numba.njit(cache=True, nogil=True)(_bill_loop)


def bill_calls(*args: Any) -> tuple[Any, Any, Any, Any, int]:
    """:func:`bill` with a stack deep enough: probes nest a few levels, damaged data may nest more.

    A fixed-size stack keeps the loop tight (a stack that grows in place makes it ~2.5x slower);
    on overflow the pass is repeated with a 16x deeper one.
    """
    max_depth = 64
    while True:
        counts, incl, excl, bg_excl, outside = bill(*args, max_depth)
        if outside != TOO_DEEP:
            return counts, incl, excl, bg_excl, outside
        max_depth *= 16
