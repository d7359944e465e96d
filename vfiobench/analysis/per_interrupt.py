"""Per delivered interrupt: how many ioctls, set_vector_signal calls, PBA toggles, commits; their cost.

Delivered interrupts come from the run's ``workload`` table (one row per cycle; rows with
``delivered`` false are not counted) or, for a run without one, from ``run.json``
``workload.params`` (first of ``delivered``, ``interrupts``, ``cycles``).

Window: by default only probe events inside the workload's window count, so setup before the first
cycle (the initial unmask) is not billed to interrupts; ``events_outside`` says how many were left
out. The window is the run's ``measure`` phase when run.json has one (``workload.params.phases.measure``
with ``start_ns``/``end_ns``, as lab runs do), else the first cycle's start to the last cycle's end.
Commits deferred to QEMU's RCU thread after the window's end fall outside (at most one burst).

Cycles: a cycle starts at ``start_ts_ns``; without that column at ``trigger_ts_ns - mask_rtt_ns``
(the mask write precedes the doorbell; ``mask_rtt_ns < 0`` means not masked) or ``trigger_ts_ns``.
A call is billed to the cycle it starts in; calls inside the window before the first cycle go to the
first.

Times: ``*_us_per_irq`` are inclusive (each call's own measured duration: a PBA toggle includes the
commit it tail-calls, an ioctl includes ``vfio_msi_set_vector_signal``). ``*_excl_us_per_irq`` are
exclusive (nested calls subtracted, see :mod:`vfiobench.analysis.nesting`), and they sum to
``total_us_per_irq``, the time per interrupt spent inside any probed call. A probe recorded in
histogram mode contributes counts and inclusive time from bucket midpoints (no nesting there, so
``total_us_per_irq`` counts a histogram-mode call nested in another probed call twice); a
``pba_toggle`` histogram cannot tell the PBA from other regions, so its calls count as
``region_toggles`` and ``pba_toggles_per_irq`` is NaN. A ``kvm_ioctls`` histogram pools its three
ioctls and cannot be split among ``gsi_routing``, ``irqfd`` and ``signal_msi``: it is left out (the
three are NaN, and ``total_us_per_irq`` does not include it). Per-cycle values of histogram-mode
operations are NaN.

KVM ioctls (the ``kvm_ioctls`` table, one operation per ``cmd``): ``gsi_routing`` counts
``KVM_SET_GSI_ROUTING`` (QEMU's ``kvm_irqchip_commit_routes``: one per unmask of a vector with a KVM
route), ``irqfd`` ``KVM_IRQFD`` (assign and deassign alike), ``signal_msi`` ``KVM_SIGNAL_MSI``. They
are operations of the interrupt's path (:data:`~vfiobench.schema.PATH_OPERATIONS`): the threads that
issue them serve the interrupt. They are system calls of their own, so nothing else probed nests in
them, and they nest in no other probed call of QEMU (a PBA toggle's commit issues memory-slot
ioctls, not these).

Probe-free runs (no probe tables) get NaN for every probe column, not zero; a probed run whose table
exists but is empty gets 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench import schema
from vfiobench.analysis import _billing
from vfiobench.analysis.latency import infer_layout
from vfiobench.analysis.nesting import start_order, thread_separated
from vfiobench.buckets import LogLinearBuckets
from vfiobench.errors import AnalysisError
from vfiobench.store import Run, RunSet

#: Operations in stacking order with their table, count-column stems and display names
#: (defined in :mod:`vfiobench.schema`).
OPERATIONS = schema.OPERATIONS
COUNT_NAMES = schema.OPERATION_COUNT_NAMES
OPERATION_LABELS = schema.OPERATION_LABELS


@dataclass(frozen=True)
class CycleWindows:
    """The workload's cycles of one run: where each starts and where the workload window ends."""

    cycle: npt.NDArray[np.int64]
    start_ns: npt.NDArray[np.int64]
    end_ns: int
    delivered: npt.NDArray[np.bool_]
    latency_ns: npt.NDArray[np.float64]
    begin_ns: int | None = None  # window start when it is not the first cycle's start


