"""`vfiobench run` with the host backend, end to end: the stand-in plays QEMU, real probes attach.

The spec's QEMU command line launches the C stand-in (it exports memory_region_set_enabled and issues
SET_IRQS ioctls); the workload command releases it through its stdin and waits for its "done" line.
Two variants x two repetitions, probed and probe-free: every probed run must hold exactly 37 toggles
and 37 ioctls, every probe-free run none.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vfiobench.cli import main
from vfiobench.store import load_runs

N = 37
# release the stand-in through its stdin once it is ready, then wait for its "done" line
WORKLOAD = (
    "until grep -q ready {qemu_log}; do sleep 0.02; done; echo go > /proc/{pid}/fd/0; "
    "until grep -q done {qemu_log}; do sleep 0.02; done"
)

SPEC = """
[experiment]
name = "host"
backend = "host"
repetitions = 2
warmup = 0
accels = ["kvm"]

[[variants]]
name = "stock"
qemu = "system"
[[variants]]
name = "pba-always-on"
qemu = "system"
device_props = {{ "x-pba-always-on" = "on" }}

[[workloads]]
name = "standin"
cycles = {n}

[host]
timeout_s = 60
qemu_cmdline = ["{standin}", "both", "{{cycles}}", "300"]
workload_command = ["sh", "-c", {workload}]
"""


def test_host_experiment_records_exact_counts(
    tmp_path: Path, bpf_ready: None, standin_bin: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "host.toml"
    spec.write_text(SPEC.format(n=N, standin=standin_bin, workload=json.dumps(WORKLOAD)))
    out = tmp_path / "exp"
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    runs = load_runs(out / "runs")
    assert len(runs) == 2 * 2 * 2
    assert {r.meta.status for r in runs} == {"complete"}
    for run in runs:
        qemu_args = run.meta.qemu.cmdline
        if run.variant == "pba-always-on":
            assert qemu_args[-2:] == ["-global", "vfio-pci.x-pba-always-on=on"]
        if run.meta.kind == "probed":
            assert run.meta.probes["pba_toggle"].events == N
            assert run.meta.probes["set_irqs_ioctl"].events == N
            assert run.meta.lost_events == 0
            toggles = run.table("pba_toggle")
            assert len(toggles) == N and toggles["is_pba"].all()
            assert (toggles["dur_ns"] >= 300_000).all()
        else:
            assert run.meta.probes == {}
            assert not run.has_table("pba_toggle")
    # resuming a finished experiment does nothing
    assert main(["run", str(spec), "--out", str(out), "--no-progress"]) == 0
    assert "8/8 runs complete" in capsys.readouterr().out
