"""The compare page's sections, cell by cell: per-interrupt cost, latency, overhead, spread, rates.

Every function takes a :class:`~vfiobench.notebook.cells.Comparison` and shows one table over all
cells (a ``cell`` column) or one block per cell; a variant keeps its colour in every figure.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from vfiobench.notebook.cells import Cell, Comparison
from vfiobench.notebook.display import note, show, show_html, table_html
from vfiobench.notebook.headline import pooled_per_irq

#: Per-interrupt columns of :func:`df_cell_per_interrupt`, pooled over probed runs, with labels.
CELL_PER_IRQ_COLUMNS: dict[str, str] = {
    "set_irqs_per_irq": "SET_IRQS / irq",
    "set_vector_signal_per_irq": "set_vector_signal / irq",
    "pba_toggles_per_irq": "PBA toggles / irq",
    "commits_per_irq": "commits / irq",
    "set_irqs_excl_us_per_irq": "SET_IRQS µs / irq (excl.)",
    "set_vector_signal_excl_us_per_irq": "set_vector_signal µs / irq (excl.)",
    "pba_toggle_excl_us_per_irq": "PBA toggle µs / irq (excl.)",
    "region_toggle_excl_us_per_irq": "other toggles µs / irq (excl.)",
    "commit_excl_us_per_irq": "commit µs / irq (excl.)",
    "total_us_per_irq": "total µs / irq",
}


def variant_colors(cmp: Comparison) -> dict[str, str]:
    """One colour per variant, the same in every figure of the page."""
    from vfiobench.plots import color_map

    return color_map(cmp.variants)


def _h3(text: str) -> None:
    show_html(f"<h3>{html.escape(text)}</h3>")


def df_cell_per_interrupt(cmp: Comparison) -> pd.DataFrame:
    """Per-interrupt counts and exclusive µs per (cell, variant), pooled over the probed runs.

    Returns:
        ``[cell, variant, probed_runs, interrupts, <keys of CELL_PER_IRQ_COLUMNS>, events_outside,
        lost_events]``; values are sums over runs divided by delivered interrupts.
    """
    df = cmp.per_interrupt()
    probed = df[df["kind"] == "probed"] if "kind" in df.columns else df.iloc[0:0]
    rows = []
    order = {c.label: i for i, c in enumerate(cmp.cells)}
    rank = {v: i for i, v in enumerate(cmp.variants)}
    groups = sorted(
        probed.groupby(["cell", "variant"], sort=False),
        key=lambda kv: (order[str(kv[0][0])], rank[str(kv[0][1])]),
    )
    for (cell, variant), g in groups:
        row: dict[str, object] = {
            "cell": cell,
            "variant": variant,
            "probed_runs": len(g),
            "interrupts": int(g["interrupts"].sum()),
        }
        row |= {c: pooled_per_irq(g, c) for c in CELL_PER_IRQ_COLUMNS}
        row["events_outside"] = int(g["events_outside"].fillna(0).sum()) if "events_outside" in g else 0
        row["lost_events"] = int(g["lost_events"].sum())
        rows.append(row)
    cols = [
        "cell",
        "variant",
        "probed_runs",
        "interrupts",
        *CELL_PER_IRQ_COLUMNS,
        "events_outside",
        "lost_events",
    ]
    return pd.DataFrame(rows, columns=cols)


def show_cell_per_interrupt(cmp: Comparison) -> None:
    """Per-interrupt table over all cells, the per-run table folded, and a stacked cost chart per cell."""
    from vfiobench.analysis import df_cost_breakdown
    from vfiobench.analysis.per_interrupt import OPERATION_LABELS, OPERATIONS
    from vfiobench.plots import color_map, plot_cost_breakdown

    op_colors = color_map([OPERATION_LABELS[name] for name, _ in OPERATIONS])  # one colour per operation

    table = df_cell_per_interrupt(cmp)
    keys = ["cell", "variant", "probed_runs", "interrupts"]
    counts = [c for c in CELL_PER_IRQ_COLUMNS if c.endswith("_per_irq") and "_us_" not in c]
    times = [c for c in CELL_PER_IRQ_COLUMNS if c not in counts]
    show_html(
        table_html(
            table[[*keys, *counts, "events_outside", "lost_events"]].rename(columns=CELL_PER_IRQ_COLUMNS),
            caption="calls per delivered interrupt, pooled over each cell's probed runs "
            "(sum over runs ÷ delivered interrupts)",
            empty="No probed runs: no per-interrupt accounting.",
        )
        + table_html(
            table[["cell", "variant", *times]].rename(columns=CELL_PER_IRQ_COLUMNS),
            caption="µs per delivered interrupt in each operation, exclusive (nested calls subtracted: "
            "the columns add up to the total), pooled over the probed runs",
            empty="",
        )
    )
    per_run = cmp.per_interrupt()
    per_run = per_run[per_run["kind"] == "probed"]  # probe-free runs have no probe tables
    keep = [
        "cell",
        "run_id",
        "variant",
        "kind",
        "interrupts",
        *[c for c in CELL_PER_IRQ_COLUMNS if c in per_run],
    ]
    show_html(
        f"<details><summary>per probed run ({len(per_run)} runs)</summary>"
        f"{table_html(per_run[keep].rename(columns=CELL_PER_IRQ_COLUMNS))}</details>"
    )
    if table.empty:
        return
    for cell in cmp.cells:
        mine = per_run[per_run["cell"] == cell.label]
        mine = mine.iloc[
            mine["variant"].map({v: i for i, v in enumerate(cmp.variants)}).argsort(kind="stable")
        ]
        if mine.empty:
            continue
        breakdown = df_cost_breakdown(mine)
        if breakdown.empty:
            continue
        fig = plot_cost_breakdown(
            breakdown, title=f"{cell.label}: µs per delivered interrupt, by operation", colors=op_colors
        )
        fig.xaxis.major_label_orientation = 0.35
        show(fig)


#: Width of the per-cell distribution figures (their legend of five variants sits beside the plot).
WIDE = 1000


def _with_counts(
    df: pd.DataFrame, order: list[str], colors: dict[str, str]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """``df`` in page order with each variant relabelled ``"<variant> (n=<samples>)"``, and their colours."""
    bucketed = {"bucket", "count"} <= set(df.columns) and "ts_ns" not in df.columns
    counts = df.groupby("variant", sort=False)["count"].sum() if bucketed else df.groupby("variant").size()
    rank = {v: i for i, v in enumerate(order)}
    df = df.iloc[df["variant"].map(rank).fillna(len(rank)).argsort(kind="stable")]
    labels = {v: f"{v} (n={int(counts.get(v, 0)):,})" for v in df["variant"].unique()}
    return df.assign(variant=df["variant"].map(labels)), {labels[v]: colors.get(v, "gray") for v in labels}


def _pba_only(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["is_pba"].astype(bool)] if "is_pba" in df.columns else df


def show_cell_latency(cmp: Comparison) -> None:
    """Per cell: percentiles of every probed operation and of the interrupt, then the distributions.

    Histograms of ``memory_region_set_enabled`` on the PBA and of ``vfio_msi_set_vector_signal``
    (probed runs, variants overlaid), and the end-to-end latency histogram and CDF of the
    probe-free runs.
    """
    from vfiobench.analysis import df_histograms, schema
    from vfiobench.notebook.sections import df_operation_latency
    from vfiobench.plots import plot_latency_histogram

    colors = variant_colors(cmp)
    for cell in cmp.cells:
        _h3(cell.label)
        lat = df_operation_latency(cell.runs)
        ops = {op: i for i, op in enumerate(dict.fromkeys(lat["operation"]))}
        rank = {v: i for i, v in enumerate(cmp.variants)}
        lat = lat.sort_values(
            ["operation", "variant", "kind"],
            key=lambda c: c.map(ops) if c.name == "operation" else c.map(rank) if c.name == "variant" else c,
            kind="stable",
        )
        show_html(
            table_html(
                lat,
                caption="call durations (probed runs) and interrupt latency by run kind, µs",
                empty="No latency data in this cell.",
            )
        )
        for table, label in (
            (schema.PBA_TOGGLE, "memory_region_set_enabled on the PBA (pba_toggle)"),
            (schema.SET_VECTOR_SIGNAL, "vfio_msi_set_vector_signal (set_vector_signal)"),
        ):
            df = cell.runs.table(table)
            if table == schema.PBA_TOGGLE and not df.empty:
                df = _pba_only(df)
            if df.empty or not ({"dur_ns"} <= set(df.columns) or {"bucket", "count"} <= set(df.columns)):
                note(f"{cell.label}: no {label} calls recorded.")
                continue
            labelled, label_colors = _with_counts(df, cmp.variants, colors)
            fig = plot_latency_histogram(
                df_histograms(labelled, by=("variant",)),
                by="variant",
                title=f"{cell.label}: {label}, probed runs",
                colors=label_colors,
            )
            fig.width = WIDE
            show(fig)
        _show_e2e(cell, cmp.variants, colors)


def _show_e2e(cell: Cell, order: list[str], colors: dict[str, str]) -> None:
    from vfiobench.analysis import df_cdf, df_histograms, schema
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    free = cell.runs.filter(kind="probe-free")
    w = free.table(schema.WORKLOAD)
    if w.empty or "latency_ns" not in w.columns:
        note(f"{cell.label}: no probe-free runs with a workload table: no end-to-end latency.")
        return
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    title = f"{cell.label}: end-to-end interrupt latency, probe-free runs"
    labelled, label_colors = _with_counts(w, order, colors)
    hist = plot_latency_histogram(
        df_histograms(labelled, value="latency_ns", by=("variant",)), title=title, colors=label_colors
    )
    cdf = plot_cdf(
        df_cdf(labelled, value="latency_ns", by=("variant",)), title=title + " (CDF)", colors=label_colors
    )
    for fig in (hist, cdf):
        fig.width = WIDE
        show(fig)


def df_cell_overhead(cmp: Comparison) -> pd.DataFrame:
    """Probe overhead per (cell, variant): median interrupt latency probed vs probe-free, lost events.

    Returns:
        ``[cell, variant, probed_p50_us, probe_free_p50_us, overhead_ratio, probed_runs,
        probe_free_runs, events, lost, lost_pct]`` (``events``/``lost`` summed over the probes of
        the probed runs).
    """
    from vfiobench.notebook.sections import df_probe_overhead

    parts = []
    for cell in cmp.cells:
        df = df_probe_overhead(cell.runs)
        df = df.set_index("variant").loc[[v for v in cmp.variants if v in set(df["variant"])]].reset_index()
        lost, events = [], []
        for v in df["variant"]:
            runs = [r for r in cell.runs if r.variant == v]
            events.append(sum(p.events for r in runs for p in r.meta.probes.values()))
            lost.append(sum(p.lost for r in runs for p in r.meta.probes.values()))
        df = df.assign(events=events, lost=lost)
        total = df["events"] + df["lost"]
        df["lost_pct"] = (100.0 * df["lost"] / total.where(total > 0)).fillna(0.0)
        df.insert(0, "cell", cell.label)
        parts.append(df)
    cols = [
        "cell", "variant", "probed_p50_us", "probe_free_p50_us", "overhead_ratio", "probed_runs",
        "probe_free_runs", "events", "lost", "lost_pct",
    ]  # fmt: skip
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def show_cell_overhead(cmp: Comparison) -> None:
    """Display :func:`df_cell_overhead`; lost events in red when any."""
    df = df_cell_overhead(cmp)
    lost = int(df["lost"].sum()) if len(df) else 0
    if lost:
        show_html(
            f'<p class="vfb-bad">{lost:,} probe events lost: counts in those cells are lower bounds.</p>'
        )
    else:
        show_html('<p class="vfb-good">No probe events lost in any cell.</p>')
    show_html(
        table_html(
            df,
            caption="median interrupt latency with and without probes "
            "(overhead_ratio = probed ÷ probe-free), and probe events kept/lost in the probed runs",
            empty="No workload latency in these runs: probe overhead cannot be shown.",
        )
    )


def show_cell_repetitions(cmp: Comparison, metric: str) -> None:
    """Per-run statistic of ``metric`` in every cell: a table (folded) and one dot per run."""
    from vfiobench.analysis import df_repetitions
    from vfiobench.errors import AnalysisError
    from vfiobench.plots import plot_repetitions

    parts = []
    for cell in cmp.cells:
        try:
            reps = df_repetitions(cell.runs, metric)
        except AnalysisError:
            continue
        reps.insert(0, "cell", cell.label)
        parts.append(reps)
    if not parts:
        note(f"{metric}: no samples in any cell.")
        return
    reps = pd.concat(parts, ignore_index=True)
    scale, unit = (1e-3, "µs") if metric.endswith("_ns") else (1.0, "µs" if "us" in metric else "")
    shown = reps.copy()
    for col in ("median", "mean", "p90"):
        shown[col] = shown[col] * scale
    show_html(
        f"<details><summary>{html.escape(metric)} per run ({len(reps)} runs, {unit})</summary>"
        f"{table_html(shown)}</details>"
    )
    order = {v: i for i, v in enumerate(cmp.variants)}
    figs = []
    for cell in cmp.cells:
        mine = reps[reps["cell"] == cell.label]
        if mine.empty:
            continue
        mine = mine.iloc[mine["variant"].map(order).argsort(kind="stable")]
        fig = plot_repetitions(
            mine, "median", title=f"{cell.label}: {metric} median per run", unit_scale=scale, unit=unit
        )
        fig.width, fig.height = 560, 300
        fig.xaxis.major_label_orientation = 0.35
        figs.append(fig)
    if len(figs) == 1:
        show(figs[0])
    else:
        from bokeh.layouts import gridplot

        children: list[Any] = list(figs)
        show(gridplot(children, ncols=2, toolbar_location="right"))


def show_cell_rates(cmp: Comparison, bin_s: float = 0.25) -> None:
    """Probe event rates over time, per cell, for the first probed run of each variant."""
    from vfiobench.notebook.sections import show_rates

    for cell in cmp.cells:
        if not any(r.meta.probes for r in cell.runs):
            continue
        _h3(cell.label)
        show_rates(cell.runs, bin_s=bin_s)


def df_cell_checks(cmp: Comparison) -> pd.DataFrame:
    """Ground-truth checks per (cell, variant): how many ran, passed and failed, and which failed.

    Returns:
        ``[cell, variant, runs, checks, passed, failed, failed_checks]``, cells and variants in
        page order; ``failed_checks`` names each failed check with its run count (``""`` if none).
    """
    from vfiobench.notebook.runinfo import df_checks

    rank = {v: i for i, v in enumerate(cmp.variants)}
    rows = []
    for cell in cmp.cells:
        df = df_checks(cell.runs)
        if df.empty:
            continue
        ok = df["ok"].astype(bool)
        for variant, g in sorted(df.groupby("variant", sort=False), key=lambda kv: rank.get(str(kv[0]), 0)):
            bad = g[~ok.loc[g.index]]
            names = bad.groupby("check", sort=False).size()
            rows.append(
                {
                    "cell": cell.label,
                    "variant": variant,
                    "runs": int(g["run_id"].nunique()),
                    "checks": len(g),
                    "passed": int(ok.loc[g.index].sum()),
                    "failed": len(bad),
                    "failed_checks": "; ".join(f"{n} ({c} runs)" for n, c in names.items()),
                }
            )
    cols = ["cell", "variant", "runs", "checks", "passed", "failed", "failed_checks"]
    return pd.DataFrame(rows, columns=cols)


def show_cell_checks(cmp: Comparison) -> None:
    """Ground-truth checks: verdict line, the failed ones, counts per cell and variant, all rows folded."""
    from vfiobench.notebook.runinfo import df_checks

    every = df_checks(cmp.runs)
    if every.empty:
        show_html(
            '<p class="vfb-note">No ground-truth checks recorded: nothing cross-checks these probe '
            "counts (lab runs check them against QEMU's trace log and the workload's own counters).</p>"
        )
        return
    failed = int((~every["ok"].astype(bool)).sum())
    verdict = (
        f'<p class="vfb-bad">{failed} of {len(every)} ground-truth checks FAILED.</p>'
        if failed
        else f'<p class="vfb-good">All {len(every)} ground-truth checks passed.</p>'
    )
    bad = every[~every["ok"].astype(bool)]
    parts = [verdict]
    if failed:
        parts.append(table_html(bad, caption="failed checks"))
    summary = df_cell_checks(cmp)
    parts.append(table_html(summary, caption="checks per cell and variant, over their runs"))
    parts.append(
        f"<details><summary>every check of every run ({len(every)} rows)</summary>"
        f"{table_html(every)}</details>"
    )
    show_html("".join(parts))
