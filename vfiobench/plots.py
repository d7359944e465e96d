"""Bokeh figures over the frames of :mod:`vfiobench.analysis`; every ``plot_*`` returns a figure.

Plots take the analysis frames, not runs, so a notebook can filter or relabel in between:

* :func:`plot_latency_histogram` ← :func:`~vfiobench.analysis.latency.df_histograms` (log x axis);
* :func:`plot_cdf` ← :func:`~vfiobench.analysis.latency.df_cdf` (variants overlaid, log x axis);
* :func:`plot_rate_timeline` ← :func:`~vfiobench.analysis.rates.df_rate_timeline` /
  :func:`~vfiobench.analysis.rates.df_probe_rates`;
* :func:`plot_cost_breakdown` ← :func:`~vfiobench.analysis.per_interrupt.df_cost_breakdown`
  (stacked bars by operation per variant);
* :func:`plot_ab_forest` ← :func:`~vfiobench.analysis.ab.df_ab` (ratios with CIs, log x axis);
* :func:`plot_repetitions` ← :func:`~vfiobench.analysis.ab.df_repetitions` (run-to-run spread).

Times are shown in µs (the frames carry ns). Colours are stable per group label within a figure;
pass ``colors`` to keep them stable across figures.

Example:
    >>> from bokeh.io import show                                          # doctest: +SKIP
    >>> show(plot_cdf(df_cdf(runs.table("pba_toggle"), "dur_ns")))        # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, HoverTool, Range1d
from bokeh.models.annotations.geometry import Span, Whisker
from bokeh.models.annotations.legends import Legend
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from vfiobench.errors import AnalysisError

PALETTE: tuple[str, ...] = tuple(Category10_10)
WIDTH = 760
HEIGHT = 380


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns))
        raise AnalysisError(f"{what}: frame has no column {', '.join(map(repr, missing))} (columns: {have})")


def _by(df: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    cols = [] if by is None else [by] if isinstance(by, str) else list(by)
    return [c for c in cols if c in df.columns]


def _labels(df: pd.DataFrame, by: list[str]) -> pd.Series:
    """One display label per row: the ``by`` values joined with `` · `` ("all" without grouping)."""
    if not by:
        return pd.Series(["all"] * len(df), index=df.index, dtype=object)
    return df[by].astype(str).agg(" · ".join, axis=1)


def color_map(labels: Sequence[str], colors: Mapping[str, str] | None = None) -> dict[str, str]:
    """Colour per label: ``colors`` where given, else the palette in first-seen order."""
    out: dict[str, str] = {}
    for i, label in enumerate(dict.fromkeys(labels)):
        out[label] = (colors or {}).get(label, PALETTE[i % len(PALETTE)])
    return out


def _legend_outside(p: figure) -> None:
    """Clickable legend (hides a group); moved right of the plot when it has many entries."""
    if not p.legend:
        return
    p.legend.click_policy = "hide"
    p.legend.location = "top_right"
    if len(p.legend[0].items) > 4:
        p.legend.label_text_font_size = "8pt"
        p.add_layout(p.legend[0], "right")


def plot_latency_histogram(
    hist: pd.DataFrame,
    by: str | Sequence[str] | None = "variant",
    *,
    normalize: bool = True,
    title: str = "Latency distribution",
    colors: Mapping[str, str] | None = None,
) -> figure:
    """Histogram on a log x axis from log-linear buckets, one translucent layer per group.

    Args:
        hist: ``[*by, lo_ns, hi_ns, count]`` (``df_histograms`` / ``merge_histograms``).
        by: grouping column(s) present in ``hist`` (missing ones are ignored).
        normalize: plot the fraction of each group's samples per bucket (groups with different
            sample counts stay comparable) instead of raw counts.
        title: figure title.
        colors: label → colour overrides.

    Returns:
        A figure with ``x_axis_type="log"`` (µs) and one ``quad`` renderer per group, whose source
        holds ``left``/``right`` (µs), ``top`` (fraction or count), ``count``, ``label``.
    """
    _require(hist, ["lo_ns", "hi_ns", "count"], "plot_latency_histogram")
    keys = _by(hist, by)
    labels = _labels(hist, keys)
    cmap = color_map(list(labels), colors)
    p = figure(
        title=title,
        x_axis_type="log",
        width=WIDTH,
        height=HEIGHT,
        x_axis_label="latency (µs, log scale)",
        y_axis_label="fraction of samples per bucket" if normalize else "samples per bucket",
        y_range=DataRange1d(start=0),
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    for label, color in cmap.items():
        h = hist[labels == label]
        hi = h["hi_ns"].to_numpy(dtype=np.float64) / 1e3
        lo = h["lo_ns"].to_numpy(dtype=np.float64) / 1e3
        lo = np.where(lo > 0, lo, hi / 2)  # the [0, 1) ns bucket has no log-scale left edge
        count = h["count"].to_numpy(dtype=np.float64)
        top = count / count.sum() if normalize and count.sum() else count
        src = ColumnDataSource(
            {"left": lo, "right": hi, "top": top, "count": count, "label": [label] * len(h)}
        )
        p.quad(
            left="left", right="right", top="top", bottom=0, source=src, fill_color=color, line_color=color,
            fill_alpha=0.35, line_alpha=0.8, legend_label=label,
        )  # fmt: skip
    p.add_tools(
        HoverTool(tooltips=[("", "@label"), ("bucket", "@left{0,0.0} – @right{0,0.0} µs"), ("n", "@count")])
    )
    _legend_outside(p)
    return p


def plot_cdf(
    cdf: pd.DataFrame,
    by: str | Sequence[str] | None = "variant",
    *,
    title: str = "Latency CDF",
    log_x: bool = True,
    colors: Mapping[str, str] | None = None,
) -> figure:
    """CDF overlay of groups (variants), x in µs on a log axis by default.

    Args:
        cdf: ``[*by, value_ns, cdf]`` (``df_cdf``).
        by: grouping column(s).
        title: figure title.
        log_x: log-scale x axis.
        colors: label → colour overrides.

    Returns:
        A figure with one ``step`` line per group; sources hold ``x`` (µs), ``cdf``, ``label``.
    """
    _require(cdf, ["value_ns", "cdf"], "plot_cdf")
    keys = _by(cdf, by)
    labels = _labels(cdf, keys)
    cmap = color_map(list(labels), colors)
    p = figure(
        title=title,
        x_axis_type="log" if log_x else "linear",
        width=WIDTH,
        height=HEIGHT,
        x_axis_label="latency (µs" + (", log scale)" if log_x else ")"),
        y_axis_label="fraction ≤ x",
        y_range=Range1d(start=0, end=1.02),
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    for label, color in cmap.items():
        c = cdf[labels == label].sort_values("value_ns")
        x = c["value_ns"].to_numpy(dtype=np.float64) / 1e3
        if log_x:
            x = np.where(x > 0, x, np.nan)
        src = ColumnDataSource(
            {"x": x, "cdf": c["cdf"].to_numpy(dtype=np.float64), "label": [label] * len(c)}
        )
        p.step(x="x", y="cdf", source=src, mode="after", line_color=color, line_width=2, legend_label=label)
    for q in (0.5, 0.99):
        p.add_layout(
            Span(location=q, dimension="width", line_dash="dotted", line_color="gray", line_alpha=0.6)
        )
    p.add_tools(HoverTool(tooltips=[("", "@label"), ("x", "@x{0,0.0} µs"), ("cdf", "@cdf{0.000}")]))
    _legend_outside(p)
    return p


def plot_rate_timeline(
    rates: pd.DataFrame,
    by: str | Sequence[str] | None = ("probe", "variant", "run_id"),
    *,
    title: str = "Event rate over time",
    colors: Mapping[str, str] | None = None,
) -> figure:
    """Rate per second over time, one step line per group.

    Args:
        rates: ``[*by, t_s, rate_per_s]`` (``df_rate_timeline`` / ``df_probe_rates``).
        by: grouping column(s) (those absent from ``rates`` are ignored).
        title: figure title.
        colors: label → colour overrides.

    Returns:
        A figure with linear axes and one ``step`` line per group; sources hold ``t_s``,
        ``rate_per_s``, ``label``, plus a closing point at the end of the last bin (its start +
        ``span_s``) so the last bin is drawn.
    """
    _require(rates, ["t_s", "rate_per_s"], "plot_rate_timeline")
    keys = _by(rates, by)
    labels = _labels(rates, keys)
    cmap = color_map(list(labels), colors)
    p = figure(
        title=title,
        width=WIDTH,
        height=HEIGHT,
        x_axis_label="time since the run's first event (s)",
        y_axis_label="events per second",
        y_range=DataRange1d(start=0),
        tools="pan,wheel_zoom,box_zoom,reset,save",
    )
    for label, color in cmap.items():
        r = rates[labels == label].sort_values("t_s")
        t = r["t_s"].to_numpy(dtype=np.float64)
        rate = r["rate_per_s"].to_numpy(dtype=np.float64)
        if len(r):  # close the last bin: a step line otherwise stops at its start
            width = (
                float(r["span_s"].iloc[-1]) if "span_s" in r.columns else float(np.diff(t[-2:]).sum() or 1)
            )
            t, rate = np.append(t, t[-1] + width), np.append(rate, rate[-1])
        cols: dict[str, Any] = {"t_s": t, "rate_per_s": rate, "label": [label] * len(t)}
        src = ColumnDataSource(cols)
        p.step(
            x="t_s",
            y="rate_per_s",
            source=src,
            mode="after",
            line_color=color,
            line_width=2,
            legend_label=label,
        )
    p.add_tools(HoverTool(tooltips=[("", "@label"), ("t", "@t_s{0.0} s"), ("rate", "@rate_per_s{0,0} /s")]))
    _legend_outside(p)
    return p


def plot_cost_breakdown(
    breakdown: pd.DataFrame,
    by: str = "variant",
    *,
    title: str = "Time per delivered interrupt, by operation",
    colors: Mapping[str, str] | None = None,
) -> figure:
    """Stacked bars: exclusive µs per interrupt by operation, one bar per ``by`` value.

    Args:
        breakdown: long form ``[by, label (or operation), us_per_irq]`` (``df_cost_breakdown``).
        by: the bar column.
        title: figure title.
        colors: operation label → colour overrides.

    Returns:
        A figure with a categorical x range (the bars) and one ``vbar`` renderer per operation
        (``vbar_stack``); the source has one row per bar and one column per operation label.
    """
    op_col = "label" if "label" in breakdown.columns else "operation"
    _require(breakdown, [by, op_col, "us_per_irq"], "plot_cost_breakdown")
    table = breakdown.pivot_table(index=by, columns=op_col, values="us_per_irq", aggfunc="sum", sort=False)
    ops = [str(c) for c in table.columns if table[c].abs().sum() > 0] or [str(c) for c in table.columns]
    bars = [str(b) for b in table.index]
    cmap = color_map(ops, colors)
    data: dict[str, Any] = {"bar": bars}
    for op in ops:
        data[op] = [float(v) for v in table[op].fillna(0.0)]
    data["total"] = [float(sum(data[op][i] for op in ops)) for i in range(len(bars))]
    src = ColumnDataSource(data)
    p = figure(
        title=title,
        x_range=FactorRange(factors=bars),
        width=WIDTH,
        height=HEIGHT + 60,
        y_axis_label="µs per delivered interrupt (exclusive time)",
        y_range=DataRange1d(start=0),
        tools="save,reset",
    )
    renderers = p.vbar_stack(ops, x="bar", width=0.6, source=src, color=[cmap[o] for o in ops])
    items: list[Any] = [(op, [r]) for op, r in zip(ops, renderers, strict=True)]
    p.add_layout(Legend(items=items, location="top_left"), "right")  # beside the bars, never over them
    p.add_tools(
        HoverTool(
            tooltips=[("", "@bar"), ("total", "@total{0,0.0} µs")]
            + [(o, f"@{{{o}}}{{0,0.0}} µs") for o in ops]
        )
    )
    p.xgrid.grid_line_color = None
    return p


def plot_ab_forest(ab: pd.DataFrame, *, title: str | None = None, label: str = "variant") -> figure:
    """Forest plot: each variant's ratio to the baseline with its CI, on a log x axis.

    Args:
        ab: ``[variant, ratio, ci_low, ci_high, significant, verdict]`` (``df_ab``; several metrics
            may be concatenated, rows are then labelled ``variant · metric``).
        title: figure title (default: "<baseline> / variant").
        label: the row-label column.

    Returns:
        A figure with a categorical y range (one row per comparison), ``x_axis_type="log"``, a
        ``Whisker`` for the intervals, a ``scatter`` for the ratios and a vertical ``Span`` at 1.
        Ratios > 1 mean the variant is lower (faster) than the baseline.
    """
    _require(ab, [label, "ratio", "ci_low", "ci_high"], "plot_ab_forest")
    rows = ab[label].astype(str)
    if "metric" in ab.columns and ab["metric"].nunique() > 1:
        rows = rows + " · " + ab["metric"].astype(str)
    sig = ab["significant"].astype(bool) if "significant" in ab.columns else pd.Series(True, index=ab.index)
    src = ColumnDataSource(
        {
            "row": list(rows),
            "ratio": ab["ratio"].to_numpy(dtype=np.float64),
            "lo": ab["ci_low"].to_numpy(dtype=np.float64),
            "hi": ab["ci_high"].to_numpy(dtype=np.float64),
            "color": [PALETTE[0] if s else "gray" for s in sig],
            "verdict": list(ab["verdict"].astype(str)) if "verdict" in ab.columns else list(rows),
        }
    )
    baseline = str(ab["baseline"].iloc[0]) if "baseline" in ab.columns and len(ab) else "baseline"
    p = figure(
        title=title or f"{baseline} ÷ variant (> 1: variant is lower), with bootstrap CI",
        y_range=FactorRange(factors=list(reversed(list(dict.fromkeys(rows))))),
        x_axis_type="log",
        width=WIDTH,
        height=max(160, 70 + 50 * len(ab)),
        x_axis_label="ratio (log scale)",
        tools="save,reset",
    )
    p.add_layout(Whisker(source=src, base="row", lower="lo", upper="hi", dimension="width", line_width=2))
    p.scatter(x="ratio", y="row", source=src, size=11, color="color", marker="diamond")
    p.add_layout(Span(location=1.0, dimension="height", line_dash="dashed", line_color="black"))
    p.add_tools(HoverTool(tooltips=[("", "@verdict")]))
    return p


def plot_repetitions(
    reps: pd.DataFrame,
    value: str = "median",
    *,
    title: str = "Per-run statistic, by variant (run-to-run spread)",
    unit_scale: float = 1e-3,
    unit: str = "µs",
    colors: Mapping[str, str] | None = None,
) -> figure:
    """One dot per run (repetition), grouped by variant, so run-to-run spread is visible.

    Args:
        reps: ``[run_id, variant, value]`` (``df_repetitions``).
        value: the column to plot (``median``, ``mean``, ``p90``).
        title: figure title.
        unit_scale: multiply values by this (default ns → µs).
        unit: axis unit label.
        colors: variant → colour overrides.

    Returns:
        A figure with a categorical x range (variants) and one ``scatter`` renderer; its source
        holds ``variant``, ``value``, ``run_id``.
    """
    _require(reps, ["run_id", "variant", value], "plot_repetitions")
    variants = [str(v) for v in dict.fromkeys(reps["variant"])]
    cmap = color_map(variants, colors)
    src = ColumnDataSource(
        {
            "variant": reps["variant"].astype(str).tolist(),
            "value": (reps[value].to_numpy(dtype=np.float64) * unit_scale),
            "run_id": reps["run_id"].astype(str).tolist(),
            "color": [cmap[str(v)] for v in reps["variant"]],
        }
    )
    p = figure(
        title=title,
        x_range=FactorRange(factors=variants),
        width=WIDTH,
        height=HEIGHT,
        y_axis_label=f"{value} per run ({unit})",
        tools="save,reset",
    )
    p.scatter(x="variant", y="value", source=src, size=10, color="color", alpha=0.8)
    p.add_tools(HoverTool(tooltips=[("run", "@run_id"), (value, f"@value{{0,0.0}} {unit}")]))
    return p