def cycle_windows(workload: pd.DataFrame, measure: Mapping[str, Any] | None = None) -> CycleWindows | None:
    """Cycle start times and the window end from a workload table (see the module docstring).

    Args:
        workload: the run's workload table.
        measure: the run's measure phase (``start_ns``, ``end_ns``), if it has one.

    Returns:
        None when the table has no timestamps.
    """
    if workload.empty or not ({"start_ts_ns", "trigger_ts_ns"} & set(workload.columns)):
        return None
    if "start_ts_ns" in workload.columns:
        start_all = workload["start_ts_ns"].to_numpy(dtype=np.int64)
    else:
        start_all = workload["trigger_ts_ns"].to_numpy(dtype=np.int64)
        if "mask_rtt_ns" in workload.columns:
            start_all = start_all - np.maximum(workload["mask_rtt_ns"].to_numpy(dtype=np.int64), 0)
    order = np.argsort(start_all, kind="stable")
    w = workload.iloc[order]
    start = start_all[order]
    ends = [start[-1]]
    if "delivered_ts_ns" in w.columns:
        ends.append(int(np.nanmax(w["delivered_ts_ns"].to_numpy(dtype=np.float64))))
    if "cycle_ns" in w.columns:
        ends.append(int(np.nanmax(start + w["cycle_ns"].to_numpy(dtype=np.float64))))
    cycle = w["cycle"].to_numpy(dtype=np.int64) if "cycle" in w.columns else np.arange(len(w), dtype=np.int64)
    delivered = (
        w["delivered"].to_numpy(dtype=bool) if "delivered" in w.columns else np.ones(len(w), dtype=bool)
    )
    latency = (
        w["latency_ns"].to_numpy(dtype=np.float64) if "latency_ns" in w.columns else np.full(len(w), np.nan)
    )
    end = int(max(ends))
    begin: int | None = None
    if measure and isinstance(measure.get("start_ns"), int) and isinstance(measure.get("end_ns"), int):
        begin, end = int(measure["start_ns"]), int(measure["end_ns"])
    return CycleWindows(cycle, start, end, delivered, latency, begin)


def interrupt_count(run: Run) -> tuple[int, str]:
    """Delivered interrupts of a run and where the number came from.

    Returns:
        ``(count, source)``; source is ``"workload"`` or ``"params:<key>"``.

    Raises:
        AnalysisError: neither a workload table nor a counter in ``workload.params``.
    """
    if run.has_table(schema.WORKLOAD):
        w = run.table(schema.WORKLOAD)
        n = int(w["delivered"].astype(bool).sum()) if "delivered" in w.columns else len(w)
        return n, "workload"
    params = run.meta.workload.params
    for key in schema.INTERRUPT_COUNT_PARAMS:
        if isinstance(params.get(key), int | float) and not isinstance(params.get(key), bool):
            return int(params[key]), f"params:{key}"
    raise AnalysisError(
        f"run {run.run_id}: no workload table and no "
        f"{'/'.join(schema.INTERRUPT_COUNT_PARAMS)} in workload.params",
        "record the workload's per-cycle table or its delivered-interrupt counter",
    )


