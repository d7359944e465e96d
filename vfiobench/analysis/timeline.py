"""Per-interrupt timeline: each interrupt's events joined into one row, with the time in each stage.

One cohesive engine, kept in one module on purpose (over 500 lines): matching events to interrupts,
the stage model and the vectorised join share their invariants and are read together.

One masked interrupt on the stock QEMU crosses the host kernel, QEMU and the guest::

    trigger ─► host IRQ ─► eventfd ─► QEMU vfio_msi_interrupt ─► PBA enabled ─► pending
            ─► guest unmask ─► KVM route commit ─► SET_IRQS (set_vector_signal inside)
            ─► PBA disabled ─► delivered

Each arrow's head is a **milestone** (:data:`MILESTONES`): a point in time taken from the
workload table (trigger, unmask, delivery) or from a probe event (a call's entry or return).
:func:`df_timeline` finds every milestone of every interrupt and gives the time between
consecutive milestones, the **stages**; :func:`df_stage_summary` gives their median and p99 per
variant. All times are ``CLOCK_MONOTONIC`` ns of the machine the workload and probes ran on (L1 in
the lab; ``bpf_ktime_get_ns`` and ``time.monotonic_ns`` read the same clock), so they subtract
exactly.

Milestones, in path order (source: table and what is taken from it):

===================== ================================================================================
``trigger``           ``workload.trigger_ts_ns`` (the doorbell write); every row has it
``host_irq``          ``irq_path`` event ``host_irq`` (entry)
``eventfd``           ``irq_path`` event ``eventfd_signal``
``kvm_msi``           ``irq_path`` event ``kvm_msi`` (KVM irqfd route: the MSI injected by KVM)
``qemu_irq``          ``irq_path`` event ``qemu_irq`` (QEMU's ``vfio_msi_interrupt`` entry)
``pba_on_enter``      ``pba_toggle`` with ``enabled`` and ``is_pba``: entry
``pba_on_commit``     ``transaction_commit`` nested in that toggle (same tid, inside it): entry
``pba_on``            that toggle's return (the PBA region is enabled, commit included)
``pending``           ``irq_path`` event ``msix_set_pending``
``unmask``            ``workload.unmask_ts_ns`` (the guest's unmask write), when the workload has it
``route_commit_enter`` ``kvm_ioctls`` row with ``cmd`` ``KVM_SET_GSI_ROUTING``: entry (QEMU commits the
                      vector's KVM MSI route in ``vfio_msix_vector_do_use``, before its SET_IRQS)
``route_commit``      that ioctl's return
``set_irqs_enter``    ``set_irqs_ioctl`` entry (vector = ``start`` when ``count == 1``)
``vector_signal_enter`` ``set_vector_signal`` nested in that ioctl: entry
``vector_signal``     its return
``set_irqs``          the ioctl's return
``pba_off_enter``     ``pba_toggle`` with ``enabled`` false and ``is_pba``: entry
``pba_off_commit``    ``transaction_commit`` nested in that toggle: entry
``pba_off``           that toggle's return
``delivered``         ``workload.delivered_ts_ns`` (the guest saw the MSI); rows not delivered lack it
===================== ================================================================================

Matching (vectorised over all interrupts of a run; the events may come in any order):

* an interrupt's window opens at its trigger and closes at its delivery, and before the next
  trigger: of the same vector for events that carry a vector (``irq_path.vector >= 0``, a
  SET_IRQS ioctl's ``start``), of any vector for events that do not (PBA toggles; events with
  vector -1);
* milestones are matched in path order: each takes the earliest event of its kind in the window
  at or after the last milestone found so far, so a lost event leaves its milestone **missing**
  and never pulls in the next interrupt's event (the window ends first) or an event that belongs
  later in the path (the search starts at the last milestone found, and each milestone has its
  own kind of event);
* nested milestones (a commit inside a PBA toggle, ``vfio_msi_set_vector_signal`` inside the
  ioctl) must be on the enclosing call's thread and inside it, so QEMU's RCU-thread commits are
  never taken for the toggle's own.

Which milestones a run's path has: those whose source the run recorded and that were found in at
least ``expect_fraction`` (default half) of its delivered interrupts. So ``pba-always-on`` (no
toggles) gets no PBA milestones, a probe-free run only trigger → delivered, and a run with the
``irq_path`` probe the full path. A path milestone not found for an interrupt is listed in that
row's ``missing`` and the two stages around it are NA; the row is not ``complete``. For a complete
row the stages sum to ``delivered - trigger`` exactly (integer ns).

The ``irq_path`` table (written by the probes' ``irq_path`` probe; this module reads it when
present, and works without it). One row per event; events may arrive in any order::

    ts_ns   int64   CLOCK_MONOTONIC ns of the event (bpf_ktime_get_ns; an entry for calls)
    event   string  one of IRQ_PATH_EVENTS (below); others are ignored. Integer codes (what the probe
                    writes: the index in vfiobench.schema.IRQ_PATH_EVENTS) and bytes are accepted too
    vector  int32   MSI-X vector where the event knows it, else -1
    dur_ns  int64   entry → return for call events (optional; -1 or absent for point events)
    tid     int64   thread (optional)
    cpu     int32   CPU (optional)

    host_irq          tracepoint irq:irq_handler_entry for the device's vectors (handler name
                      "vfio-msix[N](BDF)", vector N from the name or /proc/interrupts), or kprobe
                      vfio_msihandler; dur_ns from irq:irq_handler_exit when paired
    eventfd_signal    kprobe eventfd_signal called from vfio_msihandler (the irqfd/eventfd write)
    kvm_msi           tracepoint kvm:kvm_msi_set_irq (KVM irqfd route; vector -1 is fine)
    qemu_irq          uprobe QEMU vfio_msi_interrupt (symbol in the project's own QEMU build)
    msix_set_pending  uprobe QEMU msix_set_pending (vector = 2nd argument)
    msix_notify       uprobe QEMU msix_notify (vector = 2nd argument); shown, not a milestone
                      (QEMU calls it both to set the pending bit and to deliver)

Example:
    >>> import pandas as pd
    >>> w = pd.DataFrame({"trigger_ts_ns": [1_000, 9_000], "delivered_ts_ns": [5_000, 14_000]})
    >>> t = pd.DataFrame({"ts_ns": [2_000, 10_000], "dur_ns": [500, 700], "tid": [1, 1],
    ...                   "enabled": [True, True], "is_pba": [True, True]})
    >>> tl = assemble_timeline(w, {"pba_toggle": t})
    >>> tl[["stage_pba_on_enter_ns", "stage_pba_on_ns", "stage_delivered_ns", "latency_ns"]].values.tolist()
    [[1000, 500, 2500, 4000], [1000, 700, 3300, 5000]]
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench import schema
from vfiobench.analysis._frames import By, by_list, require_columns
from vfiobench.errors import AnalysisError

# the event codes the irq_path probe writes (the catalog is plain data: no BCC is imported)
from vfiobench.schema import IRQ_PATH_EVENTS
from vfiobench.store import Run, RunSet

I64 = npt.NDArray[np.int64]
B = npt.NDArray[np.bool_]

IRQ_PATH = "irq_path"


@dataclass(frozen=True)
class Milestone:
    """A point on an interrupt's path: ``name`` (column prefix), display ``label``, source table."""

    name: str
    label: str
    source: str


