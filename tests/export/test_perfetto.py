"""Perfetto export: the written trace decoded back with Perfetto's own protobuf classes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from vfiobench.cli import main
from vfiobench.export.perfetto import frame_of, write_perfetto
from vfiobench.store import ProbeStats, RunMeta, RunWriter, load_run

MS = 1_000_000
SAMPLE = Path(__file__).resolve().parents[2] / "data" / "sample"
BEGIN, END, INSTANT, COUNTER = 1, 2, 3, 4


def hand_built_run(root: Path) -> Path:
    """Three interrupts on vector 0 (10 ms apart, the third undelivered), each with one SET_IRQS on
    thread 7 and one PBA toggle holding a commit; a background commit on thread 9; a host IRQ on
    CPU 1 and an eventfd signal (a point event) per interrupt."""
    trig = np.array([10, 20, 30]) * MS
    meta = RunMeta(run_id="golden", variant="stock", source="synthetic")
    with RunWriter(root / "golden", meta) as w:
        w.append(
            "workload",
            pd.DataFrame(
                {
                    "cycle": [0, 1, 2],
                    "vector": 0,
                    "trigger_ts_ns": trig,
                    "delivered_ts_ns": [trig[0] + 5 * MS, trig[1] + 5 * MS, -1],
                    "latency_ns": [5 * MS, 5 * MS, -1],
                    "delivered": [True, True, False],
                }
            ),
        )
        w.append(
            "set_irqs_ioctl",
            pd.DataFrame(
                {"ts_ns": trig + 1 * MS, "dur_ns": 300_000, "pid": 4242, "tid": 7, "fd": 15, "ret": 0}
            ),
        )
        w.append(
            "pba_toggle",
            pd.DataFrame(
                {
                    "ts_ns": trig + 2 * MS,
                    "dur_ns": 1 * MS,
                    "tid": 7,
                    "mr": 0xABC0,
                    "enabled": True,
                    "is_pba": True,
                }
            ).astype({"mr": "uint64"}),
        )
        w.append(
            "transaction_commit",
            pd.DataFrame(
                {
                    "ts_ns": [*(trig + 2 * MS + 100_000), 40 * MS],  # nested in each toggle; background
                    "dur_ns": [800_000] * 3 + [50_000],
                    "tid": [7, 7, 7, 9],
                    "depth": 0,
                }
            ),
        )
        w.append(
            "irq_path",
            pd.DataFrame(
                {
                    "ts_ns": np.concatenate([trig + 500_000, trig + 510_000]),
                    "event": ["host_irq"] * 3 + ["eventfd_signal"] * 3,
                    "vector": 0,
                    "dur_ns": [20_000] * 3 + [-1] * 3,
                    "tid": 0,
                    "cpu": 1,
                    "arg0": np.uint64(18395262911028869824),  # a u64 past int64: written as such
                    "arg1": 0,
                }
            ),
        )
        w.append(
            "pba_regions",
            pd.DataFrame({"mr": [0xABC0], "name": ["msix-pba"], "name_offset": [40], "is_pba": [True]}),
        )
        for name in ("set_irqs_ioctl", "pba_toggle", "transaction_commit", "irq_path"):
            w.meta.probes[name] = ProbeStats(name, 0)
    return root / "golden"


def decode(path: Path) -> Any:
    from perfetto.protos.perfetto.trace.perfetto_trace_pb2 import Trace

    return Trace.FromString(path.read_bytes())


def track_names(trace: Any) -> dict[int, str]:
    out = {}
    for p in trace.packet:
        if p.HasField("track_descriptor"):
            d = p.track_descriptor
            out[d.uuid] = d.thread.thread_name or d.process.process_name or d.name
    return out


def test_a_hand_built_run_round_trips_exactly(tmp_path: Path) -> None:
    run = load_run(hand_built_run(tmp_path / "runs"))
    summary = write_perfetto([run], tmp_path / "golden.pftrace")
    trace = decode(summary.path)
    names = track_names(trace)
    ev = frame_of(summary.path)
    ev["track"] = ev["track_uuid"].map(names)
    begins = ev[ev["type"] == BEGIN]
    # one slice per probe call and per delivered interrupt, on the right track
    per_track = begins.groupby(["track", "name"]).size().to_dict()
    assert per_track == {
        ("tid 7", "VFIO_DEVICE_SET_IRQS"): 3,
        ("tid 7", "memory_region_set_enabled"): 3,
        ("tid 7", "memory_region_transaction_commit"): 3,
        ("tid 9", "memory_region_transaction_commit"): 1,
        ("CPU 1 (host interrupt context)", "host_irq"): 3,
        ("vector 0 (guest interrupts)", "interrupt"): 2,
    }
    assert summary.slices["memory_region_transaction_commit"] == 4
    assert summary.probe_calls == 3 + 3 + 4 + 6  # ioctls, toggles, commits, irq_path events
    # timestamps exactly as recorded, begin and end
    commits = run.table("transaction_commit")
    got = begins[begins["name"] == "memory_region_transaction_commit"]["timestamp"].sort_values().tolist()
    assert got == sorted(commits["ts_ns"].tolist())
    ends = ev[ev["type"] == END]["timestamp"].tolist()
    assert set((commits["ts_ns"] + commits["dur_ns"]).tolist()) <= set(ends)
    # every track nests: each end closes the slice begun last on its track
    open_: dict[int, list[int]] = {}
    for _, row in ev.iterrows():
        if row["type"] == BEGIN:
            open_.setdefault(row["track_uuid"], []).append(row["timestamp"])
        elif row["type"] == END:
            assert open_[row["track_uuid"]], row
            open_[row["track_uuid"]].pop()
    assert all(not v for v in open_.values())
    # one flow per interrupt: its interrupt slice and every event in its window share the id
    flows = begins.explode("flow_ids").dropna(subset=["flow_ids"])
    instants = ev[ev["type"] == INSTANT].explode("flow_ids").dropna(subset=["flow_ids"])
    members = pd.concat([flows, instants]).groupby("flow_ids")["name"].apply(sorted).tolist()
    assert len(members) == 3 == summary.flows  # the undelivered one too: its stages up to the PBA
    stages = ["VFIO_DEVICE_SET_IRQS", "memory_region_set_enabled", "memory_region_transaction_commit"]
    stages += ["host_irq", "eventfd_signal"]
    assert sorted(members) == sorted(
        [sorted([*stages, "interrupt"])] * 2 + [sorted([*stages, "undelivered interrupt"])]
    )
    # the background commit belongs to no interrupt
    bg = begins[(begins["track"] == "tid 9")]
    assert bg["flow_ids"].map(len).tolist() == [0]
    # the undelivered interrupt is an instant; eventfd signals are instants with their u64 argument
    assert (ev[ev["type"] == INSTANT]["name"] == "undelivered interrupt").sum() == 1
    args = {
        a.name: (a.uint_value or a.int_value or a.string_value)
        for p in trace.packet
        if p.HasField("track_event") and p.track_event.name == "eventfd_signal"
        for a in p.track_event.debug_annotations
    }
    assert args["arg0"] == 18395262911028869824
    pba = next(p for p in trace.packet if p.track_event.name == "memory_region_set_enabled")
    assert {a.name: a.string_value for a in pba.track_event.debug_annotations}["region"] == "msix-pba"
    # the run's metadata on an instant named "run"; counters of events per second
    meta = next(p for p in trace.packet if p.track_event.name == "run")
    fields = {a.name: a.string_value or a.int_value for a in meta.track_event.debug_annotations}
    assert fields["run_id"] == "golden" and fields["variant"] == "stock"
    assert summary.counters == len(ev[ev["type"] == COUNTER]) > 0
    assert names[next(iter(names))].startswith("stock · golden (QEMU pid 4242)")


def test_a_real_lab_run_keeps_every_event_and_one_flow_per_complete_interrupt(tmp_path: Path) -> None:
    if not SAMPLE.is_dir():
        pytest.skip("data/sample/ is absent (not a clone of the repository)")
    run = load_run(SAMPLE / "pba-stock-mask-every-irq-kvm-r0-p")
    s = write_perfetto([run], tmp_path / "lab.pftrace")
    assert s.slices["VFIO_DEVICE_SET_IRQS"] == len(run.table("set_irqs_ioctl"))
    assert s.slices["memory_region_transaction_commit"] == len(run.table("transaction_commit"))
    assert s.slices["memory_region_set_enabled"] == len(run.table("pba_toggle"))
    path = run.table("irq_path")
    assert s.slices["host_irq"] == int((path["event"] == "host_irq").sum())
    delivered = int(run.table("workload")["delivered"].sum())
    assert s.slices["interrupt"] == delivered
    assert s.flows == len(run.table("workload"))  # one per interrupt with a window


def test_the_cli_writes_a_trace_and_names_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "runs"
    hand_built_run(root)
    assert main(["export", "perfetto", str(root), "--out", str(tmp_path / "t.pftrace")]) == 0
    out = capsys.readouterr().out
    assert "1 runs ->" in out and "3 interrupt flows" in out and (tmp_path / "t.pftrace").stat().st_size > 0
    (tmp_path / "empty").mkdir()
    assert main(["export", "perfetto", str(tmp_path / "empty"), "--out", str(tmp_path / "u.pftrace")]) == 2
    assert "no runs in" in capsys.readouterr().err


def test_the_run_set_object_writes_it_too(tmp_path: Path) -> None:
    import vfiobench as vb

    root = tmp_path / "runs"
    hand_built_run(root)
    out = vb.load(root).to_perfetto(tmp_path / "api.pftrace")
    assert Path(out).is_file() and len(frame_of(out)) > 0
