"""Cell → run conversion on the host, without booting: tables, metadata, checks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vfiobench.lab.cell import Cell
from vfiobench.lab.guest.run import SAMPLE_DTYPE
from vfiobench.lab.image import Image
from vfiobench.lab.results import WORKLOAD_COLUMNS, cell_to_run
from vfiobench.lab.vm import BootTimes
from vfiobench.lab.workloads import WorkloadParams
from vfiobench.store import load_run

N = 7  # cycles in the synthetic cell
T0 = 1_000_000_000  # measure phase start, ns


def synthetic_cell(d: Path, *, accel: str, lose_one_ioctl: bool = False) -> None:
    """A cell directory as the L1 job writes it: mask-every-irq, N cycles, probes, trace log."""
    d.mkdir(parents=True)
    lines = ["1@1.000000:vfio_msix_vector_do_use  (0000:00:03.0) vector 0 used\n"]
    setup_end = len(lines[0])
    for _ in range(N):
        lines += [
            "1@1.000001:vfio_msix_vector_release  (0000:00:03.0) vector 0 released\n",
            "1@1.000002:vfio_msix_pba_enable  (0000:00:03.0)\n",
            "1@1.000003:vfio_msi_interrupt  (0000:00:03.0) vector 0 0x100000/0x41\n",
            "1@1.000004:vfio_msix_vector_do_use  (0000:00:03.0) vector 0 used\n",
            "1@1.000005:vfio_msix_pba_disable  (0000:00:03.0)\n",
        ]
    text = "".join(lines)
    (d / "qemu-trace.log").write_text(text)
    end = T0 + N * 1000
    phases = {
        "setup": {"start_ns": 0, "end_ns": T0, "trace_start": 0, "trace_end": setup_end},
        "measure": {"start_ns": T0, "end_ns": end, "trace_start": setup_end, "trace_end": len(text)},
    }
    counters = {
        "cycles": N,
        "triggered": N,
        "delivered": N,
        "expected_deliveries": N,
        "masks": N,
        "unmasks": N,
        "pba_seen": N,
        "timeouts": 0,
    }
    rec = {
        "id": d.name,
        "status": "complete",
        "counters": counters,
        "phases": phases,
        "irq_before": {"0": 10},
        "irq_after": {"0": 10 + N},
        "qemu": {
            "path": "/usr/bin/qemu-system-x86_64",
            "version": "QEMU emulator version 7.2.22",
            "build_id": "ab" * 20,
        },
        "l2_cmdline": ["qemu-system-x86_64", "-accel", accel],
        "probes": {"set_irqs_ioctl": {"target": "tp", "events": 99, "lost": 0, "mode": "stream"}},
    }
    (d / "cell.json").write_text(json.dumps(rec))
    s = np.zeros(N, dtype=SAMPLE_DTYPE)
    s["cycle"] = np.arange(N)
    s["trigger_ts_ns"] = T0 + np.arange(N) * 1000
    s["delivered_ts_ns"] = s["trigger_ts_ns"] + 500
    s["latency_ns"] = 500
    s["delivered"] = s["pba_seen"] = True
    np.savez(d / "workload.npz", samples=s)
    per_cycle = 2 if accel == "kvm" else 1
    n_ioctl = N * per_cycle - (1 if lose_one_ioctl else 0)
    ts = lambda n: T0 + 1 + np.arange(n, dtype=np.int64) * (N * 1000 // max(n, 1) - 1)  # noqa: E731
    ioctl = np.zeros(n_ioctl + 2, dtype=[("ts_ns", "<i8"), ("dur_ns", "<i8")])
    ioctl["ts_ns"][:n_ioctl] = ts(n_ioctl)
    ioctl["ts_ns"][n_ioctl:] = [5, end + 10]  # set-up and teardown ioctls: outside the measure phase
    svs = np.zeros(N * per_cycle, dtype=[("ts_ns", "<i8"), ("dur_ns", "<i8")])
    svs["ts_ns"] = ts(N * per_cycle)
    pba = np.zeros(2 * N + 3, dtype=[("ts_ns", "<i8"), ("dur_ns", "<i8"), ("is_pba", "?")])
    pba["ts_ns"] = T0 + 1 + np.arange(2 * N + 3)
    pba["is_pba"] = True
    pba["is_pba"][-3:] = False  # other regions toggled too: not counted as PBA toggles
    np.savez(d / "probes.npz", set_irqs_ioctl=ioctl, set_vector_signal=svs, pba_toggle=pba)


def convert(tmp_path: Path, accel: str, **kw: bool):  # type: ignore[no-untyped-def]
    share = tmp_path / "share"
    synthetic_cell(share / "cells" / f"{accel}-mask-every-irq", accel=accel, **kw)
    (share / "console.log").write_text("vfiobench-lab: job done rc=0\n")
    cell = Cell(accel, WorkloadParams("mask-every-irq", cycles=N), probes=True)
    img = Image(tmp_path, {"recipe_hash": "abc", "kernel_release": "6.1.0-test-amd64"})
    out = cell_to_run(
        share / "cells" / cell.id,
        tmp_path / "run",
        cell=cell,
        share=share,
        image=img,
        boot=BootTimes(1.0, 15.0, 30.0, 31.0),
        l1_cmdline=["qemu"],
        job_result={"kernel_release": "6.1.0-t"},
    )
    return load_run(out)


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_cell_becomes_a_complete_checked_run(tmp_path: Path, accel: str) -> None:
    run = convert(tmp_path, accel)
    m = run.meta
    assert (m.status, m.source, m.kind, m.variant) == ("complete", "lab", "probed", "stock")
    assert m.labels["accel"] == accel and m.labels["irq_delta_measure"] == N
    assert m.qemu.version.startswith("QEMU") and m.qemu.cmdline[-1] == accel
    assert [c.name for c in m.checks if not c.ok] == []
    counts = json.loads(m.labels["probe_counts_measure"])
    assert counts == {
        "set_irqs_ioctl": N * (2 if accel == "kvm" else 1),
        "set_vector_signal": N * (2 if accel == "kvm" else 1),
        "pba_toggle": 2 * N,
    }
    w = run.table("workload")
    assert list(w.columns) == list(WORKLOAD_COLUMNS) and len(w) == N
    trace = run.table("qemu_trace")
    assert trace["phase"].value_counts().to_dict() == {"measure": 5 * N, "setup": 1}
    assert run.table("set_irqs_ioctl").shape[0] == N * (2 if accel == "kvm" else 1) + 2
    assert run.attachment("console.log").read_text().startswith("vfiobench-lab")
    assert m.probes["set_irqs_ioctl"].events == 99


def test_a_missing_ioctl_fails_its_check(tmp_path: Path) -> None:
    run = convert(tmp_path, "kvm", lose_one_ioctl=True)
    bad = [c for c in run.meta.checks if not c.ok]
    assert [(c.name, c.expected, c.observed) for c in bad] == [
        ("probe: set_irqs_ioctl == trace", 2 * N, 2 * N - 1)
    ]


def bare_run(tmp_path: Path, share: Path, cell: Cell, job_result: dict[str, object]):  # type: ignore[no-untyped-def]
    """``cell``'s output under ``share`` as a run, with no image, boot times or L1 command line."""
    out = cell_to_run(
        share / "cells" / cell.id,
        tmp_path / "run",
        cell=cell,
        share=share,
        image=Image(tmp_path, {}),
        boot=BootTimes(),
        l1_cmdline=[],
        job_result=job_result,
    )
    return load_run(out)


