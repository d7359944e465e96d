"""The L2 QEMU: stopped vCPUs, a qtest connection, the vfio-pci device (LAB-NOTES §5).

The L2 QEMU runs with ``-S`` (its vCPUs never run) and ``-qtest unix:PATH``, which makes QEMU
*connect* to PATH: :class:`L2Qemu` listens first, starts QEMU, accepts, and hands out a
:class:`~vfiobench.lab.guest.qtest.QtestSession`; the qtest client is the guest.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from vfiobench.errors import LabError
from vfiobench.lab.guest.qtest import QtestSession


def l2_cmdline(
    qemu: str,
    accel: str,
    qtest_sock: str | os.PathLike[str],
    host_bdf: str,
    trace_args: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The L2 command line (LAB-NOTES §5): stopped vCPUs, qtest, the vfio-pci device, trace log."""
    return [
        qemu,
        "-accel",
        accel,
        "-S",
        "-qtest",
        f"unix:{qtest_sock}",
        "-qtest-log",
        "/dev/null",
        "-machine",
        "q35",
        "-m",
        "128M",
        "-nographic",
        "-display",
        "none",
        "-nodefaults",
        "-serial",
        "none",
        "-monitor",
        "none",
        "-device",
        f"vfio-pci,host={host_bdf}",
        *trace_args,
        *extra_args,
    ]


class L2Qemu:
    """The L2 QEMU with a qtest connection; a context manager owning the process.

    Listens on ``workdir/qtest.sock`` first (``-qtest unix:`` makes QEMU connect), starts QEMU
    with its output in ``workdir/l2-stderr.log``, accepts within ``start_timeout_s``.

    Raises:
        LabError: QEMU exited or did not connect in time (the message quotes its stderr).
    """

    def __init__(
        self, cmdline_for: Callable[[Path], list[str]], workdir: Path, start_timeout_s: float = 60.0
    ):
        self.workdir = Path(workdir)
        self.sock_path = self.workdir / "qtest.sock"
        self.cmdline = cmdline_for(self.sock_path)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: QtestSession | None = None
        self.start_s = 0.0
        self.connect_s = 0.0
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._err: Any = None

    @property
    def stderr_path(self) -> Path:
        """L2's stdout+stderr."""
        return self.workdir / "l2-stderr.log"

    def stderr_tail(self, n: int = 4) -> str:
        """Last lines L2 printed."""
        try:
            lines = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.sock_path))
        self._listener.listen(1)
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115
        t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.cmdline, stdin=subprocess.DEVNULL, stdout=self._err, stderr=subprocess.STDOUT
            )
        except OSError as e:
            raise LabError(f"cannot start L2 QEMU {self.cmdline[0]}: {e}") from None
        while True:
            ready, _, _ = select.select([self._listener], [], [], 0.2)
            if ready:
                self._conn, _ = self._listener.accept()
                self.connect_s = time.monotonic() - t0
                break
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                raise LabError(f"L2 QEMU exited with status {rc} before connecting: {self.stderr_tail()}")
            if time.monotonic() - t0 > self.start_timeout_s:
                raise LabError(f"L2 QEMU did not connect to qtest within {self.start_timeout_s:.0f} s")
        self.session = QtestSession(self._conn)
        self.session.readl(0)  # answered once QEMU has finished machine init
        self.start_s = time.monotonic() - t0

    @property
    def pid(self) -> int:
        """L2's process id."""
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close qtest, end QEMU (SIGTERM, then SIGKILL after 10 s), close files."""
        for s in (self._conn, self._listener):
            if s is not None:
                s.close()
        self._conn = self._listener = None
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._err is not None:
            self._err.close()
            self._err = None
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
