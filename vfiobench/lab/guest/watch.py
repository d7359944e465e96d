"""How the workload sees an interrupt: delivered to the guest, or owed inside a mask window.

Every detector is a :class:`Watch`, armed right before a trigger and polled until it happens:

- delivery (:data:`Delivery`): :class:`RamDelivery` (the vector's data word appears in L2 guest
  RAM: QEMU delivered it), or :class:`IrqCountDelivery` (L1's ``/proc/interrupts`` line
  ``vfio-msix[v](BDF)`` went up: with ``-accel kvm`` and no masking the L1 kernel signals the KVM
  irqfd and RAM is never written);
- owed (:data:`Owed`): :class:`PbaOwed` (the vector's pending bit in the emulated PBA, what the RTOS
  of the 2020 thread polls), or :class:`QemuTookIrq` (the L2 QEMU's own trace log shows its
  ``vfio_msi_interrupt`` line: it stands in for whatever tells a guest that never reads the PBA
  that an interrupt is owed, a device status register).
"""

from __future__ import annotations

import os
from typing import Protocol

from vfiobench.errors import LabError
from vfiobench.lab.guest.ivshmem import IvshmemGuest, msi_address, msi_data
from vfiobench.qemu.trace import TRACE_IRQ_VECTOR, parse_line


class Watch(Protocol):
    """Something the workload arms right before a trigger and polls until it happens.

    A :data:`Delivery` watches for the interrupt arriving in the guest; an :data:`Owed` watches,
    inside a mask window, for the masked interrupt being known to be owed.
    """

    def arm(self, vector: int) -> None:
        """Called right before triggering ``vector``."""

    def poll(self, vector: int) -> bool:
        """True once the watched event of ``vector`` has happened (and resets for the next one)."""


#: How the workload sees that a vector's interrupt arrived.
Delivery = Watch


class RamDelivery:
    """Delivery = the vector's data word appears at its address in L2 guest RAM (then cleared)."""

    def __init__(self, guest: IvshmemGuest) -> None:
        self.guest = guest

    def arm(self, vector: int) -> None:
        """Nothing to do: the word was cleared after the previous delivery."""

    def poll(self, vector: int) -> bool:
        """Read the word; clear it when it holds the vector's data."""
        if self.guest.qt.readl(msi_address(vector)) != msi_data(vector):
            return False
        self.guest.qt.writel(msi_address(vector), 0)
        return True


def read_irq_count(name: str, path: str = "/proc/interrupts") -> int:
    """Sum over CPUs of the ``/proc/interrupts`` line whose name contains ``name``.

    Raises:
        LabError: no such line.
    """
    with open(path, encoding="ascii", errors="replace") as f:
        lines = f.read().splitlines()
    ncpu = len(lines[0].split()) if lines else 0
    for line in lines[1:]:
        if name in line:
            fields = line.split()[1 : 1 + ncpu]
            return sum(int(x) for x in fields if x.isdigit())
    raise LabError(f"no interrupt line {name!r} in {path}", "is MSI-X enabled on the vfio-pci device?")


class IrqCountDelivery:
    """Delivery = L1's ``vfio-msix[v](BDF)`` interrupt count went up (KVM irqfd path: RAM stays 0)."""

    def __init__(self, host_bdf: str, path: str = "/proc/interrupts") -> None:
        self.host_bdf = host_bdf
        self.path = path
        self._base: dict[int, int] = {}

    def _name(self, vector: int) -> str:
        return f"vfio-msix[{vector}]({self.host_bdf})"

    def arm(self, vector: int) -> None:
        """Remember the count before the trigger."""
        self._base[vector] = read_irq_count(self._name(vector), self.path)

    def poll(self, vector: int) -> bool:
        """True when the count is past the armed value."""
        return read_irq_count(self._name(vector), self.path) > self._base[vector]


#: How the guest learns, inside a mask window, that the masked interrupt has arrived.
Owed = Watch


class PbaOwed:
    """The vector's bit in the emulated PBA (what the RTOS of the 2020 thread polls)."""

    def __init__(self, guest: IvshmemGuest) -> None:
        self.guest = guest

    def arm(self, vector: int) -> None:
        """Nothing to do: the bit clears on unmask."""

    def poll(self, vector: int) -> bool:
        """One PBA read."""
        return self.guest.pending(vector)


class QemuTookIrq:
    """QEMU has taken the vector's interrupt: a new ``vfio_msi_interrupt`` line in its trace log.

    QEMU flushes the log after every line, so the line is there as soon as
    ``vfio_msi_interrupt()`` has run. Only complete lines written after :meth:`arm` count.

    Args:
        path: The L2 QEMU's ``-D`` trace log.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._offset = 0

    def arm(self, vector: int) -> None:
        """Skip everything logged so far."""
        self._offset = os.path.getsize(self.path)

    def poll(self, vector: int) -> bool:
        """Read the lines logged since the last poll; True at the vector's ``vfio_msi_interrupt``."""
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read again next time
        for raw in data[:end].splitlines(keepends=True):
            self._offset += len(raw)
            ev = parse_line(raw.decode("utf-8", "replace"))
            m = (
                TRACE_IRQ_VECTOR.search(ev.args)
                if ev is not None and ev.name == "vfio_msi_interrupt"
                else None
            )
            if m is not None and int(m[1]) == vector:
                return True
        return False
