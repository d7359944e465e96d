"""A/B statistics: ratio of a statistic with a cluster-bootstrap CI, Mann–Whitney U, one-line verdict.

Repetitions are kept apart. The bootstrap is hierarchical: each replicate resamples the runs
(repetitions) of a side with replacement, then the samples within each drawn run with replacement,
and pools them, so run-to-run spread widens the interval as it should (a plain bootstrap over pooled
samples would treat 3 runs of 300 cycles as 900 independent draws). The Mann–Whitney U p-value
(``scipy.stats.mannwhitneyu``, two-sided) is computed on the pooled samples and so ignores the
clustering; a difference is called significant only when both ``p < alpha`` and the bootstrap
interval excludes 1. :func:`df_repetitions` shows the per-run statistics beside the verdict.

Orientation: ``ratio = statistic(a) / statistic(b)`` with ``a`` the baseline, so ``ratio = 4.8`` reads
"b is 4.8x lower than a" (4.8x fewer µs per interrupt).

Example:
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> stock = rng.lognormal(np.log(5.0), 0.2, 500)
    >>> r = ab_compare(stock, stock / 5, name="always-on", quantity="µs per interrupt")
    >>> r.verdict.split(" [")[0]
    'always-on: 5.0x fewer µs per interrupt'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from vfiobench import schema
from vfiobench.analysis.per_interrupt import df_per_cycle
from vfiobench.errors import AnalysisError
from vfiobench.store import RunSet

Statistic = Literal["median", "mean"]
F64 = npt.NDArray[np.float64]
Samples = npt.ArrayLike | Sequence[npt.ArrayLike]

_UNIT_WORDS = ("µs", "us", "ns", "ms", "s", "calls", "ioctls", "toggles", "commits", "events")


@dataclass(frozen=True)
class ABResult:
    """Outcome of one A/B comparison (``a`` = baseline, ``b`` = candidate).

    Attributes:
        ratio: ``statistic(a) / statistic(b)``; > 1 means ``b`` is lower.
        ci_low, ci_high: bootstrap percentile interval of the ratio at level ``1 - alpha``.
        p_value: two-sided Mann–Whitney U p-value on the pooled samples.
        n_a, n_b: samples per side; runs_a, runs_b: repetitions (clusters) per side.
        stat_a, stat_b: the statistic of each side.
        significant: ``p_value < alpha`` and the interval excludes 1.
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


def _groups(x: Samples) -> list[F64]:
    """A side as a list of per-repetition arrays (one array = one repetition), NaNs dropped."""
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


def _cluster_boot(
    groups: list[F64], n_boot: int, fn: Callable[[F64], float], rng: np.random.Generator
) -> F64:
    out = np.empty(n_boot)
    r = len(groups)
    for i in range(n_boot):
        picks = np.bincount(rng.integers(0, r, r), minlength=r)
        parts = [g[rng.integers(0, g.size, k * g.size)] for g, k in zip(groups, picks, strict=True) if k]
        out[i] = fn(np.concatenate(parts) if len(parts) > 1 else parts[0])
    return out


def _fmt_factor(x: float) -> str:
    return f"{x:.2f}" if x < 2 else f"{x:.1f}"


