"""The trust line every page opens with: lost events, checks, and L1 stalls of lab runs."""

from __future__ import annotations

from pathlib import Path

from vfiobench.report.pages.runinfo import trust_summary_html
from vfiobench.store import RunMeta, RunSet, RunWriter, load_run


def run_with(root: Path, name: str, labels: dict[str, object]) -> Path:
    meta = RunMeta(run_id=name, variant="stock", source="lab", labels=dict(labels))
    with RunWriter(root / name, meta):
        pass
    return root / name


def test_stalled_interrupts_are_counted_where_the_lab_recorded_them(tmp_path: Path) -> None:
    a = load_run(run_with(tmp_path, "a", {"stalled_interrupts": 3, "stall_windows": 2}))
    b = load_run(run_with(tmp_path, "b", {"stalled_interrupts": 0, "stall_windows": 0}))
    host = load_run(run_with(tmp_path, "c", {}))
    assert "3 interrupts overlapped an L1 stall" in trust_summary_html(a)
    assert "3 interrupts overlapped an L1 stall in 1 of 2 runs" in trust_summary_html(RunSet([a, b]))
    assert "stall" not in trust_summary_html(host)  # not recorded: not claimed either way
