"""The live view of ``vfiobench record`` on a terminal (a pty), driven by the C stand-in."""

from __future__ import annotations

import os
import pty
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from probe_helpers import StandIn

from vfiobench.store import load_run

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

N = 37
DELAY_US = 80_000  # each toggle sleeps 80 ms: ~3 s of calls, three refreshes or more


def read_all(fd: int, into: list[bytes]) -> None:
    """Append what the pty's master side yields until the other side has closed."""
    while True:
        try:
            data = os.read(fd, 65536)
        except OSError:
            return
        if not data:
            return
        into.append(data)


def test_the_live_table_refreshes_with_growing_counts_and_the_run_ends_exact(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    target = spawn(standin_bin, "toggle", N, DELAY_US, 0)
    master, slave = pty.openpty()
    env = dict(os.environ, COLUMNS="160", LINES="40", TERM="xterm")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vfiobench", "record", "--pid", str(target.pid), "--probe", "pba_toggle",
         "--out", str(tmp_path / "run")],
        stdout=subprocess.PIPE, stderr=slave, text=True, env=env,
    )  # fmt: skip
    os.close(slave)
    screen: list[bytes] = []
    reader = threading.Thread(target=read_all, args=(master, screen), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while b"attached" not in b"".join(screen) and time.monotonic() < deadline:
        time.sleep(0.05)
    target.go()
    target.wait_done()
    time.sleep(1.5)  # one more refresh after the last call
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    reader.join(timeout=5)
    os.close(master)
    text = b"".join(screen).decode("utf-8", "replace")
    counts = [int(c.replace(",", "")) for c in re.findall(r"pba_toggle\s*│\s*([\d,]+)", text)]
    assert len(counts) >= 3, text[-2000:]
    assert counts == sorted(counts) and len(set(counts)) >= 3  # growing across refreshes
    assert counts[-1] == N  # the last refresh shows the exact total
    assert "p99 µs run" in text and "events/s" in text
    assert proc.returncode == 0 and "stopped (Ctrl-C)" in out
    run = load_run(tmp_path / "run")
    assert run.meta.probes["pba_toggle"].events == len(run.table("pba_toggle")) == N


def test_quiet_keeps_the_plain_output(tmp_path: Path, standin_bin: Path, spawn: type[StandIn]) -> None:
    target = spawn(standin_bin, "toggle", N, 0, 0)
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "vfiobench", "record", "--pid", str(target.pid), "--probe", "pba_toggle",
         "--out", str(tmp_path / "run"), "--quiet", "--duration", "1"],
        stdout=subprocess.PIPE, stderr=slave, text=True,
    )  # fmt: skip
    os.close(slave)
    out, _ = proc.communicate(timeout=60)
    chunks: list[bytes] = []
    read_all(master, chunks)
    os.close(master)
    assert proc.returncode == 0 and "stopped (duration)" in out
    assert "│" not in b"".join(chunks).decode("utf-8", "replace")  # no table
