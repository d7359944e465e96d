"""``vfiobench record --trigger``: the flight recorder on real probes, driven by the stand-in's outlier mode.

The stand-in makes 11 fast PBA toggles, pauses 1.5 s, makes 23 fast ones, one that sleeps 50 ms
inside, 17 fast ones, pauses 1.5 s, and makes 13 more (``tests/probes/standin.c``). With a 1 s
window before and after, exactly the 23 + 1 + 17 calls around the slow one are saved (each with
its commit), and the far groups are not.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from probe_helpers import StandIn

from vfiobench import schema
from vfiobench.store import load_run, load_runs

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

BEFORE, AFTER = 23, 17
FAR_BEFORE, FAR_AFTER = 11, 13  # OUTLIER_FAR_BEFORE, OUTLIER_FAR_AFTER in standin.c
SLOW_US = 50_000
TOTAL = FAR_BEFORE + BEFORE + 1 + AFTER + FAR_AFTER


def record(target: StandIn, out: Path, *extra: str) -> subprocess.Popen[str]:
    """Start ``vfiobench record --trigger`` on the stand-in; returns once the probes are attached."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vfiobench", "record", "--pid", str(target.pid), "--probe", "pba_toggle",
         "--probe", "transaction_commit", "--out", str(out), "--trigger", "pba_toggle.dur > 20ms",
         "--window", "1s", "--after", "1s", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    line = proc.stderr.readline()
    assert "attached" in line and "flight recorder armed: pba_toggle.dur > 20ms" in line, line
    return proc


def test_the_window_around_the_one_slow_call_is_saved_and_the_recording_stops(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    target = spawn(standin_bin, "outlier", BEFORE, SLOW_US, AFTER)
    out = tmp_path / "fr"
    proc = record(target, out)
    target.go()
    stdout, stderr = proc.communicate(timeout=120)  # stops by itself once the window is saved
    assert proc.returncode == 0, stderr
    assert "stopped (1 trigger saved)" in stdout, stdout
    assert f"{BEFORE} pba_toggle events before it, {AFTER} after" in stdout, stdout
    runs = load_runs(out)
    assert sorted(r.run_id for r in runs) == ["fr-trigger-1", "fr-whole"]
    window = load_run(out / "trigger-1")
    assert window.meta.status == "complete" and window.meta.kind == "probed"
    toggles = window.table(schema.PBA_TOGGLE)
    assert len(toggles) == BEFORE + 1 + AFTER == window.meta.probes[schema.PBA_TOGGLE].events
    assert len(window.table(schema.COMMIT)) == BEFORE + 1 + AFTER  # each toggle's commit too
    slow = toggles["dur_ns"].idxmax()
    assert toggles["dur_ns"][slow] >= SLOW_US * 1000
    assert (toggles["dur_ns"] >= 20_000_000).sum() == 1
    assert (slow, len(toggles) - slow - 1) == (BEFORE, AFTER)  # in time order: 23 before it, 17 after
    labels = window.meta.labels
    assert labels["trigger"] == "pba_toggle.dur > 20ms" and labels["trigger_probe"] == schema.PBA_TOGGLE
    assert labels["trigger_event"]["ts_ns"] == toggles["ts_ns"][slow]
    assert (labels["events_before_trigger"], labels["events_after_trigger"]) == (BEFORE, AFTER)
    assert labels["window_complete"] is True and labels["trigger_matches"] == 1
    assert window.meta.qemu.path == str(standin_bin)  # the recording's metadata carried over
    whole = load_run(out / "whole")
    assert whole.meta.labels["trigger_runs"] == ["fr-trigger-1"]
    hist = whole.table(schema.PBA_TOGGLE)
    assert list(hist.columns) == ["bucket", "count", "lo_ns", "hi_ns"]
    assert whole.meta.probes[schema.PBA_TOGGLE].mode == "histogram"
    # everything up to the window's end, and what it drained before it detached (it stops during the
    # stand-in's second pause, 0.5 s before the far calls; the re-armed test below checks every call)
    assert hist["count"].sum() == whole.meta.probes[schema.PBA_TOGGLE].events
    assert FAR_BEFORE + BEFORE + 1 + AFTER <= hist["count"].sum() <= TOTAL


def test_rearmed_it_runs_to_the_end_and_the_whole_period_is_summarised(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    target = spawn(standin_bin, "outlier", BEFORE, SLOW_US, AFTER)
    out = tmp_path / "fr"
    proc = record(target, out, "--max-triggers", "3", "--ring-bytes", "16M")
    target.go()
    target.wait_done()
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    assert "stopped (Ctrl-C)" in stdout and "run complete" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["trigger-1", "whole"]  # one slow call: one window
    assert len(load_run(out / "trigger-1").table(schema.PBA_TOGGLE)) == BEFORE + 1 + AFTER
    whole = load_run(out / "whole")
    assert whole.meta.status == "complete"
    for probe in (schema.PBA_TOGGLE, schema.COMMIT):
        assert whole.table(probe)["count"].sum() == TOTAL == whole.meta.probes[probe].events
    assert whole.meta.labels["ring_bytes"] == 16 << 20
