import numpy as np
import pandas as pd
import pytest
from bokeh.embed import json_item
from bokeh.models import FactorRange, GlyphRenderer, LinearScale, LogScale
from bokeh.models.annotations.geometry import Span, Whisker
from bokeh.models.annotations.legends import Legend

from vfiobench.analysis.latency import df_cdf, df_histograms
from vfiobench.analysis.rates import df_rate_timeline
from vfiobench.errors import AnalysisError
from vfiobench.plots import (
    plot_ab_forest,
    plot_cdf,
    plot_cost_breakdown,
    plot_latency_histogram,
    plot_rate_timeline,
    plot_repetitions,
)


def renderers(fig, glyph):
    return [r for r in fig.renderers if isinstance(r, GlyphRenderer) and type(r.glyph).__name__ == glyph]


def test_latency_histogram_log_axis_and_bucket_edges():
    df = pd.DataFrame({"variant": ["a"] * 3 + ["b"], "dur_ns": [1_500_000, 2_000_000, 2_000_100, 0]})
    fig = plot_latency_histogram(df_histograms(df))
    assert isinstance(fig.x_scale, LogScale)
    quads = renderers(fig, "Quad")
    assert len(quads) == 2
    a = quads[0].data_source.data
    assert a["left"].tolist() == [1490.944, 1998.848]  # µs
    assert a["right"].tolist() == [1507.328, 2015.232]
    assert a["top"].tolist() == pytest.approx([1 / 3, 2 / 3])
    assert a["count"].tolist() == [1, 2]
    b = quads[1].data_source.data
    assert b["left"].tolist() == [0.0005] and b["right"].tolist() == [0.001]  # [0,1) ns drawn at half its top
    raw = plot_latency_histogram(df_histograms(df), normalize=False)
    assert renderers(raw, "Quad")[0].data_source.data["top"].tolist() == [1, 2]
    assert [item.label["value"] for item in fig.legend[0].items] == ["a", "b"]


def test_cdf_overlay_per_variant():
    df = pd.DataFrame(
        {"variant": ["stock"] * 4 + ["on"] * 2, "latency_ns": [4000, 1000, 1000, 2000, 500, 700]}
    )
    fig = plot_cdf(df_cdf(df, "latency_ns"))
    assert isinstance(fig.x_scale, LogScale)
    steps = renderers(fig, "Step")
    assert len(steps) == 2
    d = steps[0].data_source.data
    assert d["x"].tolist() == [1.0, 2.0, 4.0] and d["cdf"].tolist() == [0.5, 0.75, 1.0]
    assert steps[1].data_source.data["label"] == ["on", "on"]
    lin = plot_cdf(df_cdf(df, "latency_ns"), log_x=False)
    assert isinstance(lin.x_scale, LinearScale)


def test_rate_timeline_one_line_per_group():
    s = 1_000_000_000
    df = pd.DataFrame({"run_id": ["r1", "r1", "r1", "r2"], "variant": "v", "ts_ns": [0, 1, 2 * s, 5 * s]})
    fig = plot_rate_timeline(df_rate_timeline(df))
    assert isinstance(fig.x_scale, LinearScale)
    steps = renderers(fig, "Step")
    assert len(steps) == 2
    d = steps[0].data_source.data
    # bins 0, 1, 2 plus the closing point at the end of the last bin
    assert d["t_s"].tolist() == [0, 1, 2, 3] and d["rate_per_s"].tolist() == [2, 0, 1, 1]
    assert d["label"][0] == "v · r1"


def test_cost_breakdown_stacks_operations_per_variant():
    b = pd.DataFrame(
        {
            "variant": ["stock", "stock", "on", "on"],
            "operation": ["set_irqs", "pba_toggle", "set_irqs", "pba_toggle"],
            "label": ["SET_IRQS ioctl", "PBA toggle", "SET_IRQS ioctl", "PBA toggle"],
            "us_per_irq": [300.0, 550.0, 290.0, 0.0],
        }
    )
    fig = plot_cost_breakdown(b)
    assert isinstance(fig.x_range, FactorRange) and list(fig.x_range.factors) == ["stock", "on"]
    bars = renderers(fig, "VBar")
    assert len(bars) == 2
    data = bars[0].data_source.data
    assert data["SET_IRQS ioctl"] == [300.0, 290.0] and data["PBA toggle"] == [550.0, 0.0]
    assert data["total"] == [850.0, 290.0]
    # the second layer is stacked on the first
    assert bars[1].glyph.bottom.expr.fields == ("SET_IRQS ioctl",)
    legends = [x for x in fig.right if isinstance(x, Legend)]  # beside the bars, not over them
    assert [item.label["value"] for item in legends[0].items] == ["SET_IRQS ioctl", "PBA toggle"]


def test_ab_forest_log_axis_ci_and_reference_line():
    ab = pd.DataFrame(
        {
            "variant": ["on", "fd-cache"],
            "baseline": "stock",
            "ratio": [5.0, 1.02],
            "ci_low": [4.5, 0.95],
            "ci_high": [5.5, 1.1],
            "significant": [True, False],
            "verdict": ["on: 5.0x fewer", "fd-cache: no significant difference"],
        }
    )
    fig = plot_ab_forest(ab)
    assert isinstance(fig.x_scale, LogScale)
    assert list(fig.y_range.factors) == ["fd-cache", "on"]
    pts = renderers(fig, "Scatter")[0].data_source.data
    assert pts["ratio"].tolist() == [5.0, 1.02] and pts["color"][1] == "gray"
    whiskers = [a for a in fig.center if isinstance(a, Whisker)]
    assert len(whiskers) == 1 and whiskers[0].source.data["lo"].tolist() == [4.5, 0.95]
    spans = [a for a in fig.center if isinstance(a, Span)]
    assert [s.location for s in spans] == [1.0]
    assert "stock" in fig.title.text


def test_repetitions_dots():
    reps = pd.DataFrame(
        {"run_id": ["a", "b", "c"], "variant": ["s", "s", "o"], "median": [2000.0, 2100.0, 900.0]}
    )
    fig = plot_repetitions(reps)
    d = renderers(fig, "Scatter")[0].data_source.data
    assert d["value"].tolist() == [2.0, 2.1, 0.9] and list(fig.x_range.factors) == ["s", "o"]


def test_figures_serialise_and_bad_frames_are_named():
    df = pd.DataFrame({"variant": "a", "dur_ns": np.arange(1, 1000)})
    json_item(plot_latency_histogram(df_histograms(df)))  # would raise on unserialisable data
    with pytest.raises(AnalysisError, match="'hi_ns'"):
        plot_latency_histogram(pd.DataFrame({"lo_ns": [1], "count": [1]}))
    with pytest.raises(AnalysisError, match="'ci_low'"):
        plot_ab_forest(pd.DataFrame({"variant": ["x"], "ratio": [1.0], "ci_high": [1.0]}))
