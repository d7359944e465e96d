"""The checked-in sample: real lab runs of the shipped `pba` experiment (vfiobench run pba).

It is what `make report` renders and what the README's headline table comes from, so it is checked
like data: complete, every planned measured run present, every ground-truth check passed, nothing
lost, and small enough to keep in git.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from vfiobench.analysis import df_per_interrupt
from vfiobench.experiment import load_spec, make_plan
from vfiobench.store import load_runs

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def runs():
    if not SAMPLE.is_dir():
        pytest.skip("data/sample/ is absent (this is not a clone of the repository)")
    return load_runs(SAMPLE)


def test_every_measured_run_of_the_pba_experiment_is_there(runs):
    planned = {r.run_id for r in make_plan(load_spec("pba")) if not r.warmup}
    assert {r.run_id for r in runs} == planned
    assert {r.meta.source for r in runs} == {"lab"}
    assert {r.meta.status for r in runs} == {"complete"}


def test_ground_truth_holds_and_nothing_was_lost(runs):
    failed = [(r.run_id, c.name) for r in runs for c in r.meta.checks if not c.ok]
    assert failed == []
    assert all(r.meta.checks for r in runs)
    assert sum(r.meta.lost_events for r in runs) == 0


def test_counts_per_interrupt_are_what_each_variant_promises(runs):
    per = df_per_interrupt(runs.filter(kind="probed"))
    meta = runs.meta_frame()[["run_id", "workload", "accel"]]
    per = per.drop(columns=[c for c in ("workload", "accel") if c in per.columns]).merge(meta, on="run_id")
    masked = per[per["workload"] == "mask-every-irq"].set_index(["variant", "accel"])
    for variant, accel in itertools.product(
        ["stock", "pba-always-on", "fd-cache", "pba-always-on+fd-cache", "no-kvm-msix"], ["kvm", "tcg"]
    ):
        row = masked.loc[(variant, accel)]
        toggles = 0 if variant.startswith("pba-always-on") else 2
        assert (row["pba_toggles_per_irq"] == toggles).all(), (variant, accel)
        kvm_route = accel == "kvm" and variant != "no-kvm-msix"
        ioctls = 2 if kvm_route else (0 if "fd-cache" in variant else 1)
        assert (row["set_irqs_per_irq"] == ioctls).all(), (variant, accel)
        assert (row["set_vector_signal_per_irq"] == ioctls).all(), (variant, accel)
    nomask = per[per["workload"] == "no-mask"]
    assert (nomask["set_irqs_per_irq"] == 0).all() and (nomask["pba_toggles_per_irq"] == 0).all()


def test_small_enough_for_git(runs):
    size = sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file())
    assert size < 16 * 1024 * 1024
