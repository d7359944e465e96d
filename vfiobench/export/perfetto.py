"""Runs as a Perfetto trace: every probe event a slice, every interrupt a flow through its stages.

Written with the maintained ``perfetto`` package's trace builder (``StreamingTraceProtoBuilder``,
Perfetto's protobuf ``TracePacket``), so the file opens in ui.perfetto.dev and in Perfetto's trace
processor. Per run:

* a **process** track named ``<variant> · <run id>`` (a synthetic pid per run, so runs never merge;
  the QEMU pid is in the name and the metadata);
* a **thread** track per QEMU/kernel thread seen by the probes: one slice per call of
  ``set_irqs_ioctl``, ``set_vector_signal``, ``pba_toggle``, ``transaction_commit``, the QEMU side
  of ``irq_path`` (``qemu_irq``, ``msix_*``) and ``kvm_ioctls`` (named after the ioctl:
  ``KVM_SET_GSI_ROUTING``, ``KVM_IRQFD``, ``KVM_SIGNAL_MSI``), nested as they ran, with the call's
  fields as arguments (fd, ret, vector, region name, enabled, a KVM ioctl's argument words under
  their names...);
* a track per **CPU** for the interrupt-context parts of ``irq_path`` (host IRQ, eventfd signal,
  KVM MSI injection);
* a track per **vector** of the guest: one slice per interrupt, trigger to delivery;
* a **flow** per interrupt: the events inside its window (trigger to its last milestone, as
  :func:`vfiobench.analysis.timeline.df_window_events` assigns them) and its interrupt slice share one
  flow id, so the UI draws the path across tracks;
* a **counter** track per probe: events per second in 100 ms bins;
* an instant event ``run`` at the run's first timestamp carrying the run's metadata.

Timestamps are the probes' CLOCK_MONOTONIC nanoseconds, written unchanged.

Example:
    >>> from vfiobench.export.perfetto import write_perfetto
    >>> write_perfetto(vb.load("data/sample").filter(kind="probed"), "runs.pftrace")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfiobench import schema
from vfiobench.errors import RunStoreError
from vfiobench.store import Run

#: The one packet sequence this writer uses.
SEQUENCE = 1
#: Counter bins (ns).
RATE_BIN_NS = 100_000_000
#: ``irq_path`` events that run in interrupt context: they go on a CPU track, not a thread's.
CPU_EVENTS = frozenset({"host_irq", "eventfd_signal", "kvm_msi", "kvm_signal_msi"})
#: Slice names per probe table.
SLICE_NAMES: dict[str, str] = {
    schema.SET_IRQS: "VFIO_DEVICE_SET_IRQS",
    schema.SET_VECTOR_SIGNAL: "vfio_msi_set_vector_signal",
    schema.PBA_TOGGLE: "memory_region_set_enabled",
    schema.COMMIT: "memory_region_transaction_commit",
    schema.KVM_IOCTLS: "KVM ioctl",  # each slice is named after its ioctl instead
}
#: The columns each table contributes as slice arguments.
ARG_COLUMNS: dict[str, tuple[str, ...]] = {
    schema.SET_IRQS: ("fd", "ret", "index", "start", "count", "flags"),
    schema.SET_VECTOR_SIGNAL: ("vector", "fd", "msix", "ret"),
    schema.PBA_TOGGLE: ("mr", "enabled", "is_pba", "region"),
    schema.COMMIT: ("depth",),
    schema.IRQ_PATH: ("vector", "cpu", "arg0", "arg1"),
    schema.KVM_IOCTLS: ("fd", "ret", "arg0", "arg1", "arg2", "arg3"),  # the args renamed per ioctl
}


@dataclass
class PerfettoSummary:
    """What a trace holds: slices per track name, flows, and the packets written."""

    path: Path
    slices: dict[str, int] = field(default_factory=dict)
    instants: int = 0
    probe_calls: int = 0  # slices and instants from probe tables (0: nothing the probes timed)
    flows: int = 0
    counters: int = 0
    packets: int = 0


@dataclass
class _Event:
    """One slice or instant, before ordering."""

    ts: int
    dur: int  # -1: an instant
    track: int
    name: str
    args: dict[str, Any]
    flow: int | None = None
    probe: bool = False  # from a probe table (not the workload's interrupts or the run's metadata)


class _Writer:
    """Packets onto one sequence, uuids handed out in order."""

    def __init__(self, stream: Any) -> None:
        from perfetto.trace_builder.proto_builder import StreamingTraceProtoBuilder

        self.builder = StreamingTraceProtoBuilder(stream)
        self.next_uuid = 1
        self.packets = 0

    def packet(self) -> Any:
        p = self.builder.create_packet()
        p.trusted_packet_sequence_id = SEQUENCE
        if self.packets == 0:
            p.sequence_flags = 1  # SEQ_INCREMENTAL_STATE_CLEARED
            p.first_packet_on_sequence = True
        return p

    def write(self, p: Any) -> None:
        self.builder.write_packet(p)
        self.packets += 1

    def track(
        self, name: str, *, parent: int | None = None, pid: int | None = None, tid: int | None = None
    ) -> int:
        uuid = self.next_uuid
        self.next_uuid += 1
        p = self.packet()
        d = p.track_descriptor
        d.uuid = uuid
        if tid is not None and pid is not None:
            d.thread.pid, d.thread.tid, d.thread.thread_name = pid, tid, name
        elif pid is not None:
            d.process.pid, d.process.process_name = pid, name
        else:
            d.name = name
            if parent is not None:
                d.parent_uuid = parent
        self.write(p)
        return uuid

    def counter_track(self, name: str, parent: int) -> int:
        uuid = self.next_uuid
        self.next_uuid += 1
        p = self.packet()
        p.track_descriptor.uuid = uuid
        p.track_descriptor.name = name
        p.track_descriptor.parent_uuid = parent
        p.track_descriptor.counter.unit_name = "events/s"
        self.write(p)
        return uuid


def _annotate(event: Any, args: dict[str, Any]) -> None:
    for key, value in args.items():
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        a = event.debug_annotations.add()
        a.name = key
        if isinstance(value, bool | np.bool_):
            a.bool_value = bool(value)
        elif isinstance(value, int | np.integer):
            if int(value) >= 1 << 63:  # a u64 from the probes (pointers, arguments)
                a.uint_value = int(value)
            else:
                a.int_value = int(value)
        elif isinstance(value, float | np.floating):
            a.double_value = float(value)
        else:
            a.string_value = str(value)


def _region_names(run: Run) -> dict[int, str]:
    if not run.has_table(schema.PBA_REGIONS):
        return {}
    r = run.table(schema.PBA_REGIONS)
    return {int(m): str(n) for m, n in zip(r["mr"], r["name"], strict=True)}


def _windows(run: Run) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any], np.ndarray[Any, Any]] | None:
    """Each interrupt's window (trigger, last milestone) and irq number, sorted by trigger."""
    if not run.has_table(schema.WORKLOAD):
        return None
    from vfiobench.analysis.timeline import MILESTONE_NAMES, run_timeline, ts_column

    tl = run_timeline(run)
    if tl.empty:
        return None
    cols = [ts_column(m) for m in MILESTONE_NAMES]
    start = tl[ts_column("trigger")].to_numpy(dtype=np.int64)
    end = tl[cols].astype("float64").max(axis=1, skipna=True).to_numpy(dtype=np.float64)
    irq = tl["irq"].to_numpy(dtype=np.int64)
    order = np.argsort(start, kind="stable")
    return start[order], end[order], irq[order]


