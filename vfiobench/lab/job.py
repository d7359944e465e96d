"""The job that runs inside L1: bind the ivshmem device to vfio-pci, run each cell, write results.

Started by ``/share/job.sh`` as ``python3 -m vfiobench.lab.job /share/job.json`` with Debian's
python3 and the vfiobench package on ``PYTHONPATH`` (a copy in the share). Only the standard
library, numpy and (for probed cells) BCC are used here: Debian bookworm has no pyarrow, so each
cell's tables go to ``.npz`` files and the host turns them into runs (:mod:`vfiobench.lab.results`).

A *cell* is one (accel, workload) pair: one L2 QEMU, one workload, optionally the probes. For each
cell the job writes ``/share/cells/<id>/``:

    cell.json        status, counters, phases, device, timings, L2 command line and binary info,
                     L1 interrupt counts, probe statistics, error (if any)
    workload.npz     the workload's samples (:data:`vfiobench.lab.guest.run.SAMPLE_DTYPE`)
    probes.npz       one array per probe table (probed cells)
    qemu-trace.log   L2's ``-trace`` log (written to L1 tmpfs, copied once at the end)
    l2-stderr.log    what L2 printed

A failing cell is recorded (``status: failed`` with the error) and the job goes on with the next.
"""

from __future__ import annotations

import contextlib
import functools
import json
import platform
import shutil
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from vfiobench.errors import LabError, VfioBenchError
from vfiobench.lab.device import DeviceConfig
from vfiobench.lab.guest.ivshmem import IVSHMEM_DEVICE, IVSHMEM_VENDOR, IvshmemGuest
from vfiobench.lab.guest.l2 import L2Qemu, l2_cmdline
from vfiobench.lab.guest.run import WorkloadResult, run_workload
from vfiobench.lab.guest.watch import Delivery, IrqCountDelivery, RamDelivery, read_irq_count
from vfiobench.lab.stalls import StallWatch
from vfiobench.lab.workloads import WorkloadParams
from vfiobench.qemu.trace import trace_args

RUN_DIR = Path("/tmp/vfiobench-run")


def log(msg: str) -> None:
    """One progress line (job.log; the host shows it live)."""
    print(f"[{time.monotonic():10.3f}] {msg}", flush=True)


def sh(*cmd: str) -> str:
    """Run a command; raise :class:`LabError` with its output when it fails."""
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise LabError(f"{' '.join(cmd)} failed ({out.returncode}): {(out.stderr or out.stdout).strip()}")
    return out.stdout


def find_ivshmem(sysfs: Path = Path("/sys/bus/pci/devices")) -> str:
    """The L1 address of the ivshmem device (vendor 0x1af4, device 0x1110)."""
    for dev in sorted(sysfs.iterdir()):
        try:
            vendor = int((dev / "vendor").read_text(), 16)
            device = int((dev / "device").read_text(), 16)
        except (OSError, ValueError):
            continue
        if (vendor, device) == (IVSHMEM_VENDOR, IVSHMEM_DEVICE):
            return dev.name
    raise LabError("no ivshmem device in L1", "start L1 with -device ivshmem-doorbell")


def bind_vfio(bdf: str) -> dict[str, Any]:
    """Load kvm_amd and vfio-pci and bind ``bdf`` to vfio-pci; returns facts for the record."""
    t0 = time.monotonic()
    kvm_ok = subprocess.run(["modprobe", "kvm_amd"], capture_output=True, check=False).returncode == 0
    sh("modprobe", "vfio-pci")
    dev = Path("/sys/bus/pci/devices") / bdf
    driver = dev / "driver"
    if driver.exists() and driver.resolve().name != "vfio-pci":
        (driver / "unbind").write_text(bdf)
    (dev / "driver_override").write_text("vfio-pci")
    if not (driver.exists() and driver.resolve().name == "vfio-pci"):
        try:
            Path("/sys/bus/pci/drivers/vfio-pci/bind").write_text(bdf)
        except OSError as e:
            raise LabError(
                f"binding {bdf} to vfio-pci failed: {e}", "the L1 VM needs -device intel-iommu (IOMMU group)"
            ) from None
    group = (dev / "iommu_group").resolve().name
    return {
        "bdf": bdf,
        "iommu_group": group,
        "kvm": kvm_ok and Path("/dev/kvm").exists(),
        "bind_s": round(time.monotonic() - t0, 2),
    }