#: Every milestone, in path order.
MILESTONES: tuple[Milestone, ...] = (
    Milestone("trigger", "trigger", schema.WORKLOAD),
    Milestone("host_irq", "host IRQ", IRQ_PATH),
    Milestone("eventfd", "eventfd signal", IRQ_PATH),
    Milestone("kvm_msi", "KVM MSI injection", IRQ_PATH),
    Milestone("qemu_irq", "QEMU vfio_msi_interrupt", IRQ_PATH),
    Milestone("pba_on_enter", "PBA enable call", schema.PBA_TOGGLE),
    Milestone("pba_on_commit", "PBA enable commit", schema.COMMIT),
    Milestone("pba_on", "PBA enabled", schema.PBA_TOGGLE),
    Milestone("pending", "msix_set_pending", IRQ_PATH),
    Milestone("unmask", "guest unmask", schema.WORKLOAD),
    Milestone("route_commit_enter", "KVM route commit entry", schema.KVM_IOCTLS),
    Milestone("route_commit", "KVM route committed", schema.KVM_IOCTLS),
    Milestone("set_irqs_enter", "SET_IRQS entry", schema.SET_IRQS),
    Milestone("vector_signal_enter", "set_vector_signal entry", schema.SET_VECTOR_SIGNAL),
    Milestone("vector_signal", "set_vector_signal return", schema.SET_VECTOR_SIGNAL),
    Milestone("set_irqs", "SET_IRQS return", schema.SET_IRQS),
    Milestone("pba_off_enter", "PBA disable call", schema.PBA_TOGGLE),
    Milestone("pba_off_commit", "PBA disable commit", schema.COMMIT),
    Milestone("pba_off", "PBA disabled", schema.PBA_TOGGLE),
    Milestone("delivered", "delivered", schema.WORKLOAD),
)
MILESTONE_NAMES: tuple[str, ...] = tuple(m.name for m in MILESTONES)
MILESTONE_LABELS: dict[str, str] = {m.name: m.label for m in MILESTONES}
_INDEX = {name: i for i, name in enumerate(MILESTONE_NAMES)}

#: Descriptions of the stages (keyed by the milestone that ends them) when the path is complete.
STAGE_NOTES: dict[str, str] = {
    "host_irq": "device and host interrupt controller raise the IRQ",
    "eventfd": "vfio_msihandler runs and signals the eventfd",
    "kvm_msi": "KVM irqfd injects the MSI",
    "qemu_irq": "QEMU's event loop wakes and runs vfio_msi_interrupt",
    "pba_on_enter": "until QEMU enables the PBA",
    "pba_on_commit": "memory_region_set_enabled before its commit",
    "pba_on": "memory transaction commit (FlatView rebuilt, listeners told)",
    "pending": "pending bit set",
    "unmask": "guest polls the PBA, then unmasks",
    "route_commit_enter": "QEMU handles the unmask write up to the KVM route commit",
    "route_commit": "KVM_SET_GSI_ROUTING ioctl (the whole routing table committed)",
    "set_irqs_enter": "QEMU handles the unmask write (vfio_msix_vector_do_use)",
    "vector_signal_enter": "SET_IRQS ioctl up to vfio_msi_set_vector_signal",
    "vector_signal": "vfio_msi_set_vector_signal (vector torn down and rebuilt)",
    "set_irqs": "rest of the SET_IRQS ioctl",
    "pba_off_enter": "until QEMU disables the PBA",
    "pba_off_commit": "memory_region_set_enabled before its commit",
    "pba_off": "memory transaction commit (FlatView rebuilt, listeners told)",
    "delivered": "MSI sent and seen by the guest",
}


def ts_column(milestone: str) -> str:
    """Column of :func:`df_timeline` holding a milestone's timestamp (``<name>_ts_ns``)."""
    return f"{milestone}_ts_ns"


def stage_column(milestone: str) -> str:
    """Column of :func:`df_timeline` holding the time of the stage ending at a milestone."""
    return f"stage_{milestone}_ns"


# ------------------------------------------------------------------------------------------- sources


Select = Callable[[pd.DataFrame], npt.NDArray[np.bool_]]
VectorOf = Callable[[pd.DataFrame], I64]


def _bool(df: pd.DataFrame, col: str, default: bool) -> B:
    if col not in df.columns:
        return np.full(len(df), default, dtype=bool)
    return np.asarray(df[col].fillna(default).to_numpy(dtype=bool), dtype=bool)


def _irq_event(name: str) -> Select:
    def select(df: pd.DataFrame) -> B:
        return np.asarray((df["event"] == name).to_numpy(dtype=bool, na_value=False), dtype=bool)

    return select


