"""The analysis benchmark and the runner still run (a smoke test: no timing is asserted)."""

import importlib
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO))  # benchmarks/ is a top-level package, not installed
    return importlib.import_module("benchmarks.bench_analysis")


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(REPO))
    return importlib.import_module("benchmarks.__main__")


def test_bench_analysis_small_run_prints_ratios_and_exact_counts(bench, capsys):
    assert bench.main(["--n", "20000", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    assert "20,000 latency samples" in out
    assert "ratio hdrhistogram / vfiobench, histogram + percentiles:" in out
    assert "calls per interrupt  set_irqs 2.00, set_vector_signal 2.00, pba_toggle 2.00" in out
    assert "commit 14.00" in out
    # the same calls through the run store and the public df_per_interrupt
    assert "(end to end) df_per_interrupt, Parquet" in out and "commits/irq 14.00" in out


def test_generated_calls_nest_like_stock_qemu(bench):
    c = bench.make_calls(2000)
    assert c["dur"].size == 2000 and c["starts"].size == 100
    assert (c["ts"] >= c["starts"][0]).all() and (c["ts"] <= c["end"]).all()


def test_runner_lists_and_rejects_unknown(runner, capsys):
    assert "analysis" in runner.discover()
    assert runner.main(["--list"]) == 0
    assert "analysis" in capsys.readouterr().out.split()
    assert runner.main(["no-such-bench"]) == 2
    assert "no benchmark no-such-bench" in capsys.readouterr().err
