"""The probes of a probed lab cell: vfiobench's own tracer, attached to the L2 QEMU inside L1.

Runs inside L1. :class:`LabProbes` wraps :class:`vfiobench.probes.tracer.Tracer` (the same code a
real host uses) in its in-memory mode: a background thread drains the ring buffers while the qtest
workload drives L2 from the main thread; :meth:`LabProbes.finish` detaches, drains the rest and
saves every probe table to one ``.npz`` (no pyarrow needed here; the host writes the Parquet).

Probes: ``set_irqs_ioctl`` (SET_IRQS tracepoints), ``set_vector_signal`` (kprobe in L1's vfio-pci),
``pba_toggle`` (uprobe on L2's ``memory_region_set_enabled``, ``is_pba`` from the region name),
``transaction_commit`` and ``irq_path`` (L1's ``vfio-msix`` hard IRQs, ``eventfd_signal`` inside
them, KVM MSI injections, L2's ``vfio_msi_interrupt``/``msix_notify``/``msix_set_pending``). All
but the interrupt-context parts of ``irq_path`` are filtered to the L2 QEMU's pid.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any, Self

import numpy as np

LAB_PROBES: tuple[str, ...] = (
    "set_irqs_ioctl",
    "set_vector_signal",
    "pba_toggle",
    "transaction_commit",
    "irq_path",
)


def _npz_safe(arr: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Object fields (e.g. region names) as fixed-width unicode, so the npz loads without pickle."""
    names = arr.dtype.names
    if not names or all(arr.dtype[n] != np.dtype(object) for n in names):
        return arr
    fields = []
    for n in names:
        if arr.dtype[n] == np.dtype(object):
            width = max([len(str(x)) for x in arr[n]] + [1])
            fields.append((n, f"<U{width}"))
        else:
            fields.append((n, arr.dtype[n].str))
    out = np.empty(arr.shape, dtype=fields)
    for n in names:
        out[n] = arr[n].astype(str) if arr.dtype[n] == np.dtype(object) else arr[n]
    return out


class LabProbes:
    """Attach the lab probes to one L2 QEMU; a context manager.

    Args:
        cell: The cell description from ``job.json`` (``qemu`` is the L2 binary path in L1).
        pid: The L2 QEMU's pid.
        poll_interval_s: How often the drain thread empties the rings.
    """

    def __init__(self, cell: dict[str, Any], pid: int, poll_interval_s: float = 0.05) -> None:
        from vfiobench.probes.tracer import Tracer

        self.tracer = Tracer(pid=pid, qemu=cell["qemu"], probes=cell.get("probe_names") or LAB_PROBES)
        self.poll_interval_s = poll_interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.attach_s = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        t0 = time.monotonic()
        self.tracer.__enter__()
        self.attach_s = time.monotonic() - t0
        self._thread = threading.Thread(target=self._drain, name="lab-probe-drain", daemon=True)
        self._thread.start()
        return self

    def _drain(self) -> None:
        try:
            while not self._stop.wait(self.poll_interval_s):
                with self._lock:
                    self.tracer.poll()
        except BaseException as e:
            self.error = e

    def _join(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def finish(self, npz: Path) -> dict[str, dict[str, Any]]:
        """Detach, drain, write every table to ``npz``; returns per-probe stats for run.json."""
        self._join()
        with self._lock:
            self.tracer.stop()
        if self.error is not None:
            raise self.error
        tables = {name: _npz_safe(arr) for name, arr in self.tracer.frames().items()}
        regions = self.tracer.regions
        if regions is not None and "pba_toggle" in tables:
            tables["pba_regions"] = _npz_safe(regions.table())
        np.savez(npz, **tables)  # type: ignore[arg-type]
        return {
            name: {
                "target": self.tracer.targets[name],
                "events": int(self.tracer.counts[name]),
                "lost": int(self.tracer.lost[name]),
                "missed": self.tracer.misses[name],
                "mode": "stream",
            }
            for name in self.tracer.counts
        }

    def __exit__(self, *exc: object) -> None:
        self._join()
        with self._lock:
            self.tracer.stop()
