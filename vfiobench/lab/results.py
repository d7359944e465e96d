"""Turn one lab cell's output (``cells/<id>/`` in the share) into a complete run in the run store.

Inside L1 there is no pyarrow, so the job writes ``.npz`` files and JSON; here, on the host, they
become Parquet tables through :class:`~vfiobench.store.RunWriter`:

- ``workload``: one row per interrupt (burst: per mask window). Columns ``cycle``, ``vector``,
  ``triggers``, ``trigger_ts_ns``, ``delivered_ts_ns``, ``latency_ns`` (trigger → delivery seen),
  ``mask_rtt_ns``, ``unmask_rtt_ns`` (qtest round trips; -1 when not masked), ``pba_polls``,
  ``pba_seen``, ``delivered``, ``unmask_ts_ns`` (when the guest's unmask write went out; -1 when not
  masked), and ``stalled`` (added here, not by L1: the interrupt's trigger → delivery span overlaps
  a window of the ``stalls`` table). Times are CLOCK_MONOTONIC ns inside L1 (the clock of the probes).
- ``stalls``: windows when L1 did not run, seen by the stall detector in L1
  (:mod:`vfiobench.lab.stalls`); columns ``start_ts_ns``, ``end_ts_ns``, ``overshoot_ns`` (how much
  later than its 1 ms sleep the detector woke). Labels ``stall_windows`` and ``stalled_interrupts``
  count them.
- ``qemu_trace``: the L2 QEMU's trace log; columns ``offset``, ``pid``, ``wall_ts_ns``, ``event``,
  ``args``, ``phase`` (``setup``/``measure``/``teardown``).
- one table per probe (probed runs), as the tracer decoded them.

run.json gets ``source: lab``, ``kind`` (probed / probe-free), labels ``accel``, ``workload``, ``cell``,
``lab_image``, boot times; the L2 QEMU's path, version, build-id and command line; the workload
counters in ``workload.params.counters``; and the ground-truth :mod:`~vfiobench.lab.checks`.
Attachments: ``console.log`` (L1), ``job.log``, ``qemu-trace.log``, ``l2-stderr.log``, ``cell.json``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfiobench import schema
from vfiobench.lab.cell import Cell
from vfiobench.lab.checks import TRACE_MASK_AUTO, AutoTrace, DeviceConfig, lab_checks
from vfiobench.lab.image import Image
from vfiobench.lab.stalls import STALL_COLUMNS, stalled
from vfiobench.lab.vm import BootTimes
from vfiobench.probes.catalog import attached_parts
from vfiobench.qemu.sourcepick import recorded_source
from vfiobench.qemu.trace import df_trace_events
from vfiobench.schema import IRQ_PATH_EVENTS
from vfiobench.store import (
    HostInfo,
    ProbeStats,
    QemuInfo,
    RunMeta,
    RunWriter,
    WorkloadInfo,
    utc_from_epoch,
    utc_now,
)

WORKLOAD_COLUMNS = (
    "cycle",
    "vector",
    "triggers",
    "trigger_ts_ns",
    "delivered_ts_ns",
    "latency_ns",
    "mask_rtt_ns",
    "unmask_rtt_ns",
    "pba_polls",
    "pba_seen",
    "delivered",
    "unmask_ts_ns",
)

ATTACHMENTS = ("qemu-trace.log", "l2-stderr.log", "cell.json")

#: Windows when L1 did not run (:mod:`vfiobench.lab.stalls`), one row each.
STALLS = "stalls"


def df_workload(samples: np.ndarray[Any, Any]) -> pd.DataFrame:
    """The ``workload`` table from the job's structured samples (columns: :data:`WORKLOAD_COLUMNS`)."""
    names = samples.dtype.names or ()
    return pd.DataFrame({name: samples[name] for name in WORKLOAD_COLUMNS if name in names})


def _phase_of(offsets: pd.Series, phases: dict[str, dict[str, int]]) -> pd.Series:
    first = min((ph["trace_start"] for ph in phases.values()), default=0)
    out = pd.Series("teardown", index=offsets.index, dtype=object)
    out[offsets < first] = "start"
    for name, ph in phases.items():
        mask = (offsets >= ph["trace_start"]) & (offsets < ph["trace_end"])
        out[mask] = name
    return out


def _event_counts(events: pd.Series) -> dict[str, int]:
    """How often each trace event occurs in ``events``."""
    return {str(k): int(v) for k, v in events.value_counts().items()}


