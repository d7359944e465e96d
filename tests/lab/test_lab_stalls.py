"""The stall detector: windows when L1 did not run, and the interrupts they touch.

The unit tests run anywhere; the boot test stops the L1 QEMU from the host with SIGSTOP for 50 ms
during one cell's measure phase and checks the window and the flags.
"""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vfiobench.lab.stalls import read_windows, stalled
from vfiobench.store import Run, load_run

STOP_S = 0.05


def test_spans_overlapping_a_window_are_stalled() -> None:
    windows = [(100, 200, 90), (500, 520, 15), (50, 60, 6)]  # unsorted on purpose
    first = np.array([0, 55, 150, 201, 210, 519, 600, 40])
    last = np.array([10, 58, 160, 499, 100, 700, 700, -1])  # 210..100: end before start = undelivered
    assert stalled(first, last, windows).tolist() == [False, True, True, False, False, True, False, False]
    assert stalled(first, last, []).tolist() == [False] * 8
    # touching is not overlapping: a span ending exactly where a window starts
    assert stalled(np.array([90]), np.array([100]), windows).tolist() == [False]


def test_read_windows_skips_the_header_and_a_torn_line(tmp_path: Path) -> None:
    f = tmp_path / "stalls.txt"
    f.write_text("# period_ns 1000000 threshold_ns 5000000\n1 2 3\n10 20 30\n40 5")
    assert read_windows(f) == [(1, 2, 3), (10, 20, 30)]
    assert read_windows(tmp_path / "missing") == []


def _l1_pid(share: str) -> int:
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in cmd and share in cmd:
            return int(proc.name)
    raise AssertionError(f"no L1 QEMU with {share} in its command line")


@pytest.fixture(scope="module")
def stall_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Two probe-free cells in one boot; the L1 QEMU is stopped 50 ms during the first's measure."""
    from vfiobench.lab.runner import plan_cells, run_lab, unavailable_reason

    if os.geteuid() != 0:
        pytest.skip("the lab needs root")
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"lab cannot run here: {reason}")
    stalled_cell = plan_cells(["kvm"], ["mask-every-irq"], cycles=601, probes=False)[0]
    stalled_cell.name = "stalled"
    calm = plan_cells(["kvm"], ["mask-every-irq"], cycles=301, probes=False)[0]
    calm.name = "calm"
    share: list[str] = []
    injected: list[float] = []

    def inject() -> None:
        time.sleep(1.5)  # set-up takes ~0.1 s; the measure phase of 601 cycles takes seconds
        pid = _l1_pid(share[0])
        os.kill(pid, signal.SIGSTOP)
        t0 = time.monotonic()
        time.sleep(STOP_S)
        os.kill(pid, signal.SIGCONT)
        injected.append(time.monotonic() - t0)

    def show(line: str) -> None:
        m = re.search(r"console: (\S+)/console\.log", line)
        if m:
            share.append(m.group(1))
        if "stalled: L2 up" in line and not injected:
            threading.Thread(target=inject, daemon=True).start()

    out = tmp_path_factory.mktemp("lab-stalls") / "runs"
    lab = run_lab([stalled_cell, calm], out, show=show)
    assert injected and injected[0] >= STOP_S
    return {p.name: load_run(p) for p in lab.runs}


@pytest.mark.lab
@pytest.mark.root
def test_an_injected_stall_is_recorded_and_flags_its_interrupts(stall_runs: dict[str, Run]) -> None:
    for name, run in stall_runs.items():
        assert run.meta.status == "complete", (name, run.meta.error)
        w = run.table("workload")
        s = run.table("stalls")
        assert list(s.columns) == ["start_ts_ns", "end_ts_ns", "overshoot_ns"]
        # the flag is exactly "the trigger -> delivery span overlaps a recorded window"
        first, last = w["trigger_ts_ns"].to_numpy(), w["delivered_ts_ns"].to_numpy()
        expect = np.zeros(len(w), dtype=bool)
        for a, b, _ in s.itertuples(index=False):
            expect |= (first < b) & (np.maximum(last, first) > a)
        assert w["stalled"].tolist() == expect.tolist(), name
        assert run.meta.labels["stalled_interrupts"] == int(expect.sum())
        assert run.meta.labels["stall_windows"] == len(s)
    s = stall_runs["stalled"].table("stalls")
    ph = stall_runs["stalled"].meta.workload.params["phases"]["measure"]
    big = s[(s["overshoot_ns"] >= 40_000_000) & (s["start_ts_ns"] >= ph["start_ns"])]
    big = big[big["end_ts_ns"] <= ph["end_ns"]]
    assert len(big) >= 1, s
    w = stall_runs["stalled"].table("workload")
    a, b = int(big["start_ts_ns"].iloc[0]), int(big["end_ts_ns"].iloc[0])
    touching = (w["trigger_ts_ns"] < b) & (w["delivered_ts_ns"].clip(lower=w["trigger_ts_ns"]) > a)
    assert touching.sum() >= 1 and w.loc[touching, "stalled"].all()