def account_events(
    ts_ns: npt.ArrayLike,
    dur_ns: npt.ArrayLike,
    tid: npt.ArrayLike,
    op: npt.ArrayLike,
    cycle_start_ns: npt.ArrayLike,
    window_end_ns: int | None,
    n_ops: int,
    window_begin_ns: int | None = None,
    background: npt.ArrayLike | None = None,
) -> tuple[
    npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], int
]:
    """Vectorised core: bill each call to the cycle it started in.

    Args:
        ts_ns: entry time of each call (any order; all tables of one run concatenated).
        dur_ns: duration of each call.
        tid: thread of each call (calls nest only within a thread).
        op: operation code per call, ``0 <= op < n_ops``.
        cycle_start_ns: ascending start of each cycle.
        window_end_ns: calls starting after it are outside (None: no end).
        n_ops: number of operation codes.
        window_begin_ns: calls starting before it are outside (None: the first cycle's start);
            calls between it and the first cycle are billed to the first cycle.
        background: per call, True when it is off the interrupt's path (see
            :func:`path_threads`); None: every call is on the path.

    Returns:
        ``(counts, incl_ns, excl_ns, background_excl_ns, outside)``: three ``(n_cycles, n_ops)``
        float64 arrays (calls, inclusive ns, exclusive ns per cycle and operation, all calls), the
        exclusive ns per cycle of the background calls alone (``(n_cycles,)``), and the number of
        calls outside the window.
    """
    ts = np.asarray(ts_ns, dtype=np.int64)
    dur = np.asarray(dur_ns, dtype=np.int64)
    opc = np.asarray(op, dtype=np.int64)
    starts = np.asarray(cycle_start_ns, dtype=np.int64)
    n_cycles = starts.size
    if ts.size == 0 or n_cycles == 0:
        zeros = np.zeros((n_cycles, n_ops))
        return zeros, zeros.copy(), zeros.copy(), np.zeros(n_cycles), 0 if n_cycles else ts.size
    if opc.min() < 0 or opc.max() >= n_ops:
        raise ValueError(f"operation codes must lie in [0, {n_ops})")
    bg = (
        np.zeros(ts.size, dtype=np.uint8)
        if background is None
        else np.asarray(background, dtype=bool).view(np.uint8)
    )
    # nesting order: per thread by start, longer first (durations below 1 ns count as 1 ns there)
    s_len = np.maximum(dur, 1)
    order, s_start = start_order(thread_separated(ts, s_len, tid), s_len)
    i64 = np.iinfo(np.int64)
    counts, incl, excl, bg_excl, outside = _billing.bill_calls(
        order,
        s_start,
        s_len,
        ts,
        dur,
        opc,
        bg,
        starts,
        i64.min if window_begin_ns is None else int(window_begin_ns),
        i64.max if window_end_ns is None else int(window_end_ns),
        window_begin_ns is not None,
        n_ops,
    )
    f64 = np.float64
    return counts.astype(f64), incl.astype(f64), excl.astype(f64), bg_excl.astype(f64), int(outside)


def path_threads(tid: npt.ArrayLike, op: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Threads that serve the interrupt: those that ran any of :data:`~vfiobench.schema.PATH_OPERATIONS`.

    The guest's unmask and mask (SET_IRQS, and ``vfio_msi_set_vector_signal`` inside it) and the
    PBA toggles run on the vCPU / main-loop threads that handle the interrupt; a commit or region
    toggle on those threads is on the interrupt's path (the two commits run synchronously inside
    the PBA toggles are), one on any other thread (QEMU's RCU thread catching up on deferred
    FlatView work, a timer) is background work, reported apart.
    """
    on_path = np.array([name in schema.PATH_OPERATIONS for name, _ in OPERATIONS])
    t = np.asarray(tid, dtype=np.int64)
    return np.sort(pd.unique(t[on_path[np.asarray(op, dtype=np.int64)]]))


def background_calls(tid: npt.ArrayLike, op: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Per call, True when it ran on none of the :func:`path_threads` (background work)."""
    t = np.asarray(tid, dtype=np.int64)
    return ~np.isin(t, path_threads(t, op))


def kvm_ioctl_ops(cmd: npt.NDArray[np.int64], op_index: Mapping[str, int]) -> npt.NDArray[np.int64]:
    """Operation code of each ``kvm_ioctls`` row from its ``cmd`` (-1 for a cmd of no operation)."""
    ops = np.full(cmd.size, -1, dtype=np.int64)
    for value, (name, _, _) in schema.KVM_IOCTL_CMDS.items():
        ops[cmd == value] = op_index[name]
    return ops


