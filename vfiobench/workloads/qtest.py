"""A scripted guest over QEMU's qtest protocol: the MSI-X driver of the emulated lab.

The L2 QEMU runs with ``-S`` (its vCPUs never run) and ``-qtest unix:PATH``, which makes QEMU
*connect* to PATH: :class:`L2Qemu` listens first, starts QEMU, accepts, and hands out a
:class:`QtestSession` (text lines ``outl 0xcf8 0x...``, ``readl 0x...``; replies ``OK [0x...]``).
:class:`PciFunction` reads and writes PCI config space through the type-1 ports 0xcf8/0xcfc (ECAM
is off without firmware), sizes and assigns the BARs, and finds the MSI-X capability;
:class:`IvshmemGuest` drives the ivshmem-doorbell device: MSI-X vector addresses in guest RAM
(delivery = the data word appearing there), doorbell triggers, mask/unmask, PBA reads.

Workloads (:data:`WORKLOADS`), all over one or several vectors:

- ``mask-every-irq``: mask → trigger → poll the PBA until the pending bit shows → unmask → wait for
  delivery (what an RTOS that masks on every interrupt does);
- ``no-mask``: trigger → wait for delivery (the baseline);
- ``burst``: mask → N triggers → PBA → unmask → one delivery;
- ``mask-no-pba``: mask → trigger → wait until QEMU has taken the interrupt → unmask → wait for
  delivery, never reading the PBA: the guest ``x-pba-disable`` is for. QEMU taking it is seen in
  the L2 QEMU's own trace log (its ``vfio_msi_interrupt`` line, :class:`QemuTookIrq`), which
  stands in for whatever tells such a guest an interrupt is owed (a device status register).

With ``-accel kvm`` and no masking, the L1 kernel signals the KVM irqfd and RAM is never written:
delivery is then detected from L1's ``/proc/interrupts`` line ``vfio-msix[v](BDF)``
(:class:`IrqCountDelivery`).

Timestamps are ``time.monotonic_ns()`` (CLOCK_MONOTONIC, the clock of ``bpf_ktime_get_ns``), so
samples line up with probe events. Only the standard library and numpy are used: this module runs
inside the lab VM with Debian's python3.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np

from vfiobench.errors import LabError
from vfiobench.qemu.trace import TRACE_IRQ_VECTOR, parse_line

IVSHMEM_VENDOR = 0x1AF4
IVSHMEM_DEVICE = 0x1110
PCI_CAP_ID_MSIX = 0x11
MSIX_ENABLE = 0x8000
PCI_COMMAND_VALUE = 0x0406  # memory space, bus master, INTx disabled
IVSHMEM_IVPOSITION = 0x08
IVSHMEM_DOORBELL = 0x0C
#: Guest RAM where vector v's MSI lands (1 MiB + 64 bytes per vector), and its data word.
MSI_ADDR_BASE = 0x0010_0000
MSI_ADDR_STRIDE = 0x40
MSI_DATA_BASE = 0x41
BAR_WINDOW = 0xE000_0000  # where BARs are assigned (no firmware ran)
BURST_SETTLE_S = 0.005  # after a burst window's delivery, wait this long for stragglers

WORKLOADS: tuple[str, ...] = ("mask-every-irq", "no-mask", "burst", "mask-no-pba")
#: The workloads whose guest polls the PBA in every mask window.
READS_PBA: tuple[str, ...] = ("mask-every-irq", "burst")

#: One row per interrupt (burst: per mask window). Times in ns, CLOCK_MONOTONIC.
SAMPLE_DTYPE = np.dtype(
    [
        ("cycle", "<i8"),
        ("vector", "<i4"),
        ("triggers", "<i4"),
        ("trigger_ts_ns", "<i8"),
        ("delivered_ts_ns", "<i8"),
        ("latency_ns", "<i8"),
        ("mask_rtt_ns", "<i8"),
        ("unmask_rtt_ns", "<i8"),
        ("pba_polls", "<i4"),
        ("pba_seen", "?"),
        ("delivered", "?"),
        ("unmask_ts_ns", "<i8"),  # when the guest's unmask write went out (-1 when not masked)
    ]
)


class QtestError(LabError):
    """The qtest peer failed, closed the connection or answered FAIL."""


class QtestSession:
    """The qtest line protocol over a connected stream socket.

    Args:
        sock: Connected to QEMU's ``-qtest`` chardev (or a fake peer in tests).
        timeout_s: Give up on a reply after this long.
    """

    def __init__(self, sock: socket.socket, timeout_s: float = 30.0) -> None:
        self.sock = sock
        self.timeout_s = timeout_s
        self._buf = b""
        self.commands = 0

    def command(self, line: str) -> str:
        """Send one command; return what follows ``OK`` in the reply (``""`` for a bare OK).

        Raises:
            QtestError: the peer answered ``FAIL``, closed the connection or timed out.
        """
        try:
            self.sock.sendall(line.encode() + b"\n")
        except OSError as e:
            raise QtestError(f"qtest {line!r}: the QEMU side closed the connection ({e})") from None
        self.commands += 1
        while True:
            reply = self._readline(line)
            if reply.startswith("IRQ"):
                continue  # asynchronous, only after irq_intercept_*
            if reply == "OK":
                return ""
            if reply.startswith("OK "):
                return reply[3:]
            raise QtestError(f"qtest {line!r} answered {reply!r}")

    def _readline(self, what: str) -> str:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QtestError(f"qtest {what!r}: no reply within {self.timeout_s:.0f} s")
            ready, _, _ = select.select([self.sock], [], [], left)
            if not ready:
                continue
            chunk = self.sock.recv(65536)
            if not chunk:
                raise QtestError(f"qtest {what!r}: the QEMU side closed the connection")
            self._buf += chunk
        line, self._buf = self._buf.split(b"\n", 1)
        return line.decode(errors="replace").strip()

    def _value(self, line: str) -> int:
        out = self.command(line)
        try:
            return int(out.split()[0], 16)
        except (IndexError, ValueError):
            raise QtestError(f"qtest {line!r}: unexpected reply {out!r}") from None

    def outl(self, port: int, value: int) -> None:
        """32-bit port write."""
        self.command(f"outl 0x{port:x} 0x{value:x}")

    def outw(self, port: int, value: int) -> None:
        """16-bit port write."""
        self.command(f"outw 0x{port:x} 0x{value:x}")

    def outb(self, port: int, value: int) -> None:
        """8-bit port write."""
        self.command(f"outb 0x{port:x} 0x{value:x}")

    def inl(self, port: int) -> int:
        """32-bit port read."""
        return self._value(f"inl 0x{port:x}")

    def inw(self, port: int) -> int:
        """16-bit port read."""
        return self._value(f"inw 0x{port:x}")

    def inb(self, port: int) -> int:
        """8-bit port read."""
        return self._value(f"inb 0x{port:x}")

    def writel(self, addr: int, value: int) -> None:
        """32-bit guest-physical write (RAM or MMIO)."""
        self.command(f"writel 0x{addr:x} 0x{value:x}")

    def readl(self, addr: int) -> int:
        """32-bit guest-physical read (RAM or MMIO)."""
        return self._value(f"readl 0x{addr:x}")


# ---- PCI -------------------------------------------------------------------------------------------


def cfg_address(bus: int, dev: int, fn: int, reg: int) -> int:
    """The type-1 configuration address written to port 0xcf8."""
    return 0x8000_0000 | (bus << 16) | (dev << 11) | (fn << 8) | (reg & 0xFC)


@dataclass
class Bar:
    """One assigned memory BAR."""

    index: int
    address: int
    size: int
    is_64: bool
    prefetchable: bool


class PciFunction:
    """Config space of one PCI function through ports 0xcf8/0xcfc."""

    def __init__(self, qt: QtestSession, bus: int, dev: int, fn: int = 0) -> None:
        self.qt = qt
        self.bus, self.dev, self.fn = bus, dev, fn

    @property
    def bdf(self) -> str:
        """``BB:DD.F`` in L2."""
        return f"{self.bus:02x}:{self.dev:02x}.{self.fn}"

    def read(self, reg: int, size: int = 4) -> int:
        """Read 1, 2 or 4 bytes of config space at ``reg``."""
        self.qt.outl(0xCF8, cfg_address(self.bus, self.dev, self.fn, reg))
        port = 0xCFC + (reg & 3)
        if size == 4:
            return self.qt.inl(port)
        if size == 2:
            return self.qt.inw(port)
        return self.qt.inb(port)

    def write(self, reg: int, value: int, size: int = 4) -> None:
        """Write 1, 2 or 4 bytes of config space at ``reg``."""
        self.qt.outl(0xCF8, cfg_address(self.bus, self.dev, self.fn, reg))
        port = 0xCFC + (reg & 3)
        if size == 4:
            self.qt.outl(port, value)
        elif size == 2:
            self.qt.outw(port, value)
        else:
            self.qt.outb(port, value)

    def capability(self, cap_id: int) -> int | None:
        """Offset of the first capability ``cap_id`` (walking from 0x34), or None."""
        if not self.read(0x06, 2) & 0x10:
            return None
        pos = self.read(0x34, 1) & 0xFC
        seen = 0
        while pos and seen < 48:
            if self.read(pos, 1) == cap_id:
                return pos
            pos = self.read(pos + 1, 1) & 0xFC
            seen += 1
        return None

    def assign_bars(self, window: int = BAR_WINDOW) -> dict[int, Bar]:
        """Size every memory BAR (write ~0, read back, restore) and assign it naturally aligned.

        Returns:
            The memory BARs by index (a 64-bit BAR takes two slots; it is listed under the first).
        """
        bars: dict[int, Bar] = {}
        nxt = window
        i = 0
        while i < 6:
            reg = 0x10 + 4 * i
            orig = self.read(reg)
            if orig & 1:  # I/O BAR: not used by ivshmem
                i += 1
                continue
            is_64 = (orig >> 1) & 3 == 2
            self.write(reg, 0xFFFF_FFFF)
            low = self.read(reg) & ~0xF & 0xFFFF_FFFF
            high = 0
            if is_64:
                self.write(reg + 4, 0xFFFF_FFFF)
                high = self.read(reg + 4)
            mask = (high << 32 | low) if is_64 else low
            if mask == 0:
                self.write(reg, orig)
                i += 2 if is_64 else 1
                continue
            width = 64 if is_64 else 32
            size = ((~mask) & ((1 << width) - 1)) + 1
            addr = (nxt + size - 1) & ~(size - 1)
            nxt = addr + size
            self.write(reg, addr & 0xFFFF_FFFF)
            if is_64:
                self.write(reg + 4, addr >> 32)
            bars[i] = Bar(i, addr, size, is_64, bool(orig & 8))
            i += 2 if is_64 else 1
        return bars


def find_function(qt: QtestSession, vendor: int, device: int, bus: int = 0) -> PciFunction:
    """Scan ``bus`` for the first function with this vendor/device id.

    Raises:
        QtestError: nothing matches (the message lists what the bus holds).
    """
    want = device << 16 | vendor
    found = []
    for dev in range(32):
        fn = PciFunction(qt, bus, dev)
        ident = fn.read(0x00)
        if ident == want:
            return fn
        if ident not in (0xFFFF_FFFF, 0):
            found.append(f"{bus:02x}:{dev:02x}.0={ident & 0xFFFF:04x}:{ident >> 16:04x}")
    raise QtestError(
        f"no PCI device {vendor:04x}:{device:04x} on bus {bus} (found {', '.join(found) or 'none'})",
        "is the vfio-pci device on the L2 command line?",
    )


# ---- delivery detection ----------------------------------------------------------------------------


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


# ---- how a masked interrupt is seen to be owed ----------------------------------------------------


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


# ---- the device ------------------------------------------------------------------------------------


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


# ---- workloads -------------------------------------------------------------------------------------


@dataclass
class WorkloadParams:
    """What a workload does.

    Attributes:
        name: One of :data:`WORKLOADS`.
        vectors: MSI-X vectors used, each once per cycle, in order.
        cycles: Number of cycles (None: run for ``duration_s``).
        duration_s: Run for this long (when ``cycles`` is None).
        burst: Triggers per mask window (``burst`` only).
        wait_timeout_s: Give up waiting for a pending bit or a delivery after this long.
    """

    name: str = "mask-every-irq"
    vectors: list[int] = field(default_factory=lambda: [0])
    cycles: int | None = 100
    duration_s: float | None = None
    burst: int = 4
    wait_timeout_s: float = 5.0

    def validate(self) -> None:
        """Raise :class:`LabError` for a parameter that makes no sense."""
        if self.name not in WORKLOADS:
            raise LabError(f"unknown workload {self.name!r}", f"choose one of {', '.join(WORKLOADS)}")
        if not self.vectors or len(set(self.vectors)) != len(self.vectors):
            raise LabError(f"vectors {self.vectors} must be distinct and non-empty")
        if self.cycles is None and self.duration_s is None:
            raise LabError("give a number of cycles or a duration")
        if self.cycles is not None and self.cycles < 1:
            raise LabError(f"cycles={self.cycles} must be at least 1")
        if self.duration_s is not None and self.duration_s <= 0:
            raise LabError(f"duration {self.duration_s} must be positive")
        if self.name == "burst" and self.burst < 1:
            raise LabError(f"burst={self.burst} must be at least 1")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (run.json ``workload.params``)."""
        d: dict[str, Any] = {"vectors": list(self.vectors), "cycles": self.cycles}
        if self.duration_s is not None:
            d["duration_s"] = self.duration_s
        if self.name == "burst":
            d["burst"] = self.burst
        return d


