import dataclasses

import numpy as np
import pandas as pd
import pytest

from vfiobench.analysis.ab import ab_compare, df_ab, df_repetitions, metric_samples
from vfiobench.errors import AnalysisError
from vfiobench.store import load_runs

RUNS = 8  # per side: enough for an interval (MIN_RUNS = 6)


def runs_of(rng, level, n_runs=RUNS, size=300, sigma=0.3, spread=0.05):
    """Per-run samples: each run at its own level (run-to-run spread), ``size`` samples around it."""
    return [rng.lognormal(np.log(level) + rng.normal(0, spread), sigma, size) for _ in range(n_runs)]


def test_identical_samples_ratio_one_and_no_difference():
    rng = np.random.default_rng(0)
    x = runs_of(rng, 1.0)
    r = ab_compare(x, [g.copy() for g in x], name="same", quantity="µs per interrupt")
    assert r.ratio == 1.0 and r.kind == "ratio" and r.enough_runs
    assert r.ci_low <= 1.0 <= r.ci_high
    assert r.p_value == pytest.approx(1.0)
    assert not r.significant
    assert r.verdict.startswith("same: no significant difference in µs per interrupt")
    assert r.verdict.endswith("8 vs 8 runs)")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.ratio = 2.0  # type: ignore[misc]


def test_constant_samples_are_not_a_difference():
    r = ab_compare([[3.0] * 10] * RUNS, [[3.0] * 10] * RUNS)
    assert r.ratio == 1.0 and r.p_value == 1.0 and not r.significant


def test_fivefold_shift_ratio_five_p_below_0_001():
    rng = np.random.default_rng(1)
    a = runs_of(rng, 4000)
    b = runs_of(rng, 800)
    r = ab_compare(a, b, name="pba-always-on", quantity="µs per interrupt")
    assert r.ratio == pytest.approx(5.0, rel=0.08)
    assert r.ci_low < r.ratio < r.ci_high and r.ci_low > 4.0 and r.ci_high < 6.3
    assert r.p_value < 0.001 and r.significant
    assert r.n_a == RUNS * 300 and r.n_b == RUNS * 300 and r.runs_a == RUNS
    assert r.verdict.startswith("pba-always-on: ") and "x fewer µs per interrupt [" in r.verdict
    assert r.verdict.endswith("p<0.001")
    # the other way round reads "more", with the factor and interval inverted
    back = ab_compare(b, a, name="stock", quantity="µs per interrupt")
    assert back.ratio == pytest.approx(1 / r.ratio)
    assert " x more" not in back.verdict and "x more µs per interrupt" in back.verdict
    assert "lower interrupt latency" in ab_compare(a, b, quantity="interrupt latency").verdict


def test_each_run_is_summarised_by_the_statistic():
    a = [np.array([1.0, 2, 3, 100])] * RUNS  # mean 26.5, median 2.5 per run
    b = [np.array([1.0, 2, 3, 4])] * RUNS  # mean 2.5, median 2.5
    r = ab_compare(a, b, statistic="mean")
    assert r.stat_a == pytest.approx(26.5) and r.stat_b == pytest.approx(2.5)
    assert ab_compare(a, b, statistic="median").ratio == pytest.approx(1.0)
    assert repr(r) == repr(ab_compare(a, b, statistic="mean"))  # deterministic: no resampling
    with pytest.raises(AnalysisError, match="statistic"):
        ab_compare(a, b, statistic="mode")  # type: ignore[arg-type]
    with pytest.raises(AnalysisError, match="no samples"):
        ab_compare([], b)


def test_the_run_is_the_unit_pooling_would_overstate():
    """Runs whose levels differ run to run: the run-level test sees that spread; treating each of
    the 16,000 interrupts as a replicate would make a 5 % shift look certain."""
    rng = np.random.default_rng(2)
    levels = [1.0, 1.3, 0.8, 1.1, 0.9, 1.25, 0.85, 1.0]
    runs_a = [rng.lognormal(np.log(m), 0.1, 2000) for m in levels]
    runs_b = [rng.lognormal(np.log(m * 0.95), 0.1, 2000) for m in levels[::-1]]
    clustered = ab_compare(runs_a, runs_b)
    pooled = ab_compare(list(np.concatenate(runs_a)[:, None]), list(np.concatenate(runs_b)[:, None]))
    assert clustered.runs_a == RUNS and clustered.n_a == RUNS * 2000 and pooled.runs_a == RUNS * 2000
    assert (clustered.ci_high - clustered.ci_low) > 10 * (pooled.ci_high - pooled.ci_low)
    assert pooled.significant and not clustered.significant
    assert "no significant difference" in clustered.verdict


