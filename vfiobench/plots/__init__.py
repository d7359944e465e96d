"""Bokeh figures over the frames of :mod:`vfiobench.analysis`; every ``plot_*`` returns a figure.

Plots take the analysis frames, not runs, so a notebook can filter or relabel in between. By
subject:

* :mod:`~vfiobench.plots.latency` — :func:`plot_latency_histogram` (← ``df_histograms``) and
  :func:`plot_cdf` (← ``df_cdf``), log µs axis, variants overlaid;
* :mod:`~vfiobench.plots.rates` — :func:`plot_rate_timeline` (← ``df_rate_timeline`` /
  ``df_probe_rates``);
* :mod:`~vfiobench.plots.cost` — :func:`plot_cost_breakdown` (← ``df_cost_breakdown``: stacked
  bars by operation per variant);
* :mod:`~vfiobench.plots.ab` — :func:`plot_ab_forest` (← ``df_ab``: ratios with CIs, log x axis)
  and :func:`plot_repetitions` (← ``df_repetitions``: run-to-run spread);
* :mod:`~vfiobench.plots.timeline` — per-interrupt Gantt, slowest interrupts, stage breakdown and
  the linked timeline view (← :mod:`vfiobench.analysis.timeline`);
* :mod:`~vfiobench.plots.embed` — the one embedding path: an HTML fragment with BokehJS inlined
  once per page (:func:`~vfiobench.plots.embed.bokeh_html`), and standalone pages
  (:func:`~vfiobench.plots.embed.save_html`);
* :mod:`~vfiobench.plots.common` — size, palette, :func:`color_map`.

Times are shown in µs (the frames carry ns). Colours are stable per group label within a figure;
pass ``colors`` to keep them stable across figures.

Example:
    >>> from bokeh.io import show                                          # doctest: +SKIP
    >>> show(plot_cdf(df_cdf(runs.table("pba_toggle"), "dur_ns")))        # doctest: +SKIP
"""

from vfiobench.plots.ab import plot_ab_forest, plot_repetitions
from vfiobench.plots.common import HEIGHT, PALETTE, WIDTH, color_map
from vfiobench.plots.cost import plot_cost_breakdown
from vfiobench.plots.latency import plot_cdf, plot_latency_histogram
from vfiobench.plots.rates import plot_rate_timeline
from vfiobench.plots.timeline import (
    STAGE_COLORS,
    plot_interrupt_gantt,
    plot_slowest,
    plot_stage_breakdown,
    plot_timeline_view,
)

__all__ = [
    "HEIGHT",
    "PALETTE",
    "STAGE_COLORS",
    "WIDTH",
    "color_map",
    "plot_ab_forest",
    "plot_cdf",
    "plot_cost_breakdown",
    "plot_interrupt_gantt",
    "plot_latency_histogram",
    "plot_rate_timeline",
    "plot_repetitions",
    "plot_slowest",
    "plot_stage_breakdown",
    "plot_timeline_view",
]