def _flow_of(ts: np.ndarray[Any, Any], windows: Any, base: int) -> list[int | None]:
    if windows is None or ts.size == 0:
        return [None] * int(ts.size)
    start, end, irq = windows
    pos = np.searchsorted(start, ts, side="right") - 1
    ok = pos >= 0
    ok[ok] = ts[ok] <= end[pos[ok]]
    return [base + int(irq[p]) + 1 if k else None for p, k in zip(pos, ok, strict=True)]


def _kvm_slices(
    cmd: np.ndarray[Any, Any], records: list[dict[str, Any]]
) -> tuple[list[str], list[dict[str, Any]]]:
    """Slice names (the ioctl) and arguments (``arg0..arg3`` under their names) of ``kvm_ioctls`` rows."""
    names = []
    out = []
    for c, rec in zip(cmd.tolist(), records, strict=True):
        name, fields = schema.kvm_ioctl_fields(int(c))
        names.append(name)
        out.append({fields[int(k[3:])] if k.startswith("arg") else k: v for k, v in rec.items()})
    return names, out


def _run_events(w: _Writer, run: Run, index: int) -> tuple[list[_Event], list[tuple[int, int, float]]]:
    """Tracks of one run (written now) and its slices/instants and counter samples (to be ordered)."""
    qemu_pid = 0
    for table in (schema.SET_IRQS, schema.KVM_IOCTLS):  # the tables that know the process
        if qemu_pid or not run.has_table(table):
            continue
        try:
            pids = run.table(table, columns=["pid"])["pid"]
        except RunStoreError:  # histogram mode: no pid column
            continue
        qemu_pid = int(pids.iloc[0]) if len(pids) else 0
    pid = 100_000 + index  # synthetic: runs recorded on different machines may share pids
    process = w.track(
        f"{run.variant} · {run.run_id}" + (f" (QEMU pid {qemu_pid})" if qemu_pid else ""), pid=pid
    )
    threads: dict[int, int] = {}
    cpus: dict[int, int] = {}
    vectors: dict[int, int] = {}
    flow_base = (index + 1) << 32
    windows = _windows(run)
    regions = _region_names(run)
    events: list[_Event] = []
    counters: list[tuple[int, int, float]] = []

    def thread_track(tid: int) -> int:
        if tid not in threads:
            threads[tid] = w.track(f"tid {tid}", pid=pid, tid=tid)
        return threads[tid]

    for table in (*schema.PROBE_TABLES, schema.IRQ_PATH):
        if not run.has_table(table):
            continue
        df = run.table(table)
        if df.empty or "ts_ns" not in df.columns:
            continue  # histogram mode: no per-call times
        if table == schema.PBA_TOGGLE:
            df = df.assign(
                region=[regions.get(int(m), "") for m in df["mr"]], mr=[f"{int(m):#x}" for m in df["mr"]]
            )
        ts = df["ts_ns"].to_numpy(dtype=np.int64)
        dur = df["dur_ns"].to_numpy(dtype=np.int64)
        tid = df["tid"].to_numpy(dtype=np.int64) if "tid" in df.columns else np.zeros(len(df), dtype=np.int64)
        flows = _flow_of(ts, windows, flow_base)
        cols = [c for c in ARG_COLUMNS[table] if c in df.columns]
        records: list[dict[str, Any]] = [
            {str(k): v for k, v in r.items()} for r in df[cols].to_dict("records")
        ]
        names = df["event"].astype(str).tolist() if table == schema.IRQ_PATH else None
        if table == schema.KVM_IOCTLS and "cmd" in df.columns:
            names, records = _kvm_slices(df["cmd"].to_numpy(dtype=np.int64), records)
        for i in range(len(df)):
            name = names[i] if names is not None else SLICE_NAMES[table]
            if names is not None and name in CPU_EVENTS:
                cpu = int(records[i].get("cpu", 0))
                if cpu not in cpus:
                    cpus[cpu] = w.track(f"CPU {cpu} (host interrupt context)", parent=process)
                track = cpus[cpu]
            else:
                track = thread_track(int(tid[i]))
            events.append(_Event(int(ts[i]), int(dur[i]), track, name, records[i], flows[i], probe=True))
        bins = (ts - ts.min()) // RATE_BIN_NS
        rate = np.bincount(bins) * (1e9 / RATE_BIN_NS)
        ctrack = w.counter_track(f"{table} events/s", process)
        counters += [(int(ts.min()) + k * RATE_BIN_NS, ctrack, float(v)) for k, v in enumerate(rate)]
    if run.has_table(schema.WORKLOAD):
        wl = run.table(schema.WORKLOAD)
        if "trigger_ts_ns" in wl.columns:
            trig = wl["trigger_ts_ns"].to_numpy(dtype=np.int64)
            flows = _flow_of(trig, windows, flow_base)
            for i, row in enumerate(wl.to_dict("records")):
                vector = int(row.get("vector", 0))
                if vector not in vectors:
                    vectors[vector] = w.track(f"vector {vector} (guest interrupts)", parent=process)
                delivered = bool(row.get("delivered", True))
                end = int(row["delivered_ts_ns"]) if delivered else -1
                args = {"cycle": int(row.get("cycle", i)), "latency_ns": int(row.get("latency_ns", -1))}
                length = end - int(row["trigger_ts_ns"]) if delivered else -1
                name = "interrupt" if delivered else "undelivered interrupt"
                events.append(
                    _Event(int(row["trigger_ts_ns"]), length, vectors[vector], name, args, flows[i])
                )
    first = min((e.ts for e in events), default=0)
    m = run.meta
    events.append(
        _Event(
            first,
            -1,
            process,
            "run",
            {
                "run_id": m.run_id, "variant": m.variant, "status": m.status, "kind": m.kind,
                "source": m.source, "started_utc": m.started_utc, "qemu_version": m.qemu.version,
                "qemu_build_id": m.qemu.build_id, "qemu_path": m.qemu.path, "kernel": m.host.kernel_release,
                "workload": m.workload.name, "lost_events": m.lost_events, "checks_ok": m.checks_ok,
                "vfiobench_version": m.vfiobench_version,
            },
        )
    )  # fmt: skip
    return events, counters


