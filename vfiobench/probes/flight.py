"""The flight recorder: the last seconds of events in a bounded ring; a trigger saves the window around it.

``vfiobench record --trigger 'pba_toggle.dur > 5ms'`` streams every event as usual but keeps only a
window of them in memory (:class:`EventRing`); when an event matches a trigger (:class:`Trigger`),
the events from ``before`` its start to ``after`` its end are saved as a run of their own
(:class:`CaptureWriter`), and the recorder stops or re-arms (``max_triggers``). Every event also
goes into whole-period log-linear histograms (:class:`~vfiobench.probes.histogram.DurationCounts`),
so the recording is summarised from start to end whatever was kept. :class:`FlightRecorder` ties
them together and hooks into the :class:`~vfiobench.probes.tracer.Tracer` (one observer, one
``after_poll`` callback)::

    recorder = FlightRecorder([parse_trigger("pba_toggle.dur > 5ms", names)], before_ns=2 * SECOND,
                              after_ns=SECOND, max_bytes=128 << 20, save=writer)
    tracer.observers.append(recorder.observe)
    why = tracer.run(after_poll=recorder.after_poll)   # "1 trigger saved" once the window is complete
    recorder.finish()                                  # a window still open is saved, cut short

Trigger syntax: :mod:`vfiobench.probes.trigger`.

Memory: the ring holds every probe's rows (table dtypes, 28-56 bytes an event) for at least
``before`` seconds (longer while a window is open), never more than ``max_bytes`` (rows plus a
fixed allowance per stored chunk, :data:`CHUNK_OVERHEAD`) nor ``max_events``: past a bound the
oldest rows go first, and a window that lost rows to the bound is saved marked incomplete.
``python -m benchmarks flight`` measures the ring's cost per event and its peak memory against the
bound.
"""

from __future__ import annotations

import copy
import math
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vfiobench import schema
from vfiobench.buckets import DEFAULT_SUB_BUCKET_BITS
from vfiobench.errors import VfioBenchError
from vfiobench.probes.histogram import DurationCounts
from vfiobench.probes.trigger import Trigger
from vfiobench.store import ProbeStats, RunMeta, RunWriter, utc_from_epoch

#: A window is saved once the drain has passed its end by this much: calls that started inside the
#: window and returned up to 20 ms after its end are in it.
SETTLE_NS = 20_000_000
#: Bytes counted per stored chunk on top of its rows (the array object and the ring's bookkeeping).
CHUNK_OVERHEAD = 256
#: Small batches are merged into the probe's last chunk while it is smaller than this.
_COALESCE_BYTES = 64 << 10
#: Lost-event counters are read at most this often (ns) to bound a window's losses.
_LOST_EVERY_NS = 100_000_000

# ---- the ring ---------------------------------------------------------------------------------------


@dataclass
class _Chunk:
    rows: np.ndarray[Any, Any]
    first_ns: int
    last_ns: int

    @classmethod
    def of(cls, rows: np.ndarray[Any, Any]) -> _Chunk:
        ts = rows["ts_ns"]
        return cls(rows, int(ts.min()), int(ts.max()))


