"""A fake qtest peer on the other end of a socket pair (runs anywhere)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from lab_fake_qtest import FakeIvshmem, serve

from vfiobench.lab.guest.qtest import QtestSession


@pytest.fixture
def peer() -> Iterator[tuple[QtestSession, FakeIvshmem]]:
    dev = FakeIvshmem()
    ours, theirs = socket.socketpair()
    t = threading.Thread(target=serve, args=(theirs, dev), daemon=True)
    t.start()
    try:
        yield QtestSession(ours, timeout_s=5), dev
    finally:
        ours.close()
        t.join(timeout=5)
        theirs.close()