@dataclass
class Phase:
    """A time window of the workload (CLOCK_MONOTONIC ns) and the trace-log byte range it covers."""

    start_ns: int = 0
    end_ns: int = 0
    trace_start: int = 0
    trace_end: int = 0
    snapshot_start: dict[str, int] = field(default_factory=dict)
    snapshot_end: dict[str, int] = field(default_factory=dict)


@dataclass
class WorkloadResult:
    """Samples, counters and phase windows of one workload run."""

    samples: np.ndarray[Any, Any]
    counters: dict[str, int]
    phases: dict[str, Phase]
    device: DeviceInfo


class _Recorder:
    def __init__(self) -> None:
        self.rows: list[tuple[Any, ...]] = []
        self.counters = {
            "cycles": 0,
            "triggered": 0,
            "delivered": 0,
            "expected_deliveries": 0,
            "masks": 0,
            "unmasks": 0,
            "pba_seen": 0,
            "qemu_took": 0,
            "timeouts": 0,
            "late_deliveries": 0,
        }


def _wait(pred: Callable[[], bool], timeout_s: float) -> tuple[bool, int]:
    """Poll ``pred`` until true or timeout; returns (ok, polls)."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while True:
        polls += 1
        if pred():
            return True, polls
        if time.monotonic() > deadline:
            return False, polls


def _masked_window(
    g: IvshmemGuest,
    d: Delivery,
    owed: Owed,
    rec: _Recorder,
    cycle: int,
    v: int,
    triggers: int,
    timeout: float,
) -> None:
    now = time.monotonic_ns
    t0 = now()
    g.mask(v)
    t1 = now()
    rec.counters["masks"] += 1
    d.arm(v)
    owed.arm(v)
    t_trig = now()
    for _ in range(triggers):
        g.trigger(v)
    rec.counters["triggered"] += triggers
    seen, polls = _wait(lambda: owed.poll(v), timeout)
    t2 = now()
    g.unmask(v)
    t3 = now()
    rec.counters["unmasks"] += 1
    reads_pba = isinstance(owed, PbaOwed)
    rec.counters["pba_seen" if reads_pba else "qemu_took"] += seen
    ok, _ = _wait(lambda: d.poll(v), timeout)
    t_del = now() if ok else 0
    rec.counters["delivered"] += ok
    rec.counters["expected_deliveries"] += 1
    rec.counters["timeouts"] += (not seen) + (not ok)
    if triggers > 1:
        # a burst's later triggers may still be in flight (eventfds coalesce at every level) and
        # land after the unmask: let them settle and count them, so the next window starts clean
        time.sleep(BURST_SETTLE_S)
        rec.counters["late_deliveries"] += d.poll(v)
    latency = t_del - t_trig if ok else -1
    pba_polls, pba_seen = (polls, seen) if reads_pba else (0, False)  # mask-no-pba reads no PBA
    rec.rows.append(
        (cycle, v, triggers, t_trig, t_del, latency, t1 - t0, t3 - t2, pba_polls, pba_seen, ok, t2)
    )


def _unmasked(g: IvshmemGuest, d: Delivery, rec: _Recorder, cycle: int, v: int, timeout: float) -> None:
    d.arm(v)
    t_trig = time.monotonic_ns()
    g.trigger(v)
    rec.counters["triggered"] += 1
    ok, _ = _wait(lambda: d.poll(v), timeout)
    t_del = time.monotonic_ns() if ok else 0
    rec.counters["delivered"] += ok
    rec.counters["expected_deliveries"] += 1
    rec.counters["timeouts"] += not ok
    rec.rows.append((cycle, v, 1, t_trig, t_del, t_del - t_trig if ok else -1, -1, -1, 0, False, ok, -1))


def run_workload(
    qt: QtestSession,
    params: WorkloadParams,
    *,
    delivery: Callable[[IvshmemGuest], Delivery] = RamDelivery,
    trace_log: str | os.PathLike[str] | None = None,
    snapshot: Callable[[], dict[str, int]] | None = None,
    max_consecutive_timeouts: int = 5,
) -> WorkloadResult:
    """Set the device up, then run the workload.

    Args:
        qt: A connected qtest session to an L2 QEMU holding the vfio-pci ivshmem device.
        params: The workload.
        delivery: Factory of the delivery detector (:class:`RamDelivery`, or for KVM no-mask
            ``lambda g: IrqCountDelivery(bdf)``).
        trace_log: The L2 QEMU's ``-D`` file; its size at each phase boundary is recorded so the
            trace events can be cut by phase. ``mask-no-pba`` needs it (:class:`QemuTookIrq`).
        snapshot: Called at each phase boundary (e.g. L1 interrupt counts); the results are kept
            in the phases as ``snapshot_start``/``snapshot_end``.
        max_consecutive_timeouts: Abort with :class:`QtestError` after this many lost interrupts
            in a row (the lab is broken, not slow).

    Returns:
        Samples (:data:`SAMPLE_DTYPE`), counters (``cycles``, ``triggered``, ``delivered``,
        ``expected_deliveries``, ``masks``, ``unmasks``, ``pba_seen``, ``qemu_took`` (mask windows
        of ``mask-no-pba`` in which QEMU took the interrupt before the unmask), ``timeouts``,
        ``late_deliveries``: burst triggers delivered after their window's unmask), phase
        windows ``setup`` and ``measure``, and the device found.
    """
    params.validate()
    if params.name == "mask-no-pba" and trace_log is None:
        raise LabError(
            "mask-no-pba needs the L2 QEMU's trace log to know when QEMU took the masked interrupt",
            "start L2 with vfiobench.qemu.trace.trace_args(LOG) and pass trace_log=LOG",
        )

    def mark() -> tuple[int, int, dict[str, int]]:
        snap = snapshot() if snapshot is not None else {}
        size = os.path.getsize(trace_log) if trace_log and os.path.exists(trace_log) else 0
        return time.monotonic_ns(), size, snap

    guest = IvshmemGuest(qt)
    s0 = mark()
    info = guest.setup(params.vectors)
    s1 = mark()
    det = delivery(guest)
    owed: Owed = QemuTookIrq(trace_log) if params.name == "mask-no-pba" and trace_log else PbaOwed(guest)
    rec = _Recorder()
    deadline = None if params.duration_s is None else time.monotonic() + params.duration_s
    cycle = 0
    streak = 0
    m0 = mark()
    while True:
        if params.cycles is not None and cycle >= params.cycles:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
        for v in params.vectors:
            before = rec.counters["timeouts"]
            if params.name == "no-mask":
                _unmasked(guest, det, rec, cycle, v, params.wait_timeout_s)
            else:
                n = params.burst if params.name == "burst" else 1
                _masked_window(guest, det, owed, rec, cycle, v, n, params.wait_timeout_s)
            streak = streak + 1 if rec.counters["timeouts"] > before else 0
            if streak >= max_consecutive_timeouts:
                raise QtestError(
                    f"{streak} interrupts in a row were not delivered (cycle {cycle}, vector {v})",
                    "see the L2 trace log and the L1 console",
                )
        cycle += 1
    m1 = mark()
    rec.counters["cycles"] = cycle
    samples = np.array(rec.rows, dtype=SAMPLE_DTYPE)
    phases = {
        "setup": Phase(s0[0], s1[0], s0[1], s1[1], s0[2], s1[2]),
        "measure": Phase(m0[0], m1[0], m0[1], m1[1], m0[2], m1[2]),
    }
    return WorkloadResult(samples, rec.counters, phases, info)


# ---- the L2 QEMU -----------------------------------------------------------------------------------


def l2_cmdline(
    qemu: str,
    accel: str,
    qtest_sock: str | os.PathLike[str],
    host_bdf: str,
    trace_args: Sequence[str] = (),
    extra_args: Sequence[str] = (),
) -> list[str]:
    """The L2 command line (LAB-NOTES §5): stopped vCPUs, qtest, the vfio-pci device, trace log."""
    return [
        qemu,
        "-accel",
        accel,
        "-S",
        "-qtest",
        f"unix:{qtest_sock}",
        "-qtest-log",
        "/dev/null",
        "-machine",
        "q35",
        "-m",
        "128M",
        "-nographic",
        "-display",
        "none",
        "-nodefaults",
        "-serial",
        "none",
        "-monitor",
        "none",
        "-device",
        f"vfio-pci,host={host_bdf}",
        *trace_args,
        *extra_args,
    ]


class L2Qemu:
    """The L2 QEMU with a qtest connection; a context manager owning the process.

    Listens on ``workdir/qtest.sock`` first (``-qtest unix:`` makes QEMU connect), starts QEMU
    with its output in ``workdir/l2-stderr.log``, accepts within ``start_timeout_s``.

    Raises:
        LabError: QEMU exited or did not connect in time (the message quotes its stderr).
    """

    def __init__(
        self, cmdline_for: Callable[[Path], list[str]], workdir: Path, start_timeout_s: float = 60.0
    ):
        self.workdir = Path(workdir)
        self.sock_path = self.workdir / "qtest.sock"
        self.cmdline = cmdline_for(self.sock_path)
        self.start_timeout_s = start_timeout_s
        self.proc: subprocess.Popen[bytes] | None = None
        self.session: QtestSession | None = None
        self.start_s = 0.0
        self._listener: socket.socket | None = None
        self._conn: socket.socket | None = None
        self._err: Any = None

    @property
    def stderr_path(self) -> Path:
        """L2's stdout+stderr."""
        return self.workdir / "l2-stderr.log"

    def stderr_tail(self, n: int = 4) -> str:
        """Last lines L2 printed."""
        try:
            lines = self.stderr_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(lines[-n:])

    def __enter__(self) -> Self:
        try:
            self._start()
        except BaseException:
            self.close()
            raise
        return self

    def _start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.sock_path))
        self._listener.listen(1)
        self._err = open(self.stderr_path, "wb")  # noqa: SIM115
        t0 = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                self.cmdline, stdin=subprocess.DEVNULL, stdout=self._err, stderr=subprocess.STDOUT
            )
        except OSError as e:
            raise LabError(f"cannot start L2 QEMU {self.cmdline[0]}: {e}") from None
        while True:
            ready, _, _ = select.select([self._listener], [], [], 0.2)
            if ready:
                self._conn, _ = self._listener.accept()
                break
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                raise LabError(f"L2 QEMU exited with status {rc} before connecting: {self.stderr_tail()}")
            if time.monotonic() - t0 > self.start_timeout_s:
                raise LabError(f"L2 QEMU did not connect to qtest within {self.start_timeout_s:.0f} s")
        self.session = QtestSession(self._conn)
        self.session.readl(0)  # answered once QEMU has finished machine init
        self.start_s = time.monotonic() - t0

    @property
    def pid(self) -> int:
        """L2's process id."""
        assert self.proc is not None
        return self.proc.pid

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close qtest, end QEMU (SIGTERM, then SIGKILL after 10 s), close files."""
        for s in (self._conn, self._listener):
            if s is not None:
                s.close()
        self._conn = self._listener = None
        if self.proc is not None and self.proc.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    self.proc.send_signal(sig)
                try:
                    self.proc.wait(timeout=10)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._err is not None:
            self._err.close()
            self._err = None
        with contextlib.suppress(FileNotFoundError):
            self.sock_path.unlink()
