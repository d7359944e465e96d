"""The workloads against a fake qtest peer (runs anywhere)."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
from lab_fake_qtest import FakeIvshmem, serve

from vfiobench.errors import LabError
from vfiobench.lab.guest.qtest import QtestError, QtestSession
from vfiobench.lab.guest.run import SAMPLE_DTYPE, run_workload
from vfiobench.lab.workloads import WorkloadParams


def test_mask_every_irq_counts_match_the_device(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, dev = peer
    res = run_workload(qt, WorkloadParams("mask-every-irq", vectors=[0, 3], cycles=7))
    c = res.counters
    assert c == {
        "cycles": 7,
        "triggered": 14,
        "delivered": 14,
        "expected_deliveries": 14,
        "masks": 14,
        "unmasks": 14,
        "pba_seen": 14,
        "qemu_took": 0,
        "timeouts": 0,
        "late_deliveries": 0,
    }
    # the fake saw the same: 14 doorbells, 14 deliveries, 14 masks, 14 + 2 unmasks (2 at set-up)
    assert (dev.doorbells, dev.deliveries, dev.masks, dev.unmasks) == (14, 14, 14, 16)
    s = res.samples
    assert s.dtype == SAMPLE_DTYPE and len(s) == 14
    assert list(s["vector"][:4]) == [0, 3, 0, 3] and list(s["cycle"][:4]) == [0, 0, 1, 1]
    assert s["pba_seen"].all() and s["delivered"].all()
    assert (s["latency_ns"] > 0).all() and (s["mask_rtt_ns"] > 0).all() and (s["unmask_rtt_ns"] > 0).all()
    assert (s["delivered_ts_ns"] > s["trigger_ts_ns"]).all()
    m = res.phases["measure"]
    assert res.phases["setup"].end_ns <= m.start_ns < m.end_ns


def test_warmup_cycles_run_in_the_setup_phase_and_are_not_counted(
    peer: tuple[QtestSession, FakeIvshmem],
) -> None:
    qt, dev = peer
    res = run_workload(qt, WorkloadParams("mask-every-irq", vectors=[0], cycles=7, warmup_cycles=17))
    c = res.counters
    assert (c["cycles"], c["triggered"], c["masks"], c["delivered"]) == (7, 7, 7, 7)
    assert len(res.samples) == 7 and list(res.samples["cycle"]) == list(range(7))
    # the device saw all 24 cycles (plus the set-up unmask); the measure phase starts after them
    assert (dev.doorbells, dev.deliveries, dev.masks, dev.unmasks) == (24, 24, 24, 25)
    setup, m = res.phases["setup"], res.phases["measure"]
    assert setup.end_ns <= m.start_ns and int(res.samples["trigger_ts_ns"].min()) >= m.start_ns


def test_no_mask_never_touches_the_mask_bit(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, dev = peer
    res = run_workload(qt, WorkloadParams("no-mask", vectors=[1], cycles=11))
    assert (res.counters["triggered"], res.counters["delivered"], res.counters["masks"]) == (11, 11, 0)
    assert (dev.masks, dev.deliveries, dev.pba_reads) == (0, 11, 0)
    assert (res.samples["mask_rtt_ns"] == -1).all() and not res.samples["pba_seen"].any()


def test_mask_no_pba_never_reads_the_pba(tmp_path: Path) -> None:
    log = tmp_path / "qemu-trace.log"
    log.write_text("4242@1700000000.000000:vfio_msix_enable  (0000:00:04.0)\n")
    dev = FakeIvshmem(trace_log=log)
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=serve, args=(theirs, dev), daemon=True)
    t.start()
    try:
        res = run_workload(
            QtestSession(ours, timeout_s=5),
            WorkloadParams("mask-no-pba", vectors=[0, 2], cycles=13, wait_timeout_s=1),
            trace_log=log,
        )
    finally:
        ours.close()
        t.join(timeout=5)
        theirs.close()
    c = res.counters
    assert (c["triggered"], c["delivered"], c["masks"], c["unmasks"]) == (26, 26, 26, 26)
    assert (c["qemu_took"], c["pba_seen"], c["timeouts"]) == (26, 0, 0)
    assert dev.pba_reads == 0 and dev.deliveries == 26
    s = res.samples
    assert not s["pba_seen"].any() and (s["pba_polls"] == 0).all() and s["delivered"].all()
    assert (s["unmask_ts_ns"] > s["trigger_ts_ns"]).all()


def test_mask_no_pba_needs_the_trace_log(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, _ = peer
    with pytest.raises(LabError, match="trace log"):
        run_workload(qt, WorkloadParams("mask-no-pba", cycles=1))


def test_burst_delivers_once_per_window(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, dev = peer
    res = run_workload(qt, WorkloadParams("burst", vectors=[0], cycles=5, burst=3))
    c = res.counters
    assert (c["triggered"], c["delivered"], c["expected_deliveries"], c["masks"]) == (15, 5, 5, 5)
    assert (dev.doorbells, dev.deliveries) == (15, 5)
    assert (res.samples["triggers"] == 3).all()


def test_duration_mode_stops_by_time(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, _ = peer
    res = run_workload(qt, WorkloadParams("no-mask", cycles=None, duration_s=0.2))
    assert res.counters["cycles"] >= 1
    assert res.counters["delivered"] == res.counters["triggered"] == res.counters["cycles"]


def test_lost_interrupts_abort_with_a_named_error() -> None:
    dev = FakeIvshmem(drop_doorbells=True)
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=serve, args=(theirs, dev), daemon=True)
    t.start()
    try:
        qt = QtestSession(ours, timeout_s=5)
        params = WorkloadParams("no-mask", cycles=50, wait_timeout_s=0.01)
        with pytest.raises(QtestError, match="5 interrupts in a row"):
            run_workload(qt, params)
        assert dev.doorbells == 5
    finally:
        ours.close()
        t.join(timeout=5)
        theirs.close()
