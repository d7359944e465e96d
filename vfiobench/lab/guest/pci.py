"""PCI configuration space through the type-1 ports 0xcf8/0xcfc, over qtest.

ECAM is off without firmware, so :class:`PciFunction` reads and writes config space through the
ports, sizes and assigns the memory BARs itself (no firmware ran) and walks the capability list;
:func:`find_function` scans a bus for a vendor/device id.
"""

from __future__ import annotations

from dataclasses import dataclass

from vfiobench.lab.guest.qtest import QtestError, QtestSession

PCI_CAP_ID_MSIX = 0x11
BAR_WINDOW = 0xE000_0000  # where BARs are assigned (no firmware ran)


def cfg_address(bus: int, dev: int, fn: int, reg: int) -> int:
    """The type-1 configuration address written to port 0xcf8."""
    return 0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xFC)


@dataclass
class Bar:
    """One assigned memory BAR."""

    index: int
    address: int
    size: int
    is_64: bool
    prefetchable: bool


class PciFunction:
    """Config space of one PCI function through ports 0xcf8/0xcfc."""

    def __init__(self, qt: QtestSession, bus: int, dev: int, fn: int = 0) -> None:
        self.qt = qt
        self.bus, self.dev, self.fn = bus, dev, fn

    @property
    def bdf(self) -> str:
        """``BB:DD.F`` in L2."""
        return f"{self.bus:02x}:{self.dev:02x}.{self.fn}"

    def read(self, reg: int, size: int = 4) -> int:
        """Read 1, 2 or 4 bytes of config space at ``reg``."""
        self.qt.outl(0xCF8, cfg_address(self.bus, self.dev, self.fn, reg))
        port = 0xCFC + (reg & 3)
        if size == 4:
            return self.qt.inl(port)
        if size == 2:
            return self.qt.inw(port)
        return self.qt.inb(port)

    def write(self, reg: int, value: int, size: int = 4) -> None:
        """Write 1, 2 or 4 bytes of config space at ``reg``."""
        self.qt.outl(0xCF8, cfg_address(self.bus, self.dev, self.fn, reg))
        port = 0xCFC + (reg & 3)
        if size == 4:
            self.qt.outl(port, value)
        elif size == 2:
            self.qt.outw(port, value)
        else:
            self.qt.outb(port, value)

    def capability(self, cap_id: int) -> int | None:
        """Offset of the first capability ``cap_id`` (walking from 0x34), or None."""
        if not self.read(0x06, 2) & 0x10:
            return None
        pos = self.read(0x34, 1) & 0xFC
        seen = 0
        while pos and seen < 48:
            if self.read(pos, 1) == cap_id:
                return pos
            pos = self.read(pos + 1, 1) & 0xFC
            seen += 1
        return None

    def assign_bars(self, window: int = BAR_WINDOW) -> dict[int, Bar]:
        """Size every memory BAR (write ~0, read back, restore) and assign it naturally aligned.

        Returns:
            The memory BARs by index (a 64-bit BAR takes two slots; it is listed under the first).
        """
        bars: dict[int, Bar] = {}
        nxt = window
        i = 0
        while i < 6:
            reg = 0x10 + 4 * i
            orig = self.read(reg)
            if orig & 1:  # I/O BAR: not used by ivshmem
                i += 1
                continue
            is_64 = (orig >> 1) & 3 == 2
            self.write(reg, 0xFFFF_FFFF)
            low = self.read(reg) & ~0xF & 0xFFFF_FFFF
            high = 0
            if is_64:
                self.write(reg + 4, 0xFFFF_FFFF)
                high = self.read(reg + 4)
            mask = (high << 32 | low) if is_64 else low
            if mask == 0:
                self.write(reg, orig)
                i += 2 if is_64 else 1
                continue
            width = 64 if is_64 else 32
            size = ((~mask) & ((1 << width) - 1)) + 1
            addr = (nxt + size - 1) & ~(size - 1)
            nxt = addr + size
            self.write(reg, addr & 0xFFFF_FFFF)
            if is_64:
                self.write(reg + 4, addr >> 32)
            bars[i] = Bar(i, addr, size, is_64, bool(orig & 8))
            i += 2 if is_64 else 1
        return bars


def find_function(qt: QtestSession, vendor: int, device: int, bus: int = 0) -> PciFunction:
    """Scan ``bus`` for the first function with this vendor/device id.

    Raises:
        QtestError: nothing matches (the message lists what the bus holds).
    """
    want = device << 16 | vendor
    found = []
    for dev in range(32):
        fn = PciFunction(qt, bus, dev)
        ident = fn.read(0x00)
        if ident == want:
            return fn
        if ident not in (0xFFFF_FFFF, 0):
            found.append(f"{bus:02x}:{dev:02x}.0={ident & 0xFFFF:04x}:{ident >> 16:04x}")
    raise QtestError(
        f"no PCI device {vendor:04x}:{device:04x} on bus {bus} (found {', '.join(found) or 'none'})",
        "is the vfio-pci device on the L2 command line?",
    )