def _vector_col(df: pd.DataFrame) -> I64:
    if "vector" not in df.columns:
        return np.full(len(df), -1, dtype=np.int64)
    return np.asarray(df["vector"].fillna(-1).to_numpy(dtype=np.int64), dtype=np.int64)


def _set_irqs_vector(df: pd.DataFrame) -> I64:
    if "start" not in df.columns or "count" not in df.columns:
        return np.full(len(df), -1, dtype=np.int64)
    start = df["start"].to_numpy(dtype=np.int64)
    one = df["count"].to_numpy(dtype=np.int64) == 1
    return np.asarray(np.where(one, start, -1), dtype=np.int64)


def _kvm_cmd(cmd: int) -> Select:
    def select(df: pd.DataFrame) -> B:
        if "cmd" not in df.columns:
            return np.zeros(len(df), dtype=bool)
        return np.asarray(df["cmd"].to_numpy(dtype=np.int64) == cmd, dtype=bool)

    return select


def _pba(enabled: bool) -> Select:
    def select(df: pd.DataFrame) -> B:
        on = _bool(df, "enabled", False)
        return (on if enabled else ~on) & _bool(df, "is_pba", True)

    return select


@dataclass(frozen=True)
class CallSpec:
    """How one kind of event becomes milestones: its table, row filter, entry/return milestones.

    ``parent`` names the spec of the enclosing call for nested events (same thread, inside it).
    """

    key: str
    table: str
    entry: str | None
    ret: str | None = None
    select: Select | None = None
    vector: VectorOf | None = None
    parent: str | None = None


#: Event specs in path order (nested specs right after their parent).
SPECS: tuple[CallSpec, ...] = (
    CallSpec("host_irq", IRQ_PATH, "host_irq", select=_irq_event("host_irq"), vector=_vector_col),
    CallSpec("eventfd", IRQ_PATH, "eventfd", select=_irq_event("eventfd_signal"), vector=_vector_col),
    CallSpec("kvm_msi", IRQ_PATH, "kvm_msi", select=_irq_event("kvm_msi"), vector=_vector_col),
    CallSpec("qemu_irq", IRQ_PATH, "qemu_irq", select=_irq_event("qemu_irq"), vector=_vector_col),
    CallSpec("pba_on", schema.PBA_TOGGLE, "pba_on_enter", "pba_on", select=_pba(True)),
    CallSpec("pba_on_commit", schema.COMMIT, "pba_on_commit", parent="pba_on"),
    CallSpec("pending", IRQ_PATH, "pending", select=_irq_event("msix_set_pending"), vector=_vector_col),
    CallSpec("unmask", schema.WORKLOAD, "unmask"),
    CallSpec(
        "route_commit",
        schema.KVM_IOCTLS,
        "route_commit_enter",
        "route_commit",
        select=_kvm_cmd(schema.KVM_SET_GSI_ROUTING),
    ),
    CallSpec("set_irqs", schema.SET_IRQS, "set_irqs_enter", "set_irqs", vector=_set_irqs_vector),
    CallSpec(
        "vector_signal", schema.SET_VECTOR_SIGNAL, "vector_signal_enter", "vector_signal", parent="set_irqs"
    ),
    CallSpec("pba_off", schema.PBA_TOGGLE, "pba_off_enter", "pba_off", select=_pba(False)),
    CallSpec("pba_off_commit", schema.COMMIT, "pba_off_commit", parent="pba_off"),
)


def _spec_milestones(spec: CallSpec) -> list[str]:
    return [m for m in (spec.entry, spec.ret) if m is not None]


@dataclass
class _Events:
    """The selected rows of one spec's table, as arrays."""

    ts: I64
    end: I64
    tid: I64
    vector: I64


def _events(spec: CallSpec, tables: Mapping[str, pd.DataFrame]) -> _Events | None:
    """Arrays of a spec's events, or None when the run did not record them (or only as a histogram)."""
    df = tables.get(spec.table)
    if df is None or "ts_ns" not in df.columns:
        return None
    if spec.table == IRQ_PATH and "event" not in df.columns:
        return None
    if spec.ret is not None and "dur_ns" not in df.columns:
        return None
    # columns first, then the row filter: never a copy of the whole table
    rows = spec.select(df) if spec.select is not None else None

    def col(name: str, fill: int) -> I64:
        values = df[name].to_numpy(dtype=np.int64) if name in df.columns else np.full(len(df), fill, np.int64)
        return values[rows] if rows is not None else values

    ts = col("ts_ns", 0)
    dur = col("dur_ns", 0)
    tid = col("tid", 0)
    vec = spec.vector(df) if spec.vector is not None else np.full(len(df), -1, dtype=np.int64)
    if rows is not None:
        vec = vec[rows]
    return _Events(ts, ts + np.maximum(dur, 0), tid, vec)


# ------------------------------------------------------------------------------------------ matching


def first_in_window(ev_ts: I64, ev_code: I64, lo: I64, hi: I64, code: I64) -> I64:
    """For each query, the earliest event with the query's code and ``lo <= ts <= hi``.

    Args:
        ev_ts: event timestamps (any order).
        ev_code: a non-negative group code per event (vector, thread); 0 for all when ungrouped.
        lo: per query, the window start (inclusive).
        hi: per query, the window end (inclusive); ``hi < lo`` means an empty window.
        code: per query, the group code to match.

    Returns:
        Per query, the index of the matching event in ``ev_ts`` (ties: first in input order), or
        -1 when the window holds none.
    """
    n = ev_ts.size
    out = np.full(lo.size, -1, dtype=np.int64)
    if n == 0 or lo.size == 0:
        return out
    t0 = min(int(ev_ts.min()), int(lo.min()))
    tmax = max(int(ev_ts.max()), int(lo.max()))
    span = tmax - t0 + 2
    # one sorted key per (code, ts): a single searchsorted answers every query
    ev_key = ev_code * span + (ev_ts - t0)
    order = np.argsort(ev_key, kind="stable")
    sk = ev_key[order]
    base = code * span
    lo_key = base + (lo - t0)
    hi_key = base + (np.minimum(hi, tmax) - t0)
    pos = np.searchsorted(sk, lo_key, side="left")
    ok = pos < n
    pos_c = np.minimum(pos, n - 1)
    ok &= (sk[pos_c] <= hi_key) & (hi >= lo)
    out[ok] = order[pos_c[ok]]
    return out


