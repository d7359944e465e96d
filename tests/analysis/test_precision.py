"""The relative half-width that stops adaptive repetitions, on hand-computed numbers."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from vfiobench.analysis.inference import compare_runs
from vfiobench.analysis.precision import df_precision, experiment_records, relative_half_width, within_target
from vfiobench.store import load_runs


def test_ratio_width_is_the_log_half_width():
    # [4, 6.25] around 5: sqrt(6.25 / 4) = 1.25, i.e. within a factor 1.25 either way
    assert relative_half_width("ratio", 5.0, 4.0, 6.25) == pytest.approx(0.25, abs=1e-12)
    # symmetric on the log scale: 1.00 [1/1.1, 1.1] and 5.0 [5/1.1, 5.5] are equally precise
    assert relative_half_width("ratio", 1.0, 1 / 1.1, 1.1) == pytest.approx(0.10, abs=1e-12)
    assert relative_half_width("ratio", 5.0, 5 / 1.1, 5.5) == pytest.approx(0.10, abs=1e-12)


def test_difference_width_is_relative_to_the_larger_side():
    # removed: 180.5 -> 0.5, difference 180 [171, 189]: 9 / 180.5
    assert relative_half_width("difference", 180.0, 171.0, 189.0, 180.5, 0.5) == pytest.approx(
        0.0498615, abs=1e-7
    )
    # nothing changed, both sides near zero: 0 [-0.05, 0.05] of a 0.3 quantity, not 0.05 / 0
    assert relative_half_width("difference", 0.0, -0.05, 0.05, 0.3, 0.3) == pytest.approx(1 / 6, abs=1e-12)
    # identical zeros on both sides: exactly known
    assert relative_half_width("difference", 0.0, 0.0, 0.0, 0.0, 0.0) == 0.0


def test_no_interval_has_no_width():
    assert math.isnan(relative_half_width("ratio", 5.0, None, None))
    assert math.isnan(relative_half_width("difference", 1.0, math.nan, math.nan, 1.0, 0.0))


def test_width_of_welch_on_six_runs_by_hand():
    # baseline constant, candidate 500·exp(±0.1) alternating: the log values have sd 0.1·sqrt(6/5),
    # se = sd / sqrt(6) = 0.1 / sqrt(5) = 0.0447214, df = 5, t(0.975, 5) = 2.570582
    # h = 2.570582 · 0.0447214 = 0.1149599, width = exp(h) - 1 = 0.1218285
    a = np.full(6, 1000.0)
    b = 500.0 * np.exp(np.array([0.1, -0.1] * 3))
    c = compare_runs(a, b)
    assert c.estimate == pytest.approx(2.0, abs=1e-12)
    width = relative_half_width(c.kind, c.estimate, c.ci_low, c.ci_high)
    assert width == pytest.approx(0.1218285, abs=1e-7)


def _latency_runs(make_run, values):
    for variant, per_run in values.items():
        for i, v in enumerate(per_run):
            wl = pd.DataFrame({"latency_ns": [round(v)] * 3, "delivered": [True] * 3})
            make_run(
                f"{variant}-{i}", variant, {"workload": wl}, kind="probe-free", labels={"experiment": "e"}
            )


def test_df_precision_per_variant_and_within_target(make_run, tmp_path):
    _latency_runs(
        make_run,
        {
            "stock": [1e6] * 6,
            "fix": list(5e5 * np.exp(np.array([0.1, -0.1] * 3))),
            "other": list(1e6 * np.exp(np.array([0.01, -0.01] * 3))),
        },
    )
    runs = load_runs(tmp_path / "runs")
    prec = df_precision(runs, "stock", ["latency_ns", "us_per_irq"]).set_index(["variant", "metric"])
    assert prec.loc[("fix", "latency_ns"), "half_width"] == pytest.approx(0.1218285, abs=1e-5)
    assert prec.loc[("fix", "latency_ns"), "kind"] == "ratio"
    assert prec.loc[("other", "latency_ns"), "half_width"] < 0.02
    assert prec.loc[("fix", "us_per_irq"), "kind"] == "no samples"  # no probe tables: never within
    assert math.isnan(prec.loc[("fix", "us_per_irq"), "half_width"])
    lat = df_precision(runs, "stock", ["latency_ns"])
    assert within_target(lat, 0.13) and not within_target(lat, 0.12)
    assert not within_target(prec.reset_index(), 0.5)
    assert not within_target(lat.iloc[:0], 0.5)


def test_df_precision_on_us_per_irq_matches_the_ab_interval(tmp_path):
    from vfiobench.analysis import df_ab
    from vfiobench.sample import generate

    generate(tmp_path, cycles=60, repetitions=6)
    runs = load_runs(tmp_path)
    prec = df_precision(runs, "stock")
    row = df_ab(runs, "us_per_irq", baseline="stock").iloc[0]
    assert list(prec["metric"]) == ["us_per_irq"] and prec["kind"][0] == "ratio"
    assert prec["half_width"][0] == pytest.approx(math.sqrt(row.ci_high / row.ci_low) - 1, rel=1e-12)
    assert 0 < prec["half_width"][0] < 0.2


def test_experiment_records_found_beside_runs_and_exports(make_run, tmp_path):
    _latency_runs(make_run, {"stock": [1e6]})
    runs = load_runs(tmp_path / "runs")
    assert experiment_records(runs) == {}
    (tmp_path / "experiment.json").write_text(json.dumps({"name": "e", "repetitions": {"cells": []}}))
    assert experiment_records(runs) == {"e": {"name": "e", "repetitions": {"cells": []}}}
    (tmp_path / "experiment.json").write_text(json.dumps({"name": "other"}))
    assert experiment_records(runs) == {}
    (tmp_path / "runs" / "e.experiment.json").write_text(json.dumps({"name": "e", "x": 1}))
    assert experiment_records(runs) == {"e": {"name": "e", "x": 1}}
