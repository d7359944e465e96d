import numpy as np
import pandas as pd
import pytest
from hdrh.histogram import HdrHistogram

from vfiobench.analysis.latency import (
    df_cdf,
    df_histogram,
    df_histograms,
    df_latency_summary,
    histogram_from_table,
    histogram_percentiles,
    infer_layout,
    merge_histograms,
    table_mode,
)
from vfiobench.buckets import LogLinearBuckets
from vfiobench.errors import AnalysisError


def test_summary_hand_computed_linear_interpolation():
    df = pd.DataFrame({"variant": ["a"] * 4 + ["b"] * 3, "dur_ns": [4, 1, 3, 2, 30, 10, 20]})
    s = df_latency_summary(df)
    assert list(s.columns) == [
        "variant",
        "count",
        "mean_ns",
        "p50_ns",
        "p90_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
    ]
    a = s.set_index("variant").loc["a"]
    # sorted 1 2 3 4: p50 at rank 1.5 -> 2.5; p90 at rank 2.7 -> 3.7; p99 at 2.97 -> 3.97
    assert a["count"] == 4 and a["mean_ns"] == 2.5 and a["p50_ns"] == 2.5
    assert a["p90_ns"] == pytest.approx(3.7) and a["p99_ns"] == pytest.approx(3.97) and a["max_ns"] == 4
    b = s.set_index("variant").loc["b"]
    assert b["p50_ns"] == 20 and b["p90_ns"] == pytest.approx(28.0) and b["max_ns"] == 30
    overall = df_latency_summary(df, by=None)
    assert overall.columns[0] == "count" and overall["count"].iloc[0] == 7
    assert overall["mean_ns"].iloc[0] == pytest.approx(10.0)


def test_summary_ignores_nan_and_keeps_group_order():
    df = pd.DataFrame({"v": ["z", "a", "z"], "dur_ns": [1.0, np.nan, 3.0]})
    s = df_latency_summary(df, by="v")
    assert s["v"].tolist() == ["z", "a"]
    assert s["count"].tolist() == [2, 0]
    assert np.isnan(s["p50_ns"].iloc[1])


def test_histogram_separates_1_5_and_2_ms():
    h = df_histogram(np.array([1_500_000, 2_000_000, 2_000_100]))
    assert list(h.columns) == ["bucket", "lo_ns", "hi_ns", "count"]
    assert h["count"].tolist() == [1, 2]
    assert h["lo_ns"].iloc[0] <= 1_500_000 < h["hi_ns"].iloc[0]
    assert h["hi_ns"].iloc[0] < 2_000_000


def test_histogram_percentiles_hdr_convention_exact_for_small_ints():
    h = df_histogram(np.arange(1, 101))
    # rank ceil(q*100): p50 -> 50th value, p90 -> 90th, p99 -> 99th, p99.9 -> 100th
    assert histogram_percentiles(h, [0.5, 0.9, 0.99, 0.999, 1.0]).tolist() == [50, 90, 99, 100, 100]
    assert np.isnan(histogram_percentiles(df_histogram(np.array([], dtype=np.int64)), [0.5])[0])


def test_histogram_percentiles_within_relative_error_and_agree_with_hdrhistogram():
    rng = np.random.default_rng(3)
    v = np.rint(rng.lognormal(np.log(300_000), 0.8, 20_000)).astype(np.int64)
    qs = [0.5, 0.9, 0.99, 0.999]
    ours = histogram_percentiles(df_histogram(v), qs)
    exact = np.quantile(v, qs, method="inverted_cdf")
    assert np.all(np.abs(ours - exact) / exact <= 2**-6)
    hdr = HdrHistogram(1, 10**10, 2)
    for x in v.tolist():
        hdr.record_value(x)
    theirs = np.array([hdr.get_value_at_percentile(q * 100) for q in qs], dtype=float)
    # both are within their bucket width (1/64 here, 1/128 for 2 significant digits) of the exact value
    assert np.all(np.abs(ours - theirs) / exact <= 2**-6 + 2**-7)


def test_summary_from_bucketed_table_matches_histogram_of_raw():
    rng = np.random.default_rng(5)
    v = rng.integers(1_000, 5_000_000, 5_000)
    b = LogLinearBuckets()
    h = df_histogram(v)
    kernel = h[["bucket", "count"]]  # what an in-kernel histogram map dumps
    s = df_latency_summary(kernel, by=None)
    assert s["count"].iloc[0] == 5_000
    assert s["p99_ns"].iloc[0] == histogram_percentiles(h, [0.99])[0]
    assert s["max_ns"].iloc[0] == b.upper(b.index(v.max())) - 1
    assert s["mean_ns"].iloc[0] == pytest.approx(v.mean(), rel=2**-6)
    # the same table split in two chunks (as appended while recording) gives the same histogram
    chunks = pd.concat([kernel.iloc[::2], kernel.iloc[1::2]])
    assert histogram_from_table(chunks)["count"].tolist() == h["count"].tolist()


