"""The ivshmem-doorbell device as the L2 guest's driver sees it (over qtest).

(The L0 side of the same device, the ivshmem server, is :mod:`vfiobench.lab.ivshmem`.)
:class:`IvshmemGuest` finds the device, assigns its BARs, points the MSI-X vectors at L2 guest RAM
(delivery = the vector's data word appearing at :func:`msi_address`), enables MSI-X, and then
triggers (a write to its own doorbell: exactly one interrupt through L0, L1 and L2), masks,
unmasks and reads the PBA.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from vfiobench.lab.guest.pci import PCI_CAP_ID_MSIX, PciFunction, find_function
from vfiobench.lab.guest.qtest import QtestError, QtestSession

IVSHMEM_VENDOR = 0x1AF4
IVSHMEM_DEVICE = 0x1110
MSIX_ENABLE = 0x8000
PCI_COMMAND_VALUE = 0x0406  # memory space, bus master, INTx disabled
IVSHMEM_IVPOSITION = 0x08
IVSHMEM_DOORBELL = 0x0C
#: Guest RAM where vector v's MSI lands (1 MiB + 64 bytes per vector), and its data word.
MSI_ADDR_BASE = 0x0010_0000
MSI_ADDR_STRIDE = 0x40
MSI_DATA_BASE = 0x41


def msi_address(vector: int) -> int:
    """Guest-RAM address vector ``vector`` writes to."""
    return MSI_ADDR_BASE + MSI_ADDR_STRIDE * vector


def msi_data(vector: int) -> int:
    """MSI data of ``vector`` (also a sane x86 vector number: 0x41 + v)."""
    return MSI_DATA_BASE + vector


@dataclass
class DeviceInfo:
    """What the guest found and programmed."""

    bdf: str = ""
    bars: dict[int, tuple[int, int]] = field(default_factory=dict)  # index -> (address, size)
    msix_cap: int = 0
    msix_vectors: int = 0
    table: int = 0
    pba: int = 0
    ivposition: int = 0


class IvshmemGuest:
    """The ivshmem-doorbell device as a guest driver sees it."""

    def __init__(self, qt: QtestSession) -> None:
        self.qt = qt
        self.fn: PciFunction | None = None
        self.info = DeviceInfo()
        self.bar0 = 0

    def setup(self, vectors: Sequence[int]) -> DeviceInfo:
        """Find the device, assign BARs, point ``vectors`` at guest RAM, enable MSI-X, unmask them.

        Every entry stays masked from reset until its final unmask (one SET_IRQS each).
        """
        fn = self.fn = find_function(self.qt, IVSHMEM_VENDOR, IVSHMEM_DEVICE)
        bars = fn.assign_bars()
        if 0 not in bars or 1 not in bars:
            raise QtestError(f"ivshmem BARs 0/1 missing (have {sorted(bars)})")
        fn.write(0x04, PCI_COMMAND_VALUE, 2)
        cap = fn.capability(PCI_CAP_ID_MSIX)
        if cap is None:
            raise QtestError("the ivshmem device has no MSI-X capability", "start L1 with vectors=N")
        ctl = fn.read(cap + 2, 2)
        nvec = (ctl & 0x7FF) + 1
        bad = [v for v in vectors if not 0 <= v < nvec]
        if bad:
            raise QtestError(f"vectors {bad} out of range: the device has {nvec}", f"use 0..{nvec - 1}")
        tbl = fn.read(cap + 4)
        pba = fn.read(cap + 8)
        self.bar0 = bars[0].address
        self.info = DeviceInfo(
            bdf=fn.bdf,
            bars={i: (b.address, b.size) for i, b in bars.items()},
            msix_cap=cap,
            msix_vectors=nvec,
            table=bars[tbl & 7].address + (tbl & ~7),
            pba=bars[pba & 7].address + (pba & ~7),
            ivposition=self.qt.readl(self.bar0 + IVSHMEM_IVPOSITION),
        )
        for v in vectors:
            entry = self.entry(v)
            self.qt.writel(entry, msi_address(v) & 0xFFFF_FFFF)
            self.qt.writel(entry + 4, msi_address(v) >> 32)
            self.qt.writel(entry + 8, msi_data(v))
            self.qt.writel(msi_address(v), 0)
        fn.write(cap + 2, ctl | MSIX_ENABLE, 2)
        for v in vectors:
            self.unmask(v)
        return self.info

    def entry(self, vector: int) -> int:
        """Address of the vector's MSI-X table entry."""
        return self.info.table + 16 * vector

    def mask(self, vector: int) -> None:
        """Set the entry's mask bit (vfio: release; with a KVM route, one SET_IRQS)."""
        self.qt.writel(self.entry(vector) + 12, 1)

    def unmask(self, vector: int) -> None:
        """Clear the entry's mask bit (vfio: vector use, one SET_IRQS; a pending MSI is sent)."""
        self.qt.writel(self.entry(vector) + 12, 0)

    def trigger(self, vector: int) -> None:
        """Ring our own doorbell for ``vector``: exactly one interrupt through L0, L1 and L2."""
        self.qt.writel(self.bar0 + IVSHMEM_DOORBELL, (self.info.ivposition << 16) | vector)

    def pending(self, vector: int) -> bool:
        """The vector's bit in QEMU's emulated PBA."""
        word = self.qt.readl(self.info.pba + 4 * (vector // 32))
        return bool(word >> (vector % 32) & 1)
