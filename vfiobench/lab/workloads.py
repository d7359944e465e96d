"""The lab's guest workloads by name, and what one of them is told to do.

The names and :class:`WorkloadParams` live here, apart from the driver that runs them
(:mod:`vfiobench.lab.guest`), so the spec parser, the ground-truth checks and the CLI can name and
validate a workload without importing numpy, sockets or the qtest client. Only the standard
library and :mod:`vfiobench.errors` are imported (this module also runs inside L1).

Workloads, all over one or several vectors:

- ``mask-every-irq``: mask → trigger → poll the PBA until the pending bit shows → unmask → wait for
  delivery (what an RTOS that masks on every interrupt does);
- ``no-mask``: trigger → wait for delivery (the baseline);
- ``burst``: mask → N triggers → PBA → unmask → one delivery;
- ``mask-no-pba``: mask → trigger → wait until QEMU has taken the interrupt → unmask → wait for
  delivery, never reading the PBA: the guest ``x-pba-disable`` is for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vfiobench.errors import LabError

WORKLOADS: tuple[str, ...] = ("mask-every-irq", "no-mask", "burst", "mask-no-pba")
#: The workloads whose guest polls the PBA in every mask window.
READS_PBA: tuple[str, ...] = ("mask-every-irq", "burst")


@dataclass
class WorkloadParams:
    """What a workload does.

    Attributes:
        name: One of :data:`WORKLOADS`.
        vectors: MSI-X vectors used, each once per cycle, in order.
        cycles: Number of cycles (None: run for ``duration_s``).
        duration_s: Run for this long (when ``cycles`` is None).
        burst: Triggers per mask window (``burst`` only).
        wait_timeout_s: Give up waiting for a pending bit or a delivery after this long.
        warmup_cycles: Cycles run before the measure phase, part of the setup phase: neither
            sampled nor counted, nor in the checks (e.g. to let ``x-msix-mask-auto`` detect the
            guest before measuring).
    """

    name: str = "mask-every-irq"
    vectors: list[int] = field(default_factory=lambda: [0])
    cycles: int | None = 100
    duration_s: float | None = None
    burst: int = 4
    wait_timeout_s: float = 5.0
    warmup_cycles: int = 0

    def validate(self) -> None:
        """Raise :class:`LabError` for a parameter that makes no sense."""
        if self.name not in WORKLOADS:
            raise LabError(f"unknown workload {self.name!r}", f"choose one of {', '.join(WORKLOADS)}")
        if not self.vectors or len(set(self.vectors)) != len(self.vectors):
            raise LabError(f"vectors {self.vectors} must be distinct and non-empty")
        if self.cycles is None and self.duration_s is None:
            raise LabError("give a number of cycles or a duration")
        if self.cycles is not None and self.cycles < 1:
            raise LabError(f"cycles={self.cycles} must be at least 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise LabError(f"duration {self.duration_s} must be positive")
        if self.warmup_cycles < 0:
            raise LabError(f"warmup_cycles={self.warmup_cycles} must be at least 0")
        if self.name == "burst" and self.burst < 1:
            raise LabError(f"burst={self.burst} must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (run.json ``workload.params``)."""
        d: dict[str, Any] = {"vectors": list(self.vectors), "cycles": self.cycles}
        if self.duration_s is not None:
            d["duration_s"] = self.duration_s
        if self.name == "burst":
            d["burst"] = self.burst
        if self.warmup_cycles:
            d["warmup_cycles"] = self.warmup_cycles
        return d
