"""A tracer session (``-DVB_PID_MAP``) on the C stand-in: one compile, one process after another.

Needs root, BCC, tracefs and gcc; skips with the reason otherwise. Every count is exact.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from probe_helpers import StandIn

from vfiobench.errors import ProbeError
from vfiobench.probes.catalog import get_probe
from vfiobench.probes.program import build_program
from vfiobench.probes.session import CellFrames, TracerSession

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

PROBES = ["set_irqs_ioctl", "pba_toggle", "transaction_commit"]
DELAY_US = 500


def _run(*procs: StandIn) -> None:
    for p in procs:
        p.go()
    for p in procs:
        p.wait_done()


def _check(cell: CellFrames, pid: int, n: int, other: int) -> None:
    """``n`` SET_IRQS ioctls and PBA toggles, ``other`` toggles of a second region, all of ``pid``."""
    ioctl = cell.tables["set_irqs_ioctl"]
    assert ioctl.size == n and set(ioctl["pid"].tolist()) == {pid}
    assert ioctl["start"].tolist() == list(range(n))
    pba = cell.tables["pba_toggle"]
    assert pba.size == n + other and set(pba["tid"].tolist()) == {pid}
    assert int(pba["is_pba"].sum()) == n
    assert pba[pba["is_pba"]]["enabled"].tolist() == [i % 2 == 0 for i in range(n)]
    assert cell.tables["transaction_commit"].size == n + other
    assert cell.counts == {"set_irqs_ioctl": n, "pba_toggle": n + other, "transaction_commit": n + other}
    assert cell.lost == dict.fromkeys(PROBES, 0)
    assert cell.regions is not None
    names = dict(zip(cell.regions["name"].tolist(), cell.regions["is_pba"].tolist(), strict=True))
    assert names == ({"msix-pba": True, "vfio-bar2": False} if other else {"msix-pba": True})


def test_pid_map_flag_replaces_the_target_pid() -> None:
    specs = [get_probe(p) for p in PROBES]
    prog = build_program(specs, pid_map=True)
    assert "-DVB_PID_MAP" in prog.cflags and "-DTARGET_PID=0" in prog.cflags
    assert "BPF_HASH(vb_pids, u32, u8, 64)" in prog.text
    assert "-DVB_PID_MAP" not in build_program(specs, pid=42).cflags


def test_only_the_tracked_pid_is_counted(standin_bin: Path, spawn: type[StandIn]) -> None:
    target = spawn(standin_bin, "both", 37, DELAY_US, 5)
    decoy = spawn(standin_bin, "both", 41, DELAY_US, 3)  # same binary, running at the same time
    with TracerSession([standin_bin], probes=PROBES) as session:
        assert session.compile_s > 0 and "-DVB_PID_MAP" in session.program.cflags
        session.track(target.pid)
        _run(target, decoy)
        cell = session.untrack(target.pid)
    _check(cell, target.pid, 37, 5)


def test_pids_switched_between_cells_land_in_their_own_tables(
    standin_bin: Path, standin_cet_bin: Path, spawn: type[StandIn]
) -> None:
    """Three cells, two binaries, one compile; a process untracked mid-way is not counted after."""
    a = spawn(standin_bin, "both", 37, DELAY_US, 5)
    b = spawn(standin_cet_bin, "both", 23, DELAY_US, 0)
    c = spawn(standin_bin, "both", 29, DELAY_US, 7)
    with TracerSession([standin_bin, standin_cet_bin, standin_bin], probes=PROBES) as session:
        assert session.binaries == [str(standin_bin), str(standin_cet_bin)]
        assert str(standin_bin) in session.targets_for(standin_bin)["pba_toggle"]
        cet = session.targets_for(standin_cet_bin)
        # endbr64 (4 bytes), then QEMU's fast-path cmp: this binary's probe sits at +8
        assert cet["pba_toggle"].endswith(f"{standin_cet_bin}:memory_region_set_enabled+0x8")
        bpf = session._bpf
        cells = []
        for proc, n, other in ((a, 37, 5), (b, 23, 0), (c, 29, 7)):
            session.track(proc.pid)
            _run(proc)
            cells.append((session.untrack(proc.pid), proc.pid, n, other))
        assert session._bpf is bpf  # compiled once
        # per-thread maps were emptied at each untrack; the pid map is empty
        assert len(bpf[b"vb_pids"]) == 0 and len(bpf[b"pba_toggle_stack"]) == 0
    for cell, pid, n, other in cells:
        _check(cell, pid, n, other)


def test_a_pid_switched_mid_way(standin_bin: Path, spawn: type[StandIn]) -> None:
    """Calls of a process while tracked count; its calls after untrack (while another is tracked) don't."""
    first = spawn(standin_bin, "toggle", 31, 20_000, 0)  # ~0.6 s of calls, 20 ms each
    second = spawn(standin_bin, "both", 19, DELAY_US, 3)
    with TracerSession([standin_bin], probes=["pba_toggle"]) as session:
        session.track(first.pid)
        first.go()
        done = threading.Event()

        def wait_first() -> None:
            first.wait_done()
            done.set()

        threading.Thread(target=wait_first, daemon=True).start()
        threading.Event().wait(0.2)
        cell1 = session.untrack(first.pid)  # mid-way: some of the 31 calls are still to come
        session.track(second.pid)
        _run(second)
        assert done.wait(10)
        cell2 = session.untrack(second.pid)
    got1 = cell1.counts["pba_toggle"]
    assert 0 < got1 < 31
    assert set(cell1.tables["pba_toggle"]["tid"].tolist()) == {first.pid}
    assert cell2.counts == {"pba_toggle": 19 + 3}
    assert set(cell2.tables["pba_toggle"]["tid"].tolist()) == {second.pid}


def test_one_pid_at_a_time(standin_bin: Path, spawn: type[StandIn]) -> None:
    a = spawn(standin_bin, "toggle", 3, 0, 0)
    with TracerSession([standin_bin], probes=["pba_toggle"]) as session:
        with pytest.raises(ProbeError, match="not tracked"):
            session.untrack(a.pid)
        session.track(a.pid)
        with pytest.raises(ProbeError, match="still tracked"):
            session.track(a.pid + 1)
        _run(a)
        assert session.untrack(a.pid).counts == {"pba_toggle": 3}
