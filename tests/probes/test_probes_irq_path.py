"""The ``irq_path`` probe: its C pieces against gcc, and real recordings on the irqpath stand-in.

The stand-in (``irqpath_standin.c``) has QEMU 7.2's shape: static ``vfio_msi_interrupt`` calling
``msix_notify``, which has ``msix_set_pending`` inlined while the out-of-line copy stays exported.
This host has no vfio device, so no ``vfio-msix`` handler ever runs here: the host-IRQ part is
checked for attaching and filtering (virtio's interrupts fire meanwhile and must not leak in), and
for pairing entry/exit on real interrupts by pointing its name prefix at virtio's handlers. The
kprobe part (``eventfd_signal``) needs a kernel with kprobes (the lab VM); without them it is
skipped and says so in ``run.json``.
"""

from __future__ import annotations

import mmap
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from probe_helpers import HERE, StandIn, bpf, compile_c, start_record

from vfiobench.analysis import timeline
from vfiobench.errors import MissingSymbolError, ProbeError
from vfiobench.probes.catalog import IRQ_PATH_PARTS, PROBES, bpf_dir, get_probe
from vfiobench.probes.program import build_program
from vfiobench.probes.resolve import inlined_copies, resolve_parts
from vfiobench.qemu.binary import ElfFile
from vfiobench.schema import IRQ_PATH_EVENTS
from vfiobench.store import load_run

IRQPATH_SRC = HERE / "irqpath_standin.c"
N = 37  # interrupts driven through vfio_msi_interrupt (odd, prime)
OTHER = 5  # direct calls of the out-of-line msix_set_pending(dev, 7)
KPROBES = Path("/sys/kernel/tracing/kprobe_events").exists()


