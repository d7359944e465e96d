"""Inference over runs: the run (repetition) is the unit of replication.

Interrupts of one run share that run's conditions (the L1 boot, the host's load, where QEMU's
threads landed), so they are not independent draws: 3 runs of 1,000 interrupts carry about as much
evidence about a difference between variants as 3 numbers a side, not 3,000. Every interval and
p-value here is therefore computed from **one value per run** (the run's median latency, its mean
µs per interrupt, ...), never from pooled interrupts.

Method (:func:`compare_runs`): Welch's unequal-variance t-test on the per-run values.

* **Ratio** (the default): on ``log`` of the per-run values. The estimate is the ratio of the
  sides' geometric means, ``a / b`` (``a`` the baseline: > 1 means ``b`` is lower), and the interval
  ``exp(diff ± t(1 - alpha/2, df) · se)``. Per-run statistics of many interrupts are close to
  normal on the log scale (run-to-run effects act multiplicatively: a slower L1 slows every
  operation by a factor), and a ratio is what a reviewer asks ("how many times faster").
* **Difference** when a ratio would mislead: a side's values include 0, or the smaller side's mean is
  below ``floor`` (e.g. 1 µs per interrupt: an operation a variant removed) or more than
  :data:`MAX_RATIO` times smaller than the other. Then the test runs on the raw values and the
  estimate is ``mean(a) - mean(b)``: "removed: 180 µs → <1 µs" reads right, "1255x fewer" over a
  denominator of background noise does not.

The p-value and the interval come from the same t statistic and the same degrees of freedom, so
``significant`` (``p < alpha``) and "the interval excludes 1 (ratio) or 0 (difference)" can never
disagree. With fewer than :data:`MIN_RUNS` runs a side there is no interval and no p-value
(benchstat refuses below 6 too): a t-interval from 3 runs is valid but so wide it misleads when
printed next to a point estimate, and a bootstrap over 3 clusters has 10 distinct resamples per
side, which makes its interval roughly the range of the runs (too narrow).

Example:
    >>> import numpy as np
    >>> stock = np.array([5.1, 4.8, 5.3, 5.0, 4.9, 5.2])
    >>> r = compare_runs(stock, stock / 5)
    >>> round(r.estimate, 2), r.kind, r.significant
    (5.0, 'ratio', True)
    >>> compare_runs(stock[:3], stock[:3] / 5).ci_low is None   # too few runs for an interval
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

#: Fewest runs a side for an interval or a p-value.
MIN_RUNS = 6
#: A ratio beyond this (either way) is reported as a difference: its denominator is near zero.
MAX_RATIO = 100.0

Kind = Literal["ratio", "difference"]


@dataclass(frozen=True)
class RunComparison:
    """The comparison of a baseline ``a`` with a candidate ``b``, one value per run.

    Attributes:
        kind: ``"ratio"`` (``estimate = a / b`` of geometric means) or ``"difference"``
            (``estimate = mean(a) - mean(b)``).
        estimate: the point estimate; > 1 (ratio) or > 0 (difference) means ``b`` is lower.
        ci_low, ci_high: the ``1 - alpha`` interval of the estimate; None with too few runs.
        p_value: two-sided Welch t-test p-value; None with too few runs.
        significant: ``p_value < alpha``; None with too few runs.
        center_a, center_b: each side's geometric (ratio) or arithmetic (difference) mean.
        runs_a, runs_b: runs per side.
        df: Welch–Satterthwaite degrees of freedom (NaN when not computed).
        alpha: the level.
        method: how the numbers were made, for the page.
    """

    kind: Kind
    estimate: float
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    significant: bool | None
    center_a: float
    center_b: float
    runs_a: int
    runs_b: int
    df: float
    alpha: float
    method: str

    @property
    def enough_runs(self) -> bool:
        """Whether both sides have :data:`MIN_RUNS` runs (an interval and a p-value exist)."""
        return self.p_value is not None


def _clean(values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    v = np.asarray(values, dtype=np.float64).ravel()
    return v[np.isfinite(v)]


def use_ratio(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64], floor: float = 0.0) -> bool:
    """Whether ``a / b`` is a meaningful ratio (see the module docstring), else a difference."""
    if a.size == 0 or b.size == 0 or (a <= 0).any() or (b <= 0).any():
        return False
    ma, mb = float(a.mean()), float(b.mean())
    small, large = min(ma, mb), max(ma, mb)
    return small >= floor and large <= MAX_RATIO * small


def welch(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], alpha: float
) -> tuple[float, float, float, float, float]:
    """Welch's t on ``mean(x) - mean(y)``: ``(diff, half_width, p_value, df, se)``.

    Identical values on both sides (``se = 0``) give ``p = 1`` when the means are equal and
    ``p = 0`` otherwise, with a zero-width interval.
    """
    nx, ny = x.size, y.size
    diff = float(x.mean() - y.mean())
    vx, vy = float(x.var(ddof=1)) / nx, float(y.var(ddof=1)) / ny
    se = math.sqrt(vx + vy)
    if se == 0.0:
        return diff, 0.0, (1.0 if diff == 0.0 else 0.0), float("inf"), 0.0
    df = (vx + vy) ** 2 / (vx**2 / (nx - 1) + vy**2 / (ny - 1))
    t = diff / se
    p = float(2.0 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(1.0 - alpha / 2.0, df)) * se
    return diff, half, p, float(df), se


def compare_runs(
    a: npt.ArrayLike, b: npt.ArrayLike, *, alpha: float = 0.05, floor: float = 0.0, kind: Kind | None = None
) -> RunComparison:
    """Compare per-run values of a baseline ``a`` and a candidate ``b`` (see the module docstring).

    Args:
        a: one value per baseline run (NaNs dropped).
        b: one value per candidate run.
        alpha: significance level; the interval has level ``1 - alpha``.
        floor: a mean below this (in the values' unit) is "near zero": reported as a difference.
        kind: force ``"ratio"`` or ``"difference"`` instead of choosing by :func:`use_ratio`.

    Returns:
        A :class:`RunComparison`.

    Raises:
        ValueError: a side has no finite value, or ``kind="ratio"`` with a value <= 0.
    """
    xa, xb = _clean(a), _clean(b)
    if xa.size == 0 or xb.size == 0:
        raise ValueError(f"no per-run values on the {'baseline' if xa.size == 0 else 'candidate'} side")
    chosen: Kind = kind or ("ratio" if use_ratio(xa, xb, floor) else "difference")
    if chosen == "ratio" and ((xa <= 0).any() or (xb <= 0).any()):
        raise ValueError("a ratio needs positive per-run values on both sides")
    la, lb = (np.log(xa), np.log(xb)) if chosen == "ratio" else (xa, xb)
    center_a = float(np.exp(la.mean())) if chosen == "ratio" else float(xa.mean())
    center_b = float(np.exp(lb.mean())) if chosen == "ratio" else float(xb.mean())
    point = float(la.mean() - lb.mean())
    estimate = math.exp(point) if chosen == "ratio" else point
    method = f"Welch t-test on {'log ' if chosen == 'ratio' else ''}per-run values"
    if min(xa.size, xb.size) < MIN_RUNS:
        return RunComparison(
            chosen, estimate, None, None, None, None, center_a, center_b, int(xa.size), int(xb.size),
            float("nan"), alpha, f"{method}: too few runs for an interval ({MIN_RUNS} a side needed)",
        )  # fmt: skip
    diff, half, p, df, _ = welch(la, lb, alpha)
    lo, hi = diff - half, diff + half
    if chosen == "ratio":
        lo, hi = math.exp(lo), math.exp(hi)
    return RunComparison(
        chosen, estimate, lo, hi, p, bool(p < alpha), center_a, center_b, int(xa.size), int(xb.size),
        df, alpha, method,
    )  # fmt: skip


@dataclass(frozen=True)
class RunLevel:
    """One variant's level on one metric, from one value per run.

    Attributes:
        center: geometric mean of the per-run values when all are positive, else their mean.
        ci_low, ci_high: the ``1 - alpha`` t-interval (on the log scale for a geometric mean);
            None with fewer than :data:`MIN_RUNS` runs.
        runs: number of runs.
        geometric: whether ``center`` is a geometric mean.
    """

    center: float
    ci_low: float | None
    ci_high: float | None
    runs: int
    geometric: bool


def run_level(values: npt.ArrayLike, *, alpha: float = 0.05) -> RunLevel:
    """The level of one side (the same scale :func:`compare_runs` uses for a ratio), with its interval.

    Raises:
        ValueError: no finite value.
    """
    x = _clean(values)
    if x.size == 0:
        raise ValueError("no per-run values")
    geometric = bool((x > 0).all())
    v = np.log(x) if geometric else x
    back = math.exp if geometric else float
    center = back(float(v.mean()))
    if x.size < MIN_RUNS:
        return RunLevel(center, None, None, int(x.size), geometric)
    half = float(stats.t.ppf(1.0 - alpha / 2.0, x.size - 1)) * float(v.std(ddof=1)) / math.sqrt(x.size)
    mean = float(v.mean())
    return RunLevel(center, back(mean - half), back(mean + half), int(x.size), geometric)