def _run_calls(
    run: Run,
) -> tuple[dict[str, npt.NDArray[np.int64]], dict[str, bool], pd.DataFrame, set[str]]:
    """Timestamped calls of a run, which operations were probed, and histogram-mode rows.

    Returns ``(calls{ts_ns, dur_ns, tid, op: int64 arrays}, probed, hist[op, count, dur_ns],
    histogram_ops)``; the calls stay numpy arrays (no DataFrame concat: runs can hold 10M calls);
    ``histogram_ops`` names the operations recorded in histogram mode (no per-call times).
    """
    op_index = {name: i for i, (name, _) in enumerate(OPERATIONS)}
    frames: list[dict[str, npt.NDArray[np.int64]]] = []
    hist_frames: list[pd.DataFrame] = []
    hist_ops: set[str] = set()
    probed: dict[str, bool] = {}
    buckets = LogLinearBuckets()
    for name, table in OPERATIONS:
        probed[name] = run.has_table(table)
    for table in dict.fromkeys(t for _, t in OPERATIONS):
        if not run.has_table(table):
            continue
        df = run.table(table)
        histogram = "bucket" in df.columns and "count" in df.columns and "ts_ns" not in df.columns
        if table == schema.KVM_IOCTLS:
            if histogram:  # the three ioctls share one histogram: not split, left out
                for name, t in OPERATIONS:
                    probed[name] = probed[name] and t != table
                continue
            ops = kvm_ioctl_ops(df["cmd"].to_numpy(dtype=np.int64), op_index)
        elif table == schema.PBA_TOGGLE:
            if "is_pba" in df.columns:
                is_pba = df["is_pba"].astype(bool).to_numpy()
            else:  # histogram mode: the kernel cannot tell the PBA from other regions
                is_pba = np.zeros(len(df), dtype=bool)
                probed["pba_toggle"] = False
            ops = np.where(is_pba, op_index["pba_toggle"], op_index["region_toggle"])
        else:
            ops = np.full(len(df), next(op_index[n] for n, t in OPERATIONS if t == table))
        if histogram:
            idx = df["bucket"].to_numpy(dtype=np.int64)
            layout = infer_layout(df) or buckets
            mid = (layout.lower(idx) + layout.upper(idx) - 1) / 2.0
            hist_frames.append(
                pd.DataFrame({"op": ops, "count": df["count"].to_numpy(dtype=np.float64), "dur_ns": mid})
            )
            hist_ops |= {n for n, t in OPERATIONS if t == table}
            continue
        tid = df["tid"].to_numpy(dtype=np.int64) if "tid" in df.columns else np.zeros(len(df), dtype=np.int64)
        frame = {
            "ts_ns": df["ts_ns"].to_numpy(dtype=np.int64),
            "dur_ns": df["dur_ns"].to_numpy(dtype=np.int64),
            "tid": tid,
            "op": ops.astype(np.int64),
        }
        if table == schema.KVM_IOCTLS and not (keep := ops >= 0).all():
            frame = {c: v[keep] for c, v in frame.items()}  # a cmd of no operation: not billed
        frames.append(frame)
    calls = {
        c: np.concatenate([f[c] for f in frames]) if frames else np.zeros(0, dtype=np.int64)
        for c in ("ts_ns", "dur_ns", "tid", "op")
    }
    hist = (
        pd.concat(hist_frames, ignore_index=True)
        if hist_frames
        else pd.DataFrame({c: pd.Series(dtype=np.float64) for c in ("op", "count", "dur_ns")})
    )
    return calls, probed, hist, hist_ops


