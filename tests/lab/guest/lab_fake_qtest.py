"""A fake qtest peer: a tiny model of q35 config ports + an ivshmem-doorbell with MSI-X behind vfio.

It answers the qtest text protocol like QEMU does (``OK``, ``OK 0x%016x``, ``FAIL``) and models just
what the lab's guest uses: type-1 config access through 0xcf8/0xcfc, BAR sizing, the MSI-X
capability, table, PBA, IVPosition and the doorbell. A doorbell on a masked vector sets its pending
bit (and, given a ``trace_log``, appends QEMU's ``vfio_msi_interrupt`` line there, as the L2 QEMU
does when it takes a masked interrupt); unmasking a pending vector delivers it (a 32-bit store of
the entry's data at its address into "guest RAM"); an unmasked doorbell delivers at once.
It counts what happened so tests can compare
the workload's own counters against an independent witness.

Run as a script (``python lab_fake_qtest.py SOCKET [--drop-doorbells]``) it connects to SOCKET like
``qemu -qtest unix:SOCKET`` does and serves until the peer closes.
"""

from __future__ import annotations

import socket
import sys
from dataclasses import dataclass, field
from pathlib import Path

VENDOR, DEVICE = 0x1AF4, 0x1110
DEV_SLOT = 1  # 00:01.0, as in the lab's L2
BAR_SIZES = {0: 0x100, 1: 0x1000, 2: 0x100000}  # BAR2 is 64-bit prefetchable (slots 2+3)
CAP = 0x40
PBA_OFF = 0x800


