"""The masking view: one QEMU on a masking and on a non-masking guest, per release and accel."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vfiobench.analysis.compare import make_comparison
from vfiobench.analysis.inference import run_level
from vfiobench.analysis.masking import df_masking_cost
from vfiobench.sample import generate
from vfiobench.store import load_runs


def _relabel(run_dir: Path, workload: str, run_id: str) -> None:
    path = run_dir / "run.json"
    meta = json.loads(path.read_text())
    meta["workload"]["name"] = workload
    meta["labels"]["release"] = "trixie-backports"
    meta["run_id"] = run_id
    path.write_text(json.dumps(meta))


@pytest.fixture(scope="module")
def two_guests(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic sample (6 repetitions) as the masking guest, and a copy of it as a guest that
    does not mask whose every interrupt latency is exactly half: the slowdown is 2 by construction."""
    root = tmp_path_factory.mktemp("masking")
    for run_dir in generate(root / "mask", cycles=40, repetitions=6, seed=3):
        _relabel(run_dir, "mask-every-irq", f"m-{run_dir.name}")
        twin = root / "nomask" / run_dir.name
        shutil.copytree(run_dir, twin)
        _relabel(twin, "no-mask", f"n-{run_dir.name}")
        table = pq.read_table(twin / "workload.parquet").to_pandas()
        table["latency_ns"] = table["latency_ns"] / 2
        pq.write_table(pa.Table.from_pandas(table, preserve_index=False), twin / "workload.parquet")
    return root


def test_slowdown_counts_and_levels(two_guests: Path) -> None:
    cmp = make_comparison(load_runs(two_guests), baseline="stock")
    df = df_masking_cost(cmp).set_index("variant")
    assert list(df.index) == ["stock", "pba-always-on"]
    assert set(df["release"]) == {"trixie-backports"} and set(df["accel"]) == {"kvm"}
    stock, always_on = df.loc["stock"], df.loc["pba-always-on"]
    # the generator's kvm stock cycle: 2 SET_IRQS, 2 PBA toggles; always-on: no toggle
    assert stock["set_irqs_per_irq"] == 2 and stock["pba_toggles_per_irq"] == 2
    assert always_on["pba_toggles_per_irq"] == 0
    assert stock["runs_probed"] == stock["runs_probe_free"] == 6
    # halved latencies: every run's median halves, so the ratio of geometric means is exactly 2
    assert stock["slowdown"] == pytest.approx(2.0, rel=1e-12)
    assert stock["slowdown_low"] < 2.0 < stock["slowdown_high"]
    assert stock["p_value"] < 0.001 and stock["significant"]
    assert stock["latency_masking_us"] == pytest.approx(2 * stock["latency_not_masking_us"], rel=1e-12)
    # levels are run_level over the masking guest's probed runs' own per-interrupt values
    pi = cmp.per_interrupt()
    masking = pi["group"].str.contains("mask-every-irq")
    mine = pi[(pi["variant"] == "stock") & (pi["kind"] == "probed") & masking]
    want = run_level(mine["pba_toggle_us_per_irq"].to_numpy(dtype=np.float64))
    assert stock["pba_toggle_us"] == pytest.approx(want.center)
    assert stock["pba_toggle_us_low"] == pytest.approx(want.ci_low)
    assert stock["pba_toggle_us"] < stock["path_us"]  # the toggles are part of the path
    assert always_on["pba_toggle_us"] < stock["pba_toggle_us"] / 100  # enabled once, at setup


def test_without_a_non_masking_guest_there_is_no_row(two_guests: Path) -> None:
    cmp = make_comparison(load_runs(two_guests / "mask"), baseline="stock")
    assert df_masking_cost(cmp).empty


def test_the_page_shows_the_slowdown_with_its_interval_and_p_value(two_guests: Path) -> None:
    from vfiobench.report.pages import masking_cost_html, masking_cost_view

    cmp = make_comparison(load_runs(two_guests), baseline="stock")
    view = masking_cost_view(cmp)
    assert list(view["variant"]) == ["stock", "pba-always-on"]
    assert (
        view.loc[0, "slowdown (masking ÷ not)"].startswith("2 [")
        and ", p=" in view.loc[0, "slowdown (masking ÷ not)"]
    )
    assert "What" not in masking_cost_html(cmp) and "µs / irq in PBA toggles" in masking_cost_html(cmp)
    alone = make_comparison(load_runs(two_guests / "mask"), baseline="stock")
    assert "no masking view" in masking_cost_html(alone)
