"""PCI config space over the type-1 ports (runs anywhere)."""

from __future__ import annotations

from vfiobench.lab.guest.pci import cfg_address


def test_cfg_address_matches_lab_notes() -> None:
    # LAB-NOTES §6: MSI-X control of 00:01.0 cap 0x40 -> outl 0xcf8 0x80000840
    assert cfg_address(0, 1, 0, 0x42) == 0x8000_0840
