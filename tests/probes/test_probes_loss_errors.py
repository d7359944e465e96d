"""Honest losses (recorded + lost == sent) and the named errors, through the real CLI."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from probe_helpers import StandIn, bpf_unavailable_reason

from vfiobench.cli import main
from vfiobench.store import load_run


@pytest.mark.parametrize(("mode", "probe"), [("flood", "set_irqs_ioctl"), ("spin", "pba_toggle")])
@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_overflowing_a_small_ring_counts_every_lost_event(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn], mode: str, probe: str
) -> None:
    sent = 200_001
    target = spawn(standin_bin, mode, sent, 0, 0)
    out = tmp_path / "run"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "vfiobench",
            "record",
            "--pid",
            str(target.pid),
            "--probe",
            probe,
            "--buffer-pages",
            "1",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    while "attached" not in (line := proc.stderr.readline()):
        assert line, proc.communicate()
    target.go()
    assert target.wait_done() == sent
    target.finish()
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    run = load_run(out)
    stats = run.meta.probes[probe]
    recorded = len(run.table(probe))
    assert stats.lost > 0, "a one-page ring should overflow"
    assert recorded == stats.events
    assert recorded + stats.lost == sent
    assert run.meta.lost_events == stats.lost
    assert f"{stats.lost:,} lost" in stdout


def _record(*args: str) -> tuple[int, str]:
    err = io.StringIO()
    with redirect_stderr(err):
        rc = main(["record", *args])
    return rc, err.getvalue()


@pytest.fixture
def idle_target(standin_bin: Path, spawn: type[StandIn]) -> StandIn:
    return spawn(standin_bin, "toggle", 1, 0, 0)


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_missing_symbol(tmp_path: Path, idle_target: StandIn) -> None:
    rc, err = _record(
        "--pid",
        str(idle_target.pid),
        "--qemu",
        "/bin/true",
        "--probe",
        "pba_toggle",
        "--out",
        str(tmp_path / "r"),
    )
    assert rc == 2
    assert err.count("\n") == 1 and "no symbol 'memory_region_set_enabled'" in err and "/bin/true" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_missing_binary(tmp_path: Path, idle_target: StandIn) -> None:
    rc, err = _record(
        "--pid", str(idle_target.pid), "--qemu", str(tmp_path / "qemu-nope"), "--out", str(tmp_path / "r")
    )
    assert rc == 2 and err.count("\n") == 1 and "qemu-nope: no such file" in err and "--qemu" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_missing_process(tmp_path: Path) -> None:
    pid = 4_000_000  # above pid_max's ceiling (2**22), so never a live process
    rc, err = _record("--pid", str(pid), "--out", str(tmp_path / "r"))
    assert rc == 2 and err.count("\n") == 1 and f"no process with pid {pid}" in err


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_no_kprobes(tmp_path: Path, idle_target: StandIn) -> None:
    if Path("/sys/kernel/tracing/kprobe_events").exists():
        pytest.skip("this kernel has kprobes; the no-kprobes error cannot be produced here")
    rc, err = _record(
        "--pid", str(idle_target.pid), "--probe", "set_vector_signal", "--out", str(tmp_path / "r")
    )
    assert rc == 2 and err.count("\n") == 1
    assert "no kprobes (/sys/kernel/tracing/kprobe_events is absent)" in err and "lab VM" in err
    assert not (tmp_path / "r").exists()


@pytest.mark.root
def test_not_root_is_a_privilege_error(tmp_path: Path) -> None:
    """Fork, drop to nobody, run the CLI: the named error, exit 2, no traceback."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges")

    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        code = 99
        try:
            os.close(r)
            os.dup2(w, 2)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            sys.stderr = os.fdopen(2, "w", closefd=False)
            code = main(["record", "--pid", str(os.getppid()), "--out", "/tmp/vfiobench-nobody-run"])
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(w)
    with os.fdopen(r) as f:
        err = f.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 2, err
    assert err.count("\n") == 1 and "needs root (running as uid 65534)" in err and "Traceback" not in err


def test_doctor_reports_each_check() -> None:
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        rc = main(["doctor", "--probe", "set_irqs_ioctl", "--probe", "set_vector_signal", "--no-compile"])
    text = out.getvalue()
    for name in ("root", "tracefs", "BCC", "kernel headers", "syscall tracepoints", "kprobes"):
        assert any(line[2:].startswith(name) for line in text.splitlines()), name
    reason = bpf_unavailable_reason()
    kprobes = Path("/sys/kernel/tracing/kprobe_events").exists()
    if reason is None and not kprobes:
        assert rc == 1 and "✗ kprobes" in text and "fix: run this probe where kprobes exist" in text
    elif reason is not None:
        assert rc == 1 and "✗" in text


@pytest.mark.root
@pytest.mark.bpf
@pytest.mark.usefixtures("bpf_ready")
def test_doctor_passes_with_a_trial_compile_here(standin_bin: Path) -> None:
    out = io.StringIO()
    from contextlib import redirect_stdout

    with redirect_stdout(out):
        rc = main(["doctor", "--qemu", str(standin_bin)])
    text = out.getvalue()
    assert rc == 0, text
    assert (
        "✓ compile and attach" in text and "memory_region_set_enabled at" in text and "probe at +0x4" in text
    )
