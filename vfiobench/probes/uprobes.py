"""Attach uprobes so that they coexist with other tracers, and name the tracer when they cannot.

The kernel keeps one ``struct uprobe`` per (inode, file offset), shared by every tool that probes
that address, and it remembers the *reference-counter offset* (the USDT semaphore the kernel
increments while a probe is attached, ``ref_ctr_offset``) the first tool registered. A second
registration at the same address with another ``ref_ctr_offset`` is refused with ``EINVAL`` and
the kernel logs ``ref_ctr_offset mismatch`` (``kernel/events/uprobes.c``: ``alloc_uprobe``,
since Linux 4.20; unchanged in 6.1, 6.12 and 7.x).

bpftrace, ``perf probe`` and every tool built on libbpf register plain uprobes with offset 0.
BCC's Python binding (0.17 and later, the 0.26 of Debian bookworm included) declares
``bpf_attach_uprobe`` in ctypes without its last argument, ``ref_ctr_offset``
(iovisor/bcc#5236), so the C function reads whatever the caller left in that argument slot: a
value that changes with the program (0x6 was seen here), and that makes every other tool's uprobe
at the same address fail, and ours fail where another tool was first. :func:`attach_uprobe`
therefore calls libbcc through a function pointer of its own with the full prototype and an
explicit 0, and registers the result in BCC's own bookkeeping so BCC detaches it as usual.

When the kernel still refuses (a tracer that registered a non-zero offset, such as a USDT probe
with a semaphore at this address, or a BCC tool with the bug above), :func:`uprobe_holders`
finds who holds a uprobe at that address: BPF programs attached through a perf event, found
with ``BPF_TASK_FD_QUERY`` on every process's perf-event fds (what ``bpftool perf`` does), and
probes defined in tracefs ``uprobe_events`` (``perf probe``).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from vfiobench.errors import ProbeError

#: bpf(2) on x86_64, its BPF_TASK_FD_QUERY command, and the fd types it reports for uprobes.
_SYS_BPF = 321
_BPF_TASK_FD_QUERY = 20
_BPF_FD_TYPE_UPROBE = 4
_BPF_FD_TYPE_URETPROBE = 5


class UprobeConflictError(ProbeError):
    """Another tracer holds a uprobe at the same address with another reference-counter offset."""


@dataclass(frozen=True)
class UprobeHolder:
    """One uprobe found at an address: who holds it, and how it was found."""

    pid: int | None
    comm: str
    how: str

    def describe(self) -> str:
        """``pid 1234 (bpftrace)``, or the tracefs event for ``perf probe`` definitions."""
        return f"pid {self.pid} ({self.comm})" if self.pid is not None else f"{self.comm} ({self.how})"


class _TaskFdQuery(ctypes.Structure):
    """``union bpf_attr`` as BPF_TASK_FD_QUERY reads and writes it (``include/uapi/linux/bpf.h``)."""

    _fields_ = [
        ("pid", ctypes.c_uint32),
        ("fd", ctypes.c_uint32),
        ("flags", ctypes.c_uint32),
        ("buf_len", ctypes.c_uint32),
        ("buf", ctypes.c_uint64),
        ("prog_id", ctypes.c_uint32),
        ("fd_type", ctypes.c_uint32),
        ("probe_offset", ctypes.c_uint64),
        ("probe_addr", ctypes.c_uint64),
    ]


@cache
def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


@cache
def _bcc_attach_uprobe() -> Any:
    """The ``bpf_attach_uprobe`` of libbcc with its real C prototype (a pointer of our own, not BCC's)."""
    from bcc.libbcc import lib

    fn = lib["bpf_attach_uprobe"]  # indexing makes a new function pointer; BCC's stays as it is
    fn.restype = ctypes.c_int
    fn.argtypes = [
        ctypes.c_int,  # prog fd
        ctypes.c_int,  # 0: uprobe, 1: uretprobe
        ctypes.c_char_p,  # event name
        ctypes.c_char_p,  # binary path
        ctypes.c_uint64,  # file offset
        ctypes.c_int,  # pid (-1: every process)
        ctypes.c_uint32,  # ref_ctr_offset: 0, as bpftrace and perf register
    ]
    return fn


def attach_uprobe(
    bpf: Any, fn_name: bytes, binary: bytes, addr: int, pid: int, *, ret: bool, ref_ctr_offset: int = 0
) -> bytes:
    """Attach BPF function ``fn_name`` of ``bpf`` at ``addr`` in ``binary``; returns the event name.

    Same placement and event name as BCC's ``attach_uprobe``/``attach_uretprobe`` (so
    ``bpf.detach_uprobe_event(name)`` and ``bpf.cleanup()`` detach it), with ``ref_ctr_offset`` 0
    (anything else only to stand in for a tracer that cannot share the address, in tests).

    Raises:
        UprobeConflictError: the kernel refused because another tracer holds this address.
        ProbeError: any other refusal, with the errno's text.
    """
    from bcc import BPF

    path, offset = BPF._check_path_symbol(binary, b"", addr, pid, 0)
    bpf._check_probe_quota(1)
    fn = bpf.load_func(fn_name, BPF.KPROBE)
    ev_name: bytes = bpf._get_uprobe_evname(b"r" if ret else b"p", path, offset, pid)
    ctypes.set_errno(0)
    with _stderr_of_libbcc() as said:
        fd = _bcc_attach_uprobe()(fn.fd, 1 if ret else 0, ev_name, path, offset, pid, ref_ctr_offset)
        err = ctypes.get_errno()
    if fd < 0:
        kind = "uretprobe" if ret else "uprobe"
        where = f"{os.fsdecode(binary)}:{offset:#x}"
        holders = uprobe_holders(Path(os.fsdecode(path)), offset, exclude_pid=os.getpid())
        if holders:
            raise UprobeConflictError(
                f"another tracer holds a uprobe at {where}: "
                + ", ".join(h.describe() for h in holders)
                + " (the kernel refuses a second uprobe at one address with another reference-counter "
                "offset)",
                "stop that tracer while recording, or leave this probe out with --probe",
            )
        why = said[0].strip().replace("\n", "; ") or (os.strerror(err) if err else "unknown error")
        raise ProbeError(
            f"the kernel refused the {kind} at {where}: {why}",
            "if another tracer probes this function, `dmesg | grep ref_ctr_offset` shows a conflict",
        )
    if said[0]:
        sys.stderr.write(said[0])
    bpf._add_uprobe_fd(ev_name, fd)
    return ev_name


@contextlib.contextmanager
def _stderr_of_libbcc() -> Iterator[list[str]]:
    """Hold back what libbcc prints on fd 2 ("cannot attach uprobe, Invalid argument").

    Yields a list that holds the text afterwards: the caller turns a failure into one line of its
    own, and passes the text on after a success.
    """
    said = [""]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            said[0] = tmp.read().decode("utf-8", "replace")


def _perf_event_fds() -> list[tuple[int, int]]:
    """``(pid, fd)`` of every open perf-event fd on the machine (readable ones)."""
    out: list[tuple[int, int]] = []
    for proc in os.scandir("/proc"):
        if not proc.name.isdigit():
            continue
        try:
            fds = list(os.scandir(f"/proc/{proc.name}/fd"))
        except OSError:
            continue
        for entry in fds:
            try:
                if os.readlink(entry.path) == "anon_inode:[perf_event]":
                    out.append((int(proc.name), int(entry.name)))
            except OSError:
                continue
    return out


def _task_fd_query(pid: int, fd: int) -> tuple[int, str, int] | None:
    """``(fd_type, file name, probe offset)`` of the BPF program on ``pid``'s perf event ``fd``."""
    buf = ctypes.create_string_buffer(4096)
    attr = _TaskFdQuery(pid=pid, fd=fd, flags=0, buf_len=len(buf), buf=ctypes.addressof(buf))
    libc = _libc()
    if libc.syscall(_SYS_BPF, _BPF_TASK_FD_QUERY, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        return None  # no BPF program on it, or the process went away
    return attr.fd_type, buf.value.decode("utf-8", "replace"), attr.probe_offset


def _same_file(a: Path, b: Path) -> bool:
    try:
        sa, sb = a.stat(), b.stat()
    except OSError:
        return False
    return (sa.st_dev, sa.st_ino) == (sb.st_dev, sb.st_ino)


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return "?"


def tracefs_uprobe_events(binary: Path, offset: int, tracefs: Path | None = None) -> list[str]:
    """Names of tracefs ``uprobe_events`` (e.g. from ``perf probe``) at ``offset`` in ``binary``.

    A line reads ``p:GROUP/EVENT /path/to/binary:0x000000000076aff0`` (a ``(0x..)`` suffix on the
    offset is a reference-counter offset); events BCC and bpftrace create through the uprobe PMU
    are not listed there.
    """
    roots = [tracefs] if tracefs else [Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing")]
    for root in roots:
        try:
            text = (root / "uprobe_events").read_text(encoding="utf-8", errors="replace")
        except OSError:
            continue
        out = []
        for line in text.splitlines():
            parts = line.split()
            if len(parts) < 2 or ":" not in parts[1]:
                continue
            path, _, where = parts[1].rpartition(":")
            try:
                off = int(where.split("(", 1)[0], 16)
            except ValueError:
                continue
            if off == offset and _same_file(Path(path), binary):
                out.append(parts[0].split(":", 1)[-1])
        return out
    return []


def uprobe_holders(binary: Path, offset: int, *, exclude_pid: int | None = None) -> list[UprobeHolder]:
    """Who holds a uprobe at ``offset`` of ``binary`` now (other than ``exclude_pid``)."""
    found: dict[int, UprobeHolder] = {}
    for pid, fd in _perf_event_fds():
        if pid == exclude_pid or pid in found:
            continue
        info = _task_fd_query(pid, fd)
        if info is None:
            continue
        fd_type, name, probe_offset = info
        if fd_type not in (_BPF_FD_TYPE_UPROBE, _BPF_FD_TYPE_URETPROBE) or probe_offset != offset:
            continue
        if _same_file(Path(name), binary):
            found[pid] = UprobeHolder(pid, _comm(pid), f"BPF program on perf event fd {fd}")
    holders = list(found.values())
    holders += [
        UprobeHolder(None, f"tracefs event {ev}", "uprobe_events")
        for ev in tracefs_uprobe_events(binary, offset)
    ]
    return holders
