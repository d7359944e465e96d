"""The probes of a probed lab cell: vfiobench's own tracer, attached to the L2 QEMU inside L1.

Runs inside L1. :class:`LabProbes` wraps :class:`vfiobench.probes.tracer.Tracer` (the same code a
real host uses) in its in-memory mode: a background thread drains the ring buffers while the qtest
workload drives L2 from the main thread; :meth:`LabProbes.finish` detaches, drains the rest and
saves every probe table to one ``.npz`` (no pyarrow needed here; the host writes the Parquet).

Probes: ``set_irqs_ioctl`` (SET_IRQS tracepoints), ``set_vector_signal`` (kprobe in L1's vfio-pci),
``pba_toggle`` (uprobe on L2's ``memory_region_set_enabled``, ``is_pba`` from the region name),
``transaction_commit``, ``irq_path`` (L1's ``vfio-msix`` hard IRQs, ``eventfd_signal`` inside
them, KVM MSI injections, L2's ``vfio_msi_interrupt``/``msix_notify``/``msix_set_pending``) and
``kvm_ioctls`` (L2's KVM_SET_GSI_ROUTING, KVM_IRQFD and KVM_SIGNAL_MSI ioctls, on the same syscall
tracepoints as ``set_irqs_ioctl``). All but the interrupt-context parts of ``irq_path`` are filtered
to the L2 QEMU's pid.

Two ways to attach, chosen per cell (``probe_mode`` in ``job.json``):

- ``session`` (the default): one :class:`~vfiobench.probes.session.TracerSession` for the whole L1
  boot (:class:`LabSession`), compiled and attached before the first probed cell with uprobes in
  every L2 binary the job's probed cells use; per cell (:class:`SessionProbes`) the L2 pid goes
  into the session's pid map for the cell and out at its end. BCC compiling under TCG took 7-15 s
  per cell; this pays it once per boot.
- ``per-cell``: :class:`LabProbes`, a one-shot :class:`~vfiobench.probes.tracer.Tracer` per cell
  (the old way, kept for comparison in ``make bench``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

if TYPE_CHECKING:
    from vfiobench.probes.session import TracerSession

LAB_PROBES: tuple[str, ...] = (
    "set_irqs_ioctl",
    "set_vector_signal",
    "pba_toggle",
    "transaction_commit",
    "irq_path",
    "kvm_ioctls",
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


class _Drainer:
    """A background thread that polls the probes every ``interval_s`` under ``lock`` until joined.

    An exception in the thread is kept in :attr:`error` (raised by the owner after :meth:`join`).
    """

    def __init__(self, poll: Callable[[], object], lock: threading.Lock, interval_s: float) -> None:
        self.error: BaseException | None = None
        self._poll, self._lock, self._interval_s = poll, lock, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lab-probe-drain", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval_s):
                with self._lock:
                    self._poll()
        except BaseException as e:
            self.error = e

    def join(self) -> None:
        """Stop polling and wait for the thread (idempotent)."""
        self._stop.set()
        self._thread.join()


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
        self._drainer: _Drainer | None = None
        self.error: BaseException | None = None
        self.attach_s = 0.0
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        t0 = time.monotonic()
        self.tracer.__enter__()
        self.attach_s = time.monotonic() - t0
        self._drainer = _Drainer(self.tracer.poll, self._lock, self.poll_interval_s)
        return self

    def _join(self) -> None:
        if self._drainer is not None:
            self._drainer.join()
            self.error = self.error or self._drainer.error

    def finish(self, npz: Path) -> dict[str, dict[str, Any]]:
        """Detach, drain, write every table to ``npz``; returns per-probe stats for run.json."""
        self._join()
        with self._lock:
            self.tracer.stop()
        if self.error is not None:
            raise self.error
        regions = self.tracer.regions
        _save(npz, self.tracer.frames(), regions.table() if regions is not None else None)
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


def _save(npz: Path, tables: dict[str, np.ndarray[Any, Any]], regions: np.ndarray[Any, Any] | None) -> None:
    out = {name: _npz_safe(arr) for name, arr in tables.items()}
    if regions is not None and "pba_toggle" in out:
        out["pba_regions"] = _npz_safe(regions)
    np.savez(npz, **out)  # type: ignore[arg-type]


class LabSession:
    """The probes of one L1 boot: a tracer session compiled once, shared by every probed cell.

    Started lazily by the first :meth:`cell`; a failed start is kept and raised again for every
    later probed cell (each such cell is recorded as failed, the job goes on).

    Args:
        binaries: Every L2 binary the job's probed cells run.
        probes: Probe names (default :data:`LAB_PROBES`).
        poll_interval_s: How often a cell's drain thread empties the rings.
    """

    def __init__(
        self, binaries: Sequence[str], probes: Sequence[str] = LAB_PROBES, poll_interval_s: float = 0.05
    ) -> None:
        self.binaries = list(dict.fromkeys(binaries))
        self.probes = list(probes)
        self.poll_interval_s = poll_interval_s
        self.session: TracerSession | None = None
        self.error: BaseException | None = None
        self.start_s = 0.0
        self.lock = threading.Lock()

    def start(self) -> TracerSession:
        """Compile and attach now (else the first :meth:`cell` does); raises what failed."""
        return self._start()

    def _start(self) -> TracerSession:
        if self.error is not None:
            raise self.error
        if self.session is None:
            from vfiobench.probes.session import TracerSession

            t0 = time.monotonic()
            session = TracerSession(self.binaries, probes=self.probes)
            try:
                session.__enter__()
            except BaseException as e:
                self.error = e
                raise
            self.session = session
            self.start_s = time.monotonic() - t0
        return self.session

    def facts(self) -> dict[str, Any]:
        """What the job result records about the session."""
        s = self.session
        return {
            "binaries": self.binaries,
            "probes": self.probes,
            "start_s": round(self.start_s, 3),
            "resolve_s": [round(x, 3) for x in s.resolve_s] if s else None,
            "compile_s": round(s.compile_s, 3) if s else None,
            "attach_s": round(s.attach_s, 3) if s else None,
            "error": None if self.error is None else f"{type(self.error).__name__}: {self.error}",
        }

    def cell(self, cell: dict[str, Any], pid: int) -> SessionProbes:
        """The probes of one cell (starts the session the first time)."""
        return SessionProbes(self, self._start(), pid, cell["qemu"])

    def close(self) -> None:
        """Detach everything (end of the job)."""
        if self.session is not None:
            with self.lock:
                self.session.stop()
            self.session = None


class SessionProbes:
    """One cell's share of a :class:`LabSession`: the L2 pid tracked for the ``with`` block.

    Same interface as :class:`LabProbes` (``attach_s``, :meth:`finish`).
    """

    def __init__(self, lab: LabSession, session: TracerSession, pid: int, binary: str) -> None:
        self.lab = lab
        self.binary = binary
        self.session = session
        self.pid = pid
        self.attach_s = 0.0
        self.error: BaseException | None = None
        self._drainer: _Drainer | None = None
        self._tracked = False

    def __enter__(self) -> Self:
        t0 = time.monotonic()
        with self.lab.lock:
            self.session.track(self.pid)
        self._tracked = True
        self.attach_s = time.monotonic() - t0
        self._drainer = _Drainer(self.session.poll, self.lab.lock, self.lab.poll_interval_s)
        return self

    def _join(self) -> None:
        if self._drainer is not None:
            self._drainer.join()
            self.error = self.error or self._drainer.error

    def finish(self, npz: Path) -> dict[str, dict[str, Any]]:
        """Untrack the pid, write the cell's tables to ``npz``; returns per-probe stats for run.json."""
        self._join()
        with self.lab.lock:
            frames = self.session.untrack(self.pid)
        self._tracked = False
        if self.error is not None:
            raise self.error
        _save(npz, frames.tables, frames.regions)
        targets = self.session.targets_for(self.binary)
        return {
            name: {
                "target": targets[name],
                "events": int(frames.counts[name]),
                "lost": int(frames.lost[name]),
                "missed": frames.missed[name],
                "mode": "stream",
            }
            for name in frames.counts
        }

    def __exit__(self, *exc: object) -> None:
        self._join()
        if self._tracked:
            with self.lab.lock:
                self.session.untrack(self.pid)
            self._tracked = False