class EventRing:
    """The most recent rows of every probe, bounded by age, bytes and events.

    Args:
        keep_ns: rows are kept at least this long after the newest row's time (unless a size
            bound forces them out), and may be dropped after.
        max_bytes: rows (``nbytes``) plus :data:`CHUNK_OVERHEAD` per chunk never exceed this
            after :meth:`push` returns.
        max_events: rows held never exceed this (None: only the byte bound).
    """

    def __init__(self, keep_ns: int, max_bytes: int, max_events: int | None = None) -> None:
        self.keep_ns = keep_ns
        self.max_bytes = max_bytes
        self.max_events = max_events
        self.chunks: dict[str, deque[_Chunk]] = {}
        self.nbytes = 0
        self.events = 0
        self.newest_ns = 0
        #: The latest ``ts_ns`` of a row dropped by a size bound (rows up to it may be missing).
        self.evicted_until_ns = -1
        #: Rows from this time on are not dropped for age (an open window), only for size.
        self.pinned_from_ns: int | None = None

    def _size(self, c: _Chunk) -> int:
        return int(c.rows.nbytes) + CHUNK_OVERHEAD

    def push(self, name: str, rows: np.ndarray[Any, Any]) -> None:
        """Add a batch of ``name``'s table rows, then drop what the bounds say must go."""
        if rows.size == 0:
            return
        q = self.chunks.setdefault(name, deque())
        new = _Chunk.of(rows)
        last = q[-1] if q else None
        if last is not None and last.rows.nbytes + rows.nbytes <= _COALESCE_BYTES:
            self.nbytes -= self._size(last)
            last.rows = np.concatenate((last.rows, rows))
            last.first_ns, last.last_ns = min(last.first_ns, new.first_ns), max(last.last_ns, new.last_ns)
            self.nbytes += self._size(last)
        else:
            q.append(new)
            self.nbytes += self._size(new)
        self.events += rows.size
        self.newest_ns = max(self.newest_ns, new.last_ns)
        self._evict_old()
        self._evict_size()

    def _oldest(self) -> tuple[str, _Chunk] | None:
        heads = [(q[0].first_ns, name) for name, q in self.chunks.items() if q]
        if not heads:
            return None
        name = min(heads)[1]
        return name, self.chunks[name][0]

    def _drop_head(self, name: str) -> None:
        c = self.chunks[name].popleft()
        self.nbytes -= self._size(c)
        self.events -= c.rows.size

    def _evict_old(self) -> None:
        cutoff = self.newest_ns - self.keep_ns
        if self.pinned_from_ns is not None:
            cutoff = min(cutoff, self.pinned_from_ns)
        for name, q in self.chunks.items():
            while q and q[0].last_ns < cutoff:
                self._drop_head(name)

    def _over(self) -> tuple[int, int]:
        extra_events = 0 if self.max_events is None else max(0, self.events - self.max_events)
        return max(0, self.nbytes - self.max_bytes), extra_events

    def _evict_size(self) -> None:
        while True:
            extra_bytes, extra_events = self._over()
            oldest = self._oldest() if (extra_bytes or extra_events) else None
            if oldest is None:
                return
            name, c = oldest
            n = max(math.ceil(extra_bytes / c.rows.itemsize), extra_events)
            dropped = c.rows[:n]
            self.evicted_until_ns = max(self.evicted_until_ns, int(dropped["ts_ns"].max()))
            if n >= c.rows.size:
                self._drop_head(name)
                continue
            self.nbytes -= self._size(c)
            self.events -= n
            c.rows = c.rows[n:].copy()  # a copy: a view would keep the dropped rows' memory
            c.first_ns, c.last_ns = int(c.rows["ts_ns"].min()), int(c.rows["ts_ns"].max())
            self.nbytes += self._size(c)

    def window(self, start_ns: int, end_ns: int) -> dict[str, np.ndarray[Any, Any]]:
        """Copies of every probe's rows with ``start_ns <= ts_ns <= end_ns``, in time order."""
        out: dict[str, np.ndarray[Any, Any]] = {}
        for name, q in self.chunks.items():
            parts = []
            for c in q:
                if c.last_ns < start_ns or c.first_ns > end_ns:
                    continue
                ts = c.rows["ts_ns"]
                parts.append(c.rows[(ts >= start_ns) & (ts <= end_ns)])
            rows = np.concatenate(parts) if parts else np.empty(0, dtype=schema.TABLE_DTYPES[name])
            out[name] = rows[np.argsort(rows["ts_ns"], kind="stable")]
        return out


# ---- captures and the recorder ----------------------------------------------------------------------


def _row_dict(row: np.void) -> dict[str, Any]:
    return {n: row[n].item() for n in row.dtype.names or ()}


