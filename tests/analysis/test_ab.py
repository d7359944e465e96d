import dataclasses

import numpy as np
import pandas as pd
import pytest

from vfiobench.analysis.ab import ab_compare, df_ab, df_repetitions, metric_samples
from vfiobench.errors import AnalysisError
from vfiobench.store import load_runs


def test_identical_samples_ratio_one_and_no_difference():
    rng = np.random.default_rng(0)
    x = rng.lognormal(0, 0.5, 400)
    r = ab_compare(x, x.copy(), name="same", quantity="µs per interrupt")
    assert r.ratio == 1.0
    assert r.ci_low <= 1.0 <= r.ci_high
    assert r.p_value == pytest.approx(1.0)
    assert not r.significant
    assert r.verdict.startswith("same: no significant difference in µs per interrupt")
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.ratio = 2.0  # type: ignore[misc]


def test_constant_samples_are_not_a_difference():
    r = ab_compare([3.0] * 10, [3.0] * 10)
    assert r.ratio == 1.0 and r.p_value == 1.0 and not r.significant


def test_fivefold_shift_ratio_five_p_below_0_001():
    rng = np.random.default_rng(1)
    a = rng.lognormal(np.log(4000), 0.3, 300)
    b = rng.lognormal(np.log(800), 0.3, 300)
    r = ab_compare(a, b, name="pba-always-on", quantity="µs per interrupt")
    assert r.ratio == pytest.approx(5.0, rel=0.08)
    assert r.ci_low < r.ratio < r.ci_high and r.ci_low > 4.0 and r.ci_high < 6.3
    assert r.p_value < 0.001 and r.significant
    assert r.n_a == 300 and r.n_b == 300
    assert r.verdict.startswith("pba-always-on: ") and "x fewer µs per interrupt [" in r.verdict
    assert r.verdict.endswith("p<0.001")
    # the other way round reads "more", with the factor and interval inverted
    back = ab_compare(b, a, name="stock", quantity="µs per interrupt")
    assert back.ratio == pytest.approx(1 / r.ratio)
    assert " x more" not in back.verdict and "x more µs per interrupt" in back.verdict
    assert "lower interrupt latency" in ab_compare(a, b, quantity="interrupt latency").verdict


def test_mean_statistic_and_reproducible_seed():
    a, b = np.array([1.0, 2, 3, 100]), np.array([1.0, 2, 3, 4])
    r = ab_compare(a, b, statistic="mean", n_boot=500, seed=5)
    assert r.stat_a == pytest.approx(26.5) and r.stat_b == pytest.approx(2.5)
    assert r == ab_compare(a, b, statistic="mean", n_boot=500, seed=5)
    with pytest.raises(AnalysisError, match="statistic"):
        ab_compare(a, b, statistic="mode")  # type: ignore[arg-type]
    with pytest.raises(AnalysisError, match="no samples"):
        ab_compare([], b)


def test_repetitions_kept_apart_widen_the_interval():
    """Three runs per side whose levels differ run to run: pooling them hides that spread."""
    rng = np.random.default_rng(2)
    levels_a, levels_b = [1.0, 1.3, 0.8], [0.95, 1.25, 0.75]
    runs_a = [rng.lognormal(np.log(m), 0.1, 2000) for m in levels_a]
    runs_b = [rng.lognormal(np.log(m), 0.1, 2000) for m in levels_b]
    clustered = ab_compare(runs_a, runs_b, n_boot=400)
    pooled = ab_compare(np.concatenate(runs_a), np.concatenate(runs_b), n_boot=400)
    assert clustered.runs_a == 3 and pooled.runs_a == 1
    assert clustered.ratio == pytest.approx(pooled.ratio)
    assert (clustered.ci_high - clustered.ci_low) > 3 * (pooled.ci_high - pooled.ci_low)
    # U on 6000 pooled samples calls a 5 % shift significant; the run-level interval does not
    assert pooled.p_value < 0.05 and pooled.significant
    assert not clustered.significant and "no significant difference" in clustered.verdict


def test_df_ab_and_repetitions_on_runs(make_run):
    rng = np.random.default_rng(3)
    for rep in (1, 2):
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
    ab = df_ab(rs, "latency_ns", baseline="stock", n_boot=300)
    assert ab["variant"].tolist() == ["pba-always-on"]
    row = ab.iloc[0]
    assert row["ratio"] == pytest.approx(5.0, rel=0.1) and row["p_value"] < 0.001
    assert row["runs_baseline"] == 2 and row["n_variant"] == 400
    assert row["verdict"].startswith("pba-always-on: ") and "lower interrupt latency" in row["verdict"]
    reps = df_repetitions(rs, "latency_ns")
    assert list(reps.columns) == ["run_id", "variant", "repetition", "n", "median", "mean", "p90"]
    assert reps["repetition"].tolist() == [1, 1, 2, 2]
    one = rs["r1-stock"].table("workload")["latency_ns"]
    assert reps.set_index("run_id").loc["r1-stock", "median"] == pytest.approx(np.median(one))
    with pytest.raises(AnalysisError, match=r"baseline variant 'qemu-9'.*variants: pba-always-on, stock"):
        df_ab(rs, "latency_ns", baseline="qemu-9")
    with pytest.raises(AnalysisError, match="unknown metric"):
        metric_samples(rs, "speed")
    with pytest.raises(AnalysisError, match="no column 'nope'"):
        metric_samples(rs, "workload.nope")
    s, m = metric_samples(rs, "workload.latency_ns")
    assert len(s) == 800 and m.statistic == "median"


def test_a_statistic_of_zero_gives_a_plain_verdict():
    rng = np.random.default_rng(4)
    stock = 2 + rng.integers(0, 2, 300)  # 2-3 toggles per cycle
    always_on = np.zeros(300)  # never toggles
    r = ab_compare(stock, always_on, name="always-on", quantity="PBA toggles per interrupt", statistic="mean")
    assert r.ratio == float("inf") and r.significant and r.p_value < 0.001
    assert r.ci_low == float("inf")
    assert r.verdict.startswith("always-on: PBA toggles per interrupt 0 vs 2.")
    assert "for the baseline (mean), p<0.001" in r.verdict


def test_a_zero_statistic_without_significance_names_both_values():
    stock = np.array([0.0] * 298 + [3.0] * 2)  # a stray commit twice in 300 interrupts
    quiet = np.zeros(300)
    r = ab_compare(
        [stock[:150], stock[150:]],
        [quiet[:150], quiet[150:]],
        name="v",
        quantity="µs per interrupt",
        statistic="mean",
    )
    assert r.ratio == float("inf") and not r.significant
    # not "ratio inf [inf, inf]": the two values, which a reader can use
    assert (
        r.verdict
        == "v: no significant difference in µs per interrupt (0 vs 0.02 for the baseline, mean; p=0.158)"
    )
