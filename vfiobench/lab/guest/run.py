"""Run a workload on the ivshmem device: set it up, cycle, count, time every interrupt.

:func:`run_workload` drives the :class:`~vfiobench.lab.guest.ivshmem.IvshmemGuest` through one of
:data:`~vfiobench.lab.workloads.WORKLOADS` (mask windows, or plain triggers for ``no-mask``),
records one :data:`SAMPLE_DTYPE` row per interrupt (burst: per mask window), its own counters, and
the ``setup``/``measure`` phase windows (with the trace log's size at each boundary, so QEMU's
trace events can be cut by phase).

Timestamps are ``time.monotonic_ns()`` (CLOCK_MONOTONIC, the clock of ``bpf_ktime_get_ns``), so
samples line up with probe events. Only the standard library and numpy are used: this module runs
inside the lab VM with Debian's python3.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfiobench.errors import LabError
from vfiobench.lab.guest.ivshmem import DeviceInfo, IvshmemGuest
from vfiobench.lab.guest.qtest import QtestError, QtestSession
from vfiobench.lab.guest.watch import Delivery, Owed, PbaOwed, QemuTookIrq, RamDelivery
from vfiobench.lab.workloads import WorkloadParams
from vfiobench.schema import TABLE_DTYPES, WORKLOAD

BURST_SETTLE_S = 0.005  # after a burst window's delivery, wait this long for stragglers

#: One row per interrupt (burst: per mask window), times in ns (CLOCK_MONOTONIC): the run's
#: ``workload`` table, defined in :mod:`vfiobench.schema`.
SAMPLE_DTYPE = TABLE_DTYPES[WORKLOAD]


@dataclass
class Phase:
    """A time window of the workload (CLOCK_MONOTONIC ns) and the trace-log byte range it covers."""

    start_ns: int = 0
    end_ns: int = 0
    trace_start: int = 0
    trace_end: int = 0
    snapshot_start: dict[str, int] = field(default_factory=dict)
    snapshot_end: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkloadResult:
    """Samples, counters and phase windows of one workload run."""

    samples: np.ndarray[Any, Any]
    counters: dict[str, int]
    phases: dict[str, Phase]
    device: DeviceInfo


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.counters = {
            "cycles": 0,
            "triggered": 0,
            "delivered": 0,
            "expected_deliveries": 0,
            "masks": 0,
            "unmasks": 0,
            "pba_seen": 0,
            "qemu_took": 0,
            "timeouts": 0,
            "late_deliveries": 0,
        }


def _wait(pred: Callable[[], bool], timeout_s: float) -> tuple[bool, int]:
    """Poll ``pred`` until true or timeout; returns (ok, polls)."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        polls += 1
        if pred():
            return True, polls
        if time.monotonic() > deadline:
            return False, polls


def _masked_window(
    g: IvshmemGuest,
    d: Delivery,
    owed: Owed,
    rec: _Recorder,
    cycle: int,
    v: int,
    triggers: int,
    timeout: float,
) -> None:
    now = time.monotonic_ns
    t0 = now()
    g.mask(v)
    t1 = now()
    rec.counters["masks"] += 1
    d.arm(v)
    owed.arm(v)
    t_trig = now()
    for _ in range(triggers):
        g.trigger(v)
    rec.counters["triggered"] += triggers
    seen, polls = _wait(lambda: owed.poll(v), timeout)
    t2 = now()
    g.unmask(v)
    t3 = now()
    rec.counters["unmasks"] += 1
    reads_pba = isinstance(owed, PbaOwed)
    rec.counters["pba_seen" if reads_pba else "qemu_took"] += seen
    ok, _ = _wait(lambda: d.poll(v), timeout)
    t_del = now() if ok else 0
    rec.counters["delivered"] += ok
    rec.counters["expected_deliveries"] += 1
    rec.counters["timeouts"] += (not seen) + (not ok)
    if triggers > 1:
        # a burst's later triggers may still be in flight (eventfds coalesce at every level) and
        # land after the unmask: let them settle and count them, so the next window starts clean
        time.sleep(BURST_SETTLE_S)
        rec.counters["late_deliveries"] += d.poll(v)
    latency = t_del - t_trig if ok else -1
    pba_polls, pba_seen = (polls, seen) if reads_pba else (0, False)  # mask-no-pba reads no PBA
    rec.rows.append(
        (cycle, v, triggers, t_trig, t_del, latency, t1 - t0, t3 - t2, pba_polls, pba_seen, ok, t2)
    )


