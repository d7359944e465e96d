"""Delivery and owed-interrupt watchers: QEMU's trace log and L1's /proc/interrupts."""

from __future__ import annotations

from pathlib import Path

import pytest

from vfiobench.errors import LabError
from vfiobench.lab.guest.watch import IrqCountDelivery, QemuTookIrq, read_irq_count


def test_qemu_took_irq_waits_for_a_whole_line_of_its_vector(tmp_path: Path) -> None:
    log = tmp_path / "qemu-trace.log"
    log.write_text("1@1.000000:vfio_msi_interrupt  (0000:00:04.0) vector 1 0x100040/0x42\n")
    took = QemuTookIrq(log)
    took.arm(1)
    assert not took.poll(1)  # logged before arm
    with log.open("a") as f:
        f.write("1@1.000001:vfio_msix_pba_enable  (0000:00:04.0)\n")
        f.write("1@1.000002:vfio_msi_interrupt  (0000:00:04.0) vector 3 0x1000c0/0x44\n")
        f.write("1@1.000003:vfio_msi_interrupt  (0000:00:04.0) vector 1 0x1")  # still being written
    assert not took.poll(1)  # another vector's line; the half line is not taken
    with log.open("a") as f:
        f.write("00040/0x42\n")
    assert took.poll(1)
    assert not took.poll(1)  # consumed


def test_irq_count_delivery_reads_proc_interrupts(tmp_path: Path) -> None:
    f = tmp_path / "interrupts"
    line = (
        "  24:         {a}          {b}  IR-PCI-MSIX-0000:00:03.0    0-edge      vfio-msix[0](0000:00:03.0)\n"
    )
    f.write_text("           CPU0       CPU1\n" + line.format(a=3, b=4))
    assert read_irq_count("vfio-msix[0](0000:00:03.0)", str(f)) == 7
    d = IrqCountDelivery("0000:00:03.0", str(f))
    d.arm(0)
    assert not d.poll(0)
    f.write_text("           CPU0       CPU1\n" + line.format(a=3, b=5))
    assert d.poll(0)
    with pytest.raises(LabError, match="no interrupt line"):
        read_irq_count("vfio-msix[1](0000:00:03.0)", str(f))
