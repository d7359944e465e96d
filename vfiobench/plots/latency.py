"""Latency distributions: histograms from log-linear buckets and CDFs, variants overlaid, log µs axis.

* :func:`plot_latency_histogram` ← :func:`~vfiobench.analysis.latency.df_histograms`;
* :func:`plot_cdf` ← :func:`~vfiobench.analysis.latency.df_cdf`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, DataRange1d, HoverTool, Range1d
from bokeh.models.annotations.geometry import Span
from bokeh.plotting import figure

from vfiobench.plots.common import HEIGHT, WIDTH, by_columns, color_map, legend_outside, require, row_labels


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
    require(hist, ["lo_ns", "hi_ns", "count"], "plot_latency_histogram")
    keys = by_columns(hist, by)
    labels = row_labels(hist, keys)
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
    legend_outside(p)
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
    require(cdf, ["value_ns", "cdf"], "plot_cdf")
    keys = by_columns(cdf, by)
    labels = row_labels(cdf, keys)
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
    legend_outside(p)
    return p
