"""Cost per delivered interrupt, stacked by operation (:func:`~vfiobench.analysis.df_cost_breakdown`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from bokeh.models import ColumnDataSource, DataRange1d, FactorRange, HoverTool
from bokeh.models.annotations.legends import Legend
from bokeh.plotting import figure

from vfiobench.plots.common import HEIGHT, WIDTH, color_map, require


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
    require(breakdown, [by, op_col, "us_per_irq"], "plot_cost_breakdown")
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
