"""Probes attached once for the whole host and shared by every target: the SET_IRQS ioctls.

``set_irqs_ioctl`` is a pair of tracepoint programs on ``syscalls:sys_{enter,exit}_ioctl``: they
run on every ioctl of every process on the machine (KVM's ``KVM_RUN`` included) and drop all but
``VFIO_DEVICE_SET_IRQS`` first thing. Attached once per QEMU process, every ioctl of the host would
run them once per VM (``python -m benchmarks fleet`` measures what that cost). Attached once here,
without a pid filter, every ioctl runs them once whatever the number of VMs; the SET_IRQS rows
carry their process id, and :class:`HostIoctls` hands each process's rows to its target
(:meth:`~vfiobench.fleet.probeset.TargetProbes.add_set_irqs`). SET_IRQS of processes that are not
targets are dropped. The calls are rare (at most a few per interrupt, each hundreds of
microseconds), so streaming them costs QEMU nothing measurable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from vfiobench.errors import VfioBenchError
from vfiobench.fleet.probeset import ProbeStatus
from vfiobench.probes.tracer import Tracer

log = logging.getLogger("vfiobench.fleet")

PROBE = "set_irqs_ioctl"

Sink = Callable[[np.ndarray[Any, Any]], None]


class HostIoctls:
    """The host-wide ``set_irqs_ioctl`` stream, dispatched to targets by pid.

    Args:
        buffer_pages: Ring-buffer pages (the whole host's SET_IRQS share it).
    """

    def __init__(self, buffer_pages: int = 128) -> None:
        self.tracer = Tracer(None, probes=[PROBE], buffer_pages=buffer_pages, store_rows=False)
        self.tracer.observers.append(self._dispatch)
        self.sinks: dict[int, Sink] = {}
        self.status = ProbeStatus(PROBE, "stream", error="NotStarted", message="not started")
        self._started = False

    def start(self) -> ProbeStatus:
        """Attach (once); on failure the error is the status every target reports for this probe."""
        try:
            self.tracer.__enter__()
        except (VfioBenchError, OSError) as e:
            message = e.message if isinstance(e, VfioBenchError) else str(e)
            self.status = ProbeStatus(PROBE, "stream", error=type(e).__name__, message=message)
            log.warning(f"{PROBE} not attached (host-wide): {message}")
            return self.status
        self._started = True
        self.status = ProbeStatus(PROBE, "stream", target=self.tracer.targets[PROBE] + " (host-wide)")
        log.info(f"attached {PROBE} once for the host")
        return self.status

    @property
    def attached(self) -> bool:
        """True while the probe is attached."""
        return self._started

    def register(self, pid: int, sink: Sink) -> None:
        """Hand ``pid``'s SET_IRQS rows to ``sink`` from now on (replacing an earlier one)."""
        self.sinks[pid] = sink

    def unregister(self, pid: int) -> None:
        """Drop ``pid``'s rows from now on."""
        self.sinks.pop(pid, None)

    def _dispatch(self, probe: str, rows: np.ndarray[Any, Any]) -> None:
        pids = rows["pid"]
        for pid in np.unique(pids).tolist():
            sink = self.sinks.get(pid)
            if sink is not None:
                sink(rows[pids == pid])

    def poll(self) -> None:
        """Drain the ring: every row reaches its target's sink."""
        if self._started:
            self.tracer.poll()

    def lost(self) -> int:
        """SET_IRQS events the kernel dropped, host-wide (ring full)."""
        return self.tracer.read_lost()[PROBE]

    def stop(self) -> None:
        """Detach and drain what is left (idempotent)."""
        if self._started:
            self.tracer.stop()
            self._started = False
