"""Where an experiment's runs execute: the emulated lab, or a real host with a real VFIO device.

Both backends resolve each variant's QEMU binary the same way (:func:`variant_binary`): ``system``
is the distribution's ``qemu-system-x86_64``, ``build`` is ``vfiobench qemu build`` with the
variant's patches (cached), anything else is a path. Device properties reach every ``vfio-pci``
device as ``-global vfio-pci.KEY=VALUE``, so neither backend edits a command line it did not write.

- :class:`LabBackend` runs one L1 boot per repetition and release (the release's own L1 image and,
  for ``build`` variants, QEMU built from that release's source), holding every variant's cells in
  plan order (so the interleaving survives inside the boot), and names each run by its planned run
  id.
- :class:`HostBackend` launches the spec's QEMU command line per run, attaches the probes to that
  process (probed runs), runs the workload command to completion, then stops QEMU. Placeholders in
  both command lines: ``{pid}`` (QEMU's pid; workload only), ``{props}`` (``,key=value...``),
  ``{cycles}``, ``{run_dir}``, ``{qemu_log}`` (QEMU's stdout+stderr) and ``{samples}`` (a CSV the
  workload may write, one row per interrupt; it becomes the ``workload`` table).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from vfiobench.errors import ExperimentError, VfioBenchError
from vfiobench.experiment.plan import PlannedRun
from vfiobench.experiment.runner import Backend, RunDone
from vfiobench.experiment.spec import ExperimentSpec, Variant
from vfiobench.qemu.sourcepick import recorded_source
from vfiobench.store import QemuInfo, RunMeta, RunWriter, WorkloadInfo

Show = Callable[[str], None]


def global_props(variant: Variant) -> list[str]:
    """``-global vfio-pci.KEY=VALUE`` arguments for the variant's device properties."""
    args: list[str] = []
    for key, value in variant.device_props:
        args += ["-global", f"vfio-pci.{key}={value}"]
    return args


class BinaryResolver:
    """Resolve (and build, once per patch set) each variant's QEMU binary."""

    def __init__(self, show: Show = print) -> None:
        self.show = show
        self._cache: dict[tuple[str, tuple[str, ...], str], str | None] = {}

    def __call__(self, variant: Variant, *, system: str | None = None, release: str = "") -> str | None:
        """The binary path for ``variant``; ``system`` (or None) is what ``qemu = "system"`` means.

        ``release``: the lab release the binary runs in (``build`` variants are built from that
        release's QEMU source; "" is the build host's own, bookworm's).
        """
        key = (variant.qemu, variant.patches, release)
        if key not in self._cache:
            self._cache[key] = self._resolve(variant, system, release)
        return self._cache[key]

    def _resolve(self, variant: Variant, system: str | None, release: str) -> str | None:
        if variant.qemu == "system":
            return system
        if variant.qemu == "build":
            from vfiobench.qemu.build import build_qemu

            result = build_qemu(list(variant.patches), release=release or None, progress=self.show)
            if result.source_fallback:  # said once per variant and release (resolved once)
                self.show(f"notice: {variant.name} on {result.release}: QEMU source {result.qemu_source}")
            return str(result.binary)
        path = Path(variant.qemu)
        if not path.is_file():
            raise ExperimentError(f"variant {variant.name}: QEMU binary {path} does not exist")
        return str(path)


class LabBackend:
    """Run planned runs in the emulated lab, one L1 boot per repetition."""

    def __init__(self, spec: ExperimentSpec, *, show: Show = print) -> None:
        self.spec = spec
        self.show = show
        self.binary = BinaryResolver(show)

    def batch_key(self, run: PlannedRun) -> Hashable:
        """One boot per repetition and release (warm-ups apart)."""
        return (run.warmup, run.repetition, run.release)

    def cell(self, run: PlannedRun) -> Any:
        """The lab cell of one planned run."""
        from vfiobench.lab.cell import Cell
        from vfiobench.lab.workloads import WorkloadParams

        w = run.workload
        params = WorkloadParams(
            name=w.name,
            vectors=list(w.param("vectors", [0])),
            cycles=w.param("cycles", 100 if w.param("duration_s") is None else None),
            duration_s=w.param("duration_s"),
            burst=int(w.param("burst", 4)),
            warmup_cycles=int(w.param("warmup_cycles", 0)),
        )
        params.validate()
        variant = run.variant
        return Cell(
            accel=run.accel,
            workload=params,
            probes=run.probed,
            qemu=self.binary(variant, release=run.release),
            qemu_args=[*global_props(variant), *variant.extra_args],
            variant=variant.name,
            name=run.run_id,
            labels=run.labels(self.spec.name),
            patches=list(variant.patches),
        )

    def execute(self, runs: Sequence[PlannedRun], runs_dir: Path, done: RunDone) -> None:
        """Boot L1 once for ``runs``; a failed boot leaves its runs to be redone on resume."""
        from vfiobench.lab.image import Recipe, build_image
        from vfiobench.lab.runner import run_lab
        from vfiobench.qemu.build import heavy_lock

        cells = [self.cell(r) for r in runs]  # builds missing QEMU variants first (their own lock)
        out = runs_dir / runs[0].run_id if len(runs) == 1 else runs_dir
        try:
            image = build_image(Recipe.default(runs[0].release or None))
            with heavy_lock(progress=self.show):  # one VM at a time on a 2-core machine
                run_lab(cells, out, image=image, show=self.show)
        except VfioBenchError as e:
            self.show(f"lab: batch of {len(runs)} runs failed: {e}")
        for run in runs:
            if (runs_dir / run.run_id).is_dir():
                done(run, runs_dir / run.run_id)


