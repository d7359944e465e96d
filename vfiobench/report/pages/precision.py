"""The compare page's precision section: the repetitions rule, where each cell stopped, and why.

The numbers are :func:`vfiobench.analysis.precision.df_stopping`'s: the experiment's record of its
repetitions rule (``experiment.json``, written by ``vfiobench run``) and the relative half-width of
the intervals the page shows.
"""

from __future__ import annotations

import html
import math
from typing import Any

import pandas as pd

from vfiobench.analysis.ab import METRICS
from vfiobench.analysis.compare import Comparison
from vfiobench.analysis.inference import MIN_RUNS
from vfiobench.analysis.precision import df_stopping, stopping_rules
from vfiobench.report.pages.display import show_html, table_html


def _pct(x: Any) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return f"no interval (< {MIN_RUNS} runs a side)"
    return "∞" if math.isinf(float(x)) else f"±{float(x):.1%}"


def _widest(width: float, variant: str) -> str:
    return _pct(width) if math.isnan(width) else f"{_pct(width)} ({variant})"


def stopping_view(cmp: Comparison) -> pd.DataFrame:
    """The precision table as the page shows it: one row per cell, widths as percentages.

    Returns:
        ``cell, repetitions, stopped, rule's widest ± when it stopped`` (from the experiment's
        record; ``–`` without one) and one ``widest ± <metric> (variant)`` column per A/B metric,
        computed from the runs on the page.
    """
    df = df_stopping(cmp)
    rows: list[dict[str, str]] = []
    for group, g in df.groupby("group", sort=False):
        first = g.iloc[0]
        recorded = first["status"] is not None and not pd.isna(first["status"])
        reps = first["repetitions"]
        row = {
            "cell": str(group),
            "repetitions": str(int(reps)) if recorded and reps is not None else "–",
            "stopped": (str(first["reason"] or "not yet (running)")) if recorded else "–",
            "rule's widest ± when it stopped": (
                _pct(first["recorded_half_width"]) if recorded and first["reason"] != "fixed" else "–"
            ),
        }
        for rec in g.to_dict(orient="records"):
            metric = str(rec["metric"])
            name = METRICS[metric].quantity if metric in METRICS else metric
            row[f"widest ± {name}"] = _widest(float(rec["half_width"]), str(rec["widest_variant"]))
        rows.append(row)
    return pd.DataFrame(rows).fillna("–")


def _rule_line(name: str, rule: dict[str, Any]) -> str:
    spec = rule.get("rule") or {}
    text = rule.get("description")
    if not text:
        target = spec.get("target")
        text = (
            f"{spec.get('min')} repetitions a cell (fixed)"
            if target is None
            else f"{spec.get('min')} to {spec.get('max')} repetitions a cell, target ±{float(target):.0%}"
        )
    return f"<li><b>{html.escape(name)}</b>: {html.escape(str(text))}</li>"


def stopping_html(cmp: Comparison) -> str:
    """The rule of each experiment (when recorded) and the precision table, with its caption."""
    rules = stopping_rules(cmp)
    if rules:
        lines = "".join(_rule_line(n, r) for n, r in rules.items())
        intro = f'<p class="vfb-note">Repetitions rule of the experiment:</p><ul>{lines}</ul>'
    else:
        intro = (
            '<p class="vfb-note">No experiment record (experiment.json) was found beside these runs, so '
            "the table shows only the precision of this page's intervals.</p>"
        )
    caption = (
        "± is the 95% interval's relative half-width: for a ratio √(high ÷ low) − 1, i.e. the interval "
        "is the estimate ×/÷ (1 + w) (symmetric on the log scale, as Welch's t on log per-run values "
        "makes it); for a difference (a side near zero), half the interval over the larger side's mean. "
        "An adaptive experiment stops adding repetitions to a cell once every variant's ± on the rule's "
        "metric is within the target (target reached), or at its maximum (max reached); the rule never "
        "looks at p-values. widest: the least precise variant of the cell."
    )
    table = table_html(stopping_view(cmp), caption=caption, empty="No comparisons with the baseline.")
    return f'<div class="vfb-precision">{intro}{table}</div>'


def show_stopping(cmp: Comparison) -> None:
    """Display :func:`stopping_html` (the A/B page's "Precision and repetitions" section)."""
    show_html(stopping_html(cmp))
