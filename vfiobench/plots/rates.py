"""Event rates over time (:func:`~vfiobench.analysis.rates.df_rate_timeline`, ``df_probe_rates``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, DataRange1d, HoverTool
from bokeh.plotting import figure

from vfiobench.plots.common import HEIGHT, WIDTH, by_columns, color_map, legend_outside, require, row_labels


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
    require(rates, ["t_s", "rate_per_s"], "plot_rate_timeline")
    keys = by_columns(rates, by)
    labels = row_labels(rates, keys)
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
    legend_outside(p)
    return p
