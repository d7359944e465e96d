"""One lab cell: an accelerator × a workload × probed or not, run inside an L1 boot.

A leaf of the lab's host side: :mod:`vfiobench.lab.runner` plans and runs cells,
:mod:`vfiobench.lab.results` turns each one's output into a run; both import it, neither imports
the other's module for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vfiobench.lab.workloads import WorkloadParams


@dataclass
class Cell:
    """One (accel, workload) combination run inside an L1 boot.

    Attributes:
        accel: ``kvm`` or ``tcg`` for the L2 QEMU.
        workload: The qtest workload.
        probes: Attach the vfiobench probes (``kind: probed``) or not (``probe-free``).
        qemu: Host path of the L2 QEMU binary to copy into the share (None: L1's own Debian QEMU).
        qemu_args: Extra L2 command-line arguments.
        variant: The run's variant label.
        name: The run id and directory name (an experiment's planned run id); default :attr:`id`.
        labels: Extra run.json labels (an experiment's repetition, warm-up flag, patches).
        patches: Names of the QEMU patches the binary was built with (run.json ``qemu.patches``).
        probe_mode: How a probed cell attaches its probes: ``session`` (the boot's tracer session,
            compiled once) or ``per-cell`` (a one-shot tracer compiled for this cell: slower, kept
            to measure the difference).
    """

    accel: str
    workload: WorkloadParams
    probes: bool = True
    qemu: str | None = None
    qemu_args: list[str] = field(default_factory=list)
    variant: str = "stock"
    name: str | None = None
    labels: dict[str, Any] = field(default_factory=dict)
    patches: list[str] = field(default_factory=list)
    probe_mode: str = "session"

    @property
    def id(self) -> str:
        """Directory-safe name: :attr:`name`, else ``<accel>-<workload>[-probe-free]``."""
        if self.name:
            return self.name
        return f"{self.accel}-{self.workload.name}" + ("" if self.probes else "-probe-free")
