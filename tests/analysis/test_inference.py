"""Inference over runs, on data with known answers: clustered simulations, hand checks, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from vfiobench.analysis.inference import MAX_RATIO, MIN_RUNS, compare_runs, use_ratio

SIMS = 2000


def clustered_run_medians(
    rng: np.random.Generator, sims: int, runs: int, scale: float = 1.0, per_run: int = 200
) -> np.ndarray:
    """Per-run median latencies (sims x runs): each run has its own level (run-to-run sd 0.3 on the
    log scale, as an L1 stall or a slow boot gives), and 200 interrupts around it (sd 0.5)."""
    level = rng.normal(np.log(1000.0 * scale), 0.3, (sims, runs, 1))
    samples = np.exp(level + rng.normal(0.0, 0.5, (sims, runs, per_run)))
    return np.median(samples, axis=2)


def test_welch_on_logs_matches_scipy() -> None:
    a = np.array([5.1, 4.8, 5.6, 5.0, 4.7, 5.3, 5.9])
    b = np.array([1.1, 0.9, 1.3, 1.0, 1.2, 0.95])
    r = compare_runs(a, b)
    ref = stats.ttest_ind(np.log(a), np.log(b), equal_var=False)
    ci = ref.confidence_interval(0.95)
    assert r.kind == "ratio" and r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.ci_low == pytest.approx(math.exp(ci.low)) and r.ci_high == pytest.approx(math.exp(ci.high))
    assert r.estimate == pytest.approx(math.exp(np.log(a).mean() - np.log(b).mean()))
    assert r.center_a == pytest.approx(stats.gmean(a)) and r.runs_a == 7 and r.runs_b == 6


def test_p_is_uniform_when_both_sides_come_from_one_distribution() -> None:
    rng = np.random.default_rng(12)
    x = clustered_run_medians(rng, SIMS, 2 * MIN_RUNS)
    p = np.array([compare_runs(row[:MIN_RUNS], row[MIN_RUNS:]).p_value for row in x])
    assert stats.kstest(p, "uniform").pvalue > 0.01
    assert 0.035 <= float((p < 0.05).mean()) <= 0.065  # the nominal 5 % false positives


def test_the_interval_covers_the_true_ratio_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(34)
    a = clustered_run_medians(rng, SIMS, 8)
    b = clustered_run_medians(rng, SIMS, 6, scale=0.5)  # b is exactly 2x lower, in distribution
    covered = 0
    for ra, rb in zip(a, b, strict=True):
        r = compare_runs(ra, rb)
        assert r.ci_low is not None and r.ci_high is not None
        covered += r.ci_low <= 2.0 <= r.ci_high
    assert 0.935 <= covered / SIMS <= 0.965


def test_pooling_interrupts_would_call_identical_variants_different() -> None:
    """Why the unit is the run: Mann–Whitney on pooled interrupts of the same clustered data."""
    rng = np.random.default_rng(56)
    false_pos = 0
    for _ in range(200):
        level = rng.normal(np.log(1000.0), 0.3, (6, 1))
        samples = np.exp(level + rng.normal(0.0, 0.5, (6, 200)))
        p = stats.mannwhitneyu(samples[:3].ravel(), samples[3:].ravel()).pvalue
        false_pos += p < 0.05
    assert false_pos / 200 > 0.5  # most "significant" differences would be run-to-run noise


def test_significant_and_the_interval_never_disagree() -> None:
    rng = np.random.default_rng(78)
    for _ in range(500):
        a = rng.lognormal(0.0, rng.uniform(0.01, 0.5), rng.integers(MIN_RUNS, 15))
        b = rng.lognormal(rng.normal(0.0, 0.2), rng.uniform(0.01, 0.5), rng.integers(MIN_RUNS, 15))
        r = compare_runs(a, b)
        assert r.ci_low is not None and r.ci_high is not None and r.p_value is not None
        assert r.significant == (r.p_value < 0.05) == (r.ci_low > 1 or r.ci_high < 1)
        assert r.ci_low <= r.estimate <= r.ci_high


def test_too_few_runs_give_an_estimate_and_no_interval() -> None:
    r = compare_runs([5.0, 5.2, 4.9], [1.0, 1.1, 0.9, 1.0, 1.2, 1.0])
    assert r.estimate == pytest.approx(5.0, rel=0.05)
    assert (r.ci_low, r.ci_high, r.p_value, r.significant) == (None, None, None, None)
    assert not r.enough_runs and "too few runs" in r.method


def test_a_removed_operation_is_a_difference_not_a_ratio() -> None:
    stock = np.array([180.0, 175.0, 190.0, 185.0, 178.0, 182.0])  # µs per interrupt
    fixed = np.array([0.12, 0.15, 0.11, 0.16, 0.14, 0.13])  # background noise, not the operation
    r = compare_runs(stock, fixed, floor=1.0)
    assert r.kind == "difference" and r.estimate == pytest.approx(stock.mean() - fixed.mean())
    assert r.significant and r.ci_low is not None and r.ci_low > 0
    assert compare_runs(stock, fixed).kind == "difference"  # > MAX_RATIO apart even without a floor
    assert stock.mean() / fixed.mean() > MAX_RATIO


@pytest.mark.parametrize(
    ("a", "b", "floor", "ratio"),
    [
        ([5.0, 6.0], [1.0, 2.0], 0.0, True),
        ([5.0, 6.0], [0.0, 2.0], 0.0, False),  # a zero: no log
        ([5.0, 6.0], [0.5, 0.6], 1.0, False),  # below the floor
        ([500.0, 600.0], [5.0, 6.0], 0.0, True),  # exactly 100x: still a ratio
        ([500.0, 600.0], [4.0, 6.0], 0.0, False),  # 110x: the denominator is near zero
    ],
)
def test_ratio_or_difference(a: list[float], b: list[float], floor: float, ratio: bool) -> None:
    assert use_ratio(np.array(a), np.array(b), floor) == ratio


def test_identical_values_are_not_a_difference() -> None:
    r = compare_runs([3.0] * 6, [3.0] * 6)
    assert r.p_value == 1.0 and r.significant is False and r.ci_low == r.ci_high == 1.0


def test_no_values_is_an_error() -> None:
    with pytest.raises(ValueError, match="baseline"):
        compare_runs([np.nan], [1.0])