def test_a_cell_that_never_ran_is_a_failed_run(tmp_path: Path) -> None:
    share = tmp_path / "share"
    share.mkdir()
    cell = Cell("tcg", WorkloadParams("no-mask", cycles=3), probes=False)
    run = bare_run(tmp_path, share, cell, {"error": "LabError: binding failed"})
    assert run.meta.status == "failed" and "binding failed" in (run.meta.error or "")
    assert run.meta.kind == "probe-free"


def test_a_vfiobench_build_records_its_qemu_source_in_the_run_labels(tmp_path: Path) -> None:
    """The build's ``qemu_source`` (which Debian source, and why) reaches run.json's labels."""
    note = "1:10.2.2+ds-1 (sid; not served by the mirror: trixie-backports' 1:11.1.3+ds-2~bpo13+1)"
    bdir = tmp_path / "qemu" / "build-10.2.2+ds-1-0123456789abcdef"
    (bdir / "bin").mkdir(parents=True)
    (bdir / "bin" / "qemu-system-x86_64").write_bytes(b"\x7fELF")
    (bdir / "build.json").write_text(json.dumps({"source_version": "10.2.2+ds-1", "qemu_source": note}))
    share = tmp_path / "share"
    synthetic_cell(share / "cells" / "kvm-mask-every-irq", accel="kvm")
    binary = str(bdir / "bin" / "qemu-system-x86_64")
    built = Cell("kvm", WorkloadParams("mask-every-irq", cycles=N), qemu=binary)
    run = bare_run(tmp_path, share, built, {})
    assert run.meta.labels["qemu_source"] == note
    assert "qemu_source" not in convert(tmp_path / "debian", "kvm").meta.labels  # L1's Debian QEMU