@dataclass
class Capture:
    """One trigger's window: which event matched, the window's bounds, and (once closed) its rows.

    ``start_ns``/``end_ns`` are ``CLOCK_MONOTONIC`` ns: ``before`` ahead of the event's start,
    ``after`` past its end. ``complete`` is False when the window lost rows to the ring's size
    bound or the recording ended before the window did; ``note`` says which.
    """

    index: int
    trigger: Trigger
    event: dict[str, Any]
    start_ns: int
    end_ns: int
    matches: int = 1
    tables: dict[str, np.ndarray[Any, Any]] = field(default_factory=dict)
    lost: dict[str, int] = field(default_factory=dict)
    complete: bool = True
    note: str = ""
    started_utc: str = ""
    ended_utc: str = ""
    #: The trigger probe's rows in the window that started before / after the matching event.
    events_before: int = 0
    events_after: int = 0

    @property
    def probe(self) -> str:
        """The probe whose event fired the trigger."""
        return self.trigger.probe

    def count_around(self) -> None:
        """Set :attr:`events_before` and :attr:`events_after` from the window's rows."""
        ts = self.tables.get(self.probe, np.empty(0, dtype=schema.TABLE_DTYPES[self.probe]))["ts_ns"]
        t = self.event["ts_ns"]
        self.events_before, self.events_after = int(np.count_nonzero(ts < t)), int(np.count_nonzero(ts > t))


