"""Probe overhead: how much the probes slow the path they measure, and the events they lost.

Probed runs give counts and per-operation times; probe-free runs of the same variant give the
end-to-end latency without probes. The ratio of their medians is the factor by which the probed
numbers are inflated.
"""

from __future__ import annotations

import pandas as pd

from vfiobench import schema
from vfiobench.analysis.compare import Comparison
from vfiobench.store import RunSet


def df_probe_overhead(runset: RunSet) -> pd.DataFrame:
    """Median interrupt latency of probed vs probe-free runs of each variant, and their ratio.

    Returns:
        ``[variant, probed_p50_us, probe_free_p50_us, overhead_ratio, probed_runs, probe_free_runs]``;
        NaN where a variant lacks runs of one kind.
    """
    from vfiobench.analysis.latency import df_latency_summary

    w = runset.table(schema.WORKLOAD)
    cols = [
        "variant",
        "probed_p50_us",
        "probe_free_p50_us",
        "overhead_ratio",
        "probed_runs",
        "probe_free_runs",
    ]
    if w.empty or "latency_ns" not in w.columns:
        return pd.DataFrame(columns=cols)
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    kinds = {r.run_id: r.meta.kind for r in runset}
    w = w.assign(kind=w["run_id"].map(kinds))
    s = df_latency_summary(w, value="latency_ns", by=("variant", "kind"))
    rows = []
    for v in runset.variants:
        p50 = {k: s.loc[(s["variant"] == v) & (s["kind"] == k), "p50_ns"] for k in ("probed", "probe-free")}
        a = float(p50["probed"].iloc[0]) / 1e3 if len(p50["probed"]) else float("nan")
        b = float(p50["probe-free"].iloc[0]) / 1e3 if len(p50["probe-free"]) else float("nan")
        n = {
            k: sum(1 for r in runset if r.variant == v and r.meta.kind == k) for k in ("probed", "probe-free")
        }
        rows.append([v, a, b, a / b if b else float("nan"), n["probed"], n["probe-free"]])
    return pd.DataFrame(rows, columns=cols)


def df_group_overhead(cmp: Comparison) -> pd.DataFrame:
    """Probe overhead per (group, variant): median interrupt latency probed vs probe-free, lost events.

    Returns:
        ``[group, variant, probed_p50_us, probe_free_p50_us, overhead_ratio, probed_runs,
        probe_free_runs, events, lost, lost_pct]`` (``events``/``lost`` summed over the probes of
        the probed runs).
    """
    parts = []
    for group in cmp.groups:
        df = df_probe_overhead(group.runs)
        df = df.set_index("variant").loc[[v for v in cmp.variants if v in set(df["variant"])]].reset_index()
        lost, events = [], []
        for v in df["variant"]:
            runs = [r for r in group.runs if r.variant == v]
            events.append(sum(p.events for r in runs for p in r.meta.probes.values()))
            lost.append(sum(p.lost for r in runs for p in r.meta.probes.values()))
        df = df.assign(events=events, lost=lost)
        total = df["events"] + df["lost"]
        df["lost_pct"] = (100.0 * df["lost"] / total.where(total > 0)).fillna(0.0)
        df.insert(0, "group", group.label)
        parts.append(df)
    cols = [
        "group", "variant", "probed_p50_us", "probe_free_p50_us", "overhead_ratio", "probed_runs",
        "probe_free_runs", "events", "lost", "lost_pct",
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)