def _ordered(events: list[_Event]) -> Iterator[tuple[int, int, _Event]]:
    """``(timestamp, type, event)`` in trace order, so that every track nests.

    At one timestamp: ends before begins, inner ends before outer ones, outer begins before inner ones.
    """
    marks: list[tuple[int, int, int, int, _Event]] = []
    for k, e in enumerate(events):
        if e.dur < 0:
            marks.append((e.ts, 1, 0, k, e))  # instant, between ends and begins
        else:
            marks.append((e.ts, 2, -e.dur, k, e))  # begin: longer first
            # end: later-begun first; a zero-length slice ends after it begins, not before
            marks.append((e.ts + e.dur, 0 if e.dur else 3, -e.ts, -k, e))
    marks.sort(key=lambda m: m[:4])
    types = {0: 2, 1: 3, 2: 1, 3: 2}  # SLICE_END, INSTANT, SLICE_BEGIN, SLICE_END
    for ts, phase, _, _, e in marks:
        yield ts, types[phase], e


def write_perfetto(runs: Iterable[Run], out: str | os.PathLike[str]) -> PerfettoSummary:
    """Write ``runs`` as one Perfetto trace (see the module docstring).

    Args:
        runs: the runs (a :class:`~vfiobench.store.RunSet`, ``vb.load(...)``, or a list).
        out: the ``.pftrace`` file to write (overwritten).

    Returns:
        What was written: slices per track kind, flows, counters, packets.
    """
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    summary = PerfettoSummary(path)
    with path.open("wb") as stream:
        w = _Writer(stream)
        for index, run in enumerate(runs):
            events, counters = _run_events(w, run, index)
            summary.probe_calls += sum(e.probe for e in events)
            flows: set[int] = set()
            for ts, kind, e in _ordered(events):
                p = w.packet()
                p.timestamp = ts
                te = p.track_event
                te.type = kind
                te.track_uuid = e.track
                if kind != 2:  # names and arguments on the begin (and on instants)
                    te.name = e.name
                    _annotate(te, e.args)
                    if e.flow is not None:
                        te.flow_ids.append(e.flow)
                        flows.add(e.flow)
                    if kind == 1:
                        summary.slices[e.name] = summary.slices.get(e.name, 0) + 1
                    else:
                        summary.instants += 1
                w.write(p)
            for ts, track, value in sorted(counters):
                p = w.packet()
                p.timestamp = ts
                p.track_event.type = 4  # TYPE_COUNTER
                p.track_event.track_uuid = track
                p.track_event.double_counter_value = value
                w.write(p)
                summary.counters += 1
            summary.flows += len(flows)
        summary.packets = w.packets
    return summary


def frame_of(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Decode a trace written here back into one row per track event (for tests and checks).

    Returns:
        ``[timestamp, type, track_uuid, name, flow_ids]`` in file order.
    """
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    trace = Trace.FromString(Path(path).read_bytes())
    rows = [
        {
            "timestamp": p.timestamp,
            "type": p.track_event.type,
            "track_uuid": p.track_event.track_uuid,
            "name": p.track_event.name,
            "flow_ids": list(p.track_event.flow_ids),
        }
        for p in trace.packet
        if p.HasField("track_event")
    ]
    return pd.DataFrame(rows, columns=["timestamp", "type", "track_uuid", "name", "flow_ids"])
