import pandas as pd
import pytest

from vfiobench.analysis.rates import df_probe_rates, df_rate_timeline, run_origins
from vfiobench.errors import AnalysisError
from vfiobench.store import load_runs

S = 1_000_000_000


def test_rate_timeline_hand_computed_with_empty_bins():
    df = pd.DataFrame(
        {"run_id": "r", "variant": "v", "ts_ns": [10 * S, 10 * S + S // 10, 11 * S + S // 2, 13 * S + S // 5]}
    )
    r = df_rate_timeline(df, bin_s=1.0)
    assert list(r.columns) == ["variant", "run_id", "t_s", "span_s", "events", "rate_per_s"]
    assert r["span_s"].tolist() == [1.0, 1.0, 1.0, 1.0]
    assert r["t_s"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert r["events"].tolist() == [2.0, 1.0, 0.0, 1.0]
    half = df_rate_timeline(df, bin_s=0.5)
    assert half["events"].tolist() == [2, 0, 0, 1, 0, 0, 1]
    assert half["rate_per_s"].tolist() == [4, 0, 0, 2, 0, 0, 2]


def test_observation_end_gives_partial_bins_and_trailing_zeros():
    df = pd.DataFrame({"run_id": "r", "variant": "v", "ts_ns": [0, S // 2]})
    r = df_rate_timeline(df, t_end_ns={"r": 3 * S + 3 * S // 4})  # observed 3.75 s
    assert r["events"].tolist() == [2, 0, 0, 0]
    assert r["span_s"].tolist() == [1.0, 1.0, 1.0, 0.75]
    short = df_rate_timeline(df, t_end_ns=2 * S + S // 10)  # a 0.1 s tail joins the bin before
    assert short["span_s"].tolist() == pytest.approx([1.0, 1.1])
    assert short["rate_per_s"].tolist() == pytest.approx([2.0, 0.0])
    with pytest.raises(AnalysisError, match="no end for run"):
        df_rate_timeline(df, t_end_ns={"x": 1})


def test_groups_and_origins():
    df = pd.DataFrame(
        {"run_id": ["a", "a", "b"], "variant": ["x", "x", "y"], "ts_ns": [5 * S, 6 * S, 100 * S]}
    )
    r = df_rate_timeline(df, by=("run_id",), t0_ns={"a": 3 * S, "b": 99 * S})
    assert r[r.run_id == "a"]["events"].tolist() == [0, 0, 1, 1]
    assert r[r.run_id == "b"]["events"].tolist() == [0, 1]
    one = df_rate_timeline(df, by=None, t0_ns=5 * S)
    assert one["events"].sum() == 3 and len(one) == 96
    with pytest.raises(AnalysisError, match="precedes"):
        df_rate_timeline(df, by=None, t0_ns=6 * S)
    with pytest.raises(AnalysisError, match="no origin for run"):
        df_rate_timeline(df, t0_ns={"a": 0})
    with pytest.raises(AnalysisError, match="positive"):
        df_rate_timeline(df, bin_s=0)


def test_probe_rates_count_pba_toggles_only_and_share_the_run_origin(make_run):
    toggles = pd.DataFrame(
        {
            "ts_ns": [2 * S, 2 * S + 1, 3 * S],
            "dur_ns": 10,
            "tid": 1,
            "mr": 7,
            "enabled": True,
            "is_pba": [True, False, True],
        }
    )
    ioctls = pd.DataFrame({"ts_ns": [1 * S, 4 * S + 5], "dur_ns": 10, "tid": 1})
    rs = load_runs(make_run("r1", "stock", {"pba_toggle": toggles, "set_irqs_ioctl": ioctls}))
    assert run_origins(rs) == {"r1": 1 * S}
    r = df_probe_rates(rs)
    pba = r[r.probe == "pba_toggle"]
    # counted from the ioctl at 1 s, up to the run's end (the last ioctl returns at 4 s + 15 ns: that
    # 15 ns tail is merged into the bin before it instead of making a 1/15ns spike)
    assert pba["t_s"].tolist() == [0.0, 1.0, 2.0]
    assert pba["events"].tolist() == [0, 1, 1]  # the non-PBA toggle is not counted
    assert pba["span_s"].tolist() == pytest.approx([1.0, 1.0, 1.0 + 15e-9])
    ioctl = r[r.probe == "set_irqs_ioctl"]
    assert ioctl["events"].tolist() == [1, 0, 1]
