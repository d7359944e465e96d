"""The compare page's answer: the headline table per (cell, variant), verdicts per cell, failed checks.

One row per variant within each cell (see :mod:`vfiobench.notebook.cells`): how many interrupts,
how many SET_IRQS ioctls and PBA toggles each costs, the µs per interrupt spent in the probed
operations (probed runs), the median end-to-end interrupt latency (probe-free runs), and both as a
ratio against the baseline of the same cell with a cluster-bootstrap interval and a Mann–Whitney p.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from vfiobench.notebook.cells import Comparison
from vfiobench.notebook.display import VERDICTS_MARKER, show, show_html, table_html
from vfiobench.store import Run

#: Columns of :func:`df_headline` shown on the page, with their labels.
HEADLINE_COLUMNS: dict[str, str] = {
    "cell": "cell",
    "variant": "variant",
    "runs": "runs (p + f)",
    "interrupts": "interrupts",
    "set_irqs_per_irq": "SET_IRQS / irq",
    "set_irqs_per_s": "SET_IRQS / s",
    "pba_toggles_per_irq": "PBA toggles / irq",
    "us_per_irq": "µs / irq in probed ops",
    "us_per_irq_vs_baseline": "µs / irq ratio [95% CI]",
    "e2e_p50_us": "e2e p50 µs (probe-free)",
    "latency_vs_baseline": "e2e ratio [95% CI]",
    "lost_events": "lost",
    "checks": "checks",
}


def window_s(run: Run) -> float:
    """Seconds of the run's workload window (measure phase, else first to last cycle); NaN if unknown."""
    from vfiobench.analysis import schema
    from vfiobench.analysis.per_interrupt import cycle_windows

    phases = run.meta.workload.params.get("phases")
    measure = phases.get("measure") if isinstance(phases, Mapping) else None
    if not run.has_table(schema.WORKLOAD):
        return float("nan")
    w = cycle_windows(run.table(schema.WORKLOAD), measure)
    if w is None or not len(w.start_ns):
        return float("nan")
    begin = w.begin_ns if w.begin_ns is not None else int(w.start_ns[0])
    span = (w.end_ns - begin) / 1e9
    return span if span > 0 else float("nan")


def pooled_per_irq(df: pd.DataFrame, col: str) -> float:
    """Per-interrupt value pooled over runs: sum(value x interrupts) / sum(interrupts), NaN runs skipped."""
    if col not in df.columns:
        return float("nan")
    ok = df[df[col].notna() & (df["interrupts"] > 0)]
    n = float(ok["interrupts"].sum())
    return float((ok[col] * ok["interrupts"]).sum() / n) if n else float("nan")


def _e2e_p50_us(cmp: Comparison) -> dict[tuple[str, str], float]:
    """Median delivered-interrupt latency (µs) of the probe-free runs per (cell, variant)."""
    from vfiobench.analysis import schema

    out: dict[tuple[str, str], float] = {}
    for cell in cmp.cells:
        free = cell.runs.filter(kind="probe-free")
        w = free.table(schema.WORKLOAD)
        if w.empty or "latency_ns" not in w.columns:
            continue
        if "delivered" in w.columns:
            w = w[w["delivered"].astype(bool)]
        for variant, g in w.groupby("variant", sort=False):
            vals = g["latency_ns"].dropna().to_numpy(dtype=np.float64)
            if vals.size:
                out[(cell.label, str(variant))] = float(np.median(vals)) / 1e3
    return out


