"""The compare page's answer: the headline table per (cell, variant), verdicts per cell, failed checks.

The numbers are :func:`vfiobench.analysis.headline.df_headline`'s, one row per variant within each
group of comparable runs (a *cell* on the page); this module writes them for reading: ratios with
their intervals as text, the baseline marked, verdict lines coloured by their direction.
"""

from __future__ import annotations

import html
import math

import pandas as pd

from vfiobench.analysis.compare import Comparison
from vfiobench.analysis.headline import df_headline, df_thin_comparisons
from vfiobench.analysis.inference import MIN_RUNS
from vfiobench.analysis.runinfo import df_failed_checks
from vfiobench.report.markers import VERDICTS_MARKER
from vfiobench.report.pages.display import show, show_html, table_html

#: Columns of :func:`headline_view` (from :func:`~vfiobench.analysis.headline.df_headline`), with labels.
HEADLINE_COLUMNS: dict[str, str] = {
    "group": "cell",
    "variant": "variant",
    "runs": "runs (p + f)",
    "interrupts": "interrupts",
    "set_irqs_per_irq": "SET_IRQS / irq",
    "set_irqs_per_s": "SET_IRQS / s",
    "pba_toggles_per_irq": "PBA toggles / irq",
    "us_per_irq": "µs / irq on the path",
    "background_us_per_irq": "µs / irq background",
    "us_per_irq_vs_baseline": "µs / irq vs baseline [95% CI]",
    "e2e_p50_us": "e2e p50 µs (probe-free)",
    "latency_vs_baseline": "e2e vs baseline [95% CI]",
    "lost_events": "lost",
    "checks": "checks",
}


def _vs_baseline(df: pd.DataFrame, prefix: str, baseline: str, floor: float = 0.0) -> list[str]:
    """Per row, the comparison with the baseline as text (:func:`fmt_vs_baseline`)."""
    fields = (
        "kind", "ratio", "ci_low", "ci_high", "diff_low", "diff_high", "significant", "enough_runs",
        "stat_baseline", "stat_variant",
    )  # fmt: skip
    cols = [df[f"{prefix}_{c}"] for c in fields]
    return [
        "baseline" if row[0] == baseline else fmt_vs_baseline(*row[1:], floor=floor)
        for row in zip(df["variant"], *cols, strict=True)
    ]


def _num(x: float) -> str:
    return "∞" if math.isinf(x) else "–" if math.isnan(x) else f"{x:.2f}" if abs(x) < 100 else f"{x:.0f}"


def _value(x: float, floor: float) -> str:
    return f"<{floor:g}" if floor > 0 and abs(x) < floor else f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def fmt_ratio(ratio: float, lo: float, hi: float, significant: bool) -> str:
    """``"4.80 [4.51, 5.12]"``; `` (n.s.)`` appended when not significant; ``"–"`` when unknown."""
    if math.isnan(ratio):
        return "–"
    return f"{_num(ratio)} [{_num(lo)}, {_num(hi)}]" + ("" if significant else " (n.s.)")


def fmt_vs_baseline(
    kind: str,
    ratio: float,
    lo: float,
    hi: float,
    diff_lo: float,
    diff_hi: float,
    significant: bool,
    enough_runs: bool,
    baseline_value: float,
    variant_value: float,
    *,
    floor: float = 0.0,
) -> str:
    """One comparison as a table cell.

    A ratio: ``"4.80 [4.51, 5.12]"`` (`` (n.s.)`` when not significant). A difference (a side near
    zero): the two values and the change with its interval, ``"1,873 → <1 (−1,872 [−1,900, −1,850])"``.
    With too few runs only the estimate and ``(too few runs)``; ``"–"`` when unknown.
    """
    if kind == "difference":
        if math.isnan(baseline_value) or math.isnan(variant_value):
            return "–"
        values = f"{_value(baseline_value, floor)} → {_value(variant_value, floor)}"
        if floor > 0 and abs(baseline_value) < floor and abs(variant_value) < floor:
            return f"both <{floor:g}"  # nothing on either side to compare
        if not enough_runs:
            return f"{values} (too few runs)"

        def signed(x: float) -> str:
            return f"{x:+.3g}" if abs(x) < 1000 else f"{x:+,.0f}"

        change = f"{signed(variant_value - baseline_value)} [{signed(-diff_hi)}, {signed(-diff_lo)}]"
        return f"{values} ({change})" + ("" if significant else " (n.s.)")
    if math.isnan(ratio):
        return "–"
    if not enough_runs:
        return f"{_num(ratio)} (too few runs)"
    return fmt_ratio(ratio, lo, hi, significant)


