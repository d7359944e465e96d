"""QEMU's own trace log (``-trace EVENT... -D FILE``, log backend): an independent count of events.

Each line of the log backend is ``PID@SECONDS.MICROS:event_name args`` (QEMU 7.2 with ``-msg
timestamp=on``), ``YYYY-MM-DDTHH:MM:SS.microsZ event_name args`` (QEMU 10 and 11: the message
timestamp in UTC, no pid), or ``event_name args`` when QEMU prints no timestamps. QEMU flushes
after every line, so the file's size at a moment is a clean cut: the lab records the size at each
phase boundary and counts the events of a phase by byte range (:func:`count_events`, :func:`counts_by_phase`).

The events the lab enables (:data:`LAB_TRACE_EVENTS`) and what one masked cycle produces on
Debian's QEMU 7.2: ``vfio_msix_vector_release`` (mask), ``vfio_msi_interrupt`` (the interrupt
arrives while masked), ``vfio_msix_pba_enable``, ``vfio_msix_vector_do_use`` (unmask),
``vfio_msix_pba_disable``; one ``vfio_msi_interrupt`` per unmasked interrupt under TCG, none under
KVM (the irqfd bypasses QEMU). ``kvm_irqchip_commit_routes`` marks each ``KVM_SET_GSI_ROUTING``
ioctl (under KVM: the routes committed at start-up, and one per unmask of a vector with a KVM
route); QEMU only warns about an event its build lacks.

Only the standard library is needed (it runs inside the lab VM); :func:`df_trace_events` imports
pandas when called.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

#: ``-trace`` patterns the lab enables.
LAB_TRACE_EVENTS: tuple[str, ...] = ("vfio_msix*", "vfio_msi_interrupt", "kvm_irqchip_commit_routes")

#: The vector number in a ``vfio_msi_interrupt`` line's arguments (``(BDF) vector 3 0x.../0x...``).
TRACE_IRQ_VECTOR = re.compile(r"\bvector (\d+)\b")

_LINE = re.compile(
    r"^(?:(?P<pid>\d+)@(?P<sec>\d+)\.(?P<usec>\d{6}):"
    r"|(?P<iso>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)\.(?P<iso_usec>\d{6})Z )?"
    r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?: (?P<args>.*))?$"
)


@dataclass(frozen=True)
class TraceEvent:
    """One trace-log line.

    Attributes:
        offset: Byte offset of the line in the file (phases are cut by offset).
        pid: QEMU's pid (-1 without timestamps).
        wall_ts_ns: CLOCK_REALTIME of the event in ns (-1 without timestamps).
        name: The trace event.
        args: The formatted arguments, as printed.
    """

    offset: int
    pid: int
    wall_ts_ns: int
    name: str
    args: str


def trace_args(log_path: str | os.PathLike[str], events: Sequence[str] = LAB_TRACE_EVENTS) -> list[str]:
    """QEMU options enabling ``events`` with the log backend written to ``log_path``.

    ``-msg timestamp=on`` makes the log backend prefix each line with ``PID@SECONDS.MICROS:``.
    """
    out: list[str] = []
    for ev in events:
        out += ["-trace", ev]
    return [*out, "-D", os.fspath(log_path), "-msg", "timestamp=on"]


def parse_line(line: str, offset: int = 0) -> TraceEvent | None:
    """Parse one line; None for anything that is not a trace event (e.g. other qemu_log text)."""
    m = _LINE.match(line.rstrip("\n"))
    if m is None:
        return None
    if m["iso"] is not None:
        when = dt.datetime.fromisoformat(m["iso"]).replace(tzinfo=dt.UTC)
        pid, ts = -1, int(when.timestamp()) * 1_000_000_000 + int(m["iso_usec"]) * 1000
    elif m["pid"] is None:
        pid, ts = -1, -1
    else:
        pid, ts = int(m["pid"]), int(m["sec"]) * 1_000_000_000 + int(m["usec"]) * 1000
    return TraceEvent(offset, pid, ts, m["name"], (m["args"] or "").strip())


def iter_events(path: str | os.PathLike[str], start: int = 0, end: int | None = None) -> Iterator[TraceEvent]:
    """Events of the lines starting in the byte range ``[start, end)`` of the log."""
    with open(path, "rb") as f:
        f.seek(start)
        pos = start
        for raw in f:
            if end is not None and pos >= end:
                break
            ev = parse_line(raw.decode("utf-8", "replace"), pos)
            pos += len(raw)
            if ev is not None and raw.endswith(b"\n"):
                yield ev


def count_events(path: str | os.PathLike[str], start: int = 0, end: int | None = None) -> Counter[str]:
    """Number of each event in the byte range ``[start, end)``."""
    return Counter(ev.name for ev in iter_events(path, start, end))


def counts_by_phase(
    path: str | os.PathLike[str], phases: Mapping[str, tuple[int, int]]
) -> dict[str, dict[str, int]]:
    """Event counts per phase, the phases given as ``{name: (start_offset, end_offset)}``."""
    if not Path(path).exists():
        return {name: {} for name in phases}
    return {name: dict(count_events(path, s, e)) for name, (s, e) in phases.items()}


def df_trace_events(path: str | os.PathLike[str]) -> pd.DataFrame:
    """All events of a trace log as a DataFrame.

    Columns: ``offset`` (byte offset in the log), ``pid``, ``wall_ts_ns`` (CLOCK_REALTIME, µs
    resolution; -1 without timestamps), ``event``, ``args``.
    """
    import pandas as pd

    rows = [(e.offset, e.pid, e.wall_ts_ns, e.name, e.args) for e in iter_events(path)]
    df = pd.DataFrame(rows, columns=["offset", "pid", "wall_ts_ns", "event", "args"])
    return df.astype({"offset": "int64", "pid": "int64", "wall_ts_ns": "int64", "event": str, "args": str})
