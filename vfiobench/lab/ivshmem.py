"""A minimal ivshmem server (Debian ships none), serving the L1 ``ivshmem-doorbell`` device.

Protocol (QEMU ``docs/specs/ivshmem-spec.rst``): the server listens on a UNIX stream socket;
every message is one little-endian signed int64, optionally carrying one file descriptor through
``SCM_RIGHTS``. A connecting client receives, in order:

1. ``0``: the protocol version;
2. its own client id (the first client gets 0);
3. ``-1`` with the shared memory fd (a memfd whose power-of-two size becomes BAR2);
4. for every other peer P: ``P`` repeated ``vectors`` times, each with P's eventfd for vector i;
5. its own id repeated ``vectors`` times, each with its own eventfd for vector i.

Peers already connected receive step 4 for the newcomer, and the bare id of a peer that
disconnects. With a single client, ringing one's own doorbell (``(own_id << 16) | vector``) writes
one's own eventfd, so the device interrupts itself: one trigger, exactly one MSI-X interrupt.

QEMU reads the set-up synchronously while realizing the device, so the server must be listening
before QEMU starts: :class:`IvshmemServer` binds and listens in its constructor's ``start()``
(after removing a stale socket file) and serves clients from a daemon thread.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import struct
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from vfiobench.errors import LabError

PROTOCOL_VERSION = 0
DEFAULT_SHM_SIZE = 1 << 20
DEFAULT_VECTORS = 4


def pack_msg(value: int) -> bytes:
    """One protocol message: a little-endian signed int64."""
    return struct.pack("<q", value)


@dataclass
class Peer:
    """One connected client: its id, socket and one eventfd per vector."""

    id: int
    sock: socket.socket
    eventfds: list[int] = field(default_factory=list)

    def close(self) -> None:
        """Close the socket and the eventfds."""
        with contextlib.suppress(OSError):
            self.sock.close()
        for fd in self.eventfds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self.eventfds = []


class IvshmemServer:
    """The ivshmem server; a context manager that listens on ``path``.

    Args:
        path: The UNIX socket path (a stale file there is removed).
        vectors: Eventfds per peer; must match the device's ``vectors=N``.
        shm_size: Size of the shared memory in bytes (a power of two: it becomes a BAR).

    Example:
        >>> with IvshmemServer("/tmp/ivshmem.sock", vectors=4):     # doctest: +SKIP
        ...     start_qemu_with("-chardev socket,path=/tmp/ivshmem.sock,id=ivs ...")
    """

    def __init__(
        self, path: str | os.PathLike[str], vectors: int = DEFAULT_VECTORS, shm_size: int = DEFAULT_SHM_SIZE
    ) -> None:
        if vectors < 1 or vectors > 64:
            raise LabError(f"ivshmem vectors={vectors} is out of range", "use 1..64")
        if shm_size <= 0 or shm_size & (shm_size - 1):
            raise LabError(f"ivshmem shm size {shm_size} is not a power of two", "use e.g. 1048576")
        self.path = Path(path)
        self.vectors = vectors
        self.shm_size = shm_size
        self.peers: dict[int, Peer] = {}
        self.connections = 0
        self._next_id = 0
        self._shm_fd = -1
        self._listener: socket.socket | None = None
        self._sel = selectors.DefaultSelector()
        self._stop_r, self._stop_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.error: BaseException | None = None

    def start(self) -> Self:
        """Create the shared memory, listen, and serve from a daemon thread; returns self."""
        self._shm_fd = os.memfd_create("vfiobench-ivshmem", os.MFD_CLOEXEC)
        os.ftruncate(self._shm_fd, self.shm_size)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            listener.listen(8)
        except OSError as e:
            listener.close()
            raise LabError(f"ivshmem server cannot listen on {self.path}: {e}") from None
        self._listener = listener
        self._sel.register(listener, selectors.EVENT_READ, None)
        self._sel.register(self._stop_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._serve, name="ivshmem-server", daemon=True)
        self._thread.start()
        return self

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop serving, close every peer, the shared memory and the socket (removing its file)."""
        if self._thread is not None:
            os.write(self._stop_w, b"x")
            self._thread.join(timeout=5)
            self._thread = None
        with self._lock:
            for peer in self.peers.values():
                peer.close()
            self.peers.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        for fd in (self._shm_fd, self._stop_r, self._stop_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._shm_fd = self._stop_r = self._stop_w = -1
        self._sel.close()

    # -- serving ------------------------------------------------------------------------------
    def _serve(self) -> None:
        try:
            while True:
                for key, _ in self._sel.select():
                    if key.fileobj == self._stop_r:
                        return
                    if key.fileobj is self._listener:
                        self._accept()
                    else:
                        self._on_peer_readable(key.data)
        except BaseException as e:  # surfaced by the launcher, never lost silently
            self.error = e

    def _accept(self) -> None:
        assert self._listener is not None
        conn, _ = self._listener.accept()
        with self._lock:
            peer = Peer(self._next_id, conn)
            self._next_id += 1
            self.connections += 1
            peer.eventfds = [os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC) for _ in range(self.vectors)]
            try:
                self._send(conn, PROTOCOL_VERSION)
                self._send(conn, peer.id)
                self._send(conn, -1, self._shm_fd)
                for other in self.peers.values():
                    for fd in other.eventfds:
                        self._send(conn, other.id, fd)
                for fd in peer.eventfds:
                    self._send(conn, peer.id, fd)
            except OSError:
                peer.close()
                return
            for other in list(self.peers.values()):
                try:
                    for fd in peer.eventfds:
                        self._send(other.sock, peer.id, fd)
                except OSError:
                    self._drop(other)
            self.peers[peer.id] = peer
            self._sel.register(conn, selectors.EVENT_READ, peer.id)

    def _on_peer_readable(self, peer_id: int) -> None:
        with self._lock:
            peer = self.peers.get(peer_id)
            if peer is None:
                return
            try:
                data = peer.sock.recv(64)
            except OSError:
                data = b""
            if not data:  # clients never send; EOF means disconnect
                self._drop(peer)

    def _drop(self, peer: Peer) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._sel.unregister(peer.sock)
        self.peers.pop(peer.id, None)
        peer.close()
        for other in list(self.peers.values()):
            try:
                self._send(other.sock, peer.id)
            except OSError:
                self._drop(other)

    @staticmethod
    def _send(sock: socket.socket, value: int, fd: int | None = None) -> None:
        if fd is None:
            sock.sendall(pack_msg(value))
        else:
            socket.send_fds(sock, [pack_msg(value)], [fd])


def main(argv: list[str] | None = None) -> int:
    """Serve until interrupted: ``python -m vfiobench.lab.ivshmem SOCKET [--vectors N]``."""
    import argparse
    import signal

    p = argparse.ArgumentParser(prog="python -m vfiobench.lab.ivshmem", description=__doc__.split("\n")[0])
    p.add_argument("socket")
    p.add_argument("--vectors", type=int, default=DEFAULT_VECTORS)
    p.add_argument("--shm-size", type=int, default=DEFAULT_SHM_SIZE)
    args = p.parse_args(argv)
    with IvshmemServer(args.socket, args.vectors, args.shm_size):
        print(f"ivshmem server ready on {args.socket}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
