"""Perfetto export of the ``kvm_ioctls`` table: one slice per ioctl, named after it, its words named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vfiobench.export.perfetto import frame_of, write_perfetto
from vfiobench.schema import KVM_IRQFD, KVM_SET_GSI_ROUTING, KVM_SIGNAL_MSI
from vfiobench.store import ProbeStats, RunMeta, RunWriter, load_run

MS = 1_000_000
BEGIN, END = 1, 2


def kvm_run(root: Path) -> Path:
    """Three delivered interrupts 10 ms apart, each with a route commit on thread 7 (unmask) and a
    KVM_SIGNAL_MSI (delivery); one irqfd deassign on thread 8 before the first trigger."""
    trig = np.array([10, 20, 30]) * MS
    meta = RunMeta(run_id="kvm", variant="stock", source="synthetic")
    with RunWriter(root / "kvm", meta) as w:
        w.append(
            "workload",
            pd.DataFrame(
                {"cycle": [0, 1, 2], "vector": 0, "trigger_ts_ns": trig, "delivered_ts_ns": trig + 5 * MS}
            ),
        )
        ts = np.concatenate([[5 * MS], trig + 1 * MS, trig + 4 * MS])
        w.append(
            "kvm_ioctls",
            pd.DataFrame(
                {
                    "ts_ns": ts,
                    "dur_ns": [20_000] + [300_000] * 3 + [10_000] * 3,
                    "pid": 4242,
                    "tid": [8] + [7] * 6,
                    "fd": 11,
                    "ret": 0,
                    "cmd": [KVM_IRQFD] + [KVM_SET_GSI_ROUTING] * 3 + [KVM_SIGNAL_MSI] * 3,
                    "arg_ok": True,
                    "arg0": [6] + [27] * 3 + [0xFEE00000] * 3,
                    "arg1": [24] + [0] * 3 + [0] * 3,
                    "arg2": [1] + [24] * 3 + [0x41] * 3,
                    "arg3": [0] + [2] * 3 + [0] * 3,
                }
            ).astype({c: "uint32" for c in ("cmd", "arg0", "arg1", "arg2", "arg3")}),
        )
        w.meta.probes["kvm_ioctls"] = ProbeStats("kvm_ioctls", 7)
    return root / "kvm"


def test_kvm_ioctls_are_slices_named_after_the_ioctl(tmp_path: Path) -> None:
    summary = write_perfetto([load_run(kvm_run(tmp_path / "runs"))], tmp_path / "kvm.pftrace")
    assert summary.probe_calls == 7
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    trace = Trace.FromString(summary.path.read_bytes())
    process = next(p.track_descriptor.process for p in trace.packet if p.HasField("track_descriptor"))
    assert process.process_name == "stock · kvm (QEMU pid 4242)"  # from kvm_ioctls: no SET_IRQS table
    assert summary.slices["KVM_SET_GSI_ROUTING"] == 3 and summary.slices["KVM_SIGNAL_MSI"] == 3
    assert summary.slices["KVM_IRQFD"] == 1
    ev = frame_of(summary.path)
    begins = ev[ev["type"] == BEGIN]
    routes = begins[begins["name"] == "KVM_SET_GSI_ROUTING"]
    assert routes["timestamp"].tolist() == [11 * MS, 21 * MS, 31 * MS]
    assert sorted(ev[ev["type"] == END]["timestamp"])[:2] == [5 * MS + 20_000, 11 * MS + 300_000]
    # each interrupt's flow holds its route commit and its MSI; the deassign before it none
    assert routes["flow_ids"].map(len).tolist() == [1, 1, 1]
    assert begins[begins["name"] == "KVM_IRQFD"]["flow_ids"].map(len).tolist() == [0]
    args = {
        p.track_event.name: {a.name: a.int_value for a in p.track_event.debug_annotations}
        for p in trace.packet
        if p.HasField("track_event") and p.track_event.name.startswith("KVM_")
    }
    assert args["KVM_IRQFD"] == {"fd": 11, "ret": 0, "eventfd": 6, "gsi": 24, "flags": 1, "resamplefd": 0}
    assert args["KVM_SET_GSI_ROUTING"] == {"fd": 11, "ret": 0, "nr": 27, "flags": 0, "gsi0": 24, "type0": 2}
    assert args["KVM_SIGNAL_MSI"]["address_lo"] == 0xFEE00000 and args["KVM_SIGNAL_MSI"]["data"] == 0x41
