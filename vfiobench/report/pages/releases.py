"""The cross-release view of a comparison: each variant's cost on each lab release, side by side."""

from __future__ import annotations

import pandas as pd

from vfiobench.analysis.compare import Comparison
from vfiobench.analysis.releases import df_cross_release, releases_of
from vfiobench.report.pages.display import fmt_number, show_html, table_html

#: The metrics of the view, in page order, with the factor from their unit to the one shown.
CROSS_RELEASE_METRICS: tuple[tuple[str, float, str], ...] = (
    ("us_per_irq", 1.0, "µs per interrupt (on the path, probed runs)"),
    ("latency_ns", 1e-3, "interrupt latency, µs (median per run, probe-free runs)"),
)


def fmt_level(center: float, lo: float | None, hi: float | None, runs: int) -> str:
    """``5,120 [4,800, 5,400] (10 runs)``; no interval below 6 runs."""
    if lo is None or hi is None or pd.isna(lo) or pd.isna(hi):
        return f"{fmt_number(float(center))} ({runs} runs: too few for an interval)"
    return f"{fmt_number(float(center))} [{fmt_number(float(lo))}, {fmt_number(float(hi))}] ({runs} runs)"


def cross_release_view(cmp: Comparison, metric: str = "us_per_irq", scale: float = 1.0) -> pd.DataFrame:
    """Rows ``cell`` (workload · accel) × ``variant``, one column per release (plan order)."""
    df = df_cross_release(cmp, metric)
    releases = releases_of(cmp)
    if df.empty:
        return pd.DataFrame(columns=["cell", "variant", *releases])
    df = df.assign(cell=df["workload"].astype(str) + " · " + df["accel"].astype(str))
    df["shown"] = [
        fmt_level(c * scale, None if lo is None else lo * scale, None if hi is None else hi * scale, int(n))
        for c, lo, hi, n in zip(df["center"], df["ci_low"], df["ci_high"], df["runs"], strict=True)
    ]
    view = df.pivot_table(
        index=["cell", "variant"], columns="release", values="shown", aggfunc="first", sort=False
    )
    view = view.reindex(columns=[r for r in releases if r in view.columns]).fillna("–")
    view.columns.name = None
    return view.reset_index()


def cross_release_html(cmp: Comparison) -> str:
    """The view per metric with captions, or one line when the runs are from one release (or none)."""
    releases = releases_of(cmp)
    if len(releases) < 2:
        return '<p class="vfb-note">The compared runs are from one lab release: no cross-release view.</p>'
    parts = []
    for metric, scale, what in CROSS_RELEASE_METRICS:
        caption = (
            f"{what}, per lab release ({', '.join(releases)}): the geometric mean over runs of each "
            "run's value with its 95% t-interval (log scale). Releases ran in different L1 images, so "
            "compare variants within a column (the verdicts above test them); across a row, read how "
            "the same variant's cost moves with the stack."
        )
        parts.append(table_html(cross_release_view(cmp, metric, scale), caption=caption))
    return "\n".join(parts)


def show_cross_release(cmp: Comparison) -> None:
    """Display :func:`cross_release_html`."""
    show_html(cross_release_html(cmp))


def masking_cost_view(cmp: Comparison) -> pd.DataFrame:
    """:func:`~vfiobench.analysis.masking.df_masking_cost` as display strings, one row per stack."""
    from vfiobench.analysis.masking import df_masking_cost

    df = df_masking_cost(cmp)
    rows = []
    for r in df.to_dict(orient="records"):
        n = int(r["runs_probed"])
        slowdown = fmt_level(r["slowdown"], _or_none(r["slowdown_low"]), _or_none(r["slowdown_high"]), n)
        if r["p_value"] == r["p_value"]:  # not NaN: a test was made
            slowdown = slowdown.replace(f" ({n} runs)", f", p={fmt_number(float(r['p_value']))}")
        rows.append(
            {
                "release · accel": f"{r['release'] or '–'} · {r['accel']}",
                "variant": r["variant"],
                "SET_IRQS / irq": fmt_number(r["set_irqs_per_irq"]),
                "PBA toggles / irq": fmt_number(r["pba_toggles_per_irq"]),
                "route commits / irq": fmt_number(r["gsi_routing_per_irq"]),
                "µs / irq on the path": fmt_level(
                    r["path_us"], _or_none(r["path_us_low"]), _or_none(r["path_us_high"]), n
                ),
                "µs / irq in PBA toggles": fmt_level(
                    r["pba_toggle_us"], _or_none(r["pba_toggle_us_low"]), _or_none(r["pba_toggle_us_high"]), n
                ),
                "µs / irq in SET_IRQS": fmt_level(
                    r["set_irqs_us"], _or_none(r["set_irqs_us_low"]), _or_none(r["set_irqs_us_high"]), n
                ),
                "latency µs, masking vs not": f"{fmt_number(r['latency_masking_us'])} vs "
                f"{fmt_number(r['latency_not_masking_us'])}",
                "slowdown (masking ÷ not)": slowdown,
            }
        )
    return pd.DataFrame(rows)


def _or_none(x: float) -> float | None:
    return None if x != x else x  # NaN: no interval


def masking_cost_html(cmp: Comparison) -> str:
    """The masking view with its caption, or one line when the runs lack one of the two guests."""
    view = masking_cost_view(cmp)
    if view.empty:
        return (
            '<p class="vfb-note">No variant ran on both the masking guest (mask-every-irq) and the '
            "non-masking one (no-mask) in one cell: no masking view.</p>"
        )
    caption = (
        "The same QEMU on a guest that masks on every interrupt and on one that never masks, per lab "
        "release and accel. Counts per interrupt pooled over the masking guest's probed runs; µs per "
        "interrupt as the geometric mean over those runs with a 95% t-interval (PBA toggles include "
        "the commit each tail-calls, SET_IRQS the vfio_msi_set_vector_signal inside it); latency: "
        "the geometric mean of the probe-free runs' medians, and the slowdown with Welch's interval "
        "and p-value on the log per-run medians (no interval below 6 runs a side)."
    )
    return table_html(view, caption=caption)


def show_masking_cost(cmp: Comparison) -> None:
    """Display :func:`masking_cost_html`."""
    show_html(masking_cost_html(cmp))
