"""Helpers of the probe tests (a uniquely named module: conftest.py files of other test
directories would shadow a plain ``conftest`` import)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import pytest

HERE = Path(__file__).parent
STANDIN_SRC = HERE / "standin.c"

F = TypeVar("F", bound=Callable[..., None])


def bpf(fn: F) -> F:
    """Mark a test as real BPF: root, BCC, tracefs, gcc (skips with the reason otherwise)."""
    marked: F = pytest.mark.root(pytest.mark.bpf(pytest.mark.usefixtures("bpf_ready")(fn)))
    return marked


def start_record(*args: str) -> subprocess.Popen[str]:
    """``python -m vfiobench record ARGS...`` as a child process, returned once it has attached."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "vfiobench", "record", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    while "attached" not in (line := proc.stderr.readline()):
        if not line:
            out, err = proc.communicate()
            pytest.fail(f"record exited before attaching: {err}{out}")
    return proc


def bpf_unavailable_reason() -> str | None:
    """Why real BPF probes cannot run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to load eBPF programs"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "BCC (python3-bpfcc) is not importable; run make test as root"
    if not Path("/sys/kernel/tracing/events").is_dir():
        return "tracefs is not mounted at /sys/kernel/tracing"
    if shutil.which("gcc") is None:
        return "gcc is missing (needed to build the stand-in)"
    from vfiobench.probes.headers import headers_status

    if not headers_status().usable:
        return "no kernel headers for BCC (apt-get install linux-headers-amd64)"
    return None


def compile_c(src: Path, out: Path, *flags: str) -> Path:
    if shutil.which("gcc") is None:
        pytest.skip("gcc is missing")
    subprocess.run(["gcc", "-O2", "-Wall", "-Werror", *flags, "-o", str(out), str(src)], check=True)
    return out


class StandIn:
    """One running stand-in process: ``ready`` → :meth:`go` → :meth:`wait_done` → :meth:`finish`."""

    def __init__(
        self, binary: Path, mode: str, n: int, delay_us: int = 0, other: int = 0, extra: Sequence[str] = ()
    ) -> None:
        """Start ``binary MODE N DELAY_US OTHER [EXTRA...]`` (the stand-in ignores ``extra``: a
        QEMU-like command line for tests that read one, e.g. ``-name guest=vm1``)."""
        self.proc = subprocess.Popen(
            [str(binary), mode, str(n), str(delay_us), str(other), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        line = self.proc.stdout.readline().split()
        assert line[:1] == ["ready"], line
        self.pid = int(line[1])
        self.calls = 0
        self.elapsed_ns = 0

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def wait_done(self) -> int:
        assert self.proc.stdout is not None
        parts = self.proc.stdout.readline().split()
        assert parts[:1] == ["done"], parts
        self.calls, self.elapsed_ns = int(parts[1]), int(parts[2])
        return self.calls

    def finish(self) -> None:
        """Let the process exit and reap it."""
        if self.proc.poll() is None and self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.write("exit\n")
                self.proc.stdin.flush()
            except BrokenPipeError:
                pass
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream is not None:
                stream.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
