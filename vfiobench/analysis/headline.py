"""The answer of a comparison: the headline table per (group, variant) and per-interrupt costs pooled.

One row per variant within each group of comparable runs (:mod:`vfiobench.analysis.compare`): how
many interrupts, how many SET_IRQS ioctls and PBA toggles each costs, the µs per interrupt spent in
the probed operations on the interrupt's path (probed runs), the median end-to-end interrupt latency
(probe-free runs), and both against the baseline of the same group, over runs
(:mod:`vfiobench.analysis.inference`: a ratio, or a difference where one side is near zero).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vfiobench import schema
from vfiobench.analysis.compare import Comparison
from vfiobench.store import Run

#: Per-interrupt columns of :func:`df_group_per_interrupt`, pooled over the probed runs.
GROUP_PER_IRQ_COLUMNS: tuple[str, ...] = (
    "set_irqs_per_irq",
    "set_vector_signal_per_irq",
    "pba_toggles_per_irq",
    "commits_per_irq",
    "set_irqs_excl_us_per_irq",
    "set_vector_signal_excl_us_per_irq",
    "pba_toggle_excl_us_per_irq",
    "region_toggle_excl_us_per_irq",
    "commit_excl_us_per_irq",
    "path_us_per_irq",
    "background_us_per_irq",
    "total_us_per_irq",
)


def window_s(run: Run) -> float:
    """Seconds of the run's workload window (measure phase, else first to last cycle); NaN if unknown."""
    from vfiobench.analysis.per_interrupt import cycle_windows

    phases = run.meta.workload.params.get("phases")
    measure = phases.get("measure") if isinstance(phases, Mapping) else None
    if not run.has_table(schema.WORKLOAD):
        return float("nan")
    w = cycle_windows(run.table(schema.WORKLOAD), measure)
    if w is None or not len(w.start_ns):
        return float("nan")
    begin = w.begin_ns if w.begin_ns is not None else int(w.start_ns[0])
    span = (w.end_ns - begin) / 1e9
    return span if span > 0 else float("nan")


def pooled_per_irq(df: pd.DataFrame, col: str) -> float:
    """Per-interrupt value pooled over runs: sum(value x interrupts) / sum(interrupts), NaN runs skipped."""
    if col not in df.columns:
        return float("nan")
    ok = df[df[col].notna() & (df["interrupts"] > 0)]
    n = float(ok["interrupts"].sum())
    return float((ok[col] * ok["interrupts"]).sum() / n) if n else float("nan")


def e2e_p50_us(cmp: Comparison) -> dict[tuple[str, str], float]:
    """Median delivered-interrupt latency (µs) of the probe-free runs per (group label, variant)."""
    out: dict[tuple[str, str], float] = {}
    for group in cmp.groups:
        free = group.runs.filter(kind="probe-free")
        w = free.table(schema.WORKLOAD)
        if w.empty or "latency_ns" not in w.columns:
            continue
        if "delivered" in w.columns:
            w = w[w["delivered"].astype(bool)]
        for variant, g in w.groupby("variant", sort=False):
            vals = g["latency_ns"].dropna().to_numpy(dtype=np.float64)
            if vals.size:
                out[(group.label, str(variant))] = float(np.median(vals)) / 1e3
    return out


#: The fields of an A/B row (:func:`~vfiobench.analysis.ab.df_ab`) the headline keeps per comparison.
AB_FIELDS: tuple[str, ...] = (
    "kind", "ratio", "ci_low", "ci_high", "difference", "diff_low", "diff_high", "p_value", "significant",
    "enough_runs", "stat_baseline", "stat_variant",
)  # fmt: skip


def _ab_field(rec: pd.Series | None, field: str) -> Any:
    """One field of an A/B row, typed; a missing row gives NaN (False for flags, "" for kind)."""
    if field == "kind":
        return str(rec[field]) if rec is not None else ""
    if field in ("significant", "enough_runs"):
        return bool(rec[field]) if rec is not None else False
    return float(rec[field]) if rec is not None else float("nan")