@dataclass
class FakeIvshmem:
    vectors: int = 4
    drop_doorbells: bool = False
    cf8: int = 0
    bars: dict[int, int] = field(default_factory=lambda: {0: 0, 1: 0, 2: 0, 3: 0})
    sizing: set[int] = field(default_factory=set)
    command: int = 0
    msix_ctl: int = 0
    table: dict[int, list[int]] = field(default_factory=dict)
    pending: set[int] = field(default_factory=set)
    ram: dict[int, int] = field(default_factory=dict)
    doorbells: int = 0
    deliveries: int = 0
    masks: int = 0
    unmasks: int = 0
    pba_reads: int = 0
    trace_log: Path | None = None

    def __post_init__(self) -> None:
        self.msix_ctl = self.vectors - 1
        self.table = {v: [0, 0, 0, 1] for v in range(self.vectors)}  # masked from reset

    # ---- config space ----------------------------------------------------------------------------
    def _cfg_target(self) -> tuple[int, int, int, int] | None:
        if not self.cf8 & 0x8000_0000:
            return None
        bus, dev, fn = (self.cf8 >> 16) & 0xFF, (self.cf8 >> 11) & 0x1F, (self.cf8 >> 8) & 7
        return bus, dev, fn, self.cf8 & 0xFC

    def cfg_read32(self, reg: int) -> int:
        t = self._cfg_target()
        if t is None or t[:3] != (0, DEV_SLOT, 0):
            return 0xFFFF_FFFF
        if reg == 0x00:
            return DEVICE << 16 | VENDOR
        if reg == 0x04:
            return 0x0010 << 16 | self.command  # status: capability list
        if 0x10 <= reg <= 0x1C:
            i = (reg - 0x10) // 4
            if i in (0, 1):
                return (~(BAR_SIZES[i] - 1) & 0xFFFF_FFFF) if i in self.sizing else self.bars[i]
            if i == 2:
                return (
                    ((~(BAR_SIZES[2] - 1) & 0xFFFF_FFF0) | 0xC) if 2 in self.sizing else (self.bars[2] | 0xC)
                )
            if i == 3:
                return 0xFFFF_FFFF if 3 in self.sizing else self.bars[3]
        if reg == 0x34:
            return CAP
        if reg == CAP:
            return self.msix_ctl << 16 | 0x00 << 8 | 0x11
        if reg == CAP + 4:
            return 0x0000_0001  # table: BIR 1, offset 0
        if reg == CAP + 8:
            return PBA_OFF | 1  # PBA: BIR 1, offset 0x800
        return 0

    def cfg_write(self, reg: int, value: int, size: int) -> None:
        dword = reg & 0xFC
        if 0x10 <= dword <= 0x1C and size == 4:
            i = (dword - 0x10) // 4
            if value == 0xFFFF_FFFF:
                self.sizing.add(i)
            else:
                self.sizing.discard(i)
                self.bars[i] = value & ~0xF if i != 3 else value
        elif dword == 0x04:
            self.command = value & 0xFFFF
        elif dword == CAP and reg == CAP + 2 and size == 2:
            self.msix_ctl = value

    # ---- MMIO ------------------------------------------------------------------------------------
    def bar_base(self, i: int) -> int:
        return self.bars[i] | (self.bars[3] << 32 if i == 2 else 0)

    def enabled(self) -> bool:
        return bool(self.msix_ctl & 0x8000)

    def deliver(self, v: int) -> None:
        addr = self.table[v][0] | self.table[v][1] << 32
        self.ram[addr] = self.table[v][2]
        self.deliveries += 1

    def doorbell(self, value: int) -> None:
        self.doorbells += 1
        if self.drop_doorbells:
            return
        v = value & 0xFFFF
        if v >= self.vectors or not self.enabled():
            return
        if self.table[v][3] & 1:
            self.pending.add(v)
            if self.trace_log is not None:
                addr, data = self.table[v][0] | self.table[v][1] << 32, self.table[v][2]
                with self.trace_log.open("a") as f:
                    f.write(f"4242@1700000000.000001:vfio_msi_interrupt  (0000:00:04.0) vector {v} ")
                    f.write(f"0x{addr:x}/0x{data:x}\n")
        else:
            self.deliver(v)

    def readl(self, addr: int) -> int:
        b0, b1 = self.bar_base(0), self.bar_base(1)
        if b0 and b0 <= addr < b0 + BAR_SIZES[0]:
            return 0  # IVPosition 0 (the only register read)
        if b1 and b1 <= addr < b1 + PBA_OFF:
            off = addr - b1
            return self.table[off // 16][(off % 16) // 4]
        if b1 and b1 + PBA_OFF <= addr < b1 + BAR_SIZES[1]:
            self.pba_reads += 1
            word = (addr - b1 - PBA_OFF) // 4
            return sum(1 << (v % 32) for v in self.pending if v // 32 == word)
        return self.ram.get(addr, 0)

    def writel(self, addr: int, value: int) -> None:
        b0, b1 = self.bar_base(0), self.bar_base(1)
        if b0 and b0 <= addr < b0 + BAR_SIZES[0]:
            if addr - b0 == 0x0C:
                self.doorbell(value)
            return
        if b1 and b1 <= addr < b1 + PBA_OFF:
            off = addr - b1
            v, word = off // 16, (off % 16) // 4
            if word == 3:
                was = self.table[v][3] & 1
                if value & 1 and not was:
                    self.masks += 1
                if not value & 1 and was:
                    self.unmasks += 1
                    if v in self.pending and self.enabled():
                        self.pending.discard(v)
                        self.table[v][3] = value
                        self.deliver(v)
                        return
            self.table[v][word] = value
            return
        self.ram[addr] = value

    # ---- protocol --------------------------------------------------------------------------------
    def handle(self, line: str) -> str:
        parts = line.split()
        if not parts:
            return "FAIL empty"
        op, args = parts[0], [int(a, 16) for a in parts[1:]]
        sizes = {"l": 4, "w": 2, "b": 1}
        if op in ("outl", "outw", "outb"):
            port, value = args
            if port == 0xCF8 and op == "outl":
                self.cf8 = value
            elif 0xCFC <= port <= 0xCFF and self._cfg_target() is not None:
                self.cfg_write((self.cf8 & 0xFC) + (port - 0xCFC), value, sizes[op[-1]])
            return "OK"
        if op in ("inl", "inw", "inb"):
            (port,) = args
            if port == 0xCF8:
                return f"OK 0x{self.cf8:016x}"
            shift = 8 * (port - 0xCFC)
            mask = (1 << (8 * sizes[op[-1]])) - 1
            return f"OK 0x{(self.cfg_read32(self.cf8 & 0xFC) >> shift) & mask:016x}"
        if op == "readl":
            return f"OK 0x{self.readl(args[0]):016x}"
        if op == "writel":
            self.writel(args[0], args[1])
            return "OK"
        return f"FAIL unknown command {op}"


def serve(sock: socket.socket, dev: FakeIvshmem) -> None:
    """Answer commands until the peer closes."""
    buf = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            sock.sendall(dev.handle(line.decode()).encode() + b"\n")


def main() -> int:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    try:
        serve(s, FakeIvshmem(drop_doorbells="--drop-doorbells" in sys.argv))
    finally:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
