"""The qtest line protocol: the L2 QEMU's ``-qtest`` chardev as a stream of text commands.

Commands are lines such as ``outl 0xcf8 0x...`` or ``readl 0x...``; QEMU answers ``OK``,
``OK 0x...`` or ``FAIL ...`` (and, after ``irq_intercept_*``, asynchronous ``IRQ`` lines, skipped).
:class:`~vfiobench.lab.guest.l2.L2Qemu` hands out a connected :class:`QtestSession`; a fake peer
does in tests. Standard library only.
"""

from __future__ import annotations

import select
import socket
import time

from vfiobench.errors import LabError


class QtestError(LabError):
    """The qtest peer failed, closed the connection or answered FAIL."""


class QtestSession:
    """The qtest line protocol over a connected stream socket.

    Args:
        sock: Connected to QEMU's ``-qtest`` chardev (or a fake peer in tests).
        timeout_s: Give up on a reply after this long.
    """

    def __init__(self, sock: socket.socket, timeout_s: float = 30.0) -> None:
        self.sock = sock
        self.timeout_s = timeout_s
        self._buf = b""
        self.commands = 0

    def command(self, line: str) -> str:
        """Send one command; return what follows ``OK`` in the reply (``""`` for a bare OK).

        Raises:
            QtestError: the peer answered ``FAIL``, closed the connection or timed out.
        """
        try:
            self.sock.sendall(line.encode() + b"\n")
        except OSError as e:
            raise QtestError(f"qtest {line!r}: the QEMU side closed the connection ({e})") from None
        self.commands += 1
        while True:
            reply = self._readline(line)
            if reply.startswith("IRQ"):
                continue  # asynchronous, only after irq_intercept_*
            if reply == "OK":
                return ""
            if reply.startswith("OK "):
                return reply[3:]
            raise QtestError(f"qtest {line!r} answered {reply!r}")

    def _readline(self, what: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QtestError(f"qtest {what!r}: no reply within {self.timeout_s:.0f} s")
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QtestError(f"qtest {what!r}: the QEMU side closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def _value(self, line: str) -> int:
        out = self.command(line)
        try:
            return int(out.split()[0], 16)
        except (IndexError, ValueError):
            raise QtestError(f"qtest {line!r}: unexpected reply {out!r}") from None

    def outl(self, port: int, value: int) -> None:
        """32-bit port write."""
        self.command(f"outl 0x{port:x} 0x{value:x}")

    def outw(self, port: int, value: int) -> None:
        """16-bit port write."""
        self.command(f"outw 0x{port:x} 0x{value:x}")

    def outb(self, port: int, value: int) -> None:
        """8-bit port write."""
        self.command(f"outb 0x{port:x} 0x{value:x}")

    def inl(self, port: int) -> int:
        """32-bit port read."""
        return self._value(f"inl 0x{port:x}")

    def inw(self, port: int) -> int:
        """16-bit port read."""
        return self._value(f"inw 0x{port:x}")

    def inb(self, port: int) -> int:
        """8-bit port read."""
        return self._value(f"inb 0x{port:x}")

    def writel(self, addr: int, value: int) -> None:
        """32-bit guest-physical write (RAM or MMIO)."""
        self.command(f"writel 0x{addr:x} 0x{value:x}")

    def readl(self, addr: int) -> int:
        """32-bit guest-physical read (RAM or MMIO)."""
        return self._value(f"readl 0x{addr:x}")
