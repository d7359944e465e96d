"""Analysis sections of the pages: latency, per-interrupt cost, A/B verdicts, spread, overhead, plots."""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from vfiobench.notebook.display import VERDICTS_MARKER, fmt_number, kv_html, note, show, show_html, show_table
from vfiobench.store import Run, RunSet


def _as_runset(target: Run | RunSet) -> RunSet:
    return RunSet([target]) if isinstance(target, Run) else target


def in_us(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` with every ``*_ns`` column converted to µs and renamed ``*_us`` (for reading)."""
    out = df.copy()
    for col in [c for c in df.columns if str(c).endswith("_ns")]:
        out[str(col).removesuffix("_ns") + "_us"] = out.pop(col).astype("float64") / 1e3
    return out


def df_operation_latency(target: Run | RunSet) -> pd.DataFrame:
    """Latency summary of every probed operation, and of the interrupt itself (workload table).

    Probe tables are summarised per variant over their calls (``dur_ns``); the workload's
    end-to-end ``latency_ns`` per variant and run kind, since probes inflate it.

    Returns:
        ``[operation, variant, kind, count, mean_us, p50_us, p90_us, p99_us, p999_us, max_us]``
        (``kind`` only set for the interrupt latency rows).
    """
    from vfiobench.analysis import df_latency_summary, schema

    runset = _as_runset(target)
    parts = []
    for name in schema.PROBE_TABLES:
        df = runset.table(name)
        if df.empty or not ("dur_ns" in df.columns or {"bucket", "count"} <= set(df.columns)):
            continue
        s = df_latency_summary(df, value="dur_ns", by=("variant",))
        s.insert(0, "operation", schema.OPERATION_LABELS.get(name, name))
        s.insert(2, "kind", "")
        parts.append(s)
    w = runset.table(schema.WORKLOAD)
    if not w.empty and "latency_ns" in w.columns:
        if "delivered" in w.columns:
            w = w[w["delivered"].astype(bool)]
        kinds = pd.Series({r.run_id: r.meta.kind for r in runset}, dtype=object)
        w = w.assign(kind=w["run_id"].map(kinds))
        s = df_latency_summary(w, value="latency_ns", by=("variant", "kind"))
        s.insert(0, "operation", "interrupt latency (end to end)")
        parts.append(s)
    cols = [
        "operation",
        "variant",
        "kind",
        "count",
        "mean_ns",
        "p50_ns",
        "p90_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
    ]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return in_us(out[cols])


def show_latency(target: Run | RunSet) -> None:
    """Display :func:`df_operation_latency` (µs); a run page drops the variant column."""
    df = df_operation_latency(target)
    if isinstance(target, Run):
        df = df.drop(columns=["variant"])
    show_table(df, empty="No latency data: this run has neither probe tables nor a workload table.")


#: Columns of :func:`vfiobench.analysis.df_per_interrupt` shown on the pages, with their labels.
PER_INTERRUPT_COLUMNS: dict[str, str] = {
    "interrupts": "delivered interrupts",
    "set_irqs_per_irq": "SET_IRQS ioctls / irq",
    "set_vector_signal_per_irq": "vfio_msi_set_vector_signal / irq",
    "pba_toggles_per_irq": "PBA toggles / irq",
    "commits_per_irq": "memory transaction commits / irq",
    "set_irqs_us_per_irq": "SET_IRQS µs / irq (incl.)",
    "set_vector_signal_us_per_irq": "set_vector_signal µs / irq (incl.)",
    "pba_toggle_us_per_irq": "PBA toggle µs / irq (incl.)",
    "commit_us_per_irq": "commit µs / irq (incl.)",
    "total_us_per_irq": "total µs / irq in probed calls (excl.)",
    "events_outside": "probe events outside the workload window",
    "lost_events": "lost events",
}


def df_per_interrupt_view(target: Run | RunSet) -> pd.DataFrame:
    """The per-interrupt accounting, one row per run, with readable column names.

    Returns:
        ``[run_id, variant, kind, <labels of PER_INTERRUPT_COLUMNS present>]``.
    """
    from vfiobench.analysis import df_per_interrupt

    df = df_per_interrupt(_as_runset(target))
    keep = [c for c in PER_INTERRUPT_COLUMNS if c in df.columns]
    return df[["run_id", "variant", "kind", *keep]].rename(columns=PER_INTERRUPT_COLUMNS)


def show_per_interrupt(target: Run | RunSet) -> None:
    """Display per-interrupt counts and costs (a run page shows one column of values)."""
    from vfiobench.errors import AnalysisError

    try:
        df = df_per_interrupt_view(target)
    except AnalysisError as e:
        note(f"Per-interrupt accounting not available: {e}")
        return
    if isinstance(target, RunSet):
        free = df[df["kind"] == "probe-free"]
        df = df[df["kind"] != "probe-free"]
        if len(free):
            note(f"{len(free)} probe-free runs left out: they have no probe tables (see Probe overhead).")
    if isinstance(target, Run):
        row = df.drop(columns=["run_id", "variant", "kind"]).iloc[0]
        show_html(
            kv_html((str(k), fmt_number(v.item() if hasattr(v, "item") else v)) for k, v in row.items())
        )
    else:
        show_table(df)


def df_verdicts(
    runset: RunSet, baseline: str, metrics: Sequence[str] = ("us_per_irq", "latency_ns")
) -> pd.DataFrame:
    """A/B results of every variant against ``baseline`` on each metric that has samples.

    Returns:
        The rows of :func:`vfiobench.analysis.df_ab` for every metric, concatenated, plus
        ``available`` (False with the reason in ``verdict`` when a metric has no samples).
    """
    from vfiobench.analysis import df_ab
    from vfiobench.errors import AnalysisError

    parts = []
    for metric in metrics:
        try:
            parts.append(df_ab(runset, metric, baseline=baseline).assign(available=True))
        except AnalysisError as e:
            parts.append(
                pd.DataFrame(
                    [{"metric": metric, "baseline": baseline, "verdict": str(e), "available": False}]
                )
            )
    return pd.concat(parts, ignore_index=True)


def show_verdicts(
    runset: RunSet, baseline: str, metrics: Sequence[str] = ("us_per_irq", "latency_ns")
) -> None:
    """Display one verdict line per (variant, metric) and the table of ratios behind them."""
    df = df_verdicts(runset, baseline, metrics)
    items, lines = [], []
    for rec in df.to_dict("records"):
        cls = "vfb-good" if rec.get("available") and rec.get("significant") else "vfb-note"
        text = (
            rec["verdict"] if rec.get("available") else f"{rec['metric']}: not available ({rec['verdict']})"
        )
        lines.append(str(text))
        items.append(f'<li class="{cls}">{html.escape(str(text))}</li>')
    # the metadata lets vfiobench.report put the verdicts on the index page
    show_html(f'<ul class="vfb-verdicts">{"".join(items)}</ul>', metadata={VERDICTS_MARKER: lines})
    ok = df[df["available"].astype(bool)]
    if not ok.empty:
        cols = [
            "variant", "metric", "statistic", "unit", "stat_baseline", "stat_variant", "ratio",
            "ci_low", "ci_high", "p_value", "runs_baseline", "runs_variant", "n_variant",
        ]  # fmt: skip
        in_ns = ok["metric"].astype(str).str.endswith("_ns")
        table = ok.assign(
            unit=["µs" if ns or "us" in str(m) else "" for ns, m in zip(in_ns, ok["metric"], strict=True)]
        )
        for col in ("stat_baseline", "stat_variant"):
            table[col] = table[col].astype("float64").where(~in_ns, table[col].astype("float64") / 1e3)
        show_table(
            table[cols],
            caption=f"baseline: {baseline}; ratio = baseline / variant; CI: cluster bootstrap over runs; "
            "p: Mann–Whitney U",
        )
        from vfiobench.plots import plot_ab_forest

        show(plot_ab_forest(ok.reset_index(drop=True)))


def show_repetitions(runset: RunSet, metric: str) -> None:
    """Display per-run statistics of ``metric`` so run-to-run spread is visible."""
    from vfiobench.analysis import df_repetitions
    from vfiobench.errors import AnalysisError
    from vfiobench.plots import plot_repetitions

    try:
        reps = df_repetitions(runset, metric)
    except AnalysisError as e:
        note(f"{metric}: not available ({e})")
        return
    scale, unit = (1e-3, "µs") if metric.endswith("_ns") else (1.0, "µs" if "us" in metric else "")
    shown = reps.copy()
    for col in ("median", "mean", "p90"):
        shown[col] = shown[col] * scale
    show_table(shown, caption=f"{metric} per run ({unit})" if unit else f"{metric} per run")
    show(plot_repetitions(reps, "median", title=f"{metric}: median per run", unit_scale=scale, unit=unit))


def as_runset(target: Run | RunSet) -> RunSet:
    """A run set of one run (so set-wide analysis functions apply to a run page too)."""
    return _as_runset(target)


def df_calls(target: Run | RunSet) -> pd.DataFrame:
    """Every streamed probe call of the runs in one long table.

    Tables recorded in histogram mode (no ``ts_ns``/``dur_ns``) are left out.

    Returns:
        ``[run_id, variant, operation, ts_ns, dur_ns]``; ``operation`` the operation's display name.
    """
    from vfiobench.analysis import schema

    runset = _as_runset(target)
    parts = []
    for name in schema.PROBE_TABLES:
        df = runset.table(name)
        if df.empty or not {"ts_ns", "dur_ns"} <= set(df.columns):
            continue
        df = df[["run_id", "variant", "ts_ns", "dur_ns"]]
        parts.append(df.assign(operation=schema.OPERATION_LABELS.get(name, name)))
    cols = ["run_id", "variant", "operation", "ts_ns", "dur_ns"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def show_operation_plots(run: Run) -> None:
    """A run's latency histogram and CDF, one layer per probed operation (log µs axis)."""
    from vfiobench.analysis import df_cdf, df_histograms
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    calls = df_calls(run)
    if calls.empty:
        note("No probe calls recorded (probe-free run): no per-operation distributions.")
        return
    show(
        plot_latency_histogram(
            df_histograms(calls, by=("operation",)), by="operation", title="Call duration by operation"
        )
    )
    show(plot_cdf(df_cdf(calls, by=("operation",)), by="operation", title="Call duration CDF by operation"))


def show_interrupt_latency_plots(target: Run | RunSet) -> None:
    """Distribution of the end-to-end interrupt latency (workload table), per variant and run kind."""
    from vfiobench.analysis import df_cdf, df_histograms, schema
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    runset = _as_runset(target)
    w = runset.table(schema.WORKLOAD)
    if w.empty or "latency_ns" not in w.columns:
        note("No workload table with latency_ns: no interrupt-latency distribution.")
        return
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    kinds = {r.run_id: r.meta.kind for r in runset}
    w = w.assign(kind=w["run_id"].map(kinds))
    show(
        plot_latency_histogram(
            df_histograms(w, value="latency_ns", by=("variant", "kind")),
            by=("variant", "kind"),
            title="Interrupt latency (trigger to delivery)",
        )
    )
    if isinstance(target, RunSet):
        show(
            plot_cdf(
                df_cdf(w, value="latency_ns", by=("variant", "kind")),
                by=("variant", "kind"),
                title="Interrupt latency CDF (probed runs carry probe overhead)",
            )
        )


def show_operation_cdfs(runset: RunSet) -> None:
    """One CDF per probed operation, variants overlaid (all runs of a variant merged)."""
    from vfiobench.analysis import df_cdf
    from vfiobench.plots import plot_cdf

    calls = df_calls(runset)
    if calls.empty:
        note("No probe calls recorded in these runs.")
        return
    for op in calls["operation"].unique():
        show(
            plot_cdf(
                df_cdf(calls[calls["operation"] == op], by=("variant",)), title=f"{op}: call duration CDF"
            )
        )


def show_rates(target: Run | RunSet, bin_s: float = 0.5) -> None:
    """Probe event rates over time; a compare page shows the first probed run of each variant."""
    from vfiobench.analysis import df_probe_rates
    from vfiobench.plots import plot_rate_timeline

    runset = _as_runset(target)
    probed = [r for r in runset if r.meta.probes]
    if isinstance(target, RunSet):
        probed = [next(r for r in probed if r.variant == v) for v in dict.fromkeys(r.variant for r in probed)]
    rates = df_probe_rates(RunSet(probed), bin_s=bin_s)
    if rates.empty:
        note("No timestamped probe events: no rate timeline.")
        return
    by = ("probe",) if isinstance(target, Run) else ("probe", "variant")
    show(plot_rate_timeline(rates, by=by, title=f"Probe events per second ({bin_s:g} s bins)"))


def show_cost_breakdown(target: Run | RunSet) -> None:
    """Stacked bars of exclusive µs per delivered interrupt by operation (probed runs)."""
    from vfiobench.analysis import df_cost_breakdown, df_per_interrupt
    from vfiobench.errors import AnalysisError
    from vfiobench.plots import plot_cost_breakdown

    try:
        breakdown = df_cost_breakdown(df_per_interrupt(_as_runset(target)))
    except AnalysisError as e:
        note(f"Cost breakdown not available: {e}")
        return
    if breakdown.empty:
        note("No probed runs: no per-operation cost breakdown.")
        return
    show(plot_cost_breakdown(breakdown))


def df_probe_overhead(runset: RunSet) -> pd.DataFrame:
    """Median interrupt latency of probed vs probe-free runs of each variant, and their ratio.

    Returns:
        ``[variant, probed_p50_us, probe_free_p50_us, overhead_ratio, probed_runs, probe_free_runs]``;
        NaN where a variant lacks runs of one kind.
    """
    from vfiobench.analysis import df_latency_summary, schema

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


def show_probe_overhead(runset: RunSet) -> None:
    """Display :func:`df_probe_overhead`, the factor by which probes slow the measured path."""
    show_table(
        df_probe_overhead(runset),
        caption="median interrupt latency with and without probes (overhead_ratio = probed / probe-free)",
        empty="No workload latency in these runs: probe overhead cannot be shown.",
    )