def test_too_few_runs_give_the_estimate_and_no_interval():
    rng = np.random.default_rng(5)
    r = ab_compare(
        runs_of(rng, 5.0, n_runs=3), runs_of(rng, 1.0, n_runs=3), name="fix", quantity="µs per interrupt"
    )
    assert not r.enough_runs and not r.significant
    assert np.isnan(r.p_value) and np.isnan(r.ci_low) and np.isnan(r.ci_high)
    assert r.ratio == pytest.approx(5.0, rel=0.15)
    assert (
        r.verdict.startswith("fix: ")
        and "x fewer µs per interrupt; too few runs for an interval" in r.verdict
    )
    assert r.verdict.endswith("(3 vs 3 runs, 6 a side needed)")
    assert "p" not in r.verdict.split(";")[1].replace("runs", "").replace("side", "").replace("(", "")


def test_df_ab_and_repetitions_on_runs(make_run):
    rng = np.random.default_rng(3)
    for rep in range(1, 7):
        for variant, scale in (("stock", 5.0), ("pba-always-on", 1.0)):
            w = pd.DataFrame(
                {
                    "cycle": range(200),
                    "latency_ns": rng.lognormal(np.log(scale * 1e6), 0.2, 200),
                    "delivered": True,
                }
            )
            root = make_run(
                f"r{rep}-{variant}", variant, {"workload": w}, kind="probe-free", labels={"repetition": rep}
            )
    rs = load_runs(root.parent)
    ab = df_ab(rs, "latency_ns", baseline="stock")
    assert ab["variant"].tolist() == ["pba-always-on"]
    row = ab.iloc[0]
    assert row["ratio"] == pytest.approx(5.0, rel=0.1) and row["p_value"] < 0.001
    assert row["runs_baseline"] == 6 and row["n_variant"] == 1200 and row["enough_runs"]
    assert row["verdict"].startswith("pba-always-on: ") and "lower interrupt latency" in row["verdict"]
    reps = df_repetitions(rs, "latency_ns")
    assert list(reps.columns) == ["run_id", "variant", "repetition", "n", "median", "mean", "p90"]
    assert reps["repetition"].tolist() == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6]
    one = rs["r1-stock"].table("workload")["latency_ns"]
    assert reps.set_index("run_id").loc["r1-stock", "median"] == pytest.approx(np.median(one))
    with pytest.raises(AnalysisError, match=r"baseline variant 'qemu-9'.*variants: pba-always-on, stock"):
        df_ab(rs, "latency_ns", baseline="qemu-9")
    with pytest.raises(AnalysisError, match="unknown metric"):
        metric_samples(rs, "speed")
    with pytest.raises(AnalysisError, match="no column 'nope'"):
        metric_samples(rs, "workload.nope")
    s, m = metric_samples(rs, "workload.latency_ns")
    assert len(s) == 2400 and m.statistic == "median"


def test_a_removed_operation_is_a_difference_not_a_ratio():
    """A variant that removes the PBA toggles leaves ~0.1 µs of background per interrupt: a ratio
    over that would read "1500x"; the verdict gives the two values and the difference instead."""
    rng = np.random.default_rng(4)
    stock = runs_of(rng, 180.0)
    fixed = [rng.uniform(0.0, 0.25, 300) for _ in range(RUNS)]
    r = ab_compare(stock, fixed, name="fix", quantity="µs per interrupt", statistic="mean", floor=1.0)
    assert r.kind == "difference" and np.isnan(r.ratio) and r.significant and r.p_value < 0.001
    assert r.difference == pytest.approx(r.stat_a - r.stat_b) and r.diff_low < r.difference < r.diff_high
    assert r.verdict.startswith("fix: removed: µs per interrupt ")
    assert "→ <1 (" in r.verdict and " fewer), p<0.001" in r.verdict


def test_a_statistic_of_zero_gives_a_plain_verdict():
    rng = np.random.default_rng(4)
    stock = [2 + rng.integers(0, 2, 300) for _ in range(RUNS)]  # 2-3 toggles per cycle
    always_on = [np.zeros(300)] * RUNS  # never toggles
    r = ab_compare(stock, always_on, name="always-on", quantity="PBA toggles per interrupt", statistic="mean")
    assert r.kind == "difference" and r.significant and r.p_value < 0.001
    assert r.verdict.startswith("always-on: PBA toggles per interrupt 2.")
    assert "→ 0 (2." in r.verdict and "lower), p<0.001" in r.verdict


def test_a_zero_statistic_without_significance_names_both_values():
    stock = np.array([0.0] * 298 + [3.0] * 2)  # a stray commit twice in 300 interrupts
    quiet = np.zeros(300)
    r = ab_compare(
        [stock[i * 50 : (i + 1) * 50] for i in range(6)],
        [quiet[i * 50 : (i + 1) * 50] for i in range(6)],
        name="v",
        quantity="µs per interrupt",
        statistic="mean",
    )
    assert r.kind == "difference" and not r.significant
    # not "ratio inf [inf, inf]": the two values, which a reader can use
    assert r.verdict.startswith(
        "v: no significant difference in µs per interrupt (0.02 → 0; difference 0.02 ["
    )