def _run_cycles(run: Run, window: str) -> tuple[pd.DataFrame | None, dict[str, float]]:
    """Per-cycle accounting of one run (None without a timestamped workload) and its per-run row."""
    n_ops = len(OPERATIONS)
    names = [n for n, _ in OPERATIONS]
    calls, probed, hist, hist_ops = _run_calls(run)
    interrupts, source = interrupt_count(run)
    phases = run.meta.workload.params.get("phases")
    measure = phases.get("measure") if isinstance(phases, Mapping) else None
    windows = cycle_windows(run.table(schema.WORKLOAD), measure) if run.has_table(schema.WORKLOAD) else None
    background = background_calls(calls["tid"], calls["op"])
    if windows is not None and window == "workload":
        counts, incl, excl, bg, outside = account_events(
            calls["ts_ns"],
            calls["dur_ns"],
            calls["tid"],
            calls["op"],
            windows.start_ns,
            windows.end_ns,
            n_ops,
            windows.begin_ns,
            background,
        )
        tot_counts, tot_incl, tot_excl, tot_bg = counts.sum(0), incl.sum(0), excl.sum(0), float(bg.sum())
    else:
        one = np.array([np.iinfo(np.int64).min], dtype=np.int64)
        counts = incl = excl = np.zeros((0, n_ops))
        bg = np.zeros(0)
        c1, i1, e1, b1, outside = account_events(
            calls["ts_ns"], calls["dur_ns"], calls["tid"], calls["op"], one, None, n_ops, None, background
        )
        tot_counts, tot_incl, tot_excl, tot_bg = c1[0], i1[0], e1[0], float(b1[0])
    if len(hist):
        hop = hist["op"].to_numpy(dtype=np.int64)
        hc = np.bincount(hop, weights=hist["count"], minlength=n_ops)
        ht = np.bincount(hop, weights=hist["count"] * hist["dur_ns"], minlength=n_ops)
        tot_counts, tot_incl, tot_excl = tot_counts + hc, tot_incl + ht, tot_excl + ht
    row: dict[str, float] = {"interrupts": interrupts}
    irq = interrupts if interrupts > 0 else np.nan
    for i, name in enumerate(names):
        on = probed[name]
        row[f"{COUNT_NAMES[name]}_per_irq"] = tot_counts[i] / irq if on else np.nan
    for i, name in enumerate(names):
        row[f"{name}_us_per_irq"] = tot_incl[i] / 1e3 / irq if probed[name] else np.nan
    for i, name in enumerate(names):
        row[f"{name}_excl_us_per_irq"] = tot_excl[i] / 1e3 / irq if probed[name] else np.nan
    any_probe = any(probed.values())
    row["total_us_per_irq"] = float(tot_excl.sum()) / 1e3 / irq if any_probe else np.nan
    # histogram-mode calls have no thread: they count as on the path
    row["path_us_per_irq"] = (float(tot_excl.sum()) - tot_bg) / 1e3 / irq if any_probe else np.nan
    row["background_us_per_irq"] = tot_bg / 1e3 / irq if any_probe else np.nan
    row["events_outside"] = outside if any_probe else np.nan
    row["interrupts_source"] = source  # type: ignore[assignment]
    per_cycle: pd.DataFrame | None = None
    if windows is not None and window == "workload":
        data: dict[str, npt.ArrayLike] = {
            "cycle": windows.cycle,
            "delivered": windows.delivered,
            "latency_ns": windows.latency_ns,
        }
        # per cycle needs per-call times: histogram-mode operations are unknown (NaN), and so is
        # the total when any probed operation was recorded in histogram mode
        nan = np.full(len(windows.cycle), np.nan)
        streamed = {n: probed[n] and n not in hist_ops for n in names}
        for i, name in enumerate(names):
            data[COUNT_NAMES[name]] = counts[:, i] if streamed[name] else nan
        for i, name in enumerate(names):
            data[f"{name}_us"] = incl[:, i] / 1e3 if streamed[name] else nan
        complete = any_probe and not any(probed[n] and n in hist_ops for n in names)
        data["total_us"] = excl.sum(1) / 1e3 if complete else nan
        data["path_us"] = (excl.sum(1) - bg) / 1e3 if complete else nan
        data["background_us"] = bg / 1e3 if complete else nan
        per_cycle = pd.DataFrame(data)
    return per_cycle, row


