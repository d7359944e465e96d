"""The exporter's loop: attach to QEMU processes as they come, poll them, keep exited ones a while.

:class:`Exporter` owns one :class:`~vfiobench.fleet.probeset.TargetProbes` and one
:class:`~vfiobench.fleet.masking.MaskingDetector` per QEMU process. Each :meth:`Exporter.tick`
(every ``interval`` seconds):

1. with ``all_qemu``, every ``discover_every`` seconds, lists the running QEMU processes
   (:func:`~vfiobench.fleet.targets.discover`) and attaches to the new ones, one at a time, polling
   the others between two attaches (a compile takes about half a second);
2. notes which targets' processes exited, then drains the host-wide ``set_irqs_ioctl`` stream
   (:mod:`~vfiobench.fleet.hostwide`, attached once at the first tick), so an exited process's
   last ioctls reach it before its probes stop;
3. polls every running target (drain the streamed probes, read the kernel's counts) and updates
   its masking verdict; stops the probes of a target whose process exited, keeps its final values
   (``up`` 0) for ``keep_exited`` seconds, then drops its series;
4. publishes one snapshot (:class:`~vfiobench.fleet.metrics.TargetView` per target) that scrapes
   read from the HTTP server's thread.

A target whose probes fail (no root, a binary without the symbol) keeps its error series and log
lines; the others are not affected. A process that runs under a reused pid is a new target.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from vfiobench.errors import VfioBenchError
from vfiobench.fleet.hostwide import HostIoctls
from vfiobench.fleet.masking import DEFAULT_MIN_EVENTS, DEFAULT_THRESHOLD, DEFAULT_WINDOW, MaskingDetector
from vfiobench.fleet.metrics import TargetView
from vfiobench.fleet.probeset import HOST_PROBES, PROBES, ProbeStatus, TargetProbes
from vfiobench.fleet.targets import DEFAULT_EXE_PATTERN, QemuTarget, discover, read_target, start_time

log = logging.getLogger("vfiobench.fleet")

#: Seconds an exited process's series stay (the issue asks for at least 60).
DEFAULT_KEEP_EXITED = 120.0


@dataclass
class _Entry:
    target: QemuTarget
    probes: TargetProbes
    detector: MaskingDetector
    exited_at: float | None = None
    failed: dict[str, ProbeStatus] = field(default_factory=dict)

    def view(self) -> TargetView:
        status = {**self.probes.status, **self.failed}
        up = self.exited_at is None
        return TargetView(self.target, self.probes.counts, status, self.detector.value, up)


@dataclass(frozen=True)
class ExporterConfig:
    """How the exporter finds, probes and judges its targets (the ``vfiobench exporter`` options).

    Attributes:
        pids: QEMU processes to probe (``--pid``); ignored with ``all_qemu``.
        all_qemu: Probe every running QEMU process and follow new ones (``--all-qemu``).
        exe_pattern: Executable basenames ``all_qemu`` treats as QEMU (a full-match regex).
        interval: Seconds between polls.
        discover_every: Seconds between two scans of ``/proc`` (``all_qemu``).
        keep_exited: Seconds an exited process's final values stay exported.
        window: The masking verdict's window, in seconds.
        threshold: PBA toggles or SET_IRQS per interrupt that make a masking guest.
        min_events: PBA toggles + SET_IRQS in the window needed before the verdict can be 1.
        probes: Exported probes to attach (keys of :data:`~vfiobench.fleet.probeset.PROBES`).
        sub_bucket_bits: Histogram precision.
        buffer_pages: Ring-buffer pages per streamed probe and target.
    """

    pids: tuple[int, ...] = ()
    all_qemu: bool = False
    exe_pattern: str = DEFAULT_EXE_PATTERN
    interval: float = 1.0
    discover_every: float = 2.0
    keep_exited: float = DEFAULT_KEEP_EXITED
    window: float = DEFAULT_WINDOW
    threshold: float = DEFAULT_THRESHOLD
    min_events: int = DEFAULT_MIN_EVENTS
    probes: tuple[str, ...] = tuple(PROBES)
    sub_bucket_bits: int = 1
    buffer_pages: int = 128


def _failed(probes: Sequence[str], e: Exception) -> dict[str, ProbeStatus]:
    """Every probe of a target marked with an unexpected error ``e``."""
    return {p: ProbeStatus(p, PROBES[p][1], error=type(e).__name__, message=str(e)) for p in probes}


class Exporter:
    """Targets, their probes and verdicts; see the module docstring.

    Args:
        config: What to probe and how.

    Raises:
        VfioBenchError: ``--pid`` named no running process.
    """

    def __init__(self, config: ExporterConfig) -> None:
        self.config = config
        self.entries: dict[int, _Entry] = {}
        self._views: list[TargetView] = []
        self._last_discovery = float("-inf")
        self.host = HostIoctls(config.buffer_pages) if set(HOST_PROBES) & set(config.probes) else None
        if not config.all_qemu:
            missing = [p for p in config.pids if read_target(p) is None]
            for pid in missing:
                log.warning(f"pid {pid}: no such process; not probed")
            if config.pids and len(missing) == len(config.pids):
                raise VfioBenchError(
                    f"no process with pid {', '.join(map(str, config.pids))}",
                    "pass the pid of a running QEMU (pgrep -f qemu-system), or use --all-qemu",
                )

    def views(self) -> list[TargetView]:
        """The latest snapshot of every target (what a scrape shows)."""
        return self._views

    def host_lost(self) -> dict[str, int]:
        """Events the host-wide probes dropped, per probe."""
        if self.host is None or self.host.status.error:
            return {}
        return {HOST_PROBES[0]: self.host.lost()}

    # ---- targets --------------------------------------------------------------------------------

    def _wanted(self) -> list[int]:
        if not self.config.all_qemu:
            return list(self.config.pids)
        return [p for p in discover(self.config.exe_pattern) if p != os.getpid()]

    def _is_new(self, pid: int) -> bool:
        """Not a target yet, or the pid now belongs to another process than its target's."""
        entry = self.entries.get(pid)
        return entry is None or start_time(pid) not in (None, entry.target.started)

    def _attach(self, pid: int) -> None:
        target = read_target(pid)
        if target is None:
            return
        old = self.entries.pop(pid, None)
        if old is not None:
            old.probes.stop()  # a reused pid: the old process's series go now
        probes = TargetProbes(
            target,
            self.config.probes,
            sub_bucket_bits=self.config.sub_bucket_bits,
            buffer_pages=self.config.buffer_pages,
        )
        c = self.config
        entry = _Entry(target, probes, MaskingDetector(c.window, c.threshold, c.min_events))
        self.entries[pid] = entry
        if self.host is not None:
            probes.host_status(self.host.status)
            self.host.register(pid, probes.add_set_irqs)
        t0 = time.monotonic()
        try:
            probes.start()
        except Exception as e:  # a bug in one target must not take the others down: report it as its error
            log.exception(f"pid {pid} ({target.vm}): probes failed to start")
            entry.failed = _failed(probes.probes, e)
            return
        attached = [p for p, s in probes.status.items() if not s.error]
        if attached:
            log.info(
                f"pid {pid} ({target.vm}{', ' + target.device if target.device else ''}): attached "
                f"{', '.join(attached)} in {time.monotonic() - t0:.1f} s"
            )

    def _poll(self, entry: _Entry, now: float, exited: bool) -> None:
        pid, vm = entry.target.pid, entry.target.vm
        if entry.exited_at is not None:
            return
        try:
            if exited:
                if self.host is not None:
                    self.host.unregister(pid)
                entry.probes.stop()
                entry.exited_at = now
                entry.detector.update(now, entry.probes.counts)
                log.info(f"pid {pid} ({vm}): exited; its final values stay for {self.config.keep_exited:g} s")
                return
            entry.detector.update(now, entry.probes.poll())
        except Exception as e:  # see _attach
            log.exception(f"pid {pid} ({vm}): polling failed; its probes are stopped")
            entry.failed = _failed(entry.probes.probes, e)
            entry.probes.stop()

    def _poll_all(self, now: float) -> None:
        exited = {pid for pid, e in self.entries.items() if e.exited_at is None and not e.target.alive()}
        if self.host is not None:
            self.host.poll()  # after the exits were noted: their last ioctls are in the ring now
        for pid, entry in list(self.entries.items()):
            self._poll(entry, now, pid in exited)
        self._views = [e.view() for e in self.entries.values()]

    def tick(self, now: float | None = None) -> None:
        """Discover (when due), attach new targets, poll all, drop expired ones, publish."""
        now = time.monotonic() if now is None else now
        if self.host is not None and self.host.status.error == "NotStarted":
            self.host.start()
        if now - self._last_discovery >= self.config.discover_every:
            self._last_discovery = now
            for pid in self._wanted():
                if self._is_new(pid):
                    self._attach(pid)
                    self._poll_all(time.monotonic())
        for pid, entry in list(self.entries.items()):
            if entry.exited_at is not None and now - entry.exited_at >= self.config.keep_exited:
                del self.entries[pid]
                log.info(f"pid {pid} ({entry.target.vm}): series dropped")
        self._poll_all(now)

    def run(self, stop: threading.Event) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set, then detach everything."""
        try:
            while True:
                self.tick()
                if stop.wait(self.config.interval):
                    return
        finally:
            self.close()

    def close(self) -> None:
        """Detach every probe, the host-wide ones last (the last values stay in :meth:`views`)."""
        if self.host is not None:
            self.host.poll()
        for entry in self.entries.values():
            entry.probes.stop()
        if self.host is not None:
            self.host.stop()
        self._views = [e.view() for e in self.entries.values()]


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT``; ``:PORT`` for every interface) as ``(host, port)``.

    Raises:
        VfioBenchError: not of that form, or the port is not 0-65535.

    Example:
        >>> parse_listen("127.0.0.1:9477"), parse_listen(":9477"), parse_listen("[::1]:0")
        (('127.0.0.1', 9477), ('0.0.0.0', 9477), ('::1', 0))
    """
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise VfioBenchError(
            f"--listen {text!r} is not HOST:PORT", "e.g. --listen 127.0.0.1:9477 or --listen :9477"
        )
    host = host.removeprefix("[").removesuffix("]") or "0.0.0.0"
    return host, int(port)