@pytest.fixture(scope="module")
def irqpath_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in with debug info (like the project's QEMU build)."""
    d = tmp_path_factory.mktemp("irqpath")
    return compile_c(IRQPATH_SRC, d / "irqpath", "-g", "-rdynamic", "-fno-omit-frame-pointer")


@pytest.fixture(scope="module")
def irqpath_stripped(irqpath_bin: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in stripped like Debian's QEMU: exported functions only, no static ones, no DWARF."""
    if shutil.which("strip") is None:
        pytest.skip("strip (binutils) is missing")
    out = tmp_path_factory.mktemp("irqpath-stripped") / "irqpath"
    shutil.copy(irqpath_bin, out)
    subprocess.run(["strip", str(out)], check=True)
    return out


# ---- no root --------------------------------------------------------------------------------------


def test_event_codes_mirror_the_c_defines_and_the_timeline() -> None:
    text = (bpf_dir() / "events.bpf.h").read_text()
    codes = {m[1].lower(): int(m[2]) for m in re.finditer(r"#define VB_EV_(\w+) (\d+)", text)}
    assert sorted(codes, key=codes.__getitem__) == list(IRQ_PATH_EVENTS)
    assert tuple(timeline.IRQ_PATH_EVENTS) == IRQ_PATH_EVENTS
    assert IRQ_PATH_EVENTS[-1] == "kvm_signal_msi"  # QEMU's own KVM_SIGNAL_MSI: recorded, no milestone
    spec = get_probe("irq_path")
    assert spec.columns[:6] == ("ts_ns", "event", "vector", "dur_ns", "tid", "cpu")  # the timeline's spec
    assert re.search(r"#define VB_IRQ_PATH (\d+)", (bpf_dir() / "vfiobench.bpf.h").read_text())[1] == str(  # type: ignore[index]
        spec.probe_id
    )


@pytest.mark.parametrize(
    ("prefix", "name", "match", "vector"),
    [
        ("vfio-msix", "vfio-msix[0](0000:00:03.0)", 1, 0),
        ("vfio-msix", "vfio-msix[37](0000:01:00.0)", 1, 37),
        ("vfio-msix", "vfio-msix[123456](x)", 1, 123456),
        ("vfio-msix", "vfio-msix[1234567](x)", 1, -1),  # more than 6 digits: no vector
        ("vfio-msix", "vfio-msix[](0000:00:03.0)", 1, -1),
        ("vfio-msix", "vfio-msix[3x](0000:00:03.0)", 1, -1),
        ("vfio-msix", "vfio-msi[2](0000:00:03.0)", 0, -1),  # MSI, not MSI-X
        ("vfio-msix", "virtio1-req.0", 0, -1),
        ("vfio-msix", "vfio-msi", 0, -1),
        ("virtio", "virtio1-req.0", 1, -1),
    ],
)
def test_handler_names_in_c(tmp_path: Path, prefix: str, name: str, match: int, vector: int) -> None:
    """irq_name.bpf.h compiled with gcc: which handler names are taken, and their vector."""
    src = tmp_path / "names.c"
    src.write_text(
        "#include <stdio.h>\n#include <string.h>\n"
        f'#define IRQ_NAME_PREFIX "{prefix}"\n'
        f'#include "{bpf_dir() / "irq_name.bpf.h"}"\n'
        "int main(int argc, char **argv) { char b[VB_IRQ_NAME_LEN] = {0};"
        " strncpy(b, argv[1], sizeof(b) - 1);"
        ' int m = vb_irq_name_match(b); printf("%d %d\\n", m, m ? vb_irq_name_vector(b) : -1); return 0; }\n'
    )
    exe = compile_c(src, tmp_path / "names", "-Wno-stringop-truncation", "-Wno-unknown-pragmas")
    out = subprocess.run([str(exe), name], capture_output=True, text=True, check=True).stdout.split()
    assert [int(x) for x in out] == [match, vector]


def test_program_specialises_the_prefix_and_refuses_bad_ones() -> None:
    spec = get_probe("irq_path")
    prog = build_program([PROBES["set_irqs_ioctl"], spec], irq_name_prefix="vfio-msi")
    assert '-DIRQ_NAME_PREFIX="vfio-msi"' in prog.cflags
    assert prog.files == ("common.bpf.c", "set_irqs_ioctl.bpf.c", "irq_path.bpf.c")
    assert not any("IRQ_NAME_PREFIX" in f for f in build_program([PROBES["set_irqs_ioctl"]]).cflags)
    for bad in ("", 'a"b', "x" * 25, "vfio msix"):
        with pytest.raises(ProbeError, match="prefix"):
            build_program([spec], irq_name_prefix=bad)


def test_histogram_mode_is_refused() -> None:
    from vfiobench.probes.tracer import Tracer

    with pytest.raises(ProbeError, match="no histogram mode"):
        Tracer(os.getpid(), probes=["irq_path"], histogram=True)


def objdump(path: Path, start: int, stop: int) -> str:
    """Disassembly of ``path`` between two addresses."""
    cmd = ["objdump", "-d", f"--start-address={start:#x}", f"--stop-address={stop:#x}", str(path)]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def test_inlined_copy_found_from_dwarf(irqpath_bin: Path, irqpath_stripped: Path) -> None:
    if shutil.which("addr2line") is None:
        pytest.skip("addr2line (binutils) is missing")
    elf = ElfFile(irqpath_bin)
    notify = elf.require_symbol("msix_notify")
    copies = inlined_copies(elf, "msix_set_pending", notify)
    # flatten inlines the one call: one copy, on the masked branch (not the function's entry)
    assert len(copies) == 1 and notify.address < copies[0] < notify.address + notify.size
    disasm = objdump(elf.path, notify.address, copies[0])
    assert re.search(rf"\bjne\s+{copies[0]:x}\b", disasm), "the copy starts where the masked branch lands"
    assert inlined_copies(elf, "msix_notify", elf.require_symbol("vfio_msi_interrupt")) == []  # noipa
    stripped = ElfFile(irqpath_stripped)
    with pytest.raises(MissingSymbolError, match="no debug info"):
        inlined_copies(stripped, "msix_set_pending", stripped.require_symbol("msix_notify"))


def test_parts_resolve_or_skip_with_the_reason(irqpath_bin: Path, irqpath_stripped: Path) -> None:
    if not Path("/sys/kernel/tracing/events").is_dir():
        pytest.skip("tracefs is not mounted")
    spec = get_probe("irq_path")
    full = {t.part.event: t for t in resolve_parts(spec, None, irqpath_bin)}
    assert full["qemu_irq"].skipped is None and full["msix_notify"].skipped is None
    assert full["msix_set_pending"].inlined and "inlined copies at msix_notify+0x" in (
        full["msix_set_pending"].describe()
    )
    assert (full["eventfd_signal"].skipped is None) == KPROBES
    stripped = {t.part.event: t for t in resolve_parts(spec, None, irqpath_stripped)}
    assert "no symbol 'vfio_msi_interrupt'" in (stripped["qemu_irq"].skipped or "")
    assert stripped["msix_notify"].skipped is None and stripped["msix_set_pending"].skipped is None
    assert "not searched" in stripped["msix_set_pending"].note
    none = {t.part.event: t for t in resolve_parts(spec, None, None)}
    assert all("needs the QEMU binary" in (none[e].skipped or "") for e in ("qemu_irq", "msix_notify"))
    assert none["host_irq"].skipped is None


def test_doctor_lists_each_part(irqpath_stripped: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from vfiobench.cli import main

    if not Path("/sys/kernel/tracing/events").is_dir():
        pytest.skip("tracefs is not mounted")
    rc = main(["doctor", "--probe", "irq_path", "--qemu", str(irqpath_stripped), "--no-compile"])
    out = capsys.readouterr().out
    lines = {ln.split()[2]: ln for ln in out.splitlines() if ln[2:].startswith("irq_path ")}
    assert list(lines) == [p.event for p in IRQ_PATH_PARTS]
    assert lines["qemu_irq"].startswith("- ") and "no symbol 'vfio_msi_interrupt'" in lines["qemu_irq"]
    assert "vfiobench qemu build" in lines["qemu_irq"]
    assert lines["msix_notify"].startswith("✓ ") and lines["host_irq"].startswith("✓ ")
    # a skipped part is marked "-" (not needed), never "✗": it fails nothing
    assert "✗" not in "".join(lines.values()) and (rc == 0 or "✗" in out)


@bpf
def test_every_program_passes_the_verifier() -> None:
    """BCC loads a program only when attaching it: load each one (eventfd_signal's too, which this
    kernel cannot attach) so a verifier rejection shows here, not first in the lab VM."""
    from vfiobench.probes.headers import headers_env

    os.environ.update(headers_env())
    from bcc import BPF

    spec = get_probe("irq_path")
    prog = build_program([spec], pid=os.getpid())
    b = BPF(text=prog.text.encode(), cflags=list(prog.cflags))
    try:
        loaded = []
        for part in spec.parts:
            kind = BPF.TRACEPOINT if part.kind == "tracepoint" else BPF.KPROBE  # uprobes are kprobe-type
            for fn in (part.entry_fn, part.return_fn, part.inline_fn):
                if fn is not None:
                    assert b.load_func(fn.encode(), kind).fd >= 0
                    loaded.append(fn)
    finally:
        b.cleanup()
    assert len(loaded) == 11


# ---- recordings -----------------------------------------------------------------------------------


def _record(*args: str) -> subprocess.Popen[str]:
    return start_record("--probe", "irq_path", *args)


def _drive(proc: subprocess.Popen[str], *targets: StandIn) -> tuple[str, str]:
    for t in targets:
        t.go()
    for t in targets:
        assert t.wait_done() == N
    targets[0].finish()  # the recording stops when its target exits
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return out, err


@bpf
def test_qemu_functions_exact_counts_and_vectors(
    tmp_path: Path, irqpath_bin: Path, spawn: type[StandIn]
) -> None:
    target = spawn(irqpath_bin, "qemu", N, 200, OTHER)
    decoy = spawn(irqpath_bin, "qemu", N, 200, OTHER)  # same binary and calls: not counted
    out = tmp_path / "run"
    proc = _record("--pid", str(target.pid), "--out", str(out), "--variant", "standin")
    _drive(proc, target, decoy)
    decoy.finish()

    run = load_run(out)
    t = run.table("irq_path")
    assert list(t.columns) == ["ts_ns", "event", "vector", "dur_ns", "tid", "cpu", "arg0", "arg1"]
    counts = t["event"].value_counts().to_dict()
    # this host has no vfio device: no vfio-msix handler runs, so no host_irq (nor eventfd/kvm_msi)
    assert counts == {"qemu_irq": N, "msix_notify": N, "msix_set_pending": (N + 1) // 2 + OTHER}
    assert set(t["tid"]) == {target.pid}
    assert (t["dur_ns"][t["arg1"] == 0] > 0).all()

    irq = t[t["event"] == "qemu_irq"].sort_values("ts_ns")
    notify = t[t["event"] == "msix_notify"].sort_values("ts_ns")
    pending = t[t["event"] == "msix_set_pending"].sort_values("ts_ns")
    assert (irq["vector"] == -1).all() and irq["arg0"].nunique() == 3  # three VFIOMSIVector pointers
    assert notify["vector"].tolist() == [i % 3 for i in range(N)]
    inl, ool = pending[pending["arg1"] == 1], pending[pending["arg1"] == 0]
    # masked on even interrupts: msix_notify sets the pending bit through its inlined copy
    assert inl["vector"].tolist() == [i % 3 for i in range(0, N, 2)]
    assert (inl["dur_ns"] == -1).all() and (inl["arg0"] == notify["arg0"].iloc[0]).all()
    assert ool["vector"].tolist() == [7] * OTHER and (ool["dur_ns"] > 0).all()
    # nesting: each msix_notify inside its vfio_msi_interrupt, each inlined hit inside a notify
    i_ts, i_end = irq["ts_ns"].to_numpy(), (irq["ts_ns"] + irq["dur_ns"]).to_numpy()
    n_ts, n_end = notify["ts_ns"].to_numpy(), (notify["ts_ns"] + notify["dur_ns"]).to_numpy()
    assert (n_ts >= i_ts).all() and (n_end <= i_end).all()
    k = np.searchsorted(n_ts, inl["ts_ns"].to_numpy()) - 1
    assert (inl["ts_ns"].to_numpy() <= n_end[k]).all() and (k % 2 == 0).all()

    stats = run.meta.probes["irq_path"]
    assert stats.events == len(t) == run.meta.tables["irq_path"] and stats.lost == 0
    assert "host_irq=raw_tracepoint:irq:irq_handler_entry+irq:irq_handler_exit" in stats.target
    assert "msix_set_pending=uprobe+uretprobe:msix_set_pending" in stats.target
    assert "inlined copies at msix_notify+0x" in stats.target
    assert ("eventfd_signal=skipped (this kernel has no kprobes" in stats.target) == (not KPROBES)


@bpf
def test_stripped_binary_skips_vfio_msi_interrupt_only(
    tmp_path: Path, irqpath_stripped: Path, spawn: type[StandIn]
) -> None:
    target = spawn(irqpath_stripped, "qemu", N, 0, OTHER)
    out = tmp_path / "run"
    proc = _record("--pid", str(target.pid), "--out", str(out))
    stdout, _ = _drive(proc, target)
    assert "irq_path: skipped qemu_irq" in stdout
    run = load_run(out)
    assert run.meta.status == "complete"
    target_line = run.meta.probes["irq_path"].target
    assert "qemu_irq=skipped (" in target_line and "no symbol 'vfio_msi_interrupt'" in target_line
    assert "copies inlined in msix_notify not searched" in target_line
    counts = run.table("irq_path")["event"].value_counts().to_dict()
    # without DWARF only the out-of-line msix_set_pending is seen
    assert counts == {"msix_notify": N, "msix_set_pending": OTHER}


@bpf
def test_kvm_msi_exact_count_from_the_target_only(
    tmp_path: Path, irqpath_bin: Path, spawn: type[StandIn]
) -> None:
    if not Path("/dev/kvm").exists():
        pytest.skip("no /dev/kvm here")
    if not Path("/sys/kernel/tracing/events/kvm/kvm_msi_set_irq").is_dir():
        pytest.skip("the kvm module is not loaded (no kvm:kvm_msi_set_irq tracepoint)")
    target = spawn(irqpath_bin, "kvm", N, 0, 0)
    decoy = spawn(irqpath_bin, "kvm", N, 0, 0)
    out = tmp_path / "run"
    proc = _record("--pid", str(target.pid), "--qemu", str(irqpath_bin), "--out", str(out))
    for t in (target, decoy):
        t.go()
    assert target.proc.stdout is not None
    line = target.proc.stdout.readline().split()
    if line[:1] == ["error"]:
        proc.terminate()
        proc.communicate()
        pytest.skip(f"KVM is not usable here: {' '.join(line[1:])}")
    assert line[:2] == ["done", str(N)]
    decoy.wait_done()
    target.finish()
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    t = load_run(out).table("irq_path")
    # process context (no host IRQ): QEMU's own route, not the irqfd one
    assert "kvm_msi" not in set(t["event"])
    kvm = t[t["event"] == "kvm_signal_msi"].sort_values("ts_ns")
    assert len(kvm) == N and set(kvm["tid"]) == {target.pid}
    assert (kvm["arg0"] == 0xFEE00000).all() and kvm["arg1"].tolist() == [0x40 + i % 16 for i in range(N)]
    assert (kvm["vector"] == -1).all() and (kvm["dur_ns"] == -1).all()


# ---- host IRQ tracepoints on real interrupts --------------------------------------------------------


def _irq_lines(prefix: str) -> dict[int, int]:
    """``{irq: total count}`` of the /proc/interrupts lines with a handler name starting with prefix."""
    out = {}
    with open("/proc/interrupts", encoding="ascii", errors="replace") as f:
        ncpu = len(f.readline().split())
        for line in f:
            parts = line.split()
            if not parts or not parts[0].rstrip(":").isdigit():
                continue
            names = " ".join(parts[1 + ncpu :]).split()
            if any(n.rstrip(",").startswith(prefix) for n in names[-1:]):
                out[int(parts[0].rstrip(":"))] = sum(int(x) for x in parts[1 : 1 + ncpu])
    return out


def _disk_io(where: Path) -> None:
    """Direct writes and fsyncs: block-device interrupts (virtio-blk here)."""
    with mmap.mmap(-1, mmap.PAGESIZE * 16) as buf:  # page-aligned, as O_DIRECT needs
        fd = os.open(where / "io", os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
        try:
            for _ in range(32):
                os.pwrite(fd, buf, 0)
                os.fsync(fd)
        finally:
            os.close(fd)


@bpf
@pytest.mark.parametrize("prefix", ["vfio-msix", "virtio"])
def test_host_irq_filters_and_pairs_real_interrupts(tmp_path: Path, prefix: str) -> None:
    """vfio-msix (default): virtio's interrupts fire and none leaks in. virtio: every one is paired."""
    from vfiobench.probes.tracer import Tracer

    virtio = _irq_lines("virtio")
    if not virtio:
        pytest.skip("no virtio interrupts on this machine to drive the tracepoints")
    before = _irq_lines("virtio")
    with Tracer(os.getpid(), probes=["irq_path"], irq_name_prefix=prefix) as tracer:
        inner0 = _irq_lines("virtio")
        _disk_io(tmp_path)
        time.sleep(0.2)
        inner1 = _irq_lines("virtio")
        # the uprobe parts look in /proc/PID/exe (python here) and skip, the rest attaches
        assert "no symbol 'vfio_msi_interrupt'" in tracer.skipped_parts()["irq_path.qemu_irq"]
    after = _irq_lines("virtio")
    inner = sum(inner1[i] - inner0.get(i, 0) for i in inner1)
    outer = sum(after[i] - before.get(i, 0) for i in after)
    assert inner > 0, "the disk writes raised no virtio interrupt"
    t = pd.DataFrame(tracer.frames()["irq_path"])
    host = t[t["event"] == "host_irq"]
    if prefix == "vfio-msix":
        assert len(t) == 0, f"foreign handlers leaked in: {t['arg0'].unique()}"
        return
    # one event per handler run, paired entry -> exit on its CPU; no name without [N]: vector -1
    # programs the kernel skipped (another BPF program active on that CPU) are the only misses
    assert inner - (tracer.misses["irq_path"] or 0) <= len(host) <= outer + outer // 20 + 2
    assert set(host["arg0"].astype(int)) <= set(after) and (host["vector"] == -1).all()
    assert (host["dur_ns"] > 0).all() and (host["dur_ns"] < 50_000_000).all()
    assert (host["arg1"] == 1).mean() > 0.9  # IRQ_HANDLED
    assert tracer.lost["irq_path"] == 0