@dataclass
class _Interrupts:
    """The workload rows of one run, as arrays, with their matching windows."""

    trigger: I64
    delivered_ts: I64
    delivered: B
    vector: I64
    hi_same: I64  # window end for events that carry a vector
    hi_any: I64  # window end for events that do not
    unmask: I64 | None


_NO_TIME = np.iinfo(np.int64).max


def _interrupts(workload: pd.DataFrame) -> _Interrupts:
    require_columns(workload, ["trigger_ts_ns"], "workload table")
    trigger = workload["trigger_ts_ns"].to_numpy(dtype=np.int64)
    n = trigger.size
    if "delivered_ts_ns" in workload.columns:
        dts = workload["delivered_ts_ns"].fillna(0).to_numpy(dtype=np.int64)
    else:
        dts = np.zeros(n, dtype=np.int64)
    delivered = _bool(workload, "delivered", True) & (dts >= trigger) & (dts > 0)
    vector = _vector_col(workload) if "vector" in workload.columns else np.zeros(n, dtype=np.int64)
    vector = np.maximum(vector, 0)
    end = np.where(delivered, dts, _NO_TIME)
    # the next trigger after each one: of any vector, and of the same vector
    order = np.argsort(trigger, kind="stable")
    nxt_any = np.full(n, _NO_TIME, dtype=np.int64)
    if n > 1:
        nxt_any[order[:-1]] = trigger[order[1:]] - 1
    order_v = np.lexsort((trigger, vector))
    nxt_same = np.full(n, _NO_TIME, dtype=np.int64)
    if n > 1:
        same = vector[order_v[:-1]] == vector[order_v[1:]]
        nxt_same[order_v[:-1][same]] = trigger[order_v[1:][same]] - 1
    unmask = None
    if "unmask_ts_ns" in workload.columns:
        unmask = workload["unmask_ts_ns"].fillna(-1).to_numpy(dtype=np.int64)
    return _Interrupts(
        trigger, dts, delivered, vector, np.minimum(end, nxt_same), np.minimum(end, nxt_any), unmask
    )


@dataclass
class _Match:
    """Per milestone: timestamp per interrupt and whether it was found."""

    ts: dict[str, I64]
    found: dict[str, B]


def _match(irq: _Interrupts, events: Mapping[str, _Events], specs: Sequence[CallSpec]) -> _Match:
    """One pass over the specs in path order (see the module docstring)."""
    n = irq.trigger.size
    ts: dict[str, I64] = {"trigger": irq.trigger}
    found: dict[str, B] = {"trigger": np.ones(n, dtype=bool)}
    lo = irq.trigger.copy()  # the last milestone found so far
    call_idx: dict[str, I64] = {}
    for spec in specs:
        if spec.table == schema.WORKLOAD:  # the guest's unmask write
            if irq.unmask is None:
                continue
            ok = (irq.unmask >= irq.trigger) & (irq.unmask <= irq.hi_any)
            ts["unmask"], found["unmask"] = irq.unmask, ok
            lo = np.where(ok, np.maximum(lo, irq.unmask), lo)
            continue
        ev = events[spec.key]
        if spec.parent is None:
            idx = _match_top(ev, irq, lo)
        else:
            pidx = call_idx.get(spec.parent)
            if pidx is None:
                continue
            idx = _match_nested(ev, events[spec.parent], pidx)
        call_idx[spec.key] = idx
        hit = idx >= 0
        safe = np.maximum(idx, 0)
        if spec.entry is not None:
            ts[spec.entry] = ev.ts[safe] if ev.ts.size else np.zeros(n, np.int64)
            found[spec.entry] = hit
        if spec.ret is not None:
            ts[spec.ret] = ev.end[safe] if ev.end.size else np.zeros(n, np.int64)
            found[spec.ret] = hit
        if spec.parent is None:
            last = ts[spec.ret] if spec.ret is not None else ts[spec.entry]  # type: ignore[index]
            lo = np.where(hit, np.maximum(lo, last), lo)
    if irq.delivered_ts is not None:
        ts["delivered"], found["delivered"] = irq.delivered_ts, irq.delivered.copy()
    return _Match(ts, found)


def _match_top(ev: _Events, irq: _Interrupts, lo: I64) -> I64:
    """Earliest event at or after ``lo`` in each interrupt's window, by vector where known."""
    with_vec = ev.vector >= 0
    idx = np.full(lo.size, -1, dtype=np.int64)
    if with_vec.any():
        sub = np.flatnonzero(with_vec)
        k = first_in_window(ev.ts[sub], ev.vector[sub], lo, irq.hi_same, irq.vector)
        idx = np.where(k >= 0, sub[np.maximum(k, 0)], -1)
    if not with_vec.all():
        sub = np.flatnonzero(~with_vec)
        k = first_in_window(ev.ts[sub], np.zeros(sub.size, np.int64), lo, irq.hi_any, np.zeros_like(lo))
        other = np.where(k >= 0, sub[np.maximum(k, 0)], -1)
        # keep whichever of the two candidates comes first
        take = (other >= 0) & ((idx < 0) | (ev.ts[np.maximum(other, 0)] < ev.ts[np.maximum(idx, 0)]))
        idx = np.where(take, other, idx)
    return idx


def _match_nested(child: _Events, parent: _Events, pidx: I64) -> I64:
    """The first child call on the parent's thread that starts and ends inside the parent."""
    has = pidx >= 0
    p = np.maximum(pidx, 0)
    codes, _ = pd.factorize(np.concatenate([child.tid, parent.tid]), sort=False)  # hashing, no sort
    c_code = codes[: child.tid.size].astype(np.int64)
    p_code = codes[child.tid.size :].astype(np.int64)
    if parent.ts.size == 0:
        return np.full(pidx.size, -1, dtype=np.int64)
    lo = np.where(has, parent.ts[p], 0)
    hi = np.where(has, parent.end[p], -1)
    k = first_in_window(child.ts, c_code, lo, hi, p_code[p])
    inside = (k >= 0) & has
    inside &= child.end[np.maximum(k, 0)] <= hi
    return np.where(inside, k, -1)