def df_headline(cmp: Comparison) -> pd.DataFrame:
    """The headline numbers, one row per (cell, variant), the baseline first in each cell.

    Per-interrupt counts and µs are pooled over the probed runs (sum over runs / delivered
    interrupts); ``set_irqs_per_s`` is SET_IRQS ioctls per second of workload window in the probed
    runs; ``e2e_p50_us`` is the median end-to-end latency of the probe-free runs' delivered
    interrupts. Ratios are ``baseline / variant`` (> 1: the variant is cheaper or faster) from
    :meth:`Comparison.ab`, NaN for the baseline itself or when unavailable.

    Returns:
        ``[cell, variant, runs_probed, runs_probe_free, interrupts, set_irqs_per_irq,
        set_irqs_per_s, pba_toggles_per_irq, us_per_irq, e2e_p50_us, us_ratio, us_ci_low,
        us_ci_high, us_p_value, us_significant, latency_ratio, latency_ci_low, latency_ci_high,
        latency_p_value, latency_significant, lost_events, checks_failed, checks_total]``.
    """
    per_irq = cmp.per_interrupt()
    ab = cmp.ab()
    e2e = _e2e_p50_us(cmp)
    cols = [
        "cell", "variant", "runs_probed", "runs_probe_free", "interrupts", "set_irqs_per_irq",
        "set_irqs_per_s", "pba_toggles_per_irq", "us_per_irq", "e2e_p50_us", "us_ratio", "us_ci_low",
        "us_ci_high", "us_p_value", "us_significant", "latency_ratio", "latency_ci_low",
        "latency_ci_high", "latency_p_value", "latency_significant", "lost_events", "checks_failed",
        "checks_total",
    ]  # fmt: skip
    rows: list[dict[str, Any]] = []
    for cell in cmp.cells:
        for variant in [v for v in cmp.variants if v in cell.runs.variants]:
            runs = [r for r in cell.runs if r.variant == variant]
            probed = [r for r in runs if r.meta.kind == "probed"]
            pi = per_irq[(per_irq["cell"] == cell.label) & (per_irq["variant"] == variant)]
            pp = pi[pi["kind"] == "probed"]
            counts = (pp["set_irqs_per_irq"] * pp["interrupts"]).dropna() if len(pp) else pd.Series()
            spans = [window_s(r) for r in probed]
            span = float(np.nansum(spans)) if spans and not all(math.isnan(s) for s in spans) else 0.0
            row: dict[str, Any] = {
                "cell": cell.label,
                "variant": variant,
                "runs_probed": len(probed),
                "runs_probe_free": len(runs) - len(probed),
                "interrupts": int(pi["interrupts"].sum()),
                "set_irqs_per_irq": pooled_per_irq(pp, "set_irqs_per_irq"),
                "set_irqs_per_s": float(counts.sum()) / span if span and len(counts) else float("nan"),
                "pba_toggles_per_irq": pooled_per_irq(pp, "pba_toggles_per_irq"),
                "us_per_irq": pooled_per_irq(pp, "total_us_per_irq"),
                "e2e_p50_us": e2e.get((cell.label, variant), float("nan")),
                "lost_events": sum(r.meta.lost_events for r in runs),
                "checks_failed": sum(not c.ok for r in runs for c in r.meta.checks),
                "checks_total": sum(len(r.meta.checks) for r in runs),
            }
            for prefix, metric in (("us", "us_per_irq"), ("latency", "latency_ns")):
                hit = ab[(ab["cell"] == cell.label) & (ab["variant"] == variant) & (ab["metric"] == metric)]
                ok = hit[hit["available"].astype(bool)] if len(hit) else hit
                rec = ok.iloc[0] if len(ok) else None
                row[f"{prefix}_ratio"] = float(rec["ratio"]) if rec is not None else float("nan")
                row[f"{prefix}_ci_low"] = float(rec["ci_low"]) if rec is not None else float("nan")
                row[f"{prefix}_ci_high"] = float(rec["ci_high"]) if rec is not None else float("nan")
                row[f"{prefix}_p_value"] = float(rec["p_value"]) if rec is not None else float("nan")
                row[f"{prefix}_significant"] = bool(rec["significant"]) if rec is not None else False
            rows.append(row)
    return pd.DataFrame(rows, columns=cols)


def _vs_baseline(df: pd.DataFrame, prefix: str, baseline: str) -> list[str]:
    """Per row, ``<prefix>_ratio`` with its interval and significance, written by :func:`fmt_ratio`.

    The baseline's own rows read "baseline".
    """
    cols = [df[f"{prefix}_{c}"] for c in ("ratio", "ci_low", "ci_high", "significant")]
    return [
        "baseline" if v == baseline else fmt_ratio(r, lo, hi, s)
        for v, r, lo, hi, s in zip(df["variant"], *cols, strict=True)
    ]


def fmt_ratio(ratio: float, lo: float, hi: float, significant: bool) -> str:
    """``"4.80 [4.51, 5.12]"``; `` (n.s.)`` appended when not significant; ``"–"`` when unknown."""
    if math.isnan(ratio):
        return "–"

    def f(x: float) -> str:
        return "∞" if math.isinf(x) else "–" if math.isnan(x) else f"{x:.2f}" if x < 100 else f"{x:.0f}"

    return f"{f(ratio)} [{f(lo)}, {f(hi)}]" + ("" if significant else " (n.s.)")


def df_headline_view(cmp: Comparison) -> pd.DataFrame:
    """:func:`df_headline` as shown on the page: readable names, ratios as text, the baseline marked.

    Returns:
        The columns of :data:`HEADLINE_COLUMNS`, labelled.
    """
    df = df_headline(cmp)
    out = pd.DataFrame(
        {
            "cell": df["cell"],
            "variant": [f"{v} (baseline)" if v == cmp.baseline else v for v in df["variant"]],
            "runs": [f"{a} + {b}" for a, b in zip(df["runs_probed"], df["runs_probe_free"], strict=True)],
        }
    )
    for col in ("interrupts", "set_irqs_per_irq", "set_irqs_per_s", "pba_toggles_per_irq", "us_per_irq"):
        out[col] = df[col]
    out["us_per_irq_vs_baseline"] = _vs_baseline(df, "us", cmp.baseline)
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
        "probed runs (the probes inflate µs, not counts); e2e latency: probe-free runs. "
        "runs (p + f): probed + probe-free runs. Ratios: baseline ÷ variant (> 1: the variant is "
        "cheaper/faster), 95% cluster-bootstrap interval over runs; (n.s.): p ≥ 0.05 (Mann–Whitney U) "
        "or the interval includes 1. lost: probe events lost."
    )
    table = table_html(df_headline_view(cmp), caption=caption, empty="No runs to summarise.")
    return f'<div class="vfb-headline">{table}</div>{few_runs_html(cmp)}'


