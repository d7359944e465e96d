"""A/B figures: ratios with their intervals (forest plot) and the run-to-run spread.

* :func:`plot_ab_forest` ← :func:`~vfiobench.analysis.ab.df_ab`;
* :func:`plot_repetitions` ← :func:`~vfiobench.analysis.ab.df_repetitions`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
from bokeh.models import ColumnDataSource, FactorRange, HoverTool
from bokeh.models.annotations.geometry import Span, Whisker
from bokeh.plotting import figure

from vfiobench.plots.common import HEIGHT, PALETTE, WIDTH, color_map, require


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
        Ratios > 1 mean the variant is lower (faster) than the baseline. Rows that are a difference
        (no ratio) are left out; rows with too few runs show the estimate without a whisker.
    """
    require(ab, [label, "ratio", "ci_low", "ci_high"], "plot_ab_forest")
    ab = ab[np.isfinite(ab["ratio"].to_numpy(dtype=np.float64))]  # differences have no ratio to plot
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
        title=title or f"{baseline} ÷ variant (> 1: variant is lower), 95% interval over runs",
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
    require(reps, ["run_id", "variant", value], "plot_repetitions")
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