# -------------------------------------------------------------------------------------------- output


def _int_array(values: I64, valid: B) -> pd.api.extensions.ExtensionArray:
    return pd.arrays.IntegerArray(np.where(valid, values, 0).astype(np.int64, copy=False), ~valid)


def assemble_timeline(
    workload: pd.DataFrame,
    tables: Mapping[str, pd.DataFrame],
    *,
    expect_fraction: float = 0.5,
) -> pd.DataFrame:
    """The timeline of every interrupt of one run (see the module docstring for the method).

    Args:
        workload: the run's workload table (``trigger_ts_ns`` required; ``delivered_ts_ns``,
            ``delivered``, ``vector``, ``cycle``, ``unmask_ts_ns`` used when present).
        tables: the run's probe tables by name (``set_irqs_ioctl``, ``set_vector_signal``,
            ``pba_toggle``, ``transaction_commit``, ``irq_path``, ``kvm_ioctls``); absent ones
            are skipped.
        expect_fraction: a recorded milestone is on the run's path when it is found in at least
            this fraction of the delivered interrupts.

    Returns:
        The columns of :func:`df_timeline` without ``run_id``, ``variant`` and ``kind``.
    """
    if not 0.0 < expect_fraction <= 1.0:
        raise AnalysisError(f"expect_fraction must be in (0, 1], not {expect_fraction}")
    irq = _interrupts(workload)
    if IRQ_PATH in tables:
        tables = {**tables, IRQ_PATH: normalize_irq_path(tables[IRQ_PATH])}
    n = irq.trigger.size
    events: dict[str, _Events] = {}
    available: list[CallSpec] = []
    for spec in SPECS:
        if spec.table == schema.WORKLOAD:
            if irq.unmask is not None:
                available.append(spec)
            continue
        if spec.parent is not None and spec.parent not in events:
            continue
        ev = _events(spec, tables)
        if ev is not None and ev.ts.size:
            events[spec.key] = ev
            available.append(spec)
    first = _match(irq, events, available)
    # the run's path: recorded milestones found in enough delivered interrupts
    base = irq.delivered if irq.delivered.any() else np.ones(n, dtype=bool)
    denom = max(int(base.sum()), 1)
    on_path = {"trigger", "delivered"}
    for spec in available:
        for m in _spec_milestones(spec):
            if m in first.found and int((first.found[m] & base).sum()) >= expect_fraction * denom:
                on_path.add(m)
    kept: list[CallSpec] = []
    for spec in available:
        parent_kept = spec.parent is None or any(k.key == spec.parent for k in kept)
        if parent_kept and all(m in on_path for m in _spec_milestones(spec)):
            kept.append(spec)
    # a second pass without the milestones that are not on the path (they must not move the
    # lower bound of the search for the others); not needed when the dropped ones were never found
    dropped = [s for s in available if s not in kept]
    moved = any(first.found[m].any() for s in dropped for m in _spec_milestones(s) if m in first.found)
    match = _match(irq, events, kept) if moved else first
    kept_names = {"trigger", "delivered"} | {m for s in kept for m in _spec_milestones(s)}
    path = [m for m in MILESTONE_NAMES if m in kept_names]
    return _frame(workload, irq, match, path)


def _frame(workload: pd.DataFrame, irq: _Interrupts, match: _Match, path: list[str]) -> pd.DataFrame:
    n = irq.trigger.size
    cols: dict[str, Any] = {}
    cols["cycle"] = (
        workload["cycle"].to_numpy(dtype=np.int64) if "cycle" in workload.columns else np.arange(n)
    )
    cols["vector"] = irq.vector
    cols["irq"] = np.arange(n, dtype=np.int64)
    cols["delivered"] = irq.delivered
    cols["latency_ns"] = _int_array(irq.delivered_ts - irq.trigger, irq.delivered)
    missing_bits = np.zeros(n, dtype=np.int64)
    found_on_path = {m: match.found.get(m, np.zeros(n, dtype=bool)) for m in path}
    for m in path:
        missing_bits |= np.where(found_on_path[m], 0, 1 << _INDEX[m])
    cols["complete"] = missing_bits == 0
    uniq, inv = np.unique(missing_bits, return_inverse=True)
    names = [", ".join(m for m in path if int(u) >> _INDEX[m] & 1) for u in uniq]
    cols["missing"] = pd.Categorical.from_codes(inv.astype(np.int64), categories=pd.Index(names).unique())
    if len(set(names)) != len(names):  # cannot happen (distinct masks give distinct names); be safe
        cols["missing"] = np.asarray(names, dtype=object)[inv]
    cols["path"] = pd.Categorical.from_codes(
        np.zeros(n, dtype=np.int64), categories=pd.Index([">".join(path)])
    )
    zeros = np.zeros(n, dtype=np.int64)
    none = np.zeros(n, dtype=bool)
    for m in MILESTONE_NAMES:
        on = m in found_on_path
        cols[ts_column(m)] = _int_array(
            match.ts.get(m, zeros) if on else zeros, found_on_path[m] if on else none
        )
    prev: str | None = None
    for m in MILESTONE_NAMES[1:]:
        if m not in found_on_path:
            cols[stage_column(m)] = _int_array(zeros, none)
            continue
        prev = path[path.index(m) - 1]
        valid = found_on_path[m] & found_on_path[prev]
        cols[stage_column(m)] = _int_array(match.ts[m] - match.ts[prev], valid)
    return pd.DataFrame(cols, copy=False)  # the columns are fresh: no second copy


