"""Recording beside other tracers: bpftrace on the same function, in either order; a tracer that
cannot share the address is named in one line by ``record`` and ``doctor``.

The kernel keeps one uprobe per (file, offset) and refuses a second registration there with another
reference-counter offset; bpftrace registers 0, so vfiobench must too (see
:mod:`vfiobench.probes.uprobes`). Counts are exact: a prime number of calls on the stand-in, and
on Debian's own QEMU booting the lab's kernel, bpftrace's count equals the run's.
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import pytest
from probe_helpers import StandIn

from vfiobench.probes.resolve import resolve_uprobe
from vfiobench.qemu.binary import ElfFile
from vfiobench.store import load_run

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

N = 37  # commits the stand-in makes (odd, prime)
COMMIT = "memory_region_transaction_commit"


def wait_for_line(
    proc: subprocess.Popen[str], stream: IO[str], done: Callable[[str], bool], what: str
) -> None:
    """Read ``stream`` until a line satisfies ``done``; fail with everything it said if it ends first."""
    seen = []
    while True:
        line = stream.readline()
        if not line:
            out, err = proc.communicate()
            pytest.fail(f"{what}: {''.join(seen)}{out or ''}{err or ''}")
        seen.append(line)
        if done(line):
            return


class Bpftrace:
    """``bpftrace`` counting calls of one function of ``binary`` by ``pid``, attached when constructed.

    It prints its running count every 200 ms; :meth:`wait_quiet` waits until it stops moving.
    """

    def __init__(self, binary: Path, function: str, pid: int) -> None:
        if shutil.which("bpftrace") is None:
            pytest.skip("bpftrace is not installed (apt-get install bpftrace)")
        prog = (
            f'BEGIN {{ @n = 0; printf("ready\\n"); }} '
            f"uprobe:{binary}:{function} /pid == {pid}/ {{ @n = @n + 1; }} "
            'interval:ms:200 { printf("n=%d\\n", @n); } '
            'END { printf("n=%d\\n", @n); clear(@n); }'
        )
        self.proc = subprocess.Popen(
            ["bpftrace", "-e", prog], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None
        wait_for_line(
            self.proc, self.proc.stdout, lambda line: line.strip() == "ready", "bpftrace did not attach"
        )
        self.values: list[tuple[float, int]] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith("n="):
                self.values.append((time.monotonic(), int(line[2:])))

    def wait_quiet(self, seconds: float = 1.5, timeout: float = 60.0) -> int:
        """Wait until the count has not moved for ``seconds``; returns it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.2)
            recent = [v for t, v in self.values if t >= time.monotonic() - seconds]
            if len(recent) >= int(seconds / 0.2) - 1 and len(set(recent)) == 1:
                return recent[-1]
        pytest.fail(f"the count never settled: {self.values[-5:]}")

    def count(self) -> int:
        """Stop it (SIGINT) and return how many calls it counted."""
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=60)
        self.reader.join(timeout=10)
        assert self.proc.returncode == 0, self.proc.stderr.read() if self.proc.stderr else ""
        for stream in (self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        return self.values[-1][1] if self.values else 0


class Record:
    """``python -m vfiobench record`` until Ctrl-C, started and waited for its attach line."""

    def __init__(self, pid: int, out: Path, *probes: str) -> None:
        args = [a for p in probes for a in ("--probe", p)]
        self.out = out
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vfiobench", "record", "--pid", str(pid), "--out", str(out), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        wait_for_line(self.proc, self.proc.stderr, lambda line: "attached" in line, "record did not attach")

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as its help says; returns (exit code, stdout)."""
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        return self.proc.returncode, out


def start_both(first: str, binary: Path, pid: int, out: Path) -> tuple[Bpftrace, Record]:
    if first == "bpftrace":
        bt = Bpftrace(binary, COMMIT, pid)
        return bt, Record(pid, out, "transaction_commit")
    rec = Record(pid, out, "transaction_commit")
    return Bpftrace(binary, COMMIT, pid), rec


@pytest.mark.parametrize("first", ["bpftrace", "record"])
def test_record_and_bpftrace_count_the_same_function_exactly(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn], first: str
) -> None:
    target = spawn(standin_bin, "toggle", N, 0, 0)  # N set_enabled calls, each tail-calling commit
    bt, rec = start_both(first, standin_bin, target.pid, tmp_path / "run")
    target.go()
    target.wait_done()
    time.sleep(0.3)  # let the ring drain
    rc, stdout = rec.stop()
    assert rc == 0, stdout
    assert bt.count() == N
    run = load_run(tmp_path / "run")
    assert run.meta.status == "complete"  # Ctrl-C is how a record without --duration ends
    assert "stopped (Ctrl-C)" in stdout
    assert run.meta.probes["transaction_commit"].events == len(run.table("transaction_commit")) == N


def pmu_uprobe(binary: Path, offset: int, pid: int, ref_ctr_offset: int) -> int:
    """Register a uprobe through the uprobe PMU alone (no BPF, no tracefs fallback): returns errno, 0 if held.

    BCC, and bpftrace through it, fall back to a tracefs event (reference-counter offset 0) when the
    PMU refuses; this does not, so it tells exactly which offset a uprobe already there was given.
    """
    pmu = Path("/sys/bus/event_source/devices/uprobe")
    assert (pmu / "format/ref_ctr_offset").read_text().strip() == "config:32-63"

    class Attr(ctypes.Structure):
        _fields_ = [  # struct perf_event_attr, up to config2
            ("type", ctypes.c_uint32),
            ("size", ctypes.c_uint32),
            ("config", ctypes.c_uint64),
            ("sample_period", ctypes.c_uint64),
            ("sample_type", ctypes.c_uint64),
            ("read_format", ctypes.c_uint64),
            ("flags", ctypes.c_uint64),
            ("wakeup_events", ctypes.c_uint32),
            ("bp_type", ctypes.c_uint32),
            ("config1", ctypes.c_uint64),
            ("config2", ctypes.c_uint64),
            ("pad", ctypes.c_uint8 * 56),
        ]

    path = ctypes.create_string_buffer(str(binary).encode())
    attr = Attr(
        type=int((pmu / "type").read_text()),
        size=ctypes.sizeof(Attr),
        config=ref_ctr_offset << 32,
        sample_period=1,
        config1=ctypes.addressof(path),
        config2=offset,
    )
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(298, ctypes.byref(attr), pid, -1, -1, 8)  # perf_event_open, FD_CLOEXEC
    if fd < 0:
        return ctypes.get_errno()
    os.close(fd)
    return 0


def test_record_registers_its_uprobes_with_offset_zero_as_bpftrace_does(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    """The offset the kernel holds for record's uprobe, read exactly (the order tests see it only when
    it is not 0: BCC's own binding passes whatever was in the argument slot, 0 on most calls here,
    0x6 in the report and once here)."""
    target = spawn(standin_bin, "toggle", N, 0, 0)
    rec = Record(target.pid, tmp_path / "run", "transaction_commit")
    t = resolve_uprobe(ElfFile(standin_bin), COMMIT)
    offset = t.address + t.offset  # a PIE's symbol address is its file offset
    try:
        assert pmu_uprobe(standin_bin, offset, target.pid, 0) == 0
        assert pmu_uprobe(standin_bin, offset, target.pid, 2) == errno.EINVAL  # the check is real
    finally:
        assert rec.stop()[0] == 0


HOLDER = textwrap.dedent(
    """
    import os, sys
    os.environ.update(__import__("vfiobench.probes.headers", fromlist=["x"]).headers_env())
    from bcc import BPF
    from vfiobench.probes.uprobes import attach_uprobe
    b = BPF(text=b"int hold(void *ctx) { return 0; }")
    # a reference-counter offset of 2, as BCC's Python binding may pass by accident (iovisor/bcc#5236)
    attach_uprobe(b, b"hold", sys.argv[1].encode(), int(sys.argv[2]), os.getpid(), ret=False,
                  ref_ctr_offset=2)
    print("held", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def conflicting_holder(standin_bin: Path) -> Iterator[int]:
    """A process holding a uprobe on the stand-in's commit that cannot be shared; yields its pid."""
    t = resolve_uprobe(ElfFile(standin_bin), COMMIT)
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(standin_bin), str(t.address + t.offset)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stdin is not None
    line = proc.stdout.readline()
    if line.strip() != "held":
        pytest.fail(f"holder did not attach: {proc.communicate()[1]}")
    yield proc.pid
    proc.communicate("\n", timeout=30)


def test_record_names_a_tracer_that_cannot_share_the_address(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn], conflicting_holder: int
) -> None:
    target = spawn(standin_bin, "toggle", N, 0, 0)
    out = tmp_path / "run"
    proc = subprocess.run(
        [sys.executable, "-m", "vfiobench", "record", "--pid", str(target.pid), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("vfiobench: error:"), proc.stderr  # no libbcc noise
    line = lines[0]
    assert "transaction_commit" in line and "another tracer holds a uprobe" in line
    assert f"pid {conflicting_holder} (python" in line and "stop that tracer" in line
    assert not out.exists()  # nothing attached, nothing recorded


def doctor(pid: int) -> subprocess.CompletedProcess[str]:
    """``python -m vfiobench doctor --pid PID``, output captured."""
    cmd = [sys.executable, "-m", "vfiobench", "doctor", "--pid", str(pid)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_doctor_attaches_what_record_would_and_names_the_conflict(
    standin_bin: Path, spawn: type[StandIn], conflicting_holder: int
) -> None:
    target = spawn(standin_bin, "toggle", N, 0, 0)
    proc = doctor(target.pid)
    assert proc.returncode == 1, proc.stdout
    bad = [ln for ln in proc.stdout.splitlines() if ln.startswith("✗")]
    assert len(bad) == 1 and bad[0].startswith("✗ compile and attach"), proc.stdout
    assert f"pid {conflicting_holder} (python" in bad[0]
    assert "1 needed check(s) failed" in proc.stdout


def test_doctor_with_a_pid_attaches_and_detaches(standin_bin: Path, spawn: type[StandIn]) -> None:
    target = spawn(standin_bin, "toggle", N, 0, 0)
    proc = doctor(target.pid)
    assert proc.returncode == 0, proc.stdout
    # 1 tracepoint pair (2) + pba_toggle and transaction_commit (uprobe + uretprobe each, 4)
    assert f"6 attach points attached to pid {target.pid} and detached" in proc.stdout
    bt = Bpftrace(standin_bin, COMMIT, target.pid)  # nothing left behind that bpftrace trips over
    target.go()
    target.wait_done()
    assert bt.count() == N


# ---- Debian's QEMU running a real guest ------------------------------------------------------------


class Qmp:
    """QMP with QEMU as the client: listen, start QEMU, :meth:`accept` (qemu.qmp's ``QMPClient``,
    on an event loop of our own that :meth:`close` closes)."""

    def __init__(self, path: Path) -> None:
        from qemu.qmp import QMPClient

        self.loop = asyncio.new_event_loop()
        self.client = QMPClient("vfiobench-test")
        self.loop.run_until_complete(self.client.start_server(str(path)))

    def accept(self) -> None:
        self.loop.run_until_complete(asyncio.wait_for(self.client.accept(), 60))

    def cmd(self, name: str) -> object:
        return self.loop.run_until_complete(self.client.execute(name))

    def status(self) -> str:
        reply = self.cmd("query-status")
        assert isinstance(reply, dict)
        return str(reply["status"])

    def close(self) -> None:
        self.loop.run_until_complete(self.client.disconnect())
        self.loop.close()


@pytest.fixture(scope="module")
def lab_kernel() -> tuple[Path, Path]:
    """The lab image's kernel and initrd (built once and cached, as the lab tests use)."""
    from vfiobench.lab.image import build_image
    from vfiobench.lab.runner import unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"lab image unavailable: {reason}")
    img = build_image()
    return img.kernel, img.initrd


@pytest.fixture
def debian_guest(tmp_path: Path, lab_kernel: tuple[Path, Path]) -> Iterator[tuple[int, Qmp, Path]]:
    """Debian's stripped QEMU booting the lab kernel under TCG, paused (-S); yields (pid, QMP, binary)."""
    qemu = Path("/usr/bin/qemu-system-x86_64")
    if not qemu.exists():
        pytest.skip("Debian's qemu-system-x86 is not installed")
    kernel, initrd = lab_kernel
    sock = tmp_path / "qmp.sock"
    qmp = Qmp(sock)
    proc = subprocess.Popen(
        [
            str(qemu), "-machine", "q35", "-accel", "tcg", "-m", "512", "-S", "-display", "none",
            "-nodefaults", "-no-reboot", "-serial", "null", "-kernel", str(kernel), "-initrd", str(initrd),
            "-append", "console=ttyS0 panic=-1", "-qmp", f"unix:{sock}",
        ]
    )  # fmt: skip
    try:
        qmp.accept()
        yield proc.pid, qmp, qemu
    finally:
        qmp.close()
        proc.kill()
        proc.wait()


@pytest.mark.lab
@pytest.mark.parametrize("first", ["bpftrace", "record"])
def test_record_beside_bpftrace_on_debians_qemu_running_a_guest(
    tmp_path: Path, debian_guest: tuple[int, Qmp, Path], first: str
) -> None:
    """The issue's case: both tools on ``memory_region_transaction_commit`` of Debian's binary.

    The guest is paused while the tools attach and again before they stop, so both count exactly
    the commits of the same window of a booting kernel (PCI BARs, PAM, SMRAM...).
    """
    pid, qmp, qemu = debian_guest
    bt, rec = start_both(first, qemu, pid, tmp_path / "run")
    assert qmp.status() == "prelaunch"
    before = bt.wait_quiet()  # nothing moves while the guest has not started
    qmp.cmd("cont")
    time.sleep(4)
    qmp.cmd("stop")
    assert qmp.status() == "paused"
    # QEMU's other threads finish deferred work after the vCPUs stop: close the window once the
    # count has settled, so both tools stop on the same number
    after = bt.wait_quiet()
    time.sleep(0.5)  # what the last commits put in the ring
    rc, stdout = rec.stop()
    assert rc == 0, stdout
    counted = bt.count()
    run = load_run(tmp_path / "run")
    assert run.meta.status == "complete"
    events = run.meta.probes["transaction_commit"].events
    assert run.meta.probes["transaction_commit"].lost == 0
    assert counted == after and before == 0
    assert events == counted > 0, (events, counted)
    print(f"{first} first: {events} commits in the window, counted by both")
    assert run.meta.qemu.path == str(qemu)
    assert f"{qemu}:{COMMIT}+0x0" in run.meta.probes["transaction_commit"].target
