"""Run lab cells: prepare the 9p share, boot L1 once, turn each cell's results into a run.

One boot runs any number of *cells* (:class:`~vfiobench.lab.cell.Cell`: an accelerator × a workload
× probed or not): the share holds a copy of the vfiobench package (with a light ``__init__``: L1
has no pyarrow), ``job.json`` and ``job.sh``; the L1 init runs the job and powers off;
:mod:`vfiobench.lab.results` converts every cell into a complete run with the console log, the job
log and the QEMU trace log attached.

Example:
    >>> cells = plan_cells(["kvm", "tcg"], ["mask-every-irq", "no-mask"], cycles=31)   # doctest: +SKIP
    >>> lab = run_lab(cells, Path("data/runs/lab"))                                     # doctest: +SKIP
    >>> [p.name for p in lab.runs]                                                      # doctest: +SKIP
    ['kvm-mask-every-irq', 'kvm-no-mask', 'tcg-mask-every-irq', 'tcg-no-mask']
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import vfiobench
from vfiobench.errors import LabError
from vfiobench.lab.cell import Cell
from vfiobench.lab.image import Image, Recipe, build_image, cached_image
from vfiobench.lab.vm import L1VM, BootTimes, VmConfig
from vfiobench.lab.workloads import WorkloadParams

ACCELS: tuple[str, ...] = ("kvm", "tcg")
DEVICE_VECTORS = 4  # MSI-X vectors of L1's ivshmem-doorbell (VmConfig.vectors)
L1_QEMU = "/usr/bin/qemu-system-x86_64"
SHARE_QEMU_DIR = "bin"

#: What makes ``importlib.metadata.version("vfiobench")`` answer in L1, where the package copy is
#: on ``PYTHONPATH`` but not installed (run.json records the version).
DIST_INFO_METADATA = "Metadata-Version: 2.1\nName: vfiobench\nVersion: {version}\n"

JOB_SH = """#!/bin/sh
# written by vfiobench lab run: the job of one L1 boot
echo "L1 $(uname -r), job start $(cut -d' ' -f1 /proc/uptime)"
cd /share
PYTHONPATH=/share/pkg PYTHONDONTWRITEBYTECODE=1 python3 -m vfiobench.lab.job /share/job.json
"""

SHELL_SH = """#!/bin/sh
# written by vfiobench lab shell: an interactive shell on the L1 console
echo "vfiobench lab shell: the ivshmem device, PYTHONPATH=/share/pkg; 'exit' powers off (Ctrl-A x kills)"
export PYTHONPATH=/share/pkg PS1='l1# '
setsid -c sh -i </dev/ttyS0 >/dev/ttyS0 2>&1
"""


def plan_cells(
    accels: Sequence[str],
    workloads: Sequence[str],
    *,
    cycles: int | None = 100,
    duration_s: float | None = None,
    vectors: Sequence[int] = (0,),
    burst: int = 4,
    warmup_cycles: int = 0,
    probes: bool = True,
    qemu: str | None = None,
    qemu_args: Sequence[str] = (),
    variant: str = "stock",
) -> list[Cell]:
    """Every accel × workload cell with the same parameters, validated.

    Raises:
        LabError: an unknown accelerator or workload, or bad parameters.
    """
    bad = [v for v in vectors if not 0 <= v < DEVICE_VECTORS]
    if bad:
        raise LabError(
            f"vectors {bad} do not exist: the lab's ivshmem device has {DEVICE_VECTORS}",
            f"use vectors 0..{DEVICE_VECTORS - 1}",
        )
    for a in accels:
        if a not in ACCELS:
            raise LabError(f"unknown accelerator {a!r}", f"choose {' or '.join(ACCELS)}")
    if qemu is not None and not Path(qemu).is_file():
        raise LabError(f"{qemu}: no such QEMU binary", "pass an existing file to --qemu")
    cells = []
    for a in dict.fromkeys(accels):
        for w in dict.fromkeys(workloads):
            params = WorkloadParams(
                name=w,
                vectors=list(vectors),
                cycles=cycles,
                duration_s=duration_s,
                burst=burst,
                warmup_cycles=warmup_cycles,
            )
            params.validate()
            cells.append(Cell(a, params, probes, qemu, list(qemu_args), variant))
    if not cells:
        raise LabError("no cells to run", "give at least one --accel and one --workload")
    return cells


def unavailable_reason() -> str | None:
    """Why the lab cannot run on this machine (None when it can): root, QEMU, image or build tools."""
    import os

    from vfiobench.lab.image import BUILD_TOOLS

    if os.geteuid() != 0:
        return "the lab needs root (image build with debootstrap/chroot; 9p share as root)"
    if shutil.which("qemu-system-x86_64") is None:
        return "qemu-system-x86_64 is not installed (apt-get install qemu-system-x86)"
    if cached_image() is None:
        missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
        if missing:
            return (
                f"no cached lab image and no {', '.join(missing)} to build one (apt-get install debootstrap)"
            )
    return None


def copy_package(dest: Path) -> None:
    """Copy the vfiobench package into ``dest/vfiobench``, with a dist-info that tells its version."""
    src = Path(vfiobench.__file__).parent
    target = dest / "vfiobench"
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist_info = dest / f"vfiobench-{vfiobench.__version__}.dist-info"
    dist_info.mkdir(exist_ok=True)
    (dist_info / "METADATA").write_text(
        DIST_INFO_METADATA.format(version=vfiobench.__version__), encoding="utf-8"
    )


def estimate_timeout_s(cells: Sequence[Cell]) -> float:
    """A generous guest timeout: boot, bind, and per cell L2 start, probes and cycles."""
    total = 180.0
    for c in cells:
        per_cycle = 0.15 * len(c.workload.vectors) * (c.workload.burst if c.workload.name == "burst" else 1)
        work = c.workload.duration_s or 0.0
        if c.workload.cycles is not None:
            work = max(work, c.workload.cycles * per_cycle)
        total += 60 + (90 if c.probes else 0) + work * (2 if c.probes else 1)
    return total


def prepare_share(
    share: Path, cells: Sequence[Cell], vectors: int, *, interactive: bool = False
) -> dict[str, Any]:
    """Write the package copy, the L2 binaries, ``job.json`` and ``job.sh`` into ``share``."""
    (share / "pkg").mkdir(parents=True, exist_ok=True)
    copy_package(share / "pkg")
    binaries: dict[str, str] = {}
    job_cells = []
    for c in cells:
        l1_qemu = L1_QEMU
        extra = list(c.qemu_args)
        if c.qemu is not None:
            src = str(Path(c.qemu).resolve())
            if src not in binaries:
                (share / SHARE_QEMU_DIR).mkdir(exist_ok=True)
                name = f"qemu-{len(binaries)}"
                shutil.copy2(src, share / SHARE_QEMU_DIR / name)
                binaries[src] = f"/share/{SHARE_QEMU_DIR}/{name}"
            l1_qemu = binaries[src]
            extra = ["-L", "/usr/share/qemu", *extra]  # a custom build looks for firmware in its prefix
        job_cells.append(
            {
                "id": c.id,
                "accel": c.accel,
                "workload": dataclasses.asdict(c.workload),
                "probes": c.probes,
                "probe_mode": c.probe_mode,
                "qemu": l1_qemu,
                "qemu_host_path": c.qemu or L1_QEMU,
                "qemu_args": extra,
            }
        )
    job = {"vectors": vectors, "cells": job_cells, "out": "/share/cells"}
    (share / "job.json").write_text(json.dumps(job, indent=2) + "\n", encoding="utf-8")
    (share / "job.sh").write_text(SHELL_SH if interactive else JOB_SH, encoding="utf-8")
    if interactive:
        (share / "interactive").write_text("1\n")
    return job


@dataclass
class LabResult:
    """What one L1 boot produced."""

    runs: list[Path]
    boot: BootTimes
    share: Path
    job: dict[str, Any]
    job_result: dict[str, Any]


def _job_log_follower(path: Path, show: Callable[[str], None]) -> Callable[[], None]:
    pos = [0]

    def poll() -> None:
        if not path.exists():
            return
        with open(path, "rb") as f:
            f.seek(pos[0])
            data = f.read()
        complete = data[: data.rfind(b"\n") + 1]
        pos[0] += len(complete)
        for line in complete.decode("utf-8", "replace").splitlines():
            show(line)

    return poll


def run_lab(
    cells: Sequence[Cell],
    out: Path,
    *,
    image: Image | None = None,
    vm_config: VmConfig | None = None,
    show: Callable[[str], None] = print,
    keep_share: bool = False,
    overwrite: bool = False,
) -> LabResult:
    """Boot L1 once, run ``cells``, write one run per cell.

    Args:
        cells: What to run (:func:`plan_cells`).
        out: The run directory for a single cell, else a directory holding one run per cell
            (named by :attr:`Cell.id`).
        image: The L1 image; built (or taken from the cache) when None.
        vm_config: L1 settings; the timeout defaults to :func:`estimate_timeout_s`.
        show: Receives progress lines (the job's log, live).
        keep_share: Keep the 9p share directory (it is otherwise removed after a successful
            conversion; after a failure or Ctrl-C it is always kept, for its console and job logs).
        overwrite: Replace existing run directories.

    Raises:
        LabError: the image cannot be built, L1 failed to boot or timed out, or the job's set-up
            failed inside L1 (the message quotes it).
    """
    from vfiobench.lab.results import cell_to_run

    if not cells:
        raise LabError("no cells to run")
    out = Path(out)
    targets = {c.id: (out if len(cells) == 1 else out / c.id) for c in cells}
    if len(targets) != len(cells):
        raise LabError("two cells have the same accel/workload/probes", "list each combination once")
    for path in targets.values():
        if path.exists() and not overwrite:
            raise LabError(f"{path}: already exists", "choose another --out or remove it")
    image = image or cached_image() or build_image(Recipe.default())
    cfg = vm_config or VmConfig()
    if vm_config is None:
        cfg.timeout_s = estimate_timeout_s(cells)
    share = Path(tempfile.mkdtemp(prefix="vfiobench-share-"))
    try:
        job = prepare_share(share, cells, cfg.vectors)
        console = share / "console.log"
        show(f"lab: booting L1 ({len(cells)} cells, timeout {cfg.timeout_s:.0f} s), console: {console}")
        with L1VM(image, share, console, cfg) as vm:
            follow = _job_log_follower(share / "job.log", lambda line: show(f"  L1 {line}"))
            rc = vm.wait(on_poll=follow)
            boot = vm.times
            stderr = vm.qemu_stderr().strip()
            cmdline = vm.cmdline
        show(f"lab: L1 exited ({rc}) after {boot.exit_s} s; job started at {boot.job_start_s} s")
        result_file = share / "job-result.json"
        if not result_file.exists():
            where = "; ".join(x for x in (stderr[-300:], f"console: {vm.console_tail()}") if x)
            raise LabError(f"the L1 job left no result (QEMU exit {rc}): {where}", f"see {console}")
        job_result = json.loads(result_file.read_text())
        runs = []
        for c in cells:
            runs.append(
                cell_to_run(
                    share / "cells" / c.id,
                    targets[c.id],
                    cell=c,
                    share=share,
                    image=image,
                    boot=boot,
                    l1_cmdline=cmdline,
                    job_result=job_result,
                    overwrite=overwrite,
                )
            )
        if job_result.get("status") != "complete":
            raise LabError(
                f"the L1 job failed: {job_result.get('error')}", f"see {runs[0] if runs else share}"
            )
    except BaseException:
        # keep the evidence of a failed or interrupted boot: console log, job log, cell outputs
        show(f"lab: the share with the console and job logs is kept at {share}")
        raise
    if not keep_share:
        shutil.rmtree(share, ignore_errors=True)
    return LabResult(runs, boot, share, job, job_result)