def normalize_irq_path(df: pd.DataFrame) -> pd.DataFrame:
    """The ``irq_path`` table with ``event`` as a categorical of names (from strings, bytes or codes).

    Integer codes index :data:`IRQ_PATH_EVENTS` (others become NA); bytes are decoded as ASCII.
    """
    if "event" not in df.columns:
        return df
    ev = df["event"]
    if isinstance(ev.dtype, pd.CategoricalDtype) and all(isinstance(c, str) for c in ev.cat.categories):
        return df
    if pd.api.types.is_integer_dtype(ev.dtype):
        codes = ev.to_numpy(dtype=np.int64)
        codes = np.where((codes >= 0) & (codes < len(IRQ_PATH_EVENTS)), codes, -1)
        cat = pd.Categorical.from_codes(codes, categories=pd.Index(IRQ_PATH_EVENTS))
    else:
        codes, uniques = pd.factorize(ev, sort=False)
        names = [
            u.decode("ascii", "replace").rstrip("\x00") if isinstance(u, bytes) else str(u) for u in uniques
        ]
        # several byte strings may decode to one name: categories must be unique
        unique = list(dict.fromkeys(names))
        pos = {n: k for k, n in enumerate(unique)}
        remap = np.array([pos[n] for n in names] + [-1], dtype=np.int64)  # code -1 (NA) stays NA
        cat = pd.Categorical.from_codes(remap[codes], categories=pd.Index(unique))
    return df.assign(event=cat)


def _probe_tables(run: Run) -> dict[str, pd.DataFrame]:
    names = {*schema.PROBE_TABLES, IRQ_PATH}
    tables = {name: run.table(name) for name in sorted(names) if run.has_table(name)}
    if IRQ_PATH in tables:
        tables[IRQ_PATH] = normalize_irq_path(tables[IRQ_PATH])
    return tables


def run_label(run: Run, name: str) -> Any:
    """A run's coordinate ``name`` (``workload``, ``accel``, ``repetition``...).

    The workload's name for ``workload``; else the run.json label, else the workload parameter of
    that name (lab runs keep ``accel`` in both).
    """
    if name == "workload":
        return run.meta.workload.name or run.meta.labels.get("workload")
    return run.meta.labels.get(name, run.meta.workload.params.get(name))


def run_timeline(run: Run, *, expect_fraction: float = 0.5, labels: Sequence[str] = ()) -> pd.DataFrame:
    """:func:`assemble_timeline` of one stored run, with ``run_id``, ``variant``, ``kind`` first.

    ``labels`` (e.g. ``("workload", "accel")``) adds those run labels as columns after ``kind``.

    Raises:
        AnalysisError: the run has no workload table.
    """
    if not run.has_table(schema.WORKLOAD):
        raise AnalysisError(
            f"run {run.run_id}: no workload table, so no trigger and delivery times",
            "timelines need the workload's per-interrupt table",
        )
    tl = assemble_timeline(run.table(schema.WORKLOAD), _probe_tables(run), expect_fraction=expect_fraction)
    for i, name in enumerate(labels):
        tl.insert(i, name, run_label(run, name))
    tl.insert(0, "kind", run.meta.kind)
    tl.insert(0, "variant", run.variant)
    tl.insert(0, "run_id", run.run_id)
    return tl


def df_timeline(
    runs: Run | RunSet, *, expect_fraction: float = 0.5, labels: Sequence[str] = ()
) -> pd.DataFrame:
    """One row per interrupt of every run with a workload table: its milestones and stages.

    Args:
        runs: a run or a run set (probed and probe-free alike; runs without a workload table are
            skipped).
        expect_fraction: see :func:`assemble_timeline`.
        labels: run labels to add as columns after ``kind`` (``workload`` is the workload's name,
            others come from run.json ``labels``, then ``workload.params``), e.g. ``("accel",)``.

    Returns:
        Columns ``run_id, variant, kind``, the ``labels``, ``cycle, vector, irq`` (row number within the run),
        ``delivered`` (bool), ``latency_ns`` (delivered - trigger; NA when not delivered),
        ``complete`` (every milestone of the run's path found), ``missing`` (comma-separated names
        of path milestones not found; empty when complete), ``path`` (the run's milestones joined
        with ``>``), then ``<milestone>_ts_ns`` for every milestone of :data:`MILESTONES`
        (CLOCK_MONOTONIC ns; NA when not on the path or not found), then ``stage_<milestone>_ns``
        for every milestone but ``trigger``: the time from the previous milestone on the run's
        path to this one (NA when either is missing or the milestone is not on the path). All
        time columns are nullable ``Int64``; for complete rows the stages sum to ``latency_ns``.

    Raises:
        AnalysisError: no run has a workload table.
    """
    runset = RunSet([runs]) if isinstance(runs, Run) else runs
    parts = [
        run_timeline(r, expect_fraction=expect_fraction, labels=labels)
        for r in runset
        if r.has_table(schema.WORKLOAD)
    ]
    if not parts:
        raise AnalysisError(
            "no run has a workload table: no interrupt timelines", "record runs with a workload"
        )
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------------- derived frames


def path_of(timeline: pd.DataFrame, row: int = 0) -> list[str]:
    """The milestone names on the path of one row of a timeline frame."""
    return str(timeline["path"].iloc[row]).split(">")


def df_stages(timeline: pd.DataFrame) -> pd.DataFrame:
    """Long form of a timeline: one row per (interrupt, stage) on its run's path.

    Returns:
        ``[run_id, variant, kind, irq, cycle, vector, latency_ns, stage, from_milestone,
        to_milestone, label, order, start_ns, dur_ns, start_ts_ns, end_ts_ns]``: ``stage`` is
        ``from → to`` in display labels; ``order`` the index of ``to_milestone`` in
        :data:`MILESTONES`; ``start_ns`` the stage's start relative to the trigger; ``dur_ns``
        NA (and the times NA) when a milestone of the stage is missing.
    """
    keys = [c for c in ("run_id", "variant", "kind") if c in timeline.columns]
    parts = []
    for path_str, g in timeline.groupby("path", sort=False, observed=True):
        path = str(path_str).split(">")
        trig = g[ts_column("trigger")].astype("Int64")
        for prev, m in itertools.pairwise(path):
            start = g[ts_column(prev)].astype("Int64")
            end = g[ts_column(m)].astype("Int64")
            part = g[[*keys, "irq", "cycle", "vector", "latency_ns"]].copy()
            part["stage"] = f"{MILESTONE_LABELS[prev]} → {MILESTONE_LABELS[m]}"
            part["from_milestone"] = prev
            part["to_milestone"] = m
            part["label"] = STAGE_NOTES.get(m, "")
            part["order"] = _INDEX[m]
            part["start_ns"] = start - trig
            part["dur_ns"] = g[stage_column(m)].astype("Int64")
            part["start_ts_ns"] = start
            part["end_ts_ns"] = end
            parts.append(part)
    cols = [
        *keys, "irq", "cycle", "vector", "latency_ns", "stage", "from_milestone", "to_milestone", "label",
        "order", "start_ns", "dur_ns", "start_ts_ns", "end_ts_ns",
    ]  # fmt: skip
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True)
    sort = [c for c in ("run_id",) if c in out.columns] + ["irq", "order"]
    return out.sort_values(sort, kind="stable").reset_index(drop=True)[cols]


