"""The analysis sections of a run page and of a run set: latency, costs, verdicts, spread, overhead.

Per-interrupt cost, A/B verdicts, run-to-run spread, probe overhead and rates, too. Display only:
the tables come from :mod:`vfiobench.analysis`, the figures from :mod:`vfiobench.plots`.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

import pandas as pd

from vfiobench.analysis.calls import as_runset, df_calls, df_delivered, df_operation_latency
from vfiobench.analysis.compare import AB_METRICS, df_verdicts
from vfiobench.analysis.inference import MIN_RUNS
from vfiobench.analysis.overhead import df_probe_overhead
from vfiobench.report.markers import VERDICTS_MARKER
from vfiobench.report.pages.display import fmt_number, kv_html, note, show, show_html, show_table
from vfiobench.store import Run, RunSet


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


def per_interrupt_view(target: Run | RunSet) -> pd.DataFrame:
    """The per-interrupt accounting, one row per run, with readable column names.

    Returns:
        ``[run_id, variant, kind, <labels of PER_INTERRUPT_COLUMNS present>]``.
    """
    from vfiobench.analysis import df_per_interrupt

    df = df_per_interrupt(as_runset(target))
    keep = [c for c in PER_INTERRUPT_COLUMNS if c in df.columns]
    return df[["run_id", "variant", "kind", *keep]].rename(columns=PER_INTERRUPT_COLUMNS)


def show_per_interrupt(target: Run | RunSet) -> None:
    """Display per-interrupt counts and costs (a run page shows one column of values)."""
    from vfiobench.errors import AnalysisError

    try:
        df = per_interrupt_view(target)
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


def show_verdicts(runset: RunSet, baseline: str, metrics: Sequence[str] = AB_METRICS) -> None:
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
            "variant", "metric", "statistic", "unit", "stat_baseline", "stat_variant", "kind", "ratio",
            "ci_low", "ci_high", "difference", "diff_low", "diff_high", "p_value", "runs_baseline",
            "runs_variant", "n_variant",
        ]  # fmt: skip
        in_ns = ok["metric"].astype(str).str.endswith("_ns")
        table = ok.assign(
            unit=["µs" if ns or "us" in str(m) else "" for ns, m in zip(in_ns, ok["metric"], strict=True)]
        )
        for col in ("stat_baseline", "stat_variant"):
            table[col] = table[col].astype("float64").where(~in_ns, table[col].astype("float64") / 1e3)
        stats = "/".join(ok["statistic"].astype(str).unique())
        show_table(
            table[cols],
            caption=f"baseline: {baseline}; each run summarised by one value (its {stats}); "
            "ratio = baseline / variant (geometric means of the per-run values), or difference = baseline "
            "− variant where one side is near zero; 95% interval and p from Welch's t-test over per-run "
            f"values (log values for a ratio); none below {MIN_RUNS} runs a side",
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
    from vfiobench.analysis import df_cdf, df_histograms
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    w = df_delivered(target)
    if "latency_ns" not in w.columns:
        note("No workload table with latency_ns: no interrupt-latency distribution.")
        return
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

    runset = as_runset(target)
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
        breakdown = df_cost_breakdown(df_per_interrupt(as_runset(target)))
    except AnalysisError as e:
        note(f"Cost breakdown not available: {e}")
        return
    if breakdown.empty:
        note("No probed runs: no per-operation cost breakdown.")
        return
    show(plot_cost_breakdown(breakdown))


def show_probe_overhead(runset: RunSet) -> None:
    """Display :func:`df_probe_overhead`, the factor by which probes slow the measured path."""
    show_table(
        df_probe_overhead(runset),
        caption="median interrupt latency with and without probes (overhead_ratio = probed / probe-free)",
        empty="No workload latency in these runs: probe overhead cannot be shown.",
    )
