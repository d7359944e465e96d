"""The compare page's sections, group by group: what is compared, costs, latency, overhead, checks.

Every function takes a :class:`~vfiobench.analysis.compare.Comparison` and shows one table over all
groups (a ``cell`` column: the page calls a group of comparable runs a *cell* of the experiment) or
one block per group; a variant keeps its colour in every figure. The tables are
:mod:`vfiobench.analysis`'s, relabelled for reading.
"""

from __future__ import annotations

import html
from typing import Any

import pandas as pd

from vfiobench.analysis.compare import Comparison, RunGroup, df_group_repetitions, df_groups
from vfiobench.analysis.headline import df_group_per_interrupt
from vfiobench.analysis.overhead import df_group_overhead
from vfiobench.analysis.runinfo import df_checks, df_group_checks
from vfiobench.report.pages.display import note, show, show_html, table_html

#: What the pages call a group of comparable runs (the column label of ``group``).
GROUP_LABEL: dict[str, str] = {"group": "cell"}

#: Per-interrupt columns of :func:`vfiobench.analysis.headline.df_group_per_interrupt`, with labels.
GROUP_PER_IRQ_COLUMNS: dict[str, str] = {
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


def compared_groups_html(cmp: Comparison) -> str:
    """What is compared: the grouping, the groups and their runs, and the warm-ups left out."""
    by = " × ".join(cmp.group_by) if cmp.group_by else "nothing (every run in one group)"
    parts = [
        f"<p>Compared within each cell of <b>{html.escape(by)}</b>: {len(cmp.groups)} "
        f"cell{'s' if len(cmp.groups) != 1 else ''}; runs of different cells are never pooled. "
        f"Baseline: <b>{html.escape(cmp.baseline)}</b>.</p>"
    ]
    if cmp.warmups_excluded:
        parts.append(
            f'<p class="vfb-note">{cmp.warmups_excluded} warm-up runs (labels.warmup) are left out '
            "of every number on this page.</p>"
        )
    missing = [g.label for g in cmp.groups if cmp.baseline not in g.runs.variants]
    if missing:
        parts.append(
            f'<p class="vfb-bad">No {html.escape(cmp.baseline)} runs in: {html.escape(", ".join(missing))}; '
            "their variants have no verdict.</p>"
        )
    if len(cmp.groups) > 1:
        parts.append(table_html(df_groups(cmp).rename(columns=GROUP_LABEL)))
    return "".join(parts)


def show_compared_groups(cmp: Comparison) -> None:
    """Display :func:`compared_groups_html`."""
    show_html(compared_groups_html(cmp))


def show_group_per_interrupt(cmp: Comparison) -> None:
    """Per-interrupt table over all cells, the per-run table folded, and a stacked cost chart per cell."""
    from vfiobench.analysis import df_cost_breakdown
    from vfiobench.analysis.per_interrupt import OPERATION_LABELS, OPERATIONS
    from vfiobench.plots import color_map, plot_cost_breakdown

    op_colors = color_map([OPERATION_LABELS[name] for name, _ in OPERATIONS])  # one colour per operation

    labels = GROUP_LABEL | GROUP_PER_IRQ_COLUMNS
    table = df_group_per_interrupt(cmp)
    keys = ["group", "variant", "probed_runs", "interrupts"]
    counts = [c for c in GROUP_PER_IRQ_COLUMNS if c.endswith("_per_irq") and "_us_" not in c]
    times = [c for c in GROUP_PER_IRQ_COLUMNS if c not in counts]
    show_html(
        table_html(
            table[[*keys, *counts, "events_outside", "lost_events"]].rename(columns=labels),
            caption="calls per delivered interrupt, pooled over each cell's probed runs "
            "(sum over runs ÷ delivered interrupts)",
            empty="No probed runs: no per-interrupt accounting.",
        )
        + table_html(
            table[["group", "variant", *times]].rename(columns=labels),
            caption="µs per delivered interrupt in each operation, exclusive (nested calls subtracted: "
            "the columns add up to the total), pooled over the probed runs",
            empty="",
        )
    )
    per_run = cmp.per_interrupt()
    per_run = per_run[per_run["kind"] == "probed"]  # probe-free runs have no probe tables
    keep = [
        "group",
        "run_id",
        "variant",
        "kind",
        "interrupts",
        *[c for c in GROUP_PER_IRQ_COLUMNS if c in per_run],
    ]
    show_html(
        f"<details><summary>per probed run ({len(per_run)} runs)</summary>"
        f"{table_html(per_run[keep].rename(columns=labels))}</details>"
    )
    if table.empty:
        return
    for group in cmp.groups:
        mine = per_run[per_run["group"] == group.label]
        mine = mine.iloc[
            mine["variant"].map({v: i for i, v in enumerate(cmp.variants)}).argsort(kind="stable")
        ]
        if mine.empty:
            continue
        breakdown = df_cost_breakdown(mine)
        if breakdown.empty:
            continue
        fig = plot_cost_breakdown(
            breakdown, title=f"{group.label}: µs per delivered interrupt, by operation", colors=op_colors
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


def show_group_latency(cmp: Comparison) -> None:
    """Per cell: percentiles of every probed operation and of the interrupt, then the distributions.

    Histograms of ``memory_region_set_enabled`` on the PBA and of ``vfio_msi_set_vector_signal``
    (probed runs, variants overlaid), and the end-to-end latency histogram and CDF of the
    probe-free runs.
    """
    from vfiobench import schema
    from vfiobench.analysis import df_histograms
    from vfiobench.analysis.calls import df_operation_latency
    from vfiobench.plots import plot_latency_histogram

    colors = variant_colors(cmp)
    for group in cmp.groups:
        _h3(group.label)
        lat = df_operation_latency(group.runs)
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
            df = group.runs.table(table)
            if table == schema.PBA_TOGGLE and not df.empty:
                df = _pba_only(df)
            if df.empty or not ({"dur_ns"} <= set(df.columns) or {"bucket", "count"} <= set(df.columns)):
                note(f"{group.label}: no {label} calls recorded.")
                continue
            labelled, label_colors = _with_counts(df, cmp.variants, colors)
            fig = plot_latency_histogram(
                df_histograms(labelled, by=("variant",)),
                by="variant",
                title=f"{group.label}: {label}, probed runs",
                colors=label_colors,
            )
            fig.width = WIDE
            show(fig)
        _show_e2e(group, cmp.variants, colors)


def _show_e2e(group: RunGroup, order: list[str], colors: dict[str, str]) -> None:
    from vfiobench import schema
    from vfiobench.analysis import df_cdf, df_histograms
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    free = group.runs.filter(kind="probe-free")
    w = free.table(schema.WORKLOAD)
    if w.empty or "latency_ns" not in w.columns:
        note(f"{group.label}: no probe-free runs with a workload table: no end-to-end latency.")
        return
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    title = f"{group.label}: end-to-end interrupt latency, probe-free runs"
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


def show_group_overhead(cmp: Comparison) -> None:
    """Display :func:`df_cell_overhead`; lost events in red when any."""
    df = df_group_overhead(cmp).rename(columns=GROUP_LABEL)
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


def show_group_repetitions(cmp: Comparison, metric: str) -> None:
    """Per-run statistic of ``metric`` in every cell: a table (folded) and one dot per run."""
    from vfiobench.plots import plot_repetitions

    reps = df_group_repetitions(cmp, metric)
    if reps.empty:
        note(f"{metric}: no samples in any cell.")
        return
    scale, unit = (1e-3, "µs") if metric.endswith("_ns") else (1.0, "µs" if "us" in metric else "")
    shown = reps.copy()
    for col in ("median", "mean", "p90"):
        shown[col] = shown[col] * scale
    show_html(
        f"<details><summary>{html.escape(metric)} per run ({len(reps)} runs, {unit})</summary>"
        f"{table_html(shown.rename(columns=GROUP_LABEL))}</details>"
    )
    order = {v: i for i, v in enumerate(cmp.variants)}
    figs = []
    for group in cmp.groups:
        mine = reps[reps["group"] == group.label]
        if mine.empty:
            continue
        mine = mine.iloc[mine["variant"].map(order).argsort(kind="stable")]
        fig = plot_repetitions(
            mine, "median", title=f"{group.label}: {metric} median per run", unit_scale=scale, unit=unit
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


def show_group_rates(cmp: Comparison, bin_s: float = 0.25) -> None:
    """Probe event rates over time, per cell, for the first probed run of each variant."""
    from vfiobench.report.pages.sections import show_rates

    for group in cmp.groups:
        if not any(r.meta.probes for r in group.runs):
            continue
        _h3(group.label)
        show_rates(group.runs, bin_s=bin_s)


def show_group_checks(cmp: Comparison) -> None:
    """Ground-truth checks: verdict line, the failed ones, counts per cell and variant, all rows folded."""
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
    summary = df_group_checks(cmp).rename(columns=GROUP_LABEL)
    parts.append(table_html(summary, caption="checks per cell and variant, over their runs"))
    parts.append(
        f"<details><summary>every check of every run ({len(every)} rows)</summary>"
        f"{table_html(every)}</details>"
    )
    show_html("".join(parts))
