import pandas as pd
import pytest

from vfiobench.analysis import df_ab, df_per_interrupt
from vfiobench.sample import generate, main
from vfiobench.store import load_runs


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    generate(out, cycles=40, repetitions=2)
    return load_runs(out)


def test_layout_and_metadata(small):
    assert len(small) == 8
    meta = small.meta_frame()
    assert set(meta["source"]) == {"synthetic"} and set(meta["status"]) == {"complete"}
    assert sorted(small.variants) == ["pba-always-on", "stock"]
    assert meta.groupby(["variant", "kind"]).size().tolist() == [2, 2, 2, 2]
    free = small.filter(kind="probe-free")
    assert all(r.table_names() == ["workload"] for r in free)
    probed = small["r1-stock-probed"]
    assert set(probed.table_names()) == {
        "workload",
        "set_irqs_ioctl",
        "set_vector_signal",
        "pba_toggle",
        "transaction_commit",
    }
    assert probed.meta.probes["set_irqs_ioctl"].events == 2 * 40 + 1
    assert small["r2-stock-probed"].meta.lost_events == 4
    assert all(c.ok for r in small for c in r.meta.checks)


def test_counts_per_interrupt_follow_lab_notes(small):
    per = df_per_interrupt(small.filter(kind="probed")).set_index("run_id")
    stock = per.loc["r1-stock-probed"]
    assert stock["set_irqs_per_irq"] == 2 and stock["set_vector_signal_per_irq"] == 2
    assert stock["pba_toggles_per_irq"] == 2
    assert 10 <= stock["commits_per_irq"] <= 16  # ~14: 2 synchronous + ~12 from the RCU thread
    always = per.loc["r1-pba-always-on-probed"]
    assert always["pba_toggles_per_irq"] == 0 and always["set_irqs_per_irq"] == 2


def test_deterministic(tmp_path, small):
    generate(tmp_path, cycles=40, repetitions=2)
    again = load_runs(tmp_path)
    for run in small:
        for name in run.table_names():
            pd.testing.assert_frame_equal(run.table(name), again[run.run_id].table(name))


@pytest.fixture(scope="module")
def default_sample(tmp_path_factory):
    """The generator's default set (data/sample/ holds real lab runs; tests/test_sample_data.py)."""
    out = tmp_path_factory.mktemp("default-sample")
    assert main(["--out", str(out)]) == 0
    return out


def test_default_set_is_small_and_synthetic(default_sample):
    runs = load_runs(default_sample)
    assert {r.meta.source for r in runs} == {"synthetic"}
    size = sum(p.stat().st_size for p in default_sample.rglob("*") if p.is_file())
    assert size < 2 * 1024 * 1024


def test_sample_ab_shows_the_designed_effect(default_sample):
    rs = load_runs(default_sample)
    ab = df_ab(rs, "us_per_irq", baseline="stock").iloc[0]
    assert ab["significant"] and 4 < ab["ratio"] < 7
    assert ab["runs_baseline"] == 6 and ab["n_baseline"] == 1800 and ab["enough_runs"]


def test_bad_arguments_exit_nonzero(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--cycles", "0"]) != 0
    assert "cycles and repetitions must be >= 1" in capsys.readouterr().err