def df_stage_summary(timeline: pd.DataFrame, by: By | None = ("variant",)) -> pd.DataFrame:
    """Median and p99 of every stage per group (variant), over the interrupts where it is known.

    Percentiles interpolate linearly between order statistics (as for raw samples in
    :mod:`~vfiobench.analysis.latency`). Runs of one group with different paths (one with the
    ``irq_path`` probe, one without) give separate rows for stages whose start differs.

    Args:
        timeline: the frame of :func:`df_timeline`.
        by: grouping columns (default per variant).

    Returns:
        ``[*by, stage, from_milestone, to_milestone, label, order, count, missing, mean_ns,
        median_ns, p99_ns, share_of_median]``: ``count`` interrupts with the stage known,
        ``missing`` delivered interrupts of the same runs where it is not (a milestone missing),
        ``share_of_median`` the stage's median over the sum of the group's stage medians. Sorted
        by group, then ``order`` (path order).
    """
    keys = by_list(by)
    require_columns(timeline, [*keys, "path", "delivered"], "timeline")
    samples: dict[tuple[Any, ...], list[npt.NDArray[np.int64]]] = {}
    missing: dict[tuple[Any, ...], int] = {}
    groups = timeline.groupby([*keys, "path"], sort=False, observed=True, dropna=False)
    for gkey, g in groups:
        gk = gkey if isinstance(gkey, tuple) else (gkey,)
        path = str(gk[-1]).split(">")
        delivered = g["delivered"].to_numpy(dtype=bool)
        for prev, m in itertools.pairwise(path):
            col = g[stage_column(m)]
            known = col.notna().to_numpy(dtype=bool)
            key = (*gk[:-1], prev, m)
            samples.setdefault(key, []).append(col.to_numpy(dtype=np.int64, na_value=0)[known])
            missing[key] = missing.get(key, 0) + int((delivered & ~known).sum())
    rows = []
    for key, arrays in samples.items():
        v = np.concatenate(arrays)
        prev, m = str(key[-2]), str(key[-1])
        rows.append(
            dict(zip(keys, key[:-2], strict=True))
            | {
                "stage": f"{MILESTONE_LABELS[prev]} → {MILESTONE_LABELS[m]}",
                "from_milestone": prev,
                "to_milestone": m,
                "label": STAGE_NOTES.get(m, ""),
                "order": _INDEX[m],
                "count": int(v.size),
                "missing": missing[key],
                "mean_ns": float(v.mean()) if v.size else np.nan,
                "median_ns": float(np.median(v)) if v.size else np.nan,
                "p99_ns": float(np.quantile(v, 0.99)) if v.size else np.nan,
            }
        )
    cols = [
        *keys, "stage", "from_milestone", "to_milestone", "label", "order", "count", "missing", "mean_ns",
        "median_ns", "p99_ns", "share_of_median",
    ]  # fmt: skip
    if not rows:
        return pd.DataFrame(columns=cols)
    out = pd.DataFrame(rows)
    total = out.groupby(keys, sort=False)["median_ns"].transform("sum") if keys else out["median_ns"].sum()
    out["share_of_median"] = out["median_ns"] / total
    if keys:
        first_seen = {k: i for i, k in enumerate(dict.fromkeys(map(tuple, out[keys].to_numpy().tolist())))}
        out["_g"] = [first_seen[tuple(k)] for k in out[keys].to_numpy().tolist()]
        out = out.sort_values(["_g", "order"], kind="stable").drop(columns="_g")
    else:
        out = out.sort_values("order", kind="stable")
    return out.reset_index(drop=True)[cols]


def df_slowest(timeline: pd.DataFrame, n: int = 10, *, complete_only: bool = False) -> pd.DataFrame:
    """The ``n`` delivered interrupts with the highest latency, slowest first (rows of the timeline)."""
    t = timeline[timeline["delivered"].astype(bool)]
    if complete_only:
        t = t[t["complete"].astype(bool)]
    lat = t["latency_ns"].astype("float64")
    return t.loc[lat.sort_values(ascending=False, kind="stable").index[:n]]


#: Columns of each probe table shown as an event's details (besides ts_ns, dur_ns, tid).
DETAIL_COLUMNS: dict[str, tuple[str, ...]] = {
    schema.SET_IRQS: ("fd", "ret", "index", "start", "count", "flags"),
    schema.SET_VECTOR_SIGNAL: ("vector", "fd", "msix", "ret"),
    schema.PBA_TOGGLE: ("mr", "enabled", "is_pba"),
    schema.COMMIT: ("depth",),
    IRQ_PATH: ("event", "vector", "cpu"),
    schema.KVM_IOCTLS: ("fd", "ret"),  # then arg0..arg3 under their names for the cmd
}
_KVM_ARGS = ("arg0", "arg1", "arg2", "arg3")


def _event_names(name: str, df: pd.DataFrame) -> Any:
    """What :func:`events_in_window` calls each row: the irq_path event, the KVM ioctl, or the table."""
    if "event" in df.columns:
        return df["event"].astype(str).to_numpy()
    if name == schema.KVM_IOCTLS and "cmd" in df.columns:
        return np.asarray([schema.kvm_ioctl_fields(int(c))[0] for c in df["cmd"]], dtype=object)
    return name


