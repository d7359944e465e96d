"""Stall detector: windows of CLOCK_MONOTONIC time when L1 did not run.

L1 is a TCG VM on a shared 2-core host: when the host deschedules it (other jobs, I/O), every L1
clock keeps going while nothing in L1 runs, and the gap lands in whatever the workload was timing.
The detector is its own process in L1 (no GIL shared with the job), on ``SCHED_FIFO`` priority 1
where allowed (so L1's own load does not delay it): it sleeps :data:`PERIOD_NS` in a loop and
writes every wake-up later than :data:`THRESHOLD_NS` beyond the sleep as one line
``start_ns end_ns overshoot_ns`` (the window it slept through; CLOCK_MONOTONIC, the workload's and
the probes' clock).

The job starts one :class:`StallWatch` per boot and stores each cell's windows in ``cell.json``
(``stalls``); on the host they become the run's ``stalls`` table, and :func:`stalled` marks each
interrupt of the ``workload`` table whose trigger → delivery span overlaps a window (column
``stalled``, added on export). Run in L1 as ``python3 -m vfiobench.lab.stalls FILE``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

PERIOD_NS = 1_000_000
THRESHOLD_NS = 5_000_000

#: The ``stalls`` table: one row per window when L1 did not run.
STALL_COLUMNS = ("start_ts_ns", "end_ts_ns", "overshoot_ns")

Window = tuple[int, int, int]


def watch(out: Path, period_ns: int = PERIOD_NS, threshold_ns: int = THRESHOLD_NS) -> None:
    """Sleep ``period_ns`` in a loop, appending each overshoot beyond ``threshold_ns`` to ``out``."""
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    period_s = period_ns / 1e9
    with open(out, "a", buffering=1, encoding="ascii") as f:
        f.write(f"# period_ns {period_ns} threshold_ns {threshold_ns}\n")
        while True:
            t0 = time.monotonic_ns()
            time.sleep(period_s)
            t1 = time.monotonic_ns()
            over = t1 - t0 - period_ns
            if over > threshold_ns:
                f.write(f"{t0} {t1} {over}\n")


def read_windows(path: Path) -> list[Window]:
    """The windows written so far (a torn last line is skipped)."""
    out: list[Window] = []
    try:
        text = path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and not line.startswith("#"):
            with contextlib.suppress(ValueError):
                out.append((int(parts[0]), int(parts[1]), int(parts[2])))
    return out


class StallWatch:
    """The detector process for one boot; a context manager.

    Args:
        out: The file it appends windows to (L1 tmpfs).
    """

    def __init__(self, out: Path) -> None:
        self.out = Path(out)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> StallWatch:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self.out.write_text("")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vfiobench.lab.stalls", str(self.out)],
            stdin=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        return self

    def windows(self, start_ns: int, end_ns: int) -> list[Window]:
        """Windows overlapping ``[start_ns, end_ns]``."""
        return [w for w in read_windows(self.out) if w[0] < end_ns and w[1] > start_ns]

    def facts(self) -> dict[str, Any]:
        """What the job result records: the detector's settings and whether it ran."""
        return {
            "period_ns": PERIOD_NS,
            "threshold_ns": THRESHOLD_NS,
            "running": self.proc is not None and self.proc.poll() is None,
            "windows": len(read_windows(self.out)),
        }

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def stalled(first_ns: Any, last_ns: Any, windows: Any) -> np.ndarray[Any, Any]:
    """True for each span ``[first_ns[i], last_ns[i]]`` that overlaps a stall window.

    Windows come from one sleeping thread, so they do not overlap each other: sorted by start,
    their ends are sorted too, and the last window starting before a span's end is the only
    candidate.

    Args:
        first_ns: Span starts (array-like of ns).
        last_ns: Span ends (a value before its start counts as the start: undelivered).
        windows: ``(start_ns, end_ns, overshoot_ns)`` rows.
    """
    first = np.asarray(first_ns, dtype=np.int64)
    last = np.maximum(np.asarray(last_ns, dtype=np.int64), first)
    w = np.asarray(windows, dtype=np.int64).reshape(-1, 3)
    if w.shape[0] == 0 or first.size == 0:
        return np.zeros(first.size, dtype=bool)
    w = w[np.argsort(w[:, 0], kind="stable")]
    ends = np.maximum.accumulate(w[:, 1])
    idx = np.searchsorted(w[:, 0], last, side="left")  # windows [0, idx) start before the span ends
    has = idx > 0
    out = np.zeros(first.size, dtype=bool)
    out[has] = ends[idx[has] - 1] > first[has]
    return out


if __name__ == "__main__":
    watch(Path(sys.argv[1]))