class HostBackend:
    """Run planned runs on this machine: launch QEMU, probe it, drive the workload command."""

    def __init__(self, spec: ExperimentSpec, *, show: Show = print) -> None:
        self.spec = spec
        self.show = show
        self.binary = BinaryResolver(show)

    def batch_key(self, run: PlannedRun) -> Hashable:
        """Every run on its own."""
        return run.index

    def execute(self, runs: Sequence[PlannedRun], runs_dir: Path, done: RunDone) -> None:
        """Execute each run in turn."""
        for run in runs:
            self.run_one(run, runs_dir / run.run_id)
            done(run, runs_dir / run.run_id)

    def _format(self, args: Sequence[str], values: dict[str, Any]) -> list[str]:
        try:
            return [a.format(**values) for a in args]
        except (KeyError, IndexError, ValueError) as e:
            raise ExperimentError(
                f"{self.spec.path}: [host] command has an unknown placeholder ({e})",
                "use {pid} {props} {cycles} {run_dir} {qemu_log} {samples}",
            ) from None

    def run_one(self, run: PlannedRun, out: Path) -> None:
        """Record one run: QEMU up, probes attached (probed runs), workload to completion, QEMU down."""
        host = self.spec.host
        variant = run.variant
        binary = self.binary(variant, system=host.qemu_cmdline[0])
        meta = RunMeta(
            run_id=run.run_id,
            variant=variant.name,
            source="host",
            kind=run.kind,
            workload=WorkloadInfo(run.workload.name, dict(run.workload.params)),
            labels=run.labels(self.spec.name),
        )
        with RunWriter(out, meta) as writer:
            qemu_log = writer.path / "qemu.log"
            samples = writer.path / "samples.csv"
            values: dict[str, Any] = {
                "props": variant.device_suffix,
                "cycles": run.workload.param("cycles", ""),
                "run_dir": str(writer.path),
                "qemu_log": str(qemu_log),
                "samples": str(samples),
            }
            cmd = self._format(host.qemu_cmdline, values)
            cmd[0] = binary or cmd[0]
            cmd += [*global_props(variant), *variant.extra_args]
            meta.qemu = QemuInfo(path=cmd[0], cmdline=cmd, patches=list(variant.patches))
            source = recorded_source(cmd[0])  # a vfiobench build: which Debian source, and why
            if source:
                meta.labels["qemu_source"] = source
            if shutil.which(cmd[0]) is None:
                raise ExperimentError(
                    f"{cmd[0]}: QEMU binary not found", "fix [host] qemu_cmdline or the variant"
                )
            with (
                open(qemu_log, "wb") as log,
                subprocess.Popen(
                    cmd, stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                ) as qemu,
            ):
                try:
                    workload = self._format(host.workload_command, values | {"pid": qemu.pid})
                    if run.probed:
                        self._probed(qemu.pid, cmd[0], workload, writer)
                    else:
                        self._drive(workload, poll=None)
                finally:
                    qemu.terminate()
                    try:
                        qemu.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        qemu.kill()
                        qemu.wait()
                    if qemu.stdin:
                        qemu.stdin.close()
            if samples.is_file() and samples.stat().st_size:
                import pandas as pd

                writer.append("workload", pd.read_csv(samples))

    def _probed(self, pid: int, binary: str, workload: list[str], writer: RunWriter) -> None:
        from vfiobench.probes.tracer import Tracer

        with Tracer(pid=pid, qemu=binary, writer=writer) as tracer:
            self._drive(workload, poll=tracer.poll)

    def _drive(self, workload: list[str], poll: Callable[[], int] | None) -> None:
        deadline = time.monotonic() + self.spec.host.timeout_s
        with subprocess.Popen(workload) as proc:
            while proc.poll() is None:
                if poll is not None:
                    poll()
                if time.monotonic() > deadline:
                    proc.kill()
                    raise ExperimentError(
                        f"workload command timed out after {self.spec.host.timeout_s:.0f} s: "
                        f"{' '.join(workload)}",
                        "raise [host] timeout_s or fix the command",
                    )
                time.sleep(0.01)
            if proc.returncode != 0:
                raise ExperimentError(f"workload command exited {proc.returncode}: {' '.join(workload)}")


def make_backend(spec: ExperimentSpec, *, show: Show = print) -> Backend:
    """The backend a spec names."""
    if spec.backend == "lab":
        return LabBackend(spec, show=show)
    return HostBackend(spec, show=show)