def headline_view(cmp: Comparison) -> pd.DataFrame:
    """The headline table as the page shows it: readable names, ratios as text, the baseline marked.

    The numbers are :func:`~vfiobench.analysis.headline.df_headline`'s.

    Returns:
        The columns of :data:`HEADLINE_COLUMNS`, labelled.
    """
    df = df_headline(cmp)
    out = pd.DataFrame(
        {
            "group": df["group"],
            "variant": [f"{v} (baseline)" if v == cmp.baseline else v for v in df["variant"]],
            "runs": [f"{a} + {b}" for a, b in zip(df["runs_probed"], df["runs_probe_free"], strict=True)],
        }
    )
    for col in (
        "interrupts", "set_irqs_per_irq", "set_irqs_per_s", "pba_toggles_per_irq", "us_per_irq",
        "background_us_per_irq",
    ):  # fmt: skip
        out[col] = df[col]
    out["us_per_irq_vs_baseline"] = _vs_baseline(df, "us", cmp.baseline, floor=1.0)
    out["e2e_p50_us"] = df["e2e_p50_us"]
    out["latency_vs_baseline"] = _vs_baseline(df, "latency", cmp.baseline)
    out["lost_events"] = df["lost_events"]
    out["checks"] = [
        "none" if t == 0 else f"{t - f}/{t} ok" if not f else f"{f} of {t} FAILED"
        for f, t in zip(df["checks_failed"], df["checks_total"], strict=True)
    ]
    return out.rename(columns=HEADLINE_COLUMNS)


def headline_html(cmp: Comparison) -> str:
    """The headline table with its caption."""
    caption = (
        f"Per cell, each variant against {cmp.baseline} in the same cell. Counts and µs per interrupt: "
        "probed runs (the probes inflate µs, not counts); µs on the path: calls on the threads that "
        "serve the interrupt, background: probed calls on other threads (e.g. QEMU's RCU thread). "
        "e2e latency: probe-free runs. runs (p + f): probed + probe-free runs. vs baseline: the ratio "
        "baseline ÷ variant (> 1: the variant is cheaper/faster), or, where one side is near zero, the "
        "difference variant − baseline; 95% interval from Welch's t-test over per-run values (the run "
        f"is the unit), none with fewer than {MIN_RUNS} runs a side; (n.s.): p ≥ 0.05, i.e. the "
        "interval includes 1 (0 for a difference). lost: probe events lost."
    )
    table = table_html(headline_view(cmp), caption=caption, empty="No runs to summarise.")
    return f'<div class="vfb-headline">{table}</div>{few_runs_html(cmp)}'


def few_runs_html(cmp: Comparison) -> str:
    """A note when some comparison has too few runs for an interval ('' when none)."""
    thin = df_thin_comparisons(cmp)
    if thin.empty:
        return ""
    ab = cmp.ab()
    ok = ab[ab["available"].astype(bool)]
    return (
        f'<p class="vfb-bad">{len(thin)} of {len(ok)} comparisons have fewer than {MIN_RUNS} runs on a '
        "side: they show the estimate only, without an interval or a p-value (an interval from so few "
        "runs would either be too wide to read or, bootstrapped, too narrow to trust); "
        "see Run-to-run spread, and record more repetitions.</p>"
    )


def show_headline(cmp: Comparison) -> None:
    """Display the headline table (the page's answer)."""
    show_html(headline_html(cmp))


