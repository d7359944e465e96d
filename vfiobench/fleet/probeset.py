"""The probes of one exporter target: attached, drained, summed into counters and histograms.

Each QEMU process gets up to two :class:`~vfiobench.probes.tracer.Tracer` objects, built by the
same code as ``vfiobench record``:

- **count mode** (``histogram=True``): ``set_vector_signal``, where the kernel has kprobes. The
  kernel sums each call into a log-linear histogram; nothing crosses a ring buffer, and user space
  reads the totals (and, when they moved, the histograms).
- **stream mode**, for the two probes whose labels need each call: ``pba_toggle``
  (``memory_region_set_enabled``: whether the call hit the MSI-X PBA is known only from the
  ``MemoryRegion`` pointer, resolved in user space by :class:`~vfiobench.probes.regions.RegionNames`)
  and ``irq_path`` with only its ``msix_notify`` part attached (which device QEMU notified is the
  call's ``PCIDevice`` pointer). Rows are summed as they are drained (``store_rows=False``); only
  counters and bucket counts are kept, so memory stays bounded however long the exporter runs.
  Both calls cost QEMU far more than a streamed probe hit (a PBA toggle rebuilds the guest's memory
  map; ``msix_notify`` runs only for interrupts QEMU delivers itself, never for KVM's irqfd path).

``set_irqs_ioctl`` is not attached per target: one host-wide stream serves every target
(:mod:`vfiobench.fleet.hostwide`) and hands each its rows (:meth:`TargetProbes.add_set_irqs`).

Which ``msix_notify`` calls are the passthrough device's: only VFIO toggles an MSI-X PBA region
(``hw/vfio/pci.c``; emulated devices never do), and QEMU's PBA ``MemoryRegion`` holds its device's
``PCIDevice`` pointer (its ``owner`` and ``opaque``). A device whose pointer appears in the first
128 bytes of a toggled PBA region is the VFIO device (``vfio="true"``); every other notification
(emulated MSI-X devices, and the VFIO device before its PBA first toggled) is ``vfio="false"``.
Notifications are attributed one drain after they were read, so the toggle that identifies the
device (which QEMU makes before the notification) is always seen first.

Each probe resolves on its own (:func:`~vfiobench.probes.resolve.resolve_targets`): a probe whose
target is missing (no kprobes, no symbol in this QEMU binary) is left out with its named error
(:attr:`TargetProbes.errors`) and the others still attach.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from vfiobench.errors import ProbeError, VfioBenchError
from vfiobench.fleet.targets import QemuTarget
from vfiobench.probes.catalog import get_probe
from vfiobench.probes.histogram import DurationCounts
from vfiobench.probes.resolve import Resolution, require_process, resolve_targets, resolve_uprobe
from vfiobench.probes.tracer import Tracer
from vfiobench.qemu.binary import ElfFile

log = logging.getLogger("vfiobench.fleet")

Mode = Literal["count", "stream"]

#: The exported probes, in order: name -> (catalog probe, mode).
PROBES: dict[str, tuple[str, Mode]] = {
    "set_irqs_ioctl": ("set_irqs_ioctl", "stream"),
    "set_vector_signal": ("set_vector_signal", "count"),
    "pba_toggle": ("pba_toggle", "stream"),
    "msix_notify": ("irq_path", "stream"),
}

#: Exported probes attached once for the host, not per target (:mod:`vfiobench.fleet.hostwide`).
HOST_PROBES = ("set_irqs_ioctl",)

#: ``vfiobench_operation_seconds`` operations -> the probe that times them.
OPERATIONS: dict[str, str] = {
    "set_irqs_ioctl": "set_irqs_ioctl",
    "set_vector_signal": "set_vector_signal",
    "pba_toggle": "pba_toggle",
    "set_enabled_other": "pba_toggle",
    "msix_notify": "msix_notify",
}

#: Bytes of a PBA ``MemoryRegion`` searched for its device's pointer: its ``owner``, ``dev`` and
#: ``opaque`` fields sit at bytes 56-88 in QEMU 7.2 to 11.1 (after the 40-byte ``Object`` header
#: and a few flags); the rest of the struct, and what follows it, is not searched.
PBA_SCAN_BYTES = 128
_NOTIFY = "msix_notify"


@dataclass(frozen=True)
class Counts:
    """What one target's probes have counted since they attached (all monotonic).

    Attributes:
        set_irqs: ``VFIO_DEVICE_SET_IRQS`` ioctls.
        set_vector_signal: kernel ``vfio_msi_set_vector_signal`` calls (0 when not attached).
        pba_toggles: ``memory_region_set_enabled`` calls on the MSI-X PBA region.
        other_set_enabled: ``memory_region_set_enabled`` calls on any other region.
        notify_vfio: ``msix_notify`` calls for the VFIO device (see the module docstring).
        notify_other: ``msix_notify`` calls for any other device.
        vfio_identified: the VFIO device's ``PCIDevice`` is known (its PBA toggled).
        hist: per operation (:data:`OPERATIONS`), dense counts per log-linear bucket.
        hist_sum_ns: per operation, the sum of the durations (ns); None for count-mode probes
            (the kernel keeps counts per bucket, not sums).
        lost: per exported probe of this target, events dropped in the kernel (ring full, nesting
            too deep); the host-wide probes' losses are the host's, not a target's.
    """

    set_irqs: int = 0
    set_vector_signal: int = 0
    pba_toggles: int = 0
    other_set_enabled: int = 0
    notify_vfio: int = 0
    notify_other: int = 0
    vfio_identified: bool = False
    hist: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    hist_sum_ns: dict[str, int | None] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)

    @property
    def interrupts(self) -> int:
        """The masking detector's denominator (delivered interrupts, as far as QEMU sees them).

        The VFIO device's notifications once that device is known, else every notification.
        """
        return self.notify_vfio if self.vfio_identified else self.notify_vfio + self.notify_other


@dataclass(frozen=True)
class ProbeStatus:
    """One exported probe of one target: where it attached, or why it did not.

    Attributes:
        probe: The exported probe name (a key of :data:`PROBES`).
        mode: ``count`` (in-kernel histogram) or ``stream``.
        target: Where it attached (as ``run.json`` records a probe's target); ``""`` when it failed.
        error: The error's class name (``MissingSymbolError``, ``PrivilegeError``...) or ``""``.
        message: The error's text.
    """

    probe: str
    mode: Mode
    target: str = ""
    error: str = ""
    message: str = ""


class _NotifyOnly(Tracer):
    """A stream tracer whose ``irq_path`` attaches only its ``msix_notify`` part."""

    def resolve(self) -> Resolution:
        res = super().resolve()
        for t in res.parts.get("irq_path", []):
            if t.part.event != _NOTIFY and t.skipped is None:
                t.skipped = "not used by the exporter"
        return res


def _read_words(pid: int, addr: int, size: int) -> frozenset[int]:
    """The 8-byte words at ``addr`` in process ``pid`` (empty when unreadable)."""
    try:
        with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
            mem.seek(addr)
            data = mem.read(size)
    except (OSError, ValueError, OverflowError):
        return frozenset()
    n = len(data) // 8
    return frozenset(np.frombuffer(data[: n * 8], dtype="<u8").tolist())


class _NotifyAttribution:
    """Splits ``msix_notify`` calls into the VFIO device's and the others' (module docstring)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.pba_words: dict[int, frozenset[int]] = {}
        self.vfio: set[int] = set()
        self.other: set[int] = set()
        self.counts = {True: 0, False: 0}
        self.pending: list[np.ndarray[Any, Any]] = []
        self.ready: list[np.ndarray[Any, Any]] = []

    def pba_regions(self, mrs: Iterable[int]) -> None:
        """Note PBA regions seen toggling; devices already seen are checked against new ones."""
        for mr in mrs:
            if mr in self.pba_words:
                continue
            words = _read_words(self.pid, mr, PBA_SCAN_BYTES)
            self.pba_words[mr] = words
            found = {d for d in self.other if d in words}
            self.vfio |= found
            self.other -= found

    def add(self, devices: np.ndarray[Any, Any]) -> None:
        """Notifications drained now (their ``PCIDevice`` pointers), attributed at the next settle."""
        self.pending.append(devices)

    def settle(self, *, final: bool = False) -> None:
        """Count the notifications drained before the last drain (``final``: all of them)."""
        batches, self.ready = self.ready, self.pending
        self.pending = []
        if final:
            batches, self.ready = batches + self.ready, []
        for devices in batches:
            uniq, n = np.unique(devices, return_counts=True)
            for dev, count in zip(uniq.tolist(), n.tolist(), strict=True):
                if dev not in self.vfio and dev not in self.other:
                    is_vfio = any(dev in words for words in self.pba_words.values())
                    (self.vfio if is_vfio else self.other).add(dev)
                self.counts[dev in self.vfio] += count


class TargetProbes:
    """Every probe of one QEMU process, from attach to detach, summed into :class:`Counts`.

    Not thread-safe: one thread calls :meth:`start`, :meth:`poll`, :meth:`add_set_irqs` and
    :meth:`stop`; other threads read :attr:`counts` (a frozen snapshot replaced at each poll) and
    :attr:`status`.

    Args:
        target: The QEMU process.
        probes: Exported probe names to try (keys of :data:`PROBES`); the host-wide ones among them
            get their status from :meth:`host_status` and their rows from :meth:`add_set_irqs`.
        sub_bucket_bits: Histogram precision (``2**bits`` buckets per power of two).
        buffer_pages: Ring-buffer pages per streamed probe.
    """

    def __init__(
        self,
        target: QemuTarget,
        probes: Iterable[str] = tuple(PROBES),
        *,
        sub_bucket_bits: int = 1,
        buffer_pages: int = 128,
    ) -> None:
        self.target = target
        self.probes = [p for p in PROBES if p in set(probes)]
        self.sub_bucket_bits = sub_bucket_bits
        self.buffer_pages = buffer_pages
        self.status: dict[str, ProbeStatus] = {}
        self.counts = Counts()
        self._count: Tracer | None = None
        self._stream: Tracer | None = None
        self._durations = {op: DurationCounts(sub_bucket_bits) for op in OPERATIONS}
        self._sums = dict.fromkeys(OPERATIONS, 0)
        self._set_enabled = {True: 0, False: 0}
        self._set_irqs = 0
        self._notify = _NotifyAttribution(target.pid)
        self._kernel_hist: dict[str, np.ndarray[Any, Any]] = {}
        self._kernel_totals: dict[str, int] = {}
        self._stopped = False

    @property
    def errors(self) -> dict[str, ProbeStatus]:
        """The probes that did not attach, with their errors."""
        return {p: s for p, s in self.status.items() if s.error}

    def _fail(self, probes: Iterable[str], e: BaseException) -> None:
        message = e.message if isinstance(e, VfioBenchError) else str(e)
        for p in probes:
            self.status[p] = ProbeStatus(p, PROBES[p][1], error=type(e).__name__, message=message)
            log.warning(f"pid {self.target.pid} ({self.target.vm}): {p} not attached: {message}")

    def _resolvable(self, probe: str) -> bool:
        """Resolve one probe alone; on failure record its error and return False."""
        spec = get_probe(PROBES[probe][0])
        try:
            if probe == _NOTIFY:  # one part of irq_path: root, tracefs, BCC, then the symbol
                resolve_targets([], self.target.pid, None)
                resolve_uprobe(ElfFile(require_process(self.target.pid)), _NOTIFY)
            else:
                resolve_targets([spec], self.target.pid, None)
        except ProbeError as e:
            self._fail([probe], e)
            return False
        return True

    def start(self) -> None:
        """Resolve each probe, then compile and attach the count and stream tracers.

        Never raises for a probe's failure: it lands in :attr:`status` and the log.
        """
        ok = [p for p in self.probes if p not in HOST_PROBES and self._resolvable(p)]
        pid = self.target.pid
        counted = [p for p in ok if PROBES[p][1] == "count"]
        streamed = [p for p in ok if PROBES[p][1] == "stream"]
        if counted:
            tracer = Tracer(
                pid,
                probes=[PROBES[p][0] for p in counted],
                histogram=True,
                sub_bucket_bits=self.sub_bucket_bits,
            )
            self._count = self._enter(tracer, counted)
        if streamed:
            tracer = _NotifyOnly(
                pid, probes=[PROBES[p][0] for p in streamed], buffer_pages=self.buffer_pages, store_rows=False
            )
            tracer.observers.append(self._observe)
            self._stream = self._enter(tracer, streamed)

    def _enter(self, tracer: Tracer, probes: list[str]) -> Tracer | None:
        try:
            tracer.__enter__()
        except (VfioBenchError, OSError) as e:
            self._fail(probes, e)
            return None
        for p in probes:
            target = tracer.targets[PROBES[p][0]]
            if p == _NOTIFY:
                target = next(t for t in target.split("; ") if t.startswith(_NOTIFY + "="))
            self.status[p] = ProbeStatus(p, PROBES[p][1], target=target)
        return tracer

    def host_status(self, status: ProbeStatus) -> None:
        """The status of a host-wide probe (attached for the host, or its error), if this target has it."""
        if status.probe in self.probes:
            self.status[status.probe] = status

    def add_set_irqs(self, rows: np.ndarray[Any, Any]) -> None:
        """This process's SET_IRQS ioctls from the host-wide stream (``set_irqs_ioctl`` rows)."""
        if self._stopped:
            return
        self._set_irqs += rows.size
        self._durations["set_irqs_ioctl"].add(rows["dur_ns"])
        self._sums["set_irqs_ioctl"] += int(rows["dur_ns"].sum())

    def _observe(self, probe: str, rows: np.ndarray[Any, Any]) -> None:
        if probe == "pba_toggle":
            pba = rows["is_pba"]
            for is_pba, op in ((True, "pba_toggle"), (False, "set_enabled_other")):
                dur = rows["dur_ns"][pba == is_pba]
                self._set_enabled[is_pba] += dur.size
                self._durations[op].add(dur)
                self._sums[op] += int(dur.sum())
            if pba.any():
                self._notify.pba_regions(np.unique(rows["mr"][pba]).tolist())
        elif probe == "irq_path":
            notify = rows[rows["event"] == _NOTIFY]
            self._notify.add(notify["arg0"])
            self._durations[_NOTIFY].add(notify["dur_ns"])
            self._sums[_NOTIFY] += int(notify["dur_ns"].sum())

    def poll(self) -> Counts:
        """Drain the streamed probes, read the kernel's counts, publish and return :attr:`counts`."""
        if self._stopped:
            return self.counts
        if self._stream is not None:
            self._stream.poll()
        self._notify.settle()
        if self._count is not None:
            self._count.poll()
            self._read_kernel(self._count)
        return self._publish()

    def _read_kernel(self, tracer: Tracer, *, final: bool = False) -> None:
        """Histograms of the count-mode probes, re-read only when their totals moved."""
        if final:
            hists = {name: _dense(table, self.sub_bucket_bits) for name, table in tracer.frames().items()}
        elif tracer.counts != self._kernel_totals:
            self._kernel_totals = dict(tracer.counts)
            hists = tracer.read_histograms()
        else:
            return
        self._kernel_hist = {name: np.asarray(h, dtype=np.int64) for name, h in hists.items()}

    def _publish(self) -> Counts:
        lost: dict[str, int] = {}
        for tracer in (self._count, self._stream):
            if tracer is not None:
                for name, n in tracer.read_lost().items():
                    lost["msix_notify" if name == "irq_path" else name] = n
        hist = {op: d.counts.copy() for op, d in self._durations.items() if op not in self._kernel_hist}
        hist.update(self._kernel_hist)
        kernel = {name: int(h.sum()) for name, h in self._kernel_hist.items()}
        self.counts = Counts(
            set_irqs=self._set_irqs,
            set_vector_signal=kernel.get("set_vector_signal", 0),
            pba_toggles=self._set_enabled[True],
            other_set_enabled=self._set_enabled[False],
            notify_vfio=self._notify.counts[True],
            notify_other=self._notify.counts[False],
            vfio_identified=bool(self._notify.vfio),
            hist=hist,
            hist_sum_ns={op: (None if op in kernel else self._sums[op]) for op in OPERATIONS},
            lost=lost,
        )
        return self.counts

    def stop(self) -> Counts:
        """Detach everything, drain what is left and publish the final counts (idempotent)."""
        if self._stopped:
            return self.counts
        self._stopped = True
        if self._stream is not None:
            self._stream.stop()  # the last rows reach _observe
        self._notify.settle(final=True)
        if self._count is not None:
            self._count.stop()
            self._read_kernel(self._count, final=True)
        return self._publish()  # a stopped tracer keeps its last lost counts


def _dense(table: np.ndarray[Any, Any], sub_bucket_bits: int) -> np.ndarray[Any, Any]:
    """Dense per-bucket counts from a histogram-mode table (``bucket``, ``count`` rows)."""
    from vfiobench.buckets import LogLinearBuckets

    out = np.zeros(LogLinearBuckets(sub_bucket_bits).n_buckets, dtype=np.int64)
    out[table["bucket"]] = table["count"]
    return out
