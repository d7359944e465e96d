"""The qtest guest and its workloads against a fake qtest peer (runs anywhere)."""

from __future__ import annotations

import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from lab_fake_qtest import FakeIvshmem, serve

from vfiobench.errors import LabError
from vfiobench.workloads.qtest import (
    SAMPLE_DTYPE,
    IrqCountDelivery,
    IvshmemGuest,
    L2Qemu,
    QemuTookIrq,
    QtestError,
    QtestSession,
    WorkloadParams,
    cfg_address,
    l2_cmdline,
    msi_address,
    msi_data,
    read_irq_count,
    run_workload,
)

FAKE = Path(__file__).with_name("lab_fake_qtest.py")


@pytest.fixture
def peer() -> Iterator[tuple[QtestSession, FakeIvshmem]]:
    dev = FakeIvshmem()
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=serve, args=(theirs, dev), daemon=True)
    t.start()
    try:
        yield QtestSession(ours, timeout_s=5), dev
    finally:
        ours.close()
        t.join(timeout=5)
        theirs.close()


def test_cfg_address_matches_lab_notes() -> None:
    # LAB-NOTES §6: MSI-X control of 00:01.0 cap 0x40 -> outl 0xcf8 0x80000840
    assert cfg_address(0, 1, 0, 0x42) == 0x8000_0840


def test_setup_assigns_bars_and_programs_vectors(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, dev = peer
    info = IvshmemGuest(qt).setup([0, 2])
    assert info.bdf == "00:01.0"
    assert info.bars == {0: (0xE000_0000, 0x100), 1: (0xE000_1000, 0x1000), 2: (0xE010_0000, 0x100000)}
    assert (info.msix_cap, info.msix_vectors) == (0x40, 4)
    assert (info.table, info.pba) == (0xE000_1000, 0xE000_1800)
    assert dev.msix_ctl == 0x8003 and dev.command == 0x0406
    assert dev.table[2][:3] == [msi_address(2), 0, msi_data(2)]
    assert dev.table[2][3] == 0 and dev.table[1][3] == 1  # used vectors unmasked, others still masked


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


def test_qemu_took_irq_waits_for_a_whole_line_of_its_vector(tmp_path: Path) -> None:
    log = tmp_path / "qemu-trace.log"
    log.write_text("1@1.000000:vfio_msi_interrupt  (0000:00:04.0) vector 1 0x100040/0x42\n")
    took = QemuTookIrq(log)
    took.arm(1)
    assert not took.poll(1)  # logged before arm
    with log.open("a") as f:
        f.write("1@1.000001:vfio_msix_pba_enable  (0000:00:04.0)\n")
        f.write("1@1.000002:vfio_msi_interrupt  (0000:00:04.0) vector 3 0x1000c0/0x44\n")
        f.write("1@1.000003:vfio_msi_interrupt  (0000:00:04.0) vector 1 0x1")  # still being written
    assert not took.poll(1)  # another vector's line; the half line is not taken
    with log.open("a") as f:
        f.write("00040/0x42\n")
    assert took.poll(1)
    assert not took.poll(1)  # consumed


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


def test_fail_reply_and_closed_peer_are_qtest_errors(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, _ = peer
    with pytest.raises(QtestError, match="FAIL unknown command"):
        qt.command("frobnicate 0x1")
    a, b = socket.socketpair()
    b.close()
    try:
        with pytest.raises(QtestError, match="closed the connection"):
            QtestSession(a, timeout_s=1).readl(0)
    finally:
        a.close()


def test_workload_params_are_validated() -> None:
    for bad, match in [
        (WorkloadParams("spin"), "unknown workload"),
        (WorkloadParams(vectors=[]), "distinct"),
        (WorkloadParams(cycles=0), "at least 1"),
        (WorkloadParams(cycles=None), "cycles or a duration"),
        (WorkloadParams("burst", burst=0), "burst"),
    ]:
        with pytest.raises(LabError, match=match):
            bad.validate()


def test_irq_count_delivery_reads_proc_interrupts(tmp_path: Path) -> None:
    f = tmp_path / "interrupts"
    line = (
        "  24:         {a}          {b}  IR-PCI-MSIX-0000:00:03.0    0-edge      vfio-msix[0](0000:00:03.0)\n"
    )
    f.write_text("           CPU0       CPU1\n" + line.format(a=3, b=4))
    assert read_irq_count("vfio-msix[0](0000:00:03.0)", str(f)) == 7
    d = IrqCountDelivery("0000:00:03.0", str(f))
    d.arm(0)
    assert not d.poll(0)
    f.write_text("           CPU0       CPU1\n" + line.format(a=3, b=5))
    assert d.poll(0)
    with pytest.raises(LabError, match="no interrupt line"):
        read_irq_count("vfio-msix[1](0000:00:03.0)", str(f))


def test_l2_qemu_listens_first_and_ends_the_process(tmp_path: Path) -> None:
    def cmd(sock: Path) -> list[str]:
        return [sys.executable, str(FAKE), str(sock)]

    with L2Qemu(cmd, tmp_path) as l2:
        assert l2.session is not None
        res = run_workload(l2.session, WorkloadParams("mask-every-irq", cycles=3))
        assert res.counters["delivered"] == 3
        proc = l2.proc
    assert proc is not None and proc.poll() is not None
    assert not (tmp_path / "qtest.sock").exists()


def test_l2_qemu_that_dies_is_reported_with_its_output(tmp_path: Path) -> None:
    def cmd(sock: Path) -> list[str]:
        return [sys.executable, "-c", "import sys; print('vfio: no iommu_group found'); sys.exit(1)"]

    with pytest.raises(LabError, match="no iommu_group found"), L2Qemu(cmd, tmp_path, start_timeout_s=20):
        pass


def test_l2_cmdline_is_the_verified_one() -> None:
    cmd = l2_cmdline("qemu-system-x86_64", "kvm", "/tmp/q.sock", "0000:00:03.0", ["-D", "t.log"])
    assert cmd[:5] == ["qemu-system-x86_64", "-accel", "kvm", "-S", "-qtest"]
    assert "unix:/tmp/q.sock" in cmd and "vfio-pci,host=0000:00:03.0" in cmd
    assert cmd[cmd.index("-qtest-log") + 1] == "/dev/null"
    assert np.array(cmd[-2:]).tolist() == ["-D", "t.log"]