def df_per_interrupt(runset: RunSet, *, window: str = "workload") -> pd.DataFrame:
    """Per-interrupt operation counts and costs, one row per run.

    Args:
        runset: the runs (probed and probe-free alike).
        window: ``"workload"`` (count only calls inside the workload's cycles) or ``"all"``.

    Returns:
        Columns ``run_id, variant, kind, interrupts, interrupts_source``, counts per interrupt
        ``set_irqs_per_irq, set_vector_signal_per_irq, pba_toggles_per_irq, region_toggles_per_irq,
        commits_per_irq, gsi_routing_per_irq, irqfd_per_irq, signal_msi_per_irq``, inclusive µs
        per interrupt ``set_irqs_us_per_irq, set_vector_signal_us_per_irq, pba_toggle_us_per_irq,
        region_toggle_us_per_irq, commit_us_per_irq, gsi_routing_us_per_irq, irqfd_us_per_irq,
        signal_msi_us_per_irq``, exclusive µs per interrupt (same names with ``_excl_us_per_irq``),
        ``total_us_per_irq`` (sum of the exclusive ones), ``events_outside`` (calls outside the
        window), ``lost_events`` (from run.json), and the run's labels (``repetition``...).
    """
    if window not in ("workload", "all"):
        raise AnalysisError(f"window must be 'workload' or 'all', not {window!r}")
    rows = []
    for run in runset:
        _, row = _run_cycles(run, window)
        rows.append(
            {"run_id": run.run_id, "variant": run.variant, "kind": run.meta.kind}
            | row
            | {"lost_events": run.meta.lost_events}
            | {k: v for k, v in run.meta.labels.items() if k not in row}
        )
    return pd.DataFrame(rows)


def df_per_cycle(runset: RunSet) -> pd.DataFrame:
    """Per-cycle accounting of every run with a timestamped workload table.

    Each call is billed to the cycle it started in (cycle starts and the window as in the module
    docstring). Deferred work (RCU-thread commits) lands in whichever cycle it happens in, so
    per-cycle values are bursty but their mean is the cost per cycle. Undelivered cycles are kept
    (their calls cost time too); ``delivered`` marks them.

    Returns:
        ``[run_id, variant, kind, cycle, delivered, latency_ns, set_irqs, set_vector_signal,
        pba_toggles, region_toggles, commits, gsi_routing, irqfd, signal_msi, set_irqs_us,
        set_vector_signal_us, pba_toggle_us, region_toggle_us, commit_us, gsi_routing_us, irqfd_us,
        signal_msi_us, total_us, path_us, background_us]``: counts and inclusive µs per operation (NaN when
        the operation was not probed) and ``total_us``, the exclusive time in probed calls.
    """
    parts = []
    for run in runset:
        if not run.has_table(schema.WORKLOAD):
            continue
        per_cycle, _ = _run_cycles(run, "workload")
        if per_cycle is None:
            continue
        per_cycle.insert(0, "kind", run.meta.kind)
        per_cycle.insert(0, "variant", run.variant)
        per_cycle.insert(0, "run_id", run.run_id)
        parts.append(per_cycle)
    if not parts:
        raise AnalysisError("no run has a timestamped workload table", "record runs with a workload")
    return pd.concat(parts, ignore_index=True)


def df_cost_breakdown(per_interrupt: pd.DataFrame | RunSet, by: Sequence[str] = ("variant",)) -> pd.DataFrame:
    """Exclusive µs per interrupt by operation, averaged over the probed runs of each group.

    Exclusive times stack without double counting (the stacked total is ``total_us_per_irq``).

    Args:
        per_interrupt: the frame of :func:`df_per_interrupt`, or a run set to compute it from.
        by: grouping columns (default one bar per variant).

    Returns:
        Long form ``[*by, operation, label, us_per_irq, runs]``: ``operation`` a key of
        :data:`OPERATIONS`, ``label`` its display name, ``runs`` the number of probed runs averaged.
        Operations that no run probed are left out.
    """
    df = df_per_interrupt(per_interrupt) if isinstance(per_interrupt, RunSet) else per_interrupt
    keys = list(by)
    rows = []
    for name, _ in OPERATIONS:
        col = f"{name}_excl_us_per_irq"
        if col not in df.columns:
            continue
        for key, g in df.groupby(keys, sort=False) if keys else [((), df)]:
            vals = g[col].dropna()
            if vals.empty:
                continue
            kv = key if isinstance(key, tuple) else (key,)
            rows.append(
                dict(zip(keys, kv, strict=True))
                | {
                    "operation": name,
                    "label": OPERATION_LABELS[name],
                    "us_per_irq": float(vals.mean()),
                    "runs": int(vals.size),
                }
            )
    return pd.DataFrame(rows, columns=[*keys, "operation", "label", "us_per_irq", "runs"])