def df_headline(cmp: Comparison) -> pd.DataFrame:
    """The headline numbers, one row per (group, variant), the baseline first in each group.

    Per-interrupt counts and µs are pooled over the probed runs (sum over runs / delivered
    interrupts); ``set_irqs_per_s`` is SET_IRQS ioctls per second of workload window in the probed
    runs; ``e2e_p50_us`` is the median end-to-end latency of the probe-free runs' delivered
    interrupts. Ratios are ``baseline / variant`` (> 1: the variant is cheaper or faster) from
    :meth:`Comparison.ab`, NaN for the baseline itself or when unavailable.

    Returns:
        ``[group, variant, runs_probed, runs_probe_free, interrupts, set_irqs_per_irq,
        set_irqs_per_s, pba_toggles_per_irq, us_per_irq, background_us_per_irq, e2e_p50_us``, then
        per comparison (``us`` for µs per interrupt, ``latency`` for the end-to-end latency)
        ``<p>_kind, <p>_ratio, <p>_ci_low, <p>_ci_high, <p>_difference, <p>_diff_low,
        <p>_diff_high, <p>_p_value, <p>_significant, <p>_enough_runs``, then ``lost_events,
        checks_failed, checks_total]``. ``us_per_irq`` is the time on the interrupt's path,
        ``background_us_per_irq`` the probed work on other threads (see
        :mod:`~vfiobench.analysis.per_interrupt`).
    """
    per_irq = cmp.per_interrupt()
    ab = cmp.ab()
    e2e = e2e_p50_us(cmp)
    cols = [
        "group", "variant", "runs_probed", "runs_probe_free", "interrupts", "set_irqs_per_irq",
        "set_irqs_per_s", "pba_toggles_per_irq", "us_per_irq", "background_us_per_irq", "e2e_p50_us",
        *(f"{prefix}_{c}" for prefix in ("us", "latency") for c in AB_FIELDS),
        "lost_events", "checks_failed", "checks_total",
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for group in cmp.groups:
        for variant in [v for v in cmp.variants if v in group.runs.variants]:
            runs = [r for r in group.runs if r.variant == variant]
            probed = [r for r in runs if r.meta.kind == "probed"]
            pi = per_irq[(per_irq["group"] == group.label) & (per_irq["variant"] == variant)]
            pp = pi[pi["kind"] == "probed"]
            counts = (pp["set_irqs_per_irq"] * pp["interrupts"]).dropna() if len(pp) else pd.Series()
            spans = [window_s(r) for r in probed]
            span = float(np.nansum(spans)) if spans and not all(math.isnan(s) for s in spans) else 0.0
            row: dict[str, Any] = {
                "group": group.label,
                "variant": variant,
                "runs_probed": len(probed),
                "runs_probe_free": len(runs) - len(probed),
                "interrupts": int(pi["interrupts"].sum()),
                "set_irqs_per_irq": pooled_per_irq(pp, "set_irqs_per_irq"),
                "set_irqs_per_s": float(counts.sum()) / span if span and len(counts) else float("nan"),
                "pba_toggles_per_irq": pooled_per_irq(pp, "pba_toggles_per_irq"),
                "us_per_irq": pooled_per_irq(pp, "path_us_per_irq"),
                "background_us_per_irq": pooled_per_irq(pp, "background_us_per_irq"),
                "e2e_p50_us": e2e.get((group.label, variant), float("nan")),
                "lost_events": sum(r.meta.lost_events for r in runs),
                "checks_failed": sum(not c.ok for r in runs for c in r.meta.checks),
                "checks_total": sum(len(r.meta.checks) for r in runs),
            }
            for prefix, metric in (("us", "us_per_irq"), ("latency", "latency_ns")):
                hit = ab[(ab["group"] == group.label) & (ab["variant"] == variant) & (ab["metric"] == metric)]
                ok = hit[hit["available"].astype(bool)] if len(hit) else hit
                rec = ok.iloc[0] if len(ok) else None
                for c in AB_FIELDS:
                    row[f"{prefix}_{c}"] = _ab_field(rec, c)
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def df_thin_comparisons(cmp: Comparison) -> pd.DataFrame:
    """The available A/B rows of :meth:`Comparison.ab` with too few runs for an interval.

    Fewer than :data:`~vfiobench.analysis.inference.MIN_RUNS` runs on a side: the row has a point
    estimate only (no interval, no p-value, never "significant").

    Returns:
        The rows of :meth:`Comparison.ab` (``available`` true) whose ``enough_runs`` is false.
    """
    ab = cmp.ab()
    if ab.empty or "enough_runs" not in ab.columns:
        return ab.iloc[0:0]
    ok = ab[ab["available"].astype(bool)]
    return ok[~ok["enough_runs"].astype(bool)]


def df_group_per_interrupt(cmp: Comparison) -> pd.DataFrame:
    """Per-interrupt counts and exclusive µs per (group, variant), pooled over the probed runs.

    Returns:
        ``[group, variant, probed_runs, interrupts, <GROUP_PER_IRQ_COLUMNS>, events_outside,
        lost_events]``; values are sums over runs divided by delivered interrupts; groups and
        variants in page order.
    """
    df = cmp.per_interrupt()
    probed = df[df["kind"] == "probed"] if "kind" in df.columns else df.iloc[0:0]
    rows = []
    order = {g.label: i for i, g in enumerate(cmp.groups)}
    rank = {v: i for i, v in enumerate(cmp.variants)}
    groups = sorted(
        probed.groupby(["group", "variant"], sort=False),
        key=lambda kv: (order[str(kv[0][0])], rank[str(kv[0][1])]),
    )
    for (group, variant), g in groups:
        row: dict[str, object] = {
            "group": group,
            "variant": variant,
            "probed_runs": len(g),
            "interrupts": int(g["interrupts"].sum()),
        }
        row |= {c: pooled_per_irq(g, c) for c in GROUP_PER_IRQ_COLUMNS}
        row["events_outside"] = int(g["events_outside"].fillna(0).sum()) if "events_outside" in g else 0
        row["lost_events"] = int(g["lost_events"].sum())
        rows.append(row)
    cols = [
        "group",
        "variant",
        "probed_runs",
        "interrupts",
        *GROUP_PER_IRQ_COLUMNS,
        "events_outside",
        "lost_events",
    ]
    return pd.DataFrame(rows, columns=cols)
