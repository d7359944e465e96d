"""The ivshmem server protocol, driven by fake clients (runs anywhere with Python >= 3.10)."""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from vfiobench.errors import LabError
from vfiobench.lab.ivshmem import IvshmemServer


def recv_msg(sock: socket.socket) -> tuple[int, int | None]:
    data, fds, _flags, _addr = socket.recv_fds(sock, 8, 1)
    assert len(data) == 8, f"short message: {data!r}"
    return struct.unpack("<q", data)[0], (fds[0] if fds else None)


def connect(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(str(path))
    return s


class Client:
    """What QEMU's ivshmem-doorbell does with the set-up messages."""

    def __init__(self, path: Path, vectors: int, peers_before: int) -> None:
        self.sock = connect(path)
        self.fds: list[int] = []
        version, fd = recv_msg(self.sock)
        assert (version, fd) == (0, None)
        self.id, fd = recv_msg(self.sock)
        assert fd is None
        marker, self.shm = recv_msg(self.sock)
        assert marker == -1 and self.shm is not None
        self.fds.append(self.shm)
        self.peer_fds: dict[int, list[int]] = {}
        for _ in range(peers_before * vectors + vectors):
            pid, fd = recv_msg(self.sock)
            assert fd is not None
            self.fds.append(fd)
            self.peer_fds.setdefault(pid, []).append(fd)
        self.own = self.peer_fds.pop(self.id)

    def close(self) -> None:
        self.sock.close()
        for fd in self.fds:
            os.close(fd)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[IvshmemServer]:
    with IvshmemServer(tmp_path / "ivshmem.sock", vectors=4, shm_size=1 << 20) as srv:
        yield srv


def test_first_client_gets_version_id_shm_and_own_vectors(server: IvshmemServer) -> None:
    c = Client(server.path, 4, 0)
    try:
        assert c.id == 0
        assert os.fstat(c.shm).st_size == 1 << 20
        assert len(c.own) == 4 and c.peer_fds == {}
        # ringing one's own doorbell = writing one's own eventfd for that vector: exactly one count
        os.eventfd_write(c.own[2], 1)
        assert os.eventfd_read(c.own[2]) == 1
        with pytest.raises(BlockingIOError):
            os.eventfd_read(c.own[1])  # the other vectors saw nothing
    finally:
        c.close()


def test_second_client_learns_first_and_first_learns_second(server: IvshmemServer) -> None:
    a = Client(server.path, 4, 0)
    b = Client(server.path, 4, 1)
    try:
        assert (a.id, b.id) == (0, 1)
        assert list(b.peer_fds) == [0] and len(b.peer_fds[0]) == 4
        # a is told about b: its id four times, each with an eventfd
        news = [recv_msg(a.sock) for _ in range(4)]
        assert [n[0] for n in news] == [1, 1, 1, 1]
        a.fds += [fd for _, fd in news if fd is not None]
        # b rings a's vector 3 through the fd it received; a sees it on its own vector-3 eventfd
        os.eventfd_write(b.peer_fds[0][3], 1)
        assert os.eventfd_read(a.own[3]) == 1
        # both share one memory object
        assert os.fstat(a.shm).st_ino == os.fstat(b.shm).st_ino
    finally:
        b.close()
    # b left: a gets b's bare id, with no fd
    try:
        assert recv_msg(a.sock) == (1, None)
    finally:
        a.close()


def test_stale_socket_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "s.sock"
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody listens: QEMU would get "Connection refused"
    with IvshmemServer(path, vectors=1) as srv:
        c = Client(srv.path, 1, 0)
        c.close()
        assert srv.connections == 1
    assert not path.exists()


def test_bad_parameters_are_named_errors(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="power of two"):
        IvshmemServer(tmp_path / "x.sock", shm_size=3 << 20)
    with pytest.raises(LabError, match="vectors"):
        IvshmemServer(tmp_path / "x.sock", vectors=0)
