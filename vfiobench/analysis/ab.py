"""A/B statistics over runs: an estimate with its interval and p-value, and a one-line verdict.

The unit of replication is the run (see :mod:`vfiobench.analysis.inference`): each run of a side is
summarised by one number (its median latency, its mean µs per interrupt), and the two sides' per-run
values are compared with Welch's t-test, on their logarithms for a ratio. The interval and the
p-value come from the same test, so ``significant`` (``p < alpha``) and "the interval excludes 1"
always agree. With fewer than :data:`~vfiobench.analysis.inference.MIN_RUNS` runs a side there is
no interval and no p-value: the verdict says so and gives the point estimate only. Where the
candidate's value is near zero (an operation a variant removed) the comparison is a difference,
``"removed: 182 → <1 µs per interrupt"``, never a ratio over a near-zero denominator.
(Earlier versions bootstrapped 3 runs a side and took a Mann–Whitney p-value over pooled
interrupts; with 3 clusters the bootstrap interval is about the range of the runs, too narrow,
and pooling made run-to-run noise "significant".)

Orientation: ``ratio = a / b`` with ``a`` the baseline, so ``ratio = 4.8`` reads "b is 4.8x lower
than a" (4.8x fewer µs per interrupt); ``difference = a - b``.

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> stock = [rng.lognormal(np.log(5.0), 0.2, 500) for _ in range(8)]  # 8 runs
    >>> r = ab_compare(stock, [s / 5 for s in stock], name="always-on", quantity="µs per interrupt")
    >>> r.verdict.split(" [")[0]
    'always-on: 5.0x fewer µs per interrupt'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench import schema
from vfiobench.analysis.inference import MIN_RUNS, RunComparison, compare_runs
from vfiobench.analysis.per_interrupt import df_per_cycle
from vfiobench.errors import AnalysisError
from vfiobench.store import RunSet

Statistic = Literal["median", "mean"]
F64 = npt.NDArray[np.float64]
Samples = npt.ArrayLike | Sequence[npt.ArrayLike]

_UNIT_WORDS = ("µs", "us", "ns", "ms", "s", "calls", "ioctls", "toggles", "commits", "events")


@dataclass(frozen=True)
class ABResult:
    """Outcome of one A/B comparison (``a`` = baseline, ``b`` = candidate), over runs.

    Attributes:
        kind: ``"ratio"`` or ``"difference"`` (see :mod:`vfiobench.analysis.inference`).
        ratio: ``a / b`` (ratio of the sides' geometric means of per-run values); NaN for a difference.
        ci_low, ci_high: the ratio's ``1 - alpha`` interval; NaN for a difference or too few runs.
        difference: ``a - b`` (means of per-run values); NaN for a ratio.
        diff_low, diff_high: its interval; NaN for a ratio or too few runs.
        p_value: two-sided Welch p-value over per-run values; NaN with too few runs.
        significant: ``p_value < alpha``; False with too few runs (see ``enough_runs``).
        enough_runs: both sides have at least ``MIN_RUNS`` runs (an interval and a p-value exist).
        stat_a, stat_b: each side's centre (geometric mean of per-run values for a ratio, mean for a
            difference), in the metric's unit.
        n_a, n_b: samples per side; runs_a, runs_b: runs (the unit of replication) per side.
        statistic: how each run is summarised (``median`` or ``mean`` of its samples).
        method: how the numbers were made, for the page.
        verdict: one line for a reviewer.
    """

    ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    n_a: int
    n_b: int
    verdict: str
    stat_a: float = float("nan")
    stat_b: float = float("nan")
    runs_a: int = 1
    runs_b: int = 1
    statistic: str = "median"
    alpha: float = 0.05
    significant: bool = False
    kind: str = "ratio"
    difference: float = float("nan")
    diff_low: float = float("nan")
    diff_high: float = float("nan")
    enough_runs: bool = False
    method: str = ""


def _groups(x: Samples) -> list[F64]:
    """A side as a list of per-run arrays (one array = one run), NaNs dropped."""
    if isinstance(x, list | tuple) and len(x) > 0 and all(np.ndim(g) == 1 for g in x):
        groups = [np.asarray(g, dtype=np.float64).ravel() for g in x]
    else:
        groups = [np.asarray(x, dtype=np.float64).ravel()]
    groups = [g[~np.isnan(g)] for g in groups]
    return [g for g in groups if g.size]


def _stat_fn(statistic: str) -> Callable[[F64], float]:
    if statistic == "median":
        return lambda v: float(np.median(v))
    if statistic == "mean":
        return lambda v: float(np.mean(v))
    raise AnalysisError(f"statistic must be 'median' or 'mean', not {statistic!r}")


def _fmt_factor(x: float) -> str:
    return f"{x:.2f}" if x < 2 else f"{x:.1f}"


def _fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _fmt_value(x: float, floor: float) -> str:
    return f"<{floor:g}" if floor > 0 and abs(x) < floor else _g(x)


def _g(x: float) -> str:
    """Three significant digits, without exponents for thousands: 0.0213, 182, 2,656."""
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:,.0f}"


def _words(quantity: str) -> tuple[str, str]:
    first = quantity.split(" ", 1)[0]
    return ("fewer", "more") if first in _UNIT_WORDS else ("lower", "higher")


def _known(x: float | None) -> float:
    return math.nan if x is None else x


def _too_few(c: RunComparison) -> str:
    return f"too few runs for an interval ({c.runs_a} vs {c.runs_b} runs, {MIN_RUNS} a side needed)"


def _ratio_verdict(c: RunComparison, name: str, quantity: str) -> str:
    fewer, more = _words(quantity)
    r = c.estimate
    if not c.enough_runs:
        est = f"{_fmt_factor(r)}x {fewer}" if r >= 1 else f"{_fmt_factor(1 / r)}x {more}"
        return f"{name}: {est} {quantity}; {_too_few(c)}"
    lo, hi, p = _known(c.ci_low), _known(c.ci_high), _known(c.p_value)
    if not c.significant:
        ci = f"ratio {r:.2f} [{lo:.2f}, {hi:.2f}], {_fmt_p(p)}, {c.runs_a} vs {c.runs_b} runs"
        return f"{name}: no significant difference in {quantity} ({ci})"
    if r > 1:
        ci = f"[{_fmt_factor(lo)}, {_fmt_factor(hi)}]"
        return f"{name}: {_fmt_factor(r)}x {fewer} {quantity} {ci}, {_fmt_p(p)}"
    ci = f"[{_fmt_factor(1 / hi)}, {_fmt_factor(1 / lo)}]"
    return f"{name}: {_fmt_factor(1 / r)}x {more} {quantity} {ci}, {_fmt_p(p)}"


def _difference_verdict(c: RunComparison, name: str, quantity: str, floor: float) -> str:
    fewer, more = _words(quantity)
    values = f"{_fmt_value(c.center_a, floor)} → {_fmt_value(c.center_b, floor)}"
    if not c.enough_runs:
        return f"{name}: {quantity} {values}; {_too_few(c)}"
    d, lo, hi, p = c.estimate, _known(c.ci_low), _known(c.ci_high), _known(c.p_value)
    if not c.significant:
        diff = f"difference {_g(d)} [{_g(lo)}, {_g(hi)}]"
        return f"{name}: no significant difference in {quantity} ({values}; {diff}, {_fmt_p(p)})"
    word = fewer if d > 0 else more
    size = f"{_g(abs(d))} [{_g(min(abs(lo), abs(hi)))}, {_g(max(abs(lo), abs(hi)))}] {word}"
    removed = floor > 0 and abs(c.center_b) < floor <= abs(c.center_a)
    return f"{name}: {'removed: ' if removed else ''}{quantity} {values} ({size}), {_fmt_p(p)}"


def verdict_line(c: RunComparison, name: str, quantity: str, floor: float = 0.0) -> str:
    """The one-line verdict of a comparison over runs (the A/B page, ``Runs.compare``)."""
    if c.kind == "ratio":
        return _ratio_verdict(c, name, quantity)
    return _difference_verdict(c, name, quantity, floor)


def ab_compare(
    a: Samples,
    b: Samples,
    *,
    statistic: Statistic = "median",
    alpha: float = 0.05,
    floor: float = 0.0,
    name: str = "B",
    quantity: str = "value",
) -> ABResult:
    """Compare a baseline ``a`` with a candidate ``b``, run against run.

    Args:
        a: baseline samples: a list of arrays, one per run (a single array is one run).
        b: candidate samples, same forms.
        statistic: how each run is summarised: ``"median"`` (latencies) or ``"mean"`` (per-interrupt
            cost).
        alpha: significance level; the interval has level ``1 - alpha``.
        floor: a side whose centre is below this (in the samples' unit) is "near zero": the
            comparison is a difference (e.g. 1 µs per interrupt: an operation a variant removed).
        name: the candidate's name in the verdict (e.g. the variant).
        quantity: what is measured, for the verdict (``"µs per interrupt"``); a unit first word
            gives "fewer/more", anything else "lower/higher".

    Returns:
        An :class:`ABResult`; its verdict reads e.g.
        ``"always-on: 4.8x fewer µs per interrupt [4.5, 5.1], p<0.001"``,
        ``"always-on: no significant difference in µs per interrupt (ratio 1.02 [0.95, 1.10], p=0.41,
        8 vs 8 runs)"``,
        ``"fix: removed: µs per interrupt 182 → <1 (181 [178, 184] fewer), p<0.001"`` or
        ``"fix: 4.8x fewer µs per interrupt; too few runs for an interval (3 vs 3 runs, 6 a side needed)"``.

    Raises:
        AnalysisError: a side has no samples, or an unknown statistic.
    """
    ga, gb = _groups(a), _groups(b)
    if not ga or not gb:
        raise AnalysisError(
            f"A/B comparison for {name}: {'baseline' if not ga else 'candidate'} has no samples"
        )
    fn = _stat_fn(statistic)
    per_a = np.array([fn(g) for g in ga])
    per_b = np.array([fn(g) for g in gb])
    c = compare_runs(per_a, per_b, alpha=alpha, floor=floor)
    nan = float("nan")
    ratio_kind = c.kind == "ratio"
    lo = nan if c.ci_low is None else c.ci_low
    hi = nan if c.ci_high is None else c.ci_high
    return ABResult(
        ratio=c.estimate if ratio_kind else nan,
        ci_low=lo if ratio_kind else nan,
        ci_high=hi if ratio_kind else nan,
        p_value=nan if c.p_value is None else c.p_value,
        n_a=int(sum(g.size for g in ga)),
        n_b=int(sum(g.size for g in gb)),
        verdict=verdict_line(c, name, quantity, floor),
        stat_a=c.center_a,
        stat_b=c.center_b,
        runs_a=c.runs_a,
        runs_b=c.runs_b,
        statistic=statistic,
        alpha=alpha,
        significant=bool(c.significant),
        kind=c.kind,
        difference=nan if ratio_kind else c.estimate,
        diff_low=nan if ratio_kind else lo,
        diff_high=nan if ratio_kind else hi,
        enough_runs=c.enough_runs,
        method=c.method,
    )


@dataclass(frozen=True)
class Metric:
    """A named A/B metric: where its samples come from and how to summarise them."""

    name: str
    quantity: str
    statistic: Statistic
    kind: str | None  # preferred run kind ("probe-free" for end-to-end timings), None = any
    unit_scale: float = 1.0  # multiply samples by this to get the quantity's unit
    floor: float = 0.0  # below this (the quantity's unit) a value is "near zero": a difference, not a ratio


#: Built-in metrics; any ``"<table>.<column>"`` (e.g. ``"set_irqs_ioctl.dur_ns"``) works too.
#: ``us_per_irq`` is the time on the interrupt's path (``path_us`` of
#: :func:`~vfiobench.analysis.per_interrupt.df_per_cycle`): background work on other threads is not
#: a cost of the interrupt; below 1 µs per interrupt an operation is as good as gone.
METRICS: dict[str, Metric] = {
    "latency_ns": Metric("latency_ns", "interrupt latency (median)", "median", "probe-free"),
    "cycle_ns": Metric("cycle_ns", "cycle time (median)", "median", "probe-free"),
    "us_per_irq": Metric("us_per_irq", "µs per interrupt", "mean", "probed", floor=1.0),
}


def metric_samples(
    runset: RunSet, metric: str, *, exclude_stalled: bool = False
) -> tuple[pd.DataFrame, Metric]:
    """Samples of a metric, one row per sample.

    With ``exclude_stalled``, interrupts the lab flagged as overlapping an L1 stall (the workload
    table's ``stalled`` column, see :mod:`vfiobench.lab.stalls`) are left out of the workload metrics
    (``latency_ns``, ``cycle_ns``); runs without the column keep every interrupt.

    Metrics: ``latency_ns`` / ``cycle_ns`` (workload table, delivered cycles; probe-free runs when
    the set has any, since probes inflate end-to-end times), ``us_per_irq`` (per-cycle exclusive time
    in probed calls on the interrupt's path, probed runs; see
    :func:`~vfiobench.analysis.per_interrupt.df_per_cycle`), or
    ``"<table>.<column>"`` (every row of that table, all runs).

    Returns:
        ``([run_id, variant, value], metric)``; ``value`` float64 in the metric's unit.

    Raises:
        AnalysisError: unknown metric, missing table or column, or no samples.
    """
    if metric in METRICS:
        m = METRICS[metric]
        rs = runset
        if m.kind is not None and any(r.meta.kind == m.kind for r in runset):
            rs = runset.filter(kind=m.kind)
        if metric == "us_per_irq":
            df = df_per_cycle(rs)
            out = df[["run_id", "variant"]].assign(value=df["path_us"].to_numpy(dtype=np.float64))
        else:
            w = rs.table(schema.WORKLOAD)
            if metric not in w.columns:
                raise AnalysisError(
                    f"metric {metric!r}: no workload table with a {metric} column in these runs"
                )
            if "delivered" in w.columns:
                w = w[w["delivered"].astype(bool)]
            if exclude_stalled and "stalled" in w.columns:
                w = w[~w["stalled"].fillna(False).astype(bool)]
            out = w[["run_id", "variant"]].assign(value=w[metric].to_numpy(dtype=np.float64))
    elif "." in metric:
        table, col = metric.split(".", 1)
        t = runset.table(table)
        if col not in t.columns:
            raise AnalysisError(
                f"metric {metric!r}: table {table!r} has no column {col!r} in these runs",
                f"known metrics: {', '.join(METRICS)} or <table>.<column>",
            )
        m = Metric(metric, f"{col} of {table} (median)", "median", None)
        out = t[["run_id", "variant"]].assign(value=t[col].to_numpy(dtype=np.float64))
    else:
        raise AnalysisError(
            f"unknown metric {metric!r}", f"use one of {', '.join(METRICS)} or <table>.<column>"
        )
    out = out.dropna(subset=["value"]).reset_index(drop=True)
    if out.empty:
        raise AnalysisError(f"metric {metric!r}: no samples in these runs")
    return out, m


def _per_run(samples: pd.DataFrame, variant: str) -> list[F64]:
    s = samples[samples["variant"] == variant]
    return [g["value"].to_numpy(dtype=np.float64) for _, g in s.groupby("run_id", sort=False)]


def per_run_values(samples: pd.DataFrame, variant: str, statistic: Statistic) -> F64:
    """One value per run of ``variant`` (its samples' median or mean), as the A/B tests use them."""
    fn = _stat_fn(statistic)
    return np.array([fn(v) for v in _per_run(samples, variant)], dtype=np.float64)


#: Columns of :func:`df_ab`.
AB_COLUMNS: list[str] = [
    "variant", "baseline", "metric", "quantity", "statistic", "stat_baseline", "stat_variant", "kind",
    "ratio", "ci_low", "ci_high", "difference", "diff_low", "diff_high", "p_value", "n_baseline",
    "n_variant", "runs_baseline", "runs_variant", "enough_runs", "significant", "method", "verdict",
]  # fmt: skip


def df_ab(
    runset: RunSet,
    metric: str,
    baseline: str = "stock",
    *,
    statistic: Statistic | None = None,
    alpha: float = 0.05,
    exclude_stalled: bool = False,
) -> pd.DataFrame:
    """Every other variant against ``baseline`` on one metric (see :func:`metric_samples`), over runs.

    ``exclude_stalled`` leaves out interrupts that overlapped an L1 stall (lab runs; see
    :func:`metric_samples`).

    Returns:
        One row per non-baseline variant: ``variant, baseline, metric, quantity, statistic,
        stat_baseline, stat_variant, kind, ratio, ci_low, ci_high, difference, diff_low, diff_high,
        p_value, n_baseline, n_variant, runs_baseline, runs_variant, enough_runs, significant, method,
        verdict`` (``ratio`` = baseline / variant, ``difference`` = baseline - variant; see
        :func:`ab_compare`).

    Raises:
        AnalysisError: the baseline variant is absent, or the metric has no samples.
    """
    samples, m = metric_samples(runset, metric, exclude_stalled=exclude_stalled)
    variants = list(dict.fromkeys(samples["variant"]))
    if baseline not in variants:
        raise AnalysisError(
            f"baseline variant {baseline!r} has no {metric} samples "
            f"(variants: {', '.join(variants) or 'none'})",
            "pass baseline= one of those",
        )
    stat = statistic or m.statistic
    base = _per_run(samples, baseline)
    rows: list[dict[str, Any]] = []
    for v in variants:
        if v == baseline:
            continue
        r = ab_compare(
            base,
            _per_run(samples, v),
            statistic=stat,
            alpha=alpha,
            floor=m.floor,
            name=v,
            quantity=m.quantity,
        )
        rows.append(
            {
                "variant": v,
                "baseline": baseline,
                "metric": metric,
                "quantity": m.quantity,
                "statistic": stat,
                "stat_baseline": r.stat_a,
                "stat_variant": r.stat_b,
                "kind": r.kind,
                "ratio": r.ratio,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "difference": r.difference,
                "diff_low": r.diff_low,
                "diff_high": r.diff_high,
                "p_value": r.p_value,
                "n_baseline": r.n_a,
                "n_variant": r.n_b,
                "runs_baseline": r.runs_a,
                "runs_variant": r.runs_b,
                "enough_runs": r.enough_runs,
                "significant": r.significant,
                "method": r.method,
                "verdict": r.verdict,
            }
        )
    columns = AB_COLUMNS
    return pd.DataFrame(rows, columns=columns)


def df_repetitions(runset: RunSet, metric: str) -> pd.DataFrame:
    """Per-run statistics of a metric, so run-to-run spread is visible beside the A/B verdict.

    Returns:
        ``[run_id, variant, repetition, n, median, mean, p90]`` in run order, ``repetition`` from the
        run's labels (None when unlabelled); values in the metric's unit.
    """
    samples, _ = metric_samples(runset, metric)
    reps = {r.run_id: r.meta.labels.get("repetition") for r in runset}
    rows = []
    for run_id, g in samples.groupby("run_id", sort=False):
        v = g["value"].to_numpy(dtype=np.float64)
        rows.append(
            {
                "run_id": run_id,
                "variant": g["variant"].iloc[0],
                "repetition": reps.get(str(run_id)),
                "n": int(v.size),
                "median": float(np.median(v)),
                "mean": float(v.mean()),
                "p90": float(np.quantile(v, 0.9)),
            }
        )
    return pd.DataFrame(rows, columns=["run_id", "variant", "repetition", "n", "median", "mean", "p90"])
