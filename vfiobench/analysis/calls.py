"""Per-operation tables over runs: every probed call, latency summaries per operation, the interrupts.

A run page and a compare page read the same tables: :func:`df_calls` (one row per streamed probe
call), :func:`df_delivered` (one row per delivered interrupt, with the run kind) and
:func:`df_operation_latency` (percentiles of each probed operation and of the interrupt itself).
"""

from __future__ import annotations

import pandas as pd

from vfiobench import schema
from vfiobench.store import Run, RunSet


def as_runset(target: Run | RunSet) -> RunSet:
    """A run set of one run (so set-wide analysis functions apply to one run too)."""
    return RunSet([target]) if isinstance(target, Run) else target


def in_us(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` with every ``*_ns`` column converted to µs and renamed ``*_us`` (for reading)."""
    out = df.copy()
    for col in [c for c in df.columns if str(c).endswith("_ns")]:
        out[str(col).removesuffix("_ns") + "_us"] = out.pop(col).astype("float64") / 1e3
    return out


def df_calls(target: Run | RunSet) -> pd.DataFrame:
    """Every streamed probe call of the runs in one long table.

    Tables recorded in histogram mode (no ``ts_ns``/``dur_ns``) are left out.

    Returns:
        ``[run_id, variant, operation, ts_ns, dur_ns]``; ``operation`` the operation's display name.
    """
    runset = as_runset(target)
    parts = []
    for name in schema.PROBE_TABLES:
        df = runset.table(name)
        if df.empty or not {"ts_ns", "dur_ns"} <= set(df.columns):
            continue
        df = df[["run_id", "variant", "ts_ns", "dur_ns"]]
        parts.append(df.assign(operation=schema.TABLE_LABELS.get(name, name)))
    cols = ["run_id", "variant", "operation", "ts_ns", "dur_ns"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def df_delivered(target: Run | RunSet) -> pd.DataFrame:
    """The workload table's delivered interrupts, with each run's kind (probed or probe-free).

    Returns:
        The workload table's columns (``run_id``, ``variant``, ``latency_ns``...) plus ``kind``;
        without a ``latency_ns`` column when no run has a workload table with it.
    """
    runset = as_runset(target)
    w = runset.table(schema.WORKLOAD)
    if w.empty or "latency_ns" not in w.columns:
        return pd.DataFrame(columns=[*w.columns, "kind"])
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    kinds = pd.Series({r.run_id: r.meta.kind for r in runset}, dtype=object)
    return w.assign(kind=w["run_id"].map(kinds))


def df_operation_latency(target: Run | RunSet) -> pd.DataFrame:
    """Latency summary of every probed operation, and of the interrupt itself (workload table).

    Probe tables are summarised per variant over their calls (``dur_ns``); the workload's
    end-to-end ``latency_ns`` per variant and run kind, since probes inflate it.

    Returns:
        ``[operation, variant, kind, count, mean_us, p50_us, p90_us, p99_us, p999_us, max_us]``
        (``kind`` only set for the interrupt latency rows).
    """
    from vfiobench.analysis.latency import SUMMARY_COLUMNS, df_latency_summary

    runset = as_runset(target)
    parts = []
    for name in schema.PROBE_TABLES:
        df = runset.table(name)
        if df.empty or not ("dur_ns" in df.columns or {"bucket", "count"} <= set(df.columns)):
            continue
        s = df_latency_summary(df, value="dur_ns", by=("variant",))
        s.insert(0, "operation", schema.TABLE_LABELS.get(name, name))
        s.insert(2, "kind", "")
        parts.append(s)
    w = df_delivered(runset)
    if "latency_ns" in w.columns:
        s = df_latency_summary(w, value="latency_ns", by=("variant", "kind"))
        s.insert(0, "operation", "interrupt latency (end to end)")
        parts.append(s)
    cols = ["operation", "variant", "kind", *SUMMARY_COLUMNS]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return in_us(out[cols])