def _fmt_p(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _words(quantity: str) -> tuple[str, str]:
    first = quantity.split(" ", 1)[0]
    return ("fewer", "more") if first in _UNIT_WORDS else ("lower", "higher")


def ab_compare(
    a: Samples,
    b: Samples,
    *,
    statistic: Statistic = "median",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
    name: str = "B",
    quantity: str = "value",
) -> ABResult:
    """Compare a baseline ``a`` with a candidate ``b``.

    Args:
        a: baseline samples: one array, or a list of arrays, one per repetition (run).
        b: candidate samples, same forms.
        statistic: ``"median"`` (latencies) or ``"mean"`` (per-interrupt cost).
        n_boot: bootstrap replicates.
        seed: bootstrap RNG seed (results are reproducible).
        alpha: significance level; the interval is the ``[alpha/2, 1-alpha/2]`` percentile interval.
        name: the candidate's name in the verdict (e.g. the variant).
        quantity: what is measured, for the verdict (``"µs per interrupt"``); a unit first word
            gives "fewer/more", anything else "lower/higher".

    Returns:
        An :class:`ABResult`; its verdict reads e.g.
        ``"always-on: 4.8x fewer µs per interrupt [4.5, 5.1], p<0.001"`` or
        ``"always-on: no significant difference in µs per interrupt (ratio 1.02 [0.95, 1.10], p=0.41)"``.

    Raises:
        AnalysisError: a side has no samples, or an unknown statistic.
    """
    ga, gb = _groups(a), _groups(b)
    if not ga or not gb:
        raise AnalysisError(
            f"A/B comparison for {name}: {'baseline' if not ga else 'candidate'} has no samples"
        )
    fn = _stat_fn(statistic)
    pa, pb = np.concatenate(ga), np.concatenate(gb)
    sa, sb = fn(pa), fn(pb)
    ratio = sa / sb if sb != 0 else float("inf") if sa > 0 else float("nan")
    rng = np.random.default_rng(seed)
    ba = _cluster_boot(ga, n_boot, fn, rng)
    bb = _cluster_boot(gb, n_boot, fn, rng)
    with np.errstate(divide="ignore", invalid="ignore"):
        boot = ba / bb
    degenerate = sa == 0 or sb == 0  # a side's statistic is 0 (e.g. no PBA toggles at all)
    if degenerate:  # the ratio is 0 or infinite: keep the infinite replicates, no interpolation
        boot = boot[~np.isnan(boot)]
        qs = np.quantile(boot, [alpha / 2, 1 - alpha / 2], method="inverted_cdf") if boot.size else None
    else:
        boot = boot[np.isfinite(boot)]
        qs = np.quantile(boot, [alpha / 2, 1 - alpha / 2]) if boot.size else None
    lo, hi = (float(qs[0]), float(qs[1])) if qs is not None else (np.nan, np.nan)
    if np.ptp(np.concatenate([pa, pb])) == 0:
        p = 1.0  # every sample equal: U is undefined, there is no difference
    else:
        p = float(stats.mannwhitneyu(pa, pb, alternative="two-sided").pvalue)
    significant = bool(p < alpha and (lo > 1 or hi < 1))
    fewer, more = _words(quantity)
    if degenerate and significant:
        verdict = f"{name}: {quantity} {sb:.3g} vs {sa:.3g} for the baseline ({statistic}), {_fmt_p(p)}"
    elif degenerate:  # a ratio of 0 or infinity says nothing a reader can use: give the two values
        verdict = (
            f"{name}: no significant difference in {quantity} "
            f"({sb:.3g} vs {sa:.3g} for the baseline, {statistic}; {_fmt_p(p)})"
        )
    elif not significant:
        verdict = (
            f"{name}: no significant difference in {quantity} "
            f"(ratio {ratio:.2f} [{lo:.2f}, {hi:.2f}], {_fmt_p(p)})"
        )
    elif ratio > 1:
        ci = f"[{_fmt_factor(lo)}, {_fmt_factor(hi)}]"
        verdict = f"{name}: {_fmt_factor(ratio)}x {fewer} {quantity} {ci}, {_fmt_p(p)}"
    else:
        ci = f"[{_fmt_factor(1 / hi)}, {_fmt_factor(1 / lo)}]"
        verdict = f"{name}: {_fmt_factor(1 / ratio)}x {more} {quantity} {ci}, {_fmt_p(p)}"
    return ABResult(
        ratio=float(ratio),
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=p,
        n_a=int(pa.size),
        n_b=int(pb.size),
        verdict=verdict,
        stat_a=sa,
        stat_b=sb,
        runs_a=len(ga),
        runs_b=len(gb),
        statistic=statistic,
        alpha=alpha,
        significant=significant,
    )


@dataclass(frozen=True)
class Metric:
    """A named A/B metric: where its samples come from and how to summarise them."""

    name: str
    quantity: str
    statistic: Statistic
    kind: str | None  # preferred run kind ("probe-free" for end-to-end timings), None = any
    unit_scale: float = 1.0  # multiply samples by this to get the quantity's unit


#: Built-in metrics; any ``"<table>.<column>"`` (e.g. ``"set_irqs_ioctl.dur_ns"``) works too.
METRICS: dict[str, Metric] = {
    "latency_ns": Metric("latency_ns", "interrupt latency (median)", "median", "probe-free"),
    "cycle_ns": Metric("cycle_ns", "cycle time (median)", "median", "probe-free"),
    "us_per_irq": Metric("us_per_irq", "µs per interrupt", "mean", "probed"),
}


def metric_samples(runset: RunSet, metric: str) -> tuple[pd.DataFrame, Metric]:
    """Samples of a metric, one row per sample.

    Metrics: ``latency_ns`` / ``cycle_ns`` (workload table, delivered cycles; probe-free runs when
    the set has any, since probes inflate end-to-end times), ``us_per_irq`` (per-cycle exclusive time
    in probed calls, probed runs; see :func:`~vfiobench.analysis.per_interrupt.df_per_cycle`), or
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
            out = df[["run_id", "variant"]].assign(value=df["total_us"].to_numpy(dtype=np.float64))
        else:
            w = rs.table(schema.WORKLOAD)
            if metric not in w.columns:
                raise AnalysisError(
                    f"metric {metric!r}: no workload table with a {metric} column in these runs"
                )
            if "delivered" in w.columns:
                w = w[w["delivered"].astype(bool)]
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


def df_ab(
    runset: RunSet,
    metric: str,
    baseline: str = "stock",
    *,
    statistic: Statistic | None = None,
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Every other variant against ``baseline`` on one metric (see :func:`metric_samples`).

    Returns:
        One row per non-baseline variant: ``variant, baseline, metric, quantity, statistic,
        stat_baseline, stat_variant, ratio, ci_low, ci_high, p_value, n_baseline, n_variant,
        runs_baseline, runs_variant, significant, verdict`` (``ratio`` = baseline / variant).

    Raises:
        AnalysisError: the baseline variant is absent, or the metric has no samples.
    """
    samples, m = metric_samples(runset, metric)
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
            n_boot=n_boot,
            seed=seed,
            alpha=alpha,
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
                "ratio": r.ratio,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "p_value": r.p_value,
                "n_baseline": r.n_a,
                "n_variant": r.n_b,
                "runs_baseline": r.runs_a,
                "runs_variant": r.runs_b,
                "significant": r.significant,
                "verdict": r.verdict,
            }
        )
    columns = [
        "variant", "baseline", "metric", "quantity", "statistic", "stat_baseline", "stat_variant", "ratio",
        "ci_low", "ci_high", "p_value", "n_baseline", "n_variant", "runs_baseline", "runs_variant",
        "significant", "verdict",
    ]  # fmt: skip
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
