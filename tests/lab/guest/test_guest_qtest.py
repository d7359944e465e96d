"""The qtest line protocol against a fake peer (runs anywhere)."""

from __future__ import annotations

import socket

import pytest
from lab_fake_qtest import FakeIvshmem

from vfiobench.lab.guest.qtest import QtestError, QtestSession


def test_fail_reply_and_closed_peer_are_qtest_errors(peer: tuple[QtestSession, FakeIvshmem]) -> None:
    qt, _ = peer
    with pytest.raises(QtestError, match="FAIL unknown command"):
        qt.command("frobnicate 0x1")
    a, b = socket.socketpair()
    b.close()
    try:
        with pytest.raises(QtestError, match="closed the connection"):
            QtestSession(a, timeout_s=1).readl(0)
    finally:
        a.close()
