"""The ``kvm_ioctls`` probe: its cmd numbers against <linux/kvm.h>, and real recordings on a KVM VM.

The stand-in (``kvm_standin.c``) makes a VM with an in-kernel irqchip and one vCPU (this host's
/dev/kvm allows that without vmx/svm) and issues known odd numbers of KVM_SET_GSI_ROUTING, KVM_IRQFD
(assign/deassign alternating) and KVM_SIGNAL_MSI, each returning 0, plus one VFIO SET_IRQS per routing
commit (so both ioctl probes share the tracepoints). A decoy process does the same and must not count.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from probe_helpers import HERE, StandIn, bpf, compile_c, start_record

from vfiobench import schema
from vfiobench.probes.catalog import bpf_dir, get_probe
from vfiobench.store import load_run

KVM_SRC = HERE / "kvm_standin.c"
N = 37  # routing commits (and SET_IRQS); N + 2 irqfd calls (assign first); OTHER MSIs: all odd
OTHER = 5
ENOTTY = 25


@pytest.fixture(scope="module")
def kvm_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return compile_c(KVM_SRC, tmp_path_factory.mktemp("kvm") / "kvm_standin")


# ---- no root --------------------------------------------------------------------------------------


def test_cmd_numbers_are_linux_kvm_h(tmp_path: Path) -> None:
    """The cmds in the schema and in the BPF source are the ones <linux/kvm.h> defines."""
    names = [name for _, name, _ in schema.KVM_IOCTL_CMDS.values()]
    src = tmp_path / "cmds.c"
    src.write_text(
        "#include <stdio.h>\n#include <linux/kvm.h>\nint main(void) {\n"
        + "".join(f'printf("{n} %lu\\n", (unsigned long){n});\n' for n in names)
        + 'printf("KVM_IRQFD_FLAG_DEASSIGN %lu\\n", (unsigned long)KVM_IRQFD_FLAG_DEASSIGN);\n'
        + "return 0; }\n"
    )
    exe = compile_c(src, tmp_path / "cmds")
    out = subprocess.run([str(exe)], capture_output=True, text=True, check=True).stdout
    header = {name: int(value) for name, value in (line.split() for line in out.splitlines())}
    assert header == {
        "KVM_SET_GSI_ROUTING": schema.KVM_SET_GSI_ROUTING,
        "KVM_IRQFD": schema.KVM_IRQFD,
        "KVM_SIGNAL_MSI": schema.KVM_SIGNAL_MSI,
        "KVM_IRQFD_FLAG_DEASSIGN": schema.KVM_IRQFD_FLAG_DEASSIGN,
    }
    text = (bpf_dir() / "kvm_ioctls.bpf.c").read_text()
    in_c = {f"KVM_{m[1]}": int(m[2], 16) for m in re.finditer(r"#define KVM_(\w+)_CMD (0x[0-9a-f]+)", text)}
    assert in_c == {n: header[n] for n in names}
    spec = get_probe("kvm_ioctls")
    assert re.search(r"#define VB_KVM_IOCTLS (\d+)", (bpf_dir() / "vfiobench.bpf.h").read_text())[1] == str(  # type: ignore[index]
        spec.probe_id
    )
    assert spec.ring == "kvm_ioctls_events" and f"BPF_RINGBUF_OUTPUT({spec.ring}," in text


# ---- real probes ----------------------------------------------------------------------------------


def _run(tmp_path: Path, kvm_bin: Path, spawn: type[StandIn], *args: str) -> Path:
    """Record the target (and a decoy running meanwhile) with ``args``; skip when KVM is unusable."""
    if not Path("/dev/kvm").exists():
        pytest.skip("no /dev/kvm here")
    target = spawn(kvm_bin, "kvm", N, 0, OTHER)
    decoy = spawn(kvm_bin, "kvm", N, 0, OTHER)
    out = tmp_path / "run"
    proc = start_record("--pid", str(target.pid), "--out", str(out), "--quiet", *args)
    for t in (target, decoy):
        t.go()
    assert target.proc.stdout is not None
    line = target.proc.stdout.readline().split()
    if line[:1] == ["error"]:
        proc.terminate()
        proc.communicate()
        pytest.skip(f"KVM is not usable here: {' '.join(line[1:])}")
    assert line[:2] == ["done", str(N + (N + 2) + OTHER)], line
    decoy.wait_done()
    target.finish()  # the recording stops when its target exits
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    decoy.finish()
    return out


@bpf
def test_exact_counts_arguments_and_pid_filter(tmp_path: Path, kvm_bin: Path, spawn: type[StandIn]) -> None:
    out = _run(tmp_path, kvm_bin, spawn, "--probe", "kvm_ioctls", "--probe", "set_irqs_ioctl")
    run = load_run(out)
    t = run.table("kvm_ioctls")
    assert list(t.columns) == list(get_probe("kvm_ioctls").columns)
    pid = int(t["pid"].iloc[0])
    assert set(t["pid"]) == {pid} and set(t["tid"]) == {pid}  # the target alone, not the decoy
    assert t["cmd"].value_counts().to_dict() == {
        schema.KVM_SET_GSI_ROUTING: N,
        schema.KVM_IRQFD: N + 2,
        schema.KVM_SIGNAL_MSI: OTHER,
    }
    assert (t["ret"] == 0).all() and t["arg_ok"].all() and t["fd"].nunique() == 1  # the VM fd
    assert (t["dur_ns"] > 0).all() and (t["dur_ns"] < 50_000_000).all()
    t = t.sort_values("ts_ns")
    routing = t[t["cmd"] == schema.KVM_SET_GSI_ROUTING]
    assert routing["arg0"].tolist() == [1 + i % 3 for i in range(N)]  # nr: the routes in the table
    assert (routing["arg1"] == 0).all() and (routing["arg2"] == 24).all() and (routing["arg3"] == 2).all()
    irqfd = t[t["cmd"] == schema.KVM_IRQFD]
    assert irqfd["arg2"].tolist() == [i % 2 * schema.KVM_IRQFD_FLAG_DEASSIGN for i in range(N + 2)]
    assert (irqfd["arg1"] == 24).all() and irqfd["arg0"].nunique() == 1  # gsi, one eventfd
    msi = t[t["cmd"] == schema.KVM_SIGNAL_MSI]
    assert (msi["arg0"] == 0xFEE00000).all() and msi["arg2"].tolist() == [0x40 + i % 16 for i in range(OTHER)]
    # the SET_IRQS probe on the same tracepoints counts its own ioctls, and only those
    ioctl = run.table("set_irqs_ioctl")
    assert len(ioctl) == N and (ioctl["ret"] == -ENOTTY).all() and set(ioctl["pid"]) == {pid}
    assert run.meta.probes["kvm_ioctls"].events == 2 * N + 2 + OTHER
    assert run.meta.probes["kvm_ioctls"].lost == 0


@bpf
def test_histogram_mode_counts_exactly(tmp_path: Path, kvm_bin: Path, spawn: type[StandIn]) -> None:
    out = _run(tmp_path, kvm_bin, spawn, "--probe", "kvm_ioctls", "--histogram")
    run = load_run(out)
    h = run.table("kvm_ioctls")
    assert list(h.columns) == ["bucket", "count", "lo_ns", "hi_ns"]
    # the three ioctls share the probe's one histogram
    assert int(h["count"].sum()) == 2 * N + 2 + OTHER == run.meta.probes["kvm_ioctls"].events
    assert run.meta.probes["kvm_ioctls"].mode == "histogram"