def _auto_trace(tdf: pd.DataFrame, vectors: int) -> AutoTrace:
    """The mask detections of a trace log, and the measure phase's counts from the last one on."""
    hits = np.flatnonzero((tdf["event"] == TRACE_MASK_AUTO).to_numpy())
    if hits.size == 0:
        return AutoTrace(0, {}, vectors)
    rest = tdf.iloc[int(hits[-1]) :]
    after = rest.loc[rest["phase"] == "measure", "event"]
    return AutoTrace(int(hits.size), _event_counts(after), vectors)


def probe_counts_in(tables: dict[str, np.ndarray[Any, Any]], start_ns: int, end_ns: int) -> dict[str, int]:
    """Events per probe table with ``ts_ns`` inside ``[start_ns, end_ns]``.

    ``pba_toggle`` counts only rows marked as the MSI-X PBA region when the table has an ``is_pba``
    column (the tracer records every ``memory_region_set_enabled`` call). A table with an ``event``
    column (``irq_path``) is also counted per event, as ``<table>.<event>``, and ``kvm_ioctls`` per
    ioctl, as ``kvm_ioctls.<op>`` (every op of :data:`vfiobench.schema.KVM_IOCTL_CMDS`, 0 included).
    """
    counts: dict[str, int] = {}
    for name, arr in tables.items():
        names = arr.dtype.names or ()
        if "ts_ns" not in names:
            continue
        sel = (arr["ts_ns"] >= start_ns) & (arr["ts_ns"] <= end_ns)
        if name == "pba_toggle" and "is_pba" in names:
            sel &= arr["is_pba"].astype(bool)
        counts[name] = int(np.count_nonzero(sel))
        if "event" in names:
            events, n = np.unique(arr["event"][sel], return_counts=True)
            counts.update({f"{name}.{e}": int(k) for e, k in zip(events, n, strict=True)})
        if name == schema.KVM_IOCTLS and "cmd" in names:
            for cmd, (op, _, _) in schema.KVM_IOCTL_CMDS.items():
                counts[f"{name}.{op}"] = int(np.count_nonzero(sel & (arr["cmd"] == cmd)))
    return counts