def _details(name: str, df: pd.DataFrame) -> list[str]:
    """Each row's :data:`DETAIL_COLUMNS` as ``key=value`` text (a KVM ioctl's words named per cmd)."""
    cols = [c for c in DETAIL_COLUMNS.get(name, ()) if c in df.columns]
    text = [
        " ".join(f"{c}={v}" for c, v in zip(cols, row, strict=True))
        for row in df[cols].itertuples(index=False)
    ]
    if name != schema.KVM_IOCTLS or not {"cmd", *_KVM_ARGS} <= set(df.columns):
        return text
    words = df[["cmd", *_KVM_ARGS]].itertuples(index=False)
    return [
        " ".join(
            [t, *(f"{k}={v}" for k, v in zip(schema.kvm_ioctl_fields(int(cmd))[1], args, strict=True))]
        ).strip()
        for t, (cmd, *args) in zip(text, words, strict=True)
    ]


def events_in_window(tables: Mapping[str, pd.DataFrame], start_ns: int, end_ns: int) -> pd.DataFrame:
    """Every probe event starting in ``[start_ns, end_ns]``, from all tables, in time order.

    Returns:
        ``[table, event, ts_ns, dur_ns, end_ts_ns, tid, detail]``: ``event`` the irq_path event
        name, the KVM ioctl's name (``KVM_SET_GSI_ROUTING``...) or the table name; ``dur_ns``
        0 for point events; ``detail`` the row's other columns as ``key=value`` text.
    """
    parts = []
    for name, df in tables.items():
        if "ts_ns" not in df.columns or df.empty:
            continue
        ts = df["ts_ns"].to_numpy(dtype=np.int64)
        sel = df[(ts >= start_ns) & (ts <= end_ns)]
        if sel.empty:
            continue
        dur = (
            sel["dur_ns"].clip(lower=0).to_numpy(dtype=np.int64)
            if "dur_ns" in sel.columns
            else np.zeros(len(sel), dtype=np.int64)
        )
        detail = _details(name, sel)
        parts.append(
            pd.DataFrame(
                {
                    "table": name,
                    "event": _event_names(name, sel),
                    "ts_ns": sel["ts_ns"].to_numpy(dtype=np.int64),
                    "dur_ns": dur,
                    "end_ts_ns": sel["ts_ns"].to_numpy(dtype=np.int64) + dur,
                    "tid": sel["tid"].to_numpy(dtype=np.int64) if "tid" in sel.columns else -1,
                    "detail": detail,
                }
            )
        )
    cols = ["table", "event", "ts_ns", "dur_ns", "end_ts_ns", "tid", "detail"]
    if not parts:
        return pd.DataFrame(columns=cols)
    return (
        pd.concat(parts, ignore_index=True).sort_values("ts_ns", kind="stable").reset_index(drop=True)[cols]
    )


def df_window_events(run: Run, timeline: pd.DataFrame) -> pd.DataFrame:
    """The raw probe events of ``run`` inside the windows of its interrupts in ``timeline``.

    An interrupt's window runs from its trigger to its last milestone found (its delivery when it
    was delivered). Vectorised: one ``searchsorted`` per table. Where windows overlap (vectors
    interleaved) an event is shown with the interrupt triggered last before it.

    Args:
        run: the run.
        timeline: rows of :func:`df_timeline` (rows of other runs are ignored).

    Returns:
        ``[run_id, irq, table, event, ts_ns, dur_ns, end_ts_ns, tid, detail]`` in time order
        (the columns of :func:`events_in_window` plus the run and the interrupt's ``irq``).
    """
    rows = timeline[timeline["run_id"] == run.run_id] if "run_id" in timeline.columns else timeline
    cols = ["run_id", "irq", "table", "event", "ts_ns", "dur_ns", "end_ts_ns", "tid", "detail"]
    if rows.empty:
        return pd.DataFrame(columns=cols)
    ts_cols = [ts_column(m) for m in MILESTONE_NAMES]
    start_all = rows[ts_column("trigger")].to_numpy(dtype=np.int64)
    end_all = rows[ts_cols].astype("float64").max(axis=1, skipna=True).to_numpy(dtype=np.float64)
    order = np.argsort(start_all, kind="stable")
    start, end = start_all[order], end_all[order]
    irq_ids = rows["irq"].to_numpy(dtype=np.int64)[order]
    parts = []
    for name, df in _probe_tables(run).items():
        if "ts_ns" not in df.columns or df.empty:
            continue
        ts = df["ts_ns"].to_numpy(dtype=np.int64)
        pos = np.searchsorted(start, ts, side="right") - 1
        ok = pos >= 0
        ok[ok] = ts[ok] <= end[pos[ok]]
        if not ok.any():
            continue
        ev = events_in_window({name: df[ok]}, int(ts[ok].min()), int(ts[ok].max()))
        ev.insert(0, "irq", irq_ids[pos[ok]][np.argsort(ts[ok], kind="stable")])
        parts.append(ev)
    if not parts:
        return pd.DataFrame(columns=cols)
    out = pd.concat(parts, ignore_index=True).sort_values("ts_ns", kind="stable").reset_index(drop=True)
    out.insert(0, "run_id", run.run_id)
    return out[cols]


def df_interrupt_events(run: Run, timeline_row: Mapping[str, Any] | pd.Series) -> pd.DataFrame:
    """The raw probe events inside one interrupt's window (trigger to delivery), for hover text.

    Args:
        run: the run the interrupt belongs to.
        timeline_row: its row of :func:`df_timeline` (needs ``trigger_ts_ns`` and the last
            milestone found).

    Returns:
        The columns of :func:`events_in_window`.
    """
    start = int(timeline_row[ts_column("trigger")])
    end = start
    for m in MILESTONE_NAMES:
        v = timeline_row[ts_column(m)]
        if v is not pd.NA and not (isinstance(v, float) and np.isnan(v)):
            end = max(end, int(v))
    return events_in_window(_probe_tables(run), start, end)
