"""The ivshmem-doorbell device as the guest driver sees it, against a fake qtest peer."""

from __future__ import annotations

from lab_fake_qtest import FakeIvshmem

from vfiobench.lab.guest.ivshmem import IvshmemGuest, msi_address, msi_data
from vfiobench.lab.guest.qtest import QtestSession


def test_setup_assigns_bars_and_programs_vectors(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, dev = peer
    info = IvshmemGuest(qt).setup([0, 2])
    assert info.bdf == "00:01.0"
    assert info.bars == {0: (0xE000_0000, 0x100), 1: (0xE000_1000, 0x1000), 2: (0xE010_0000, 0x100000)}
    assert (info.msix_cap, info.msix_vectors) == (0x40, 4)
    assert (info.table, info.pba) == (0xE000_1000, 0xE000_1800)
    assert dev.msix_ctl == 0x8003 and dev.command == 0x0406
    assert dev.table[2][:3] == [msi_address(2), 0, msi_data(2)]
    assert dev.table[2][3] == 0 and dev.table[1][3] == 1  # used vectors unmasked, others still masked