class FlightRecorder:
    """Ring, triggers and whole-period histograms over a tracer's stream.

    Args:
        triggers: alternatives; an event matching any opens a window.
        before_ns: the window reaches this far before the matching event's start ...
        after_ns: ... and this far after its end.
        max_bytes: the ring's byte bound (:class:`EventRing`).
        max_events: the ring's event bound (None: bytes only).
        max_triggers: windows to save before :meth:`after_poll` asks the recording to stop
            (0: no limit; the recorder re-arms after each window).
        save: called with each closed :class:`Capture` (e.g. a :class:`CaptureWriter`).
        lost: reads the probes' lost-event counters (the tracer's ``read_lost``), to bound each
            window's losses.
        sub_bucket_bits: precision of the whole-period histograms.
        settle_ns: how far past a window's end the drain must be before it is saved.
    """

    def __init__(
        self,
        triggers: Sequence[Trigger],
        *,
        before_ns: int,
        after_ns: int,
        max_bytes: int,
        max_events: int | None = None,
        max_triggers: int = 1,
        save: Callable[[Capture], None] | None = None,
        lost: Callable[[], Mapping[str, int]] | None = None,
        sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS,
        settle_ns: int = SETTLE_NS,
    ) -> None:
        if not triggers:
            raise VfioBenchError("the flight recorder needs a trigger", "give --trigger EXPR")
        self.triggers = list(triggers)
        self.before_ns = before_ns
        self.after_ns = after_ns
        self.max_triggers = max_triggers
        self.save = save
        self.lost = lost
        self.settle_ns = settle_ns
        self.sub_bucket_bits = sub_bucket_bits
        self.ring = EventRing(before_ns, max_bytes, max_events)
        self.summary: dict[str, DurationCounts] = {}
        self.events: dict[str, int] = {}
        self.open: Capture | None = None
        self.saved: list[Capture] = []
        self._lost_marks: deque[tuple[int, dict[str, int]]] = deque()
        self._by_probe: dict[str, list[Trigger]] = {}
        for t in self.triggers:
            self._by_probe.setdefault(t.probe, []).append(t)

    @property
    def armed(self) -> bool:
        """True while a matching event would open a window."""
        return self.open is None and (self.max_triggers == 0 or len(self.saved) < self.max_triggers)

    def observe(self, name: str, rows: np.ndarray[Any, Any]) -> None:
        """One drained batch of ``name``'s table rows (a :attr:`Tracer.observers` callback)."""
        self.events[name] = self.events.get(name, 0) + int(rows.size)
        if name != schema.IRQ_PATH and rows.dtype.names and "dur_ns" in rows.dtype.names:
            counts = self.summary.get(name)
            if counts is None:
                counts = self.summary[name] = DurationCounts(self.sub_bucket_bits)
            counts.add(rows["dur_ns"])
        self.ring.push(name, rows)
        for trigger in self._by_probe.get(name, ()):
            self._match(trigger, rows)

    def _match(self, trigger: Trigger, rows: np.ndarray[Any, Any]) -> None:
        mask = trigger.mask(rows)
        if not mask.any():
            return
        hits = rows[mask]
        if self.open is None and self.armed:
            first = hits[int(np.argmin(hits["ts_ns"]))]
            ts, dur = int(first["ts_ns"]), max(0, int(first["dur_ns"]))
            self.open = Capture(
                index=len(self.saved) + 1,
                trigger=trigger,
                event=_row_dict(first),
                start_ns=ts - self.before_ns,
                end_ns=ts + dur + self.after_ns,
                matches=0,
            )
            self.ring.pinned_from_ns = self.open.start_ns
        if self.open is not None:  # every match inside the open window is counted in it
            ts = hits["ts_ns"]
            self.open.matches += int(np.count_nonzero((ts >= self.open.start_ns) & (ts <= self.open.end_ns)))

    def after_poll(self, began_ns: int) -> str | None:
        """Save the open window once the drain is past its end; say stop after the last one.

        A :meth:`Tracer.run` ``after_poll`` callback: ``began_ns`` is when the poll that just ended
        began.
        """
        self._mark_lost(began_ns)
        if self.open is not None and began_ns >= self.open.end_ns + self.settle_ns:
            self._close(self.open)
        if self.max_triggers and len(self.saved) >= self.max_triggers:
            n = len(self.saved)
            return f"{n} trigger{'s' * (n != 1)} saved"
        return None

    def finish(self) -> None:
        """Save a window still open when the recording ended (marked cut short)."""
        if self.open is not None:
            capture = self.open
            capture.complete = False
            capture.note = "the recording ended before the window did"
            self._close(capture)

    def _mark_lost(self, now_ns: int) -> None:
        if self.lost is None:
            return
        marks = self._lost_marks
        if not marks or now_ns - marks[-1][0] >= _LOST_EVERY_NS:
            marks.append((now_ns, dict(self.lost())))
        oldest_needed = min(now_ns - self.before_ns - self.after_ns, self.ring.pinned_from_ns or now_ns)
        while len(marks) > 1 and marks[1][0] <= oldest_needed:
            marks.popleft()

    def _lost_since(self, start_ns: int) -> dict[str, int]:
        if self.lost is None:
            return {}
        now = dict(self.lost())
        base = self._lost_marks[0][1] if self._lost_marks else {}
        for t, counts in self._lost_marks:
            if t <= start_ns:
                base = counts
        return {n: max(0, v - base.get(n, 0)) for n, v in now.items()}

    def _close(self, capture: Capture) -> None:
        capture.tables = self.ring.window(capture.start_ns, capture.end_ns)
        capture.lost = self._lost_since(capture.start_ns)
        capture.started_utc = _utc_of_monotonic(capture.start_ns)
        capture.ended_utc = _utc_of_monotonic(capture.end_ns)
        capture.count_around()
        if self.ring.evicted_until_ns >= capture.start_ns:
            capture.complete = False
            kept = self.ring.evicted_until_ns
            capture.note = "; ".join(
                filter(None, [capture.note, f"the ring's size bound dropped rows up to {kept} ns"])
            )
        self.open = None
        self.ring.pinned_from_ns = None
        self.saved.append(capture)
        if self.save is not None:
            self.save(capture)
        capture.tables = {}  # written (or handed over): the recorder keeps only the metadata
        if self.armed:  # a match drained after the window's end, before it was saved, fires now
            later = self.ring.window(capture.end_ns + 1, self.ring.newest_ns)
            for trigger in self.triggers:
                if self.open is None and later[trigger.probe].size:
                    self._match(trigger, later[trigger.probe])

    def summary_tables(self) -> dict[str, np.ndarray[Any, Any]]:
        """The whole period's histogram-mode table per probe that has durations."""
        return {name: counts.table() for name, counts in self.summary.items()}