def test_histograms_per_group_and_merge_equals_histogram_of_concatenation():
    rng = np.random.default_rng(11)
    a = rng.integers(0, 10**7, 3000)
    b = rng.integers(0, 10**7, 2000)
    ha, hb = df_histogram(a), df_histogram(b)
    merged = merge_histograms([ha, hb])
    whole = df_histogram(np.concatenate([a, b]))
    pd.testing.assert_frame_equal(merged.reset_index(drop=True), whole.reset_index(drop=True))
    df = pd.DataFrame({"variant": ["a"] * 3000 + ["b"] * 2000, "dur_ns": np.concatenate([a, b])})
    per = df_histograms(df)
    assert per.groupby("variant")["count"].sum().to_dict() == {"a": 3000, "b": 2000}
    assert per[per.variant == "b"]["count"].tolist() == hb["count"].tolist()
    by_variant = merge_histograms([per, per], by="variant")
    assert by_variant.groupby("variant")["count"].sum().to_dict() == {"a": 6000, "b": 4000}


def test_merge_refuses_different_layouts():
    with pytest.raises(AnalysisError, match="different layouts"):
        merge_histograms([df_histogram([1, 2]), df_histogram([1, 2], LogLinearBuckets(4))])


def test_cdf_hand_computed_with_ties_and_thinning():
    df = pd.DataFrame({"variant": "a", "dur_ns": [4, 1, 1, 2]})
    c = df_cdf(df)
    assert list(c.columns) == ["variant", "value_ns", "cdf"]
    assert c["value_ns"].tolist() == [1, 2, 4]
    assert c["cdf"].tolist() == [0.5, 0.75, 1.0]
    big = pd.DataFrame({"variant": "a", "dur_ns": np.arange(10_000)})
    t = df_cdf(big, max_points=100)
    assert len(t) <= 100 and t["cdf"].iloc[-1] == 1.0 and t["value_ns"].iloc[0] == 0
    assert np.all(np.diff(t["cdf"]) > 0)


def test_cdf_from_bucketed_table():
    h = df_histogram([1, 1, 2, 5])
    c = df_cdf(h[["bucket", "count"]], by=None)
    assert c["value_ns"].tolist() == [1, 2, 5]
    assert c["cdf"].tolist() == [0.5, 0.75, 1.0]


def test_missing_columns_are_named():
    with pytest.raises(AnalysisError, match="'latency_ns'"):
        df_latency_summary(pd.DataFrame({"variant": ["a"], "dur_ns": [1]}), value="latency_ns")
    with pytest.raises(AnalysisError, match="'kind'"):
        df_cdf(pd.DataFrame({"dur_ns": [1]}), by="kind")


def test_in_kernel_table_of_another_precision_decodes_with_its_own_layout():
    # what `vfiobench record --histogram --sub-bucket-bits 4` stores: bucket, count, lo_ns, hi_ns
    b4 = LogLinearBuckets(4)
    v = np.array([1_500_000] * 3 + [2_000_000])
    h4 = df_histogram(v, b4)
    kernel = h4[["bucket", "count", "lo_ns", "hi_ns"]].copy()
    kernel.attrs = {}
    assert infer_layout(kernel) == b4
    s = df_latency_summary(kernel, by=None)
    assert s["max_ns"].iloc[0] == b4.upper(b4.index(2_000_000)) - 1
    assert histogram_from_table(kernel)["lo_ns"].tolist() == kernel["lo_ns"].tolist()
    with pytest.raises(AnalysisError, match="different layouts"):
        merge_histograms([kernel, df_histogram(v)])
    bad = kernel.assign(lo_ns=kernel["lo_ns"] + 1)
    with pytest.raises(AnalysisError, match="no log-linear layout"):
        infer_layout(bad)


def test_table_mixing_streamed_and_histogram_runs_keeps_every_row():
    streamed = pd.DataFrame({"run_id": "s", "variant": "v", "ts_ns": [1, 2], "dur_ns": [100, 200]})
    kernel = df_histogram([100, 100, 300])[["bucket", "count", "lo_ns", "hi_ns"]].assign(
        run_id="h", variant="v"
    )
    mixed = pd.concat([streamed, kernel], ignore_index=True)  # what RunSet.table() gives
    assert table_mode(mixed, "dur_ns") == "mixed"
    assert table_mode(streamed, "dur_ns") == "raw" and table_mode(kernel, "dur_ns") == "bucketed"
    s = df_latency_summary(mixed)
    assert s["count"].iloc[0] == 5  # 2 streamed + 3 counted in the kernel
    assert s["p50_ns"].iloc[0] == 100
    assert s["max_ns"].iloc[0] == 303  # 300 lies in bucket [300, 304): its highest equivalent value
    h = df_histograms(mixed)
    assert dict(zip(h["lo_ns"], h["count"], strict=True)) == {100: 3, 200: 1, 300: 1}
    assert df_cdf(mixed)["cdf"].tolist() == [0.6, 0.8, 1.0]