def cell_to_run(
    cell_dir: Path,
    out: Path,
    *,
    cell: Cell,
    share: Path,
    image: Image,
    boot: BootTimes,
    l1_cmdline: list[str],
    job_result: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write the run of one cell; a cell that failed (or never ran) becomes a ``failed`` run.

    Returns:
        The run directory.
    """
    rec: dict[str, Any] = {}
    if (cell_dir / "cell.json").is_file():
        rec = json.loads((cell_dir / "cell.json").read_text())
    qemu = rec.get("qemu", {})
    dev = job_result.get("device", {})
    l0 = HostInfo.current()  # the machine running L1 (run.json ``host`` describes L1, where probes ran)
    # which Debian source a vfiobench build of L2's QEMU was made from, and why (its build.json)
    source = recorded_source(cell.qemu) if cell.qemu else None
    meta = RunMeta(
        run_id=cell.name or f"lab-{cell.id}-{uuid.uuid4().hex[:8]}",
        variant=cell.variant,
        source="lab",
        kind="probed" if cell.probes else "probe-free",
        host=HostInfo(
            kernel_release=str(job_result.get("kernel_release", image.kernel_release)),
            cpu_model="QEMU TCG (lab L1, -cpu max)",
            hostname="l1",
            cpus=2,
        ),
        qemu=QemuInfo(
            path=cell.qemu or str(qemu.get("path", "")),
            version=str(qemu.get("version", "")),
            build_id=str(qemu.get("build_id", "")),
            cmdline=list(rec.get("l2_cmdline", [])),
            patches=list(cell.patches),
        ),
        workload=WorkloadInfo(
            name=cell.workload.name,
            params=cell.workload.as_dict() | {"accel": cell.accel, "counters": rec.get("counters", {})},
        ),
        # the recording's own times (L1's clock), not the moment this export runs
        started_utc=utc_from_epoch(rec["started_epoch_s"]) if "started_epoch_s" in rec else utc_now(),
        ended_utc=utc_from_epoch(rec["ended_epoch_s"]) if "ended_epoch_s" in rec else None,
        labels={
            "accel": cell.accel,
            "workload": cell.workload.name,
            "cell": cell.id,
            "lab_image": image.info.get("recipe_hash", ""),
            "release": image.release,
            "lab_packages": "; ".join(f"{k} {v}" for k, v in image.info.get("packages", {}).items()),
            "l1_qemu_cmdline": " ".join(l1_cmdline),
            "l0_kernel": l0.kernel_release,
            "l0_cpu": l0.cpu_model,
            "l0_hostname": l0.hostname,
            "l1_boot_s": boot.job_start_s,
            "l1_exit_s": boot.exit_s,
            "l1_device": dev.get("bdf", ""),
            "l2_start_s": rec.get("l2_start_s"),
            "l2_connect_s": rec.get("l2_connect_s"),
            "cell_wall_s": rec.get("wall_s"),
            "probes_attach_s": rec.get("probes_attach_s"),
            "probe_mode": rec.get("probe_mode"),
            **({"qemu_source": source} if source else {}),
            **cell.labels,
        },
    )
    w = RunWriter(out, meta, overwrite=overwrite)
    with w:
        for name in ("console.log", "job.log"):
            if (share / name).is_file():
                w.attach(name, share / name)
        for name in ATTACHMENTS:
            if (cell_dir / name).is_file():
                w.attach(name, cell_dir / name)
        status = rec.get("status", "failed")
        if status != "complete":
            w.meta.error = rec.get("error") or job_result.get("error") or "the cell did not run"
            w.close("failed")
            return out
        with np.load(cell_dir / "workload.npz") as z:
            samples = z["samples"]
        workload = df_workload(samples)
        if "stalls" in rec:
            windows = np.asarray(rec["stalls"], dtype=np.int64).reshape(-1, 3)
            w.append(STALLS, pd.DataFrame(windows, columns=list(STALL_COLUMNS)))
            if {"trigger_ts_ns", "delivered_ts_ns"} <= set(workload.columns):
                workload["stalled"] = stalled(workload["trigger_ts_ns"], workload["delivered_ts_ns"], windows)
                w.meta.labels["stalled_interrupts"] = int(workload["stalled"].sum())
            w.meta.labels["stall_windows"] = int(windows.shape[0])
        w.append("workload", workload)
        phases: dict[str, dict[str, int]] = rec["phases"]
        trace_path = cell_dir / "qemu-trace.log"
        trace_counts: dict[str, int] = {}
        traced: set[str] = set()
        auto = AutoTrace(0, {}, len(cell.workload.vectors))
        if trace_path.is_file():
            tdf = df_trace_events(trace_path)
            tdf["phase"] = _phase_of(tdf["offset"], phases)
            w.append("qemu_trace", tdf)
            trace_counts = _event_counts(tdf.loc[tdf["phase"] == "measure", "event"])
            auto = _auto_trace(tdf, len(cell.workload.vectors))
            traced = {str(e) for e in tdf["event"].unique()}
        probe_counts: dict[str, int] | None = None
        if cell.probes:
            tables: dict[str, np.ndarray[Any, Any]] = {}
            if (cell_dir / "probes.npz").is_file():
                with np.load(cell_dir / "probes.npz") as z:
                    tables = {k: z[k] for k in z.files}
            for name, arr in tables.items():
                w.append(name, arr)
            for name, st in rec.get("probes", {}).items():
                w.meta.probes[name] = ProbeStats(**st)
            m = phases["measure"]
            probe_counts = probe_counts_in(tables, m["start_ns"], m["end_ns"])
            for name, st in rec.get("probes", {}).items():
                parts = attached_parts(str(st.get("target", "")))
                if parts is None:
                    continue
                for event in IRQ_PATH_EVENTS:
                    if event in parts:  # attached: 0 when it saw nothing
                        probe_counts.setdefault(f"{name}.{event}", 0)
                    else:  # skipped or partial: no count to check
                        probe_counts.pop(f"{name}.{event}", None)
        irq0, irq1 = rec.get("irq_before", {}), rec.get("irq_after", {})
        vectors = [str(v) for v in cell.workload.vectors]
        irq_delta = (
            sum(int(irq1[v]) - int(irq0[v]) for v in vectors)
            if all(v in irq0 and v in irq1 for v in vectors)
            else None
        )
        w.meta.checks = lab_checks(
            workload=cell.workload.name,
            accel=cell.accel,
            counters=rec["counters"],
            trace=trace_counts,
            irq_delta=irq_delta,
            probes=probe_counts,
            device=DeviceConfig.from_args(cell.accel, cell.qemu_args),
            traced=traced,
            auto=auto,
        )
        w.meta.labels["trace_counts_measure"] = json.dumps(trace_counts, sort_keys=True)
        w.meta.labels["irq_delta_measure"] = irq_delta
        if probe_counts is not None:
            w.meta.labels["probe_counts_measure"] = json.dumps(probe_counts, sort_keys=True)
        w.meta.workload.params["phases"] = phases
    return out