def _unmasked(g: IvshmemGuest, d: Delivery, rec: _Recorder, cycle: int, v: int, timeout: float) -> None:
    d.arm(v)
    t_trig = time.monotonic_ns()
    g.trigger(v)
    rec.counters["triggered"] += 1
    ok, _ = _wait(lambda: d.poll(v), timeout)
    t_del = time.monotonic_ns() if ok else 0
    rec.counters["delivered"] += ok
    rec.counters["expected_deliveries"] += 1
    rec.counters["timeouts"] += not ok
    rec.rows.append((cycle, v, 1, t_trig, t_del, t_del - t_trig if ok else -1, -1, -1, 0, False, ok, -1))


def run_workload(
    qt: QtestSession,
    params: WorkloadParams,
    *,
    delivery: Callable[[IvshmemGuest], Delivery] = RamDelivery,
    trace_log: str | os.PathLike[str] | None = None,
    snapshot: Callable[[], dict[str, int]] | None = None,
    max_consecutive_timeouts: int = 5,
) -> WorkloadResult:
    """Set the device up, then run the workload.

    Args:
        qt: A connected qtest session to an L2 QEMU holding the vfio-pci ivshmem device.
        params: The workload.
        delivery: Factory of the delivery detector (:class:`RamDelivery`, or for KVM no-mask
            ``lambda g: IrqCountDelivery(bdf)``).
        trace_log: The L2 QEMU's ``-D`` file; its size at each phase boundary is recorded so the
            trace events can be cut by phase. ``mask-no-pba`` needs it (:class:`QemuTookIrq`).
        snapshot: Called at each phase boundary (e.g. L1 interrupt counts); the results are kept
            in the phases as ``snapshot_start``/``snapshot_end``.
        max_consecutive_timeouts: Abort with :class:`QtestError` after this many lost interrupts
            in a row (the lab is broken, not slow).

    Returns:
        Samples (:data:`SAMPLE_DTYPE`), counters (``cycles``, ``triggered``, ``delivered``,
        ``expected_deliveries``, ``masks``, ``unmasks``, ``pba_seen``, ``qemu_took`` (mask windows
        of ``mask-no-pba`` in which QEMU took the interrupt before the unmask), ``timeouts``,
        ``late_deliveries``: burst triggers delivered after their window's unmask), phase
        windows ``setup`` and ``measure``, and the device found.
    """
    params.validate()
    if params.name == "mask-no-pba" and trace_log is None:
        raise LabError(
            "mask-no-pba needs the L2 QEMU's trace log to know when QEMU took the masked interrupt",
            "start L2 with vfiobench.qemu.trace.trace_args(LOG) and pass trace_log=LOG",
        )

    def mark() -> tuple[int, int, dict[str, int]]:
        snap = snapshot() if snapshot is not None else {}
        size = os.path.getsize(trace_log) if trace_log and os.path.exists(trace_log) else 0
        return time.monotonic_ns(), size, snap

    guest = IvshmemGuest(qt)
    s0 = mark()
    info = guest.setup(params.vectors)
    det = delivery(guest)
    owed: Owed = QemuTookIrq(trace_log) if params.name == "mask-no-pba" and trace_log else PbaOwed(guest)

    def run_cycles(rec: _Recorder, cycles: int | None, deadline: float | None) -> int:
        cycle = 0
        streak = 0
        while True:
            if cycles is not None and cycle >= cycles:
                return cycle
            if deadline is not None and time.monotonic() >= deadline:
                return cycle
            for v in params.vectors:
                before = rec.counters["timeouts"]
                if params.name == "no-mask":
                    _unmasked(guest, det, rec, cycle, v, params.wait_timeout_s)
                else:
                    n = params.burst if params.name == "burst" else 1
                    _masked_window(guest, det, owed, rec, cycle, v, n, params.wait_timeout_s)
                streak = streak + 1 if rec.counters["timeouts"] > before else 0
                if streak >= max_consecutive_timeouts:
                    raise QtestError(
                        f"{streak} interrupts in a row were not delivered (cycle {cycle}, vector {v})",
                        "see the L2 trace log and the L1 console",
                    )
            cycle += 1

    if params.warmup_cycles:  # part of the setup phase: not sampled, not counted
        run_cycles(_Recorder(), params.warmup_cycles, None)
    s1 = mark()
    rec = _Recorder()
    deadline = None if params.duration_s is None else time.monotonic() + params.duration_s
    m0 = mark()
    cycle = run_cycles(rec, params.cycles, deadline)
    m1 = mark()
    rec.counters["cycles"] = cycle
    samples = np.array(rec.rows, dtype=SAMPLE_DTYPE)
    phases = {
        "setup": Phase(s0[0], s1[0], s0[1], s1[1], s0[2], s1[2]),
        "measure": Phase(m0[0], m1[0], m0[1], m1[1], m0[2], m1[2]),
    }
    return WorkloadResult(samples, rec.counters, phases, info)