def failed_checks_html(cmp: Comparison) -> str:
    """A red box listing every failed ground-truth check (cell, variant, run, expected vs observed).

    Empty string when none failed.
    """
    rows = df_failed_checks(cmp)
    if rows.empty:
        return ""
    return (
        f'<div class="vfb-error"><b>{len(rows)} ground-truth check{"s" if len(rows) > 1 else ""} FAILED: '
        "the probe counts of these runs disagree with QEMU's trace or the workload's counters.</b>"
        f"{table_html(rows.rename(columns=HEADLINE_COLUMNS))}</div>"
    )


def show_failed_checks(cmp: Comparison) -> None:
    """Display :func:`failed_checks_html` (nothing when every check passed)."""
    markup = failed_checks_html(cmp)
    if markup:
        show_html(markup)


def verdict_lines(cmp: Comparison) -> list[tuple[str, str, str]]:
    """``(group label, line, css class)`` per (group, variant, metric) of :meth:`Comparison.ab`.

    The class is ``vfb-good`` for a significant improvement (ratio > 1), ``vfb-bad`` for a
    significant regression, ``vfb-note`` otherwise.
    """
    out = []
    for rec in cmp.ab().to_dict("records"):
        if not rec.get("available"):
            line = f"{rec['variant']}: {rec['metric']} not available ({rec['verdict']})"
            out.append((str(rec["group"]), line, "vfb-note"))
            continue
        cls = "vfb-note"
        if rec.get("significant"):
            cls = "vfb-good" if float(rec["ratio"]) > 1 else "vfb-bad"
        out.append((str(rec["group"]), str(rec["verdict"]), cls))
    return out


def show_group_verdicts(cmp: Comparison) -> None:
    """One verdict line per (variant, metric) under each group, and a forest plot per metric.

    The lines also go into the output metadata (:data:`VERDICTS_MARKER`), prefixed with ``[group
    label]`` when there are several groups, so :mod:`vfiobench.report` lists them on the index page.
    """
    from bokeh.models import Range1d

    from vfiobench.plots import plot_ab_forest

    lines = verdict_lines(cmp)
    many = len(cmp.groups) > 1
    blocks: list[str] = []
    marker: list[str] = []
    for group in cmp.groups:
        mine = [(text, cls) for g, text, cls in lines if g == group.label]
        if not mine:
            continue
        items = "".join(f'<li class="{cls}">{html.escape(text)}</li>' for text, cls in mine)
        head = f"<b>{html.escape(group.label)}</b>" if many else ""
        blocks.append(f'{head}<ul class="vfb-verdicts">{items}</ul>')
        marker.extend(f"[{group.label}] {text}" if many else text for text, _ in mine)
    show_html("".join(blocks) or '<p class="vfb-note">No verdicts.</p>', metadata={VERDICTS_MARKER: marker})
    ab = cmp.ab()
    if "available" not in ab.columns:
        return
    ok = ab[ab["available"].astype(bool)]
    finite = ok[["ratio", "ci_low", "ci_high"]].astype("float64").map(math.isfinite).all(axis=1)
    ok = ok[finite & (ok["ratio"].astype("float64") > 0)].reset_index(drop=True)  # 0 or ∞: verdict line only
    for _, g in ok.groupby("metric", sort=False):
        rows = g.assign(
            row=[f"{v} · {c}" if many else str(v) for v, c in zip(g["variant"], g["group"], strict=True)]
        )
        quantity = str(g["quantity"].iloc[0])
        fig = plot_ab_forest(
            rows.reset_index(drop=True),
            label="row",
            title=f"{quantity}: {cmp.baseline} ÷ variant (> 1: the variant is lower), 95% CI",
        )
        fig.width = 1000
        # the intervals are annotations, which the automatic range ignores: span them explicitly
        lo = g["ci_low"].astype("float64")
        ends = [*lo[lo > 0], *g["ratio"].astype("float64"), *g["ci_high"].astype("float64"), 1.0]
        fig.x_range = Range1d(min(ends) / 1.3, max(ends) * 1.3)
        show(fig)