def irq_counts(bdf: str, vectors: int) -> dict[str, int]:
    """L1 interrupt counts of the device's MSI-X vectors (missing lines are left out)."""
    out: dict[str, int] = {}
    for v in range(vectors):
        with contextlib.suppress(LabError, OSError):
            out[str(v)] = read_irq_count(f"vfio-msix[{v}]({bdf})")
    return out


@functools.cache
def binary_info(path: str) -> dict[str, str]:
    """Version and build-id of the L2 QEMU binary ("" where unknown); once per binary and boot.

    Running ``BINARY -version`` under TCG takes about a second: the job asks once per binary.
    """
    try:
        from vfiobench.qemu.binary import inspect_binary

        info = inspect_binary(path)
        return {"path": info.path, "version": info.version, "build_id": info.build_id}
    except (VfioBenchError, OSError, ImportError) as e:
        return {"path": path, "version": "", "build_id": "", "error": str(e)}


ProbeOpener = Callable[[dict[str, Any], L2Qemu], contextlib.AbstractContextManager[Any]]


@contextlib.contextmanager
def no_probes(cell: dict[str, Any], l2: L2Qemu) -> Iterator[None]:
    """The probe-free case."""
    yield None


def run_cell(
    cell: dict[str, Any],
    bdf: str,
    out_root: Path,
    vectors: int,
    open_probes: ProbeOpener,
    stalls: StallWatch | None = None,
) -> None:
    """Run one (accel, workload) cell and write its directory (never raises for a cell failure).

    With ``stalls``, ``cell.json`` gets the stall windows overlapping the cell (``stalls``: lists of
    ``[start_ns, end_ns, overshoot_ns]``, CLOCK_MONOTONIC).
    """
    cid = cell["id"]
    out = out_root / cid
    out.mkdir(parents=True, exist_ok=True)
    work = RUN_DIR / cid
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    trace_log = work / "qemu-trace.log"
    params = WorkloadParams(**cell["workload"])
    accel = cell["accel"]
    record: dict[str, Any] = {"id": cid, "accel": accel, "workload": asdict(params), "status": "failed"}
    record["qemu"] = dict(binary_info(cell["qemu"]))
    t0 = time.monotonic()
    t0_ns = time.monotonic_ns()
    record["started_epoch_s"] = time.time()  # L1's clock: set from the host's at boot, real time under TCG

    kvm_route = DeviceConfig.from_args(accel, cell.get("qemu_args", [])).kvm_route

    def delivery(g: IvshmemGuest) -> Delivery:
        if kvm_route and params.name == "no-mask":
            return IrqCountDelivery(bdf)  # KVM irqfd: RAM is never written (LAB-NOTES §6)
        return RamDelivery(g)  # QEMU delivers (masked, TCG, x-no-kvm-msix): a store into L2 RAM

    def cmdline(sock: Path) -> list[str]:
        return l2_cmdline(cell["qemu"], accel, sock, bdf, trace_args(trace_log), cell.get("qemu_args", []))

    try:
        with L2Qemu(cmdline, work) as l2:
            record["l2_cmdline"] = l2.cmdline
            record["l2_start_s"] = round(l2.start_s, 3)
            record["l2_connect_s"] = round(l2.connect_s, 3)
            log(f"{cid}: L2 up in {l2.start_s:.2f} s (qtest connected at {l2.connect_s:.2f} s, pid {l2.pid})")
            with open_probes(cell, l2) as probes:
                record["probes_ready_s"] = round(time.monotonic() - t0, 3)
                if probes is not None:
                    record["probe_mode"] = _mode(cell)
                assert l2.session is not None
                res: WorkloadResult = run_workload(
                    l2.session,
                    params,
                    delivery=delivery,
                    trace_log=trace_log,
                    snapshot=lambda: irq_counts(bdf, vectors),
                )
                if probes is not None:
                    record["probes"] = probes.finish(out / "probes.npz")
                    record["probes_attach_s"] = round(probes.attach_s, 3)
            record["qtest_commands"] = l2.session.commands
        np.savez(out / "workload.npz", samples=res.samples)
        record.update(
            status="complete",
            counters=res.counters,
            phases={k: asdict(v) for k, v in res.phases.items()},
            device=asdict(res.device),
            irq_before=res.phases["measure"].snapshot_start,
            irq_after=res.phases["measure"].snapshot_end,
        )
        log(f"{cid}: {res.counters}")
    except Exception as e:
        record["error"] = f"{type(e).__name__}: {e}"
        record["traceback"] = traceback.format_exc()
        log(f"{cid}: FAILED {record['error']}")
    finally:
        record["wall_s"] = round(time.monotonic() - t0, 3)
        record["ended_epoch_s"] = time.time()
        if stalls is not None:
            record["stalls"] = [list(w) for w in stalls.windows(t0_ns, time.monotonic_ns())]
        for name in ("qemu-trace.log", "l2-stderr.log"):
            if (work / name).exists():
                shutil.copyfile(work / name, out / name)
        (out / "cell.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def open_tracer(cell: dict[str, Any], l2: L2Qemu) -> contextlib.AbstractContextManager[Any]:
    """The probes of a probed cell, one-shot (``probe_mode: per-cell``)."""
    if not cell.get("probes"):
        return no_probes(cell, l2)
    from vfiobench.lab.probing import LabProbes

    return LabProbes(cell, l2.pid)


def _mode(cell: dict[str, Any]) -> str:
    """How a probed cell attaches: ``session`` (the default) or ``per-cell``."""
    return str(cell.get("probe_mode", "session"))


class ProbeOpeners:
    """Opens each cell's probes: from the boot's tracer session, or one-shot per cell.

    Args:
        cells: The job's cells; the session's binaries are those of its probed session-mode cells.
    """

    def __init__(self, cells: list[dict[str, Any]]) -> None:
        from vfiobench.lab.probing import LabSession

        binaries = [c["qemu"] for c in cells if c.get("probes") and _mode(c) == "session"]
        self.session = LabSession(binaries) if binaries else None

    def __call__(self, cell: dict[str, Any], l2: L2Qemu) -> contextlib.AbstractContextManager[Any]:
        """The probes of ``cell`` (a :data:`ProbeOpener`)."""
        if not cell.get("probes"):
            return no_probes(cell, l2)
        if _mode(cell) == "per-cell" or self.session is None:
            return open_tracer(cell, l2)
        return self.session.cell(cell, l2.pid)

    def prepare(self) -> None:
        """Compile and attach the session before the first cell (a failure is kept for its cells)."""
        if self.session is None:
            return
        log(f"probes: compiling and attaching the session ({len(self.session.binaries)} binaries)")
        try:
            self.session.start()
        except Exception as e:
            log(f"probes: the session failed, probed cells will fail: {type(e).__name__}: {e}")
            return
        log(f"probes: session ready: {self.session.facts()}")

    def facts(self) -> dict[str, Any] | None:
        """The session's facts for job-result.json (None without one)."""
        return None if self.session is None else self.session.facts()

    def close(self) -> None:
        """Detach the session's probes."""
        if self.session is not None:
            self.session.close()


def main(argv: list[str] | None = None) -> int:
    """Run the job described by a ``job.json``; returns 0 unless the set-up failed."""
    argv = sys.argv[1:] if argv is None else argv
    job_file = Path(argv[0] if argv else "/share/job.json")
    job = json.loads(job_file.read_text())
    out_root = Path(job.get("out", job_file.parent / "cells"))
    out_root.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"kernel_release": platform.release(), "python": platform.python_version()}
    result_file = job_file.parent / "job-result.json"
    try:
        bdf = find_ivshmem()
        result["device"] = bind_vfio(bdf)
        log(f"vfio: {result['device']}")
        openers = ProbeOpeners(job["cells"])
        watch = StallWatch(RUN_DIR / "stalls.txt")
        try:
            watch.__enter__()
            openers.prepare()
            for cell in job["cells"]:
                log(f"{cell['id']}: start ({cell['accel']}, {cell['workload']['name']})")
                run_cell(cell, bdf, out_root, int(job.get("vectors", 4)), openers, watch)
        finally:
            result["probe_session"] = openers.facts()
            openers.close()
            result["stalls"] = watch.facts()
            watch.__exit__(None, None, None)
        result["status"] = "complete"
        return 0
    except Exception as e:
        result["status"] = "failed"
        result["error"] = f"{type(e).__name__}: {e}"
        log(f"job FAILED: {result['error']}")
        traceback.print_exc()
        return 1
    finally:
        result_file.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    sys.exit(main())
