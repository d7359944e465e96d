"""The end-to-end comparisons without interrupts that overlapped an L1 stall (lab runs)."""

from __future__ import annotations

import pandas as pd

from vfiobench.analysis.compare import Comparison
from vfiobench.report.pages.display import show_html, table_html
from vfiobench.report.pages.headline import fmt_vs_baseline


def stall_sensitivity_view(cmp: Comparison) -> pd.DataFrame:
    """Per cell and variant: e2e latency vs the baseline with all interrupts and without stalled ones."""
    df = cmp.ab_without_stalls()

    def cells(suffix: str) -> list[str]:
        cols = [df[f"{c}{suffix}"] for c in ("ratio", "ci_low", "ci_high", "significant")]
        return [
            fmt_vs_baseline("ratio", r, lo, hi, 0.0, 0.0, bool(s), bool(e), 0.0, 0.0)
            for r, lo, hi, s, e in zip(*cols, df["enough_runs"], strict=True)
        ]

    return pd.DataFrame(
        {
            "cell": df["group"],
            "variant": df["variant"],
            "e2e vs baseline, all interrupts": cells("_all"),
            "without stalled interrupts": cells(""),
        }
    )


def stall_sensitivity_html(cmp: Comparison) -> str:
    """The table with its caption, or one line saying no run flagged a stall."""
    if not cmp.has_stalls:
        return (
            '<p class="vfb-note">No interrupt overlapped an L1 stall (or the runs predate the detector).</p>'
        )
    caption = (
        "End-to-end latency against the baseline with every interrupt, and again leaving out the "
        "interrupts whose trigger-to-delivery span overlapped an L1 stall (the lab's stall detector: "
        "L1 did not run for more than 5 ms). Where the two agree, stalls do not drive the result."
    )
    return table_html(stall_sensitivity_view(cmp), caption=caption)


def show_stall_sensitivity(cmp: Comparison) -> None:
    """Display :func:`stall_sensitivity_html`."""
    show_html(stall_sensitivity_html(cmp))
