"""A tracer session: compile and attach the probes once, then trace one process after another.

The one-shot :class:`~vfiobench.probes.tracer.Tracer` compiles its BPF program for one pid
(``-DTARGET_PID``) and attaches its uprobes to that process. Under the lab's TCG-emulated L1 the
compile alone takes seconds, paid again for every L2 QEMU. A :class:`TracerSession` compiles the
program once with ``-DVB_PID_MAP`` (the filter ``vb_pid_ok`` looks the tgid up in the ``vb_pids``
map instead), attaches tracepoints and kprobes once and the uprobes once per **binary**
system-wide (pid -1; the map keeps other processes out), then per traced process::

    with TracerSession(["/usr/bin/qemu-system-x86_64"], probes=["pba_toggle"]) as session:
        for pid in pids:                       # one at a time
            session.track(pid)                 # drain and discard what came before, add pid
            run_workload(pid)                  # call session.poll() meanwhile (or from a thread)
            frames = session.untrack(pid)      # drain, remove pid, drain the rest: this pid's rows

:meth:`TracerSession.untrack` returns a :class:`CellFrames`: this process's rows per probe, its
region names, and its lost and missed counts (differences of the kernel's running counters
between :meth:`~TracerSession.track` and :meth:`~TracerSession.untrack`). It also empties the
programs' per-thread maps, so threads of past processes never fill them. Events that fire in
interrupt context (``irq_path``'s host IRQ window) are not filtered by pid and land in the cell
whose window they fall in.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfiobench.errors import ProbeError
from vfiobench.probes.catalog import DEFAULT_PROBES
from vfiobench.probes.regions import RegionNames
from vfiobench.probes.resolve import resolve_targets
from vfiobench.probes.tracer import Tracer

_HASH_MAP = re.compile(r"^BPF_HASH\((\w+),", re.MULTILINE)


@dataclass
class CellFrames:
    """What one traced process left between :meth:`TracerSession.track` and ``untrack``.

    Attributes:
        pid: The process.
        tables: Rows per probe (structured arrays, the probe's table dtype; empty when none).
        counts: Rows per probe.
        lost: Events dropped per probe meanwhile (ring full or nesting too deep).
        missed: BPF program runs the kernel skipped meanwhile, per probe (None: not measured).
        regions: The ``pba_regions`` table (``MemoryRegion`` pointers seen and their names), or
            None when ``pba_toggle`` is not traced.
        discarded: Rows drained and discarded when tracking began (events before it).
    """

    pid: int
    tables: dict[str, np.ndarray[Any, Any]]
    counts: dict[str, int]
    lost: dict[str, int]
    missed: dict[str, int | None]
    regions: np.ndarray[Any, Any] | None = None
    discarded: int = 0


class TracerSession(Tracer):
    """Probes compiled and attached once, tracing the processes put in their pid map one at a time.

    Not thread-safe, as :class:`Tracer`: :meth:`poll`, :meth:`track` and :meth:`untrack` must not
    run at the same time (a drain thread shares a lock with the caller).

    Args:
        binaries: Every binary the traced processes will run (uprobes go into each, system-wide).
        probes: Probe names (stream mode only).
        buffer_pages: Ring-buffer size per probe, in pages.
        irq_name_prefix: ``irq_path`` records host IRQ handlers whose name starts with this.

    Raises:
        ProbeError: no binaries, no probes or an unknown one.
    """

    def __init__(
        self,
        binaries: Sequence[str | os.PathLike[str]],
        probes: Sequence[str] = DEFAULT_PROBES,
        *,
        buffer_pages: int = 2048,
        **kwargs: Any,
    ) -> None:
        self.binaries = [str(b) for b in dict.fromkeys(str(b) for b in binaries)]
        if not self.binaries:
            raise ProbeError("a tracer session needs at least one binary", "list the QEMU binaries")
        super().__init__(
            None, self.binaries[0], probes, None, buffer_pages=buffer_pages, pid_map=True, **kwargs
        )
        self.tracked: int | None = None
        #: Each probe's target per binary (its uprobes' places differ between binaries).
        self.binary_targets: dict[str, dict[str, str]] = {}
        self._discarded = 0
        #: Seconds spent resolving each binary's targets, compiling, and attaching (:meth:`start`).
        self.resolve_s: list[float] = []
        self.compile_s = 0.0
        self.attach_s = 0.0
        self._lost0: dict[str, int] = {}
        self._missed0: dict[str, int | None] = {}

    def start(self) -> None:
        """Resolve the targets in every binary, compile once, attach once (per binary for uprobes)."""
        import time

        t0 = time.monotonic()
        resolutions = []
        for b in self.binaries:
            t = time.monotonic()
            resolutions.append(resolve_targets(self.specs, None, b))
            self.resolve_s.append(time.monotonic() - t)
        self.resolution = resolutions[0]
        self._compile()
        t1 = time.monotonic()
        for i, res in enumerate(resolutions):
            self._attach(res, -1, kernel=i == 0)
            self.binary_targets[self.binaries[i]] = dict(self.targets)
        self.targets = dict(self.binary_targets[self.binaries[0]])
        self._open_readers()
        self.started_ns = time.monotonic_ns()
        self.compile_s = t1 - t0 - sum(self.resolve_s)
        self.attach_s = time.monotonic() - t1

    def targets_for(self, binary: str | os.PathLike[str]) -> dict[str, str]:
        """Each probe's target in ``binary`` (one of :attr:`binaries`), as run.json records it."""
        return self.binary_targets.get(str(binary), self.targets)

    def _pid_table(self) -> Any:
        return self._bpf[b"vb_pids"]

    def _drain(self) -> int:
        n = 0
        while True:
            got = self.poll()
            n += got
            if not got:
                return n

    def _reset_rows(self) -> None:
        for chunks in self._memory.values():
            chunks.clear()
        for name in self.counts:
            self.counts[name] = 0

    def track(self, pid: int) -> int:
        """Start tracing ``pid``: drain and discard what came before, then add it to the pid map.

        Returns:
            The number of rows discarded (events before this process was tracked).

        Raises:
            ProbeError: the session is not started, or another process is still tracked.
        """
        if self._bpf is None:
            raise ProbeError("the tracer session is not started", "use it as a context manager")
        if self.tracked is not None:
            raise ProbeError(f"pid {self.tracked} is still tracked", "untrack it first (one at a time)")
        self.regions = None
        discarded = self._drain()
        self._reset_rows()
        self._lost0 = dict(self.read_lost())
        self._missed0 = dict(self.read_misses())
        self.regions = RegionNames(pid)
        t = self._pid_table()
        t[t.Key(pid)] = t.Leaf(1)
        self.tracked = pid
        self._discarded = discarded
        return discarded

    def untrack(self, pid: int) -> CellFrames:
        """Stop tracing ``pid``: drain, remove it from the map, drain the rest; its rows and counts.

        Raises:
            ProbeError: ``pid`` is not the tracked process.
        """
        if self.tracked != pid:
            raise ProbeError(f"pid {pid} is not tracked (tracked: {self.tracked})")
        self._drain()
        t = self._pid_table()
        del t[t.Key(pid)]
        self.tracked = None
        self._drain()
        lost = self.read_lost()
        missed = self.read_misses()
        frames = self.frames()
        regions = None
        if self.regions is not None and "pba_toggle" in self.counts:
            regions = self.regions.table()
        out = CellFrames(
            pid=pid,
            tables=frames,
            counts=dict(self.counts),
            lost={k: v - self._lost0.get(k, 0) for k, v in lost.items()},
            missed={
                k: (None if v is None or self._missed0.get(k) is None else v - (self._missed0[k] or 0))
                for k, v in missed.items()
            },
            regions=regions,
            discarded=self._discarded,
        )
        self._clear_thread_maps()
        self._reset_rows()
        self.regions = None
        return out

    def _clear_thread_maps(self) -> None:
        """Empty the per-thread maps (keyed by tid): the untracked process's threads are done."""
        for name in _HASH_MAP.findall(self.program.text):
            if name != "vb_pids":
                self._bpf[name.encode()].clear()