# ---- saving windows as runs -------------------------------------------------------------------------


def _utc_of_monotonic(t_ns: int) -> str:
    return utc_from_epoch(time.time() - (time.monotonic_ns() - t_ns) / 1e9)


def capture_labels(capture: Capture, before_ns: int, after_ns: int) -> dict[str, Any]:
    """The labels a window's run carries (``run.json`` ``labels``)."""
    return {
        "trigger": capture.trigger.text,
        "trigger_index": capture.index,
        "trigger_probe": capture.probe,
        "trigger_event": capture.event,
        "trigger_matches": capture.matches,
        "window_start_ns": capture.start_ns,
        "window_end_ns": capture.end_ns,
        "window_before_ns": before_ns,
        "window_after_ns": after_ns,
        "window_complete": capture.complete,
        "events_before_trigger": capture.events_before,
        "events_after_trigger": capture.events_after,
    }


class CaptureWriter:
    """Writes each :class:`Capture` as a run directory ``<out>/trigger-<k>``, on a background thread.

    Each run is a copy of ``base`` (the recording's metadata: host, QEMU, variant) with run id
    ``<base run id>-trigger-<k>``, the window's tables, the trigger in its labels, per probe the
    rows kept and the events lost since (at most 0.1 s before) the window's start, and its start and
    end times in UTC. A window marked incomplete is a ``partial`` run that says why.

    Args:
        out: the directory the runs go into.
        base: the recording's metadata (read when each window is written).
        before_ns: the window's reach before the event (stored in the labels).
        after_ns: ... and after it.
        run_id: the windows' run ids are ``<run_id>-trigger-<k>`` (default: ``base``'s run id).
    """

    def __init__(
        self, out: str | Path, base: RunMeta, before_ns: int, after_ns: int, run_id: str | None = None
    ) -> None:
        self.out = Path(out)
        self.base = base
        self.run_id = run_id or base.run_id
        self.before_ns = before_ns
        self.after_ns = after_ns
        self.written: list[Path] = []
        self.error: BaseException | None = None
        self._queue: queue.Queue[tuple[Capture, RunMeta] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="vfiobench-flight", daemon=True)
        self._thread.start()

    def __call__(self, capture: Capture) -> None:
        """Queue a closed window for writing (its tables are handed over; the metadata copied now)."""
        handed = copy.copy(capture)
        handed.tables = dict(capture.tables)
        self._queue.put((handed, copy.deepcopy(self.base)))

    def _loop(self) -> None:
        while (item := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self.written.append(self.write(*item))
                except BaseException as e:
                    self.error = e

    def write(self, capture: Capture, base: RunMeta | None = None) -> Path:
        """Write one window's run now (metadata: ``base``, else the recording's); returns its directory."""
        meta = copy.deepcopy(self.base) if base is None else base
        meta.run_id = f"{self.run_id}-trigger-{capture.index}"
        meta.labels = {**meta.labels, **capture_labels(capture, self.before_ns, self.after_ns)}
        meta.started_utc = capture.started_utc or meta.started_utc
        meta.ended_utc = capture.ended_utc or None
        meta.tables = {}
        meta.error = None if capture.complete else f"window incomplete: {capture.note}"
        dest = self.out / f"trigger-{capture.index}"
        with RunWriter(dest, meta) as writer:
            for name, rows in capture.tables.items():
                writer.append(name, rows)
                target = meta.probes[name].target if name in meta.probes else name
                meta.probes[name] = ProbeStats(target, int(rows.size), capture.lost.get(name, 0), "stream")
            writer.close("complete" if capture.complete else "partial")
        return dest

    def close(self) -> list[Path]:
        """Wait for every queued window to be written; returns their directories.

        Raises:
            BaseException: what writing a window raised.
        """
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error
        return list(self.written)