def few_runs_html(cmp: Comparison) -> str:
    """A warning when some comparison has a single run on a side ('' when every side has two or more).

    With one run per side the cluster bootstrap resamples only that run's interrupts: the interval
    and the p-value then ignore run-to-run spread, which in the lab is often larger than the effect.
    """
    ab = cmp.ab()
    if ab.empty or "runs_baseline" not in ab.columns:
        return ""
    ok = ab[ab["available"].astype(bool)]
    thin = ok[(ok["runs_baseline"] < 2) | (ok["runs_variant"] < 2)]
    if thin.empty:
        return ""
    return (
        f'<p class="vfb-bad">{len(thin)} of {len(ok)} comparisons rest on a single run on one side: their '
        "intervals and p-values cover the interrupts of that run only, not the spread between runs "
        "(see Run-to-run spread); read them as preliminary until more repetitions land.</p>"
    )


def show_headline(cmp: Comparison) -> None:
    """Display the headline table (the page's answer)."""
    show_html(headline_html(cmp))


def failed_checks_html(cmp: Comparison) -> str:
    """A red box listing every failed ground-truth check (cell, variant, run, expected vs observed).

    Empty string when none failed.
    """
    rows = []
    for cell in cmp.cells:
        for r in cell.runs:
            for c in r.meta.checks:
                if not c.ok:
                    rows.append(
                        {
                            "cell": cell.label,
                            "variant": r.variant,
                            "run_id": r.run_id,
                            "check": c.name,
                            "expected": c.expected,
                            "observed": c.observed,
                            "detail": c.detail,
                        }
                    )
    if not rows:
        return ""
    return (
        f'<div class="vfb-error"><b>{len(rows)} ground-truth check{"s" if len(rows) > 1 else ""} FAILED: '
        "the probe counts of these runs disagree with QEMU's trace or the workload's counters.</b>"
        f"{table_html(pd.DataFrame(rows))}</div>"
    )


def show_failed_checks(cmp: Comparison) -> None:
    """Display :func:`failed_checks_html` (nothing when every check passed)."""
    markup = failed_checks_html(cmp)
    if markup:
        show_html(markup)


def verdict_lines(cmp: Comparison) -> list[tuple[str, str, str]]:
    """``(cell, line, css class)`` per (cell, variant, metric) of :meth:`Comparison.ab`.

    The class is ``vfb-good`` for a significant improvement (ratio > 1), ``vfb-bad`` for a
    significant regression, ``vfb-note`` otherwise.
    """
    out = []
    for rec in cmp.ab().to_dict("records"):
        if not rec.get("available"):
            line = f"{rec['variant']}: {rec['metric']} not available ({rec['verdict']})"
            out.append((str(rec["cell"]), line, "vfb-note"))
            continue
        cls = "vfb-note"
        if rec.get("significant"):
            cls = "vfb-good" if float(rec["ratio"]) > 1 else "vfb-bad"
        out.append((str(rec["cell"]), str(rec["verdict"]), cls))
    return out


def show_cell_verdicts(cmp: Comparison) -> None:
    """One verdict line per (variant, metric) under each cell, and a forest plot per metric.

    The lines also go into the output metadata (:data:`VERDICTS_MARKER`), prefixed with ``[cell]``
    when there are several cells, so :mod:`vfiobench.report` lists them on the index page.
    """
    from bokeh.models import Range1d

    from vfiobench.plots import plot_ab_forest

    lines = verdict_lines(cmp)
    many = len(cmp.cells) > 1
    blocks: list[str] = []
    marker: list[str] = []
    for cell in cmp.cells:
        mine = [(text, cls) for c, text, cls in lines if c == cell.label]
        if not mine:
            continue
        items = "".join(f'<li class="{cls}">{html.escape(text)}</li>' for text, cls in mine)
        head = f"<b>{html.escape(cell.label)}</b>" if many else ""
        blocks.append(f'{head}<ul class="vfb-verdicts">{items}</ul>')
        marker.extend(f"[{cell.label}] {text}" if many else text for text, _ in mine)
    show_html("".join(blocks) or '<p class="vfb-note">No verdicts.</p>', metadata={VERDICTS_MARKER: marker})
    ab = cmp.ab()
    if "available" not in ab.columns:
        return
    ok = ab[ab["available"].astype(bool)]
    finite = ok[["ratio", "ci_low", "ci_high"]].astype("float64").map(math.isfinite).all(axis=1)
    ok = ok[finite & (ok["ratio"].astype("float64") > 0)].reset_index(drop=True)  # 0 or ∞: verdict line only
    for _, g in ok.groupby("metric", sort=False):
        rows = g.assign(
            row=[f"{v} · {c}" if many else str(v) for v, c in zip(g["variant"], g["cell"], strict=True)]
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
