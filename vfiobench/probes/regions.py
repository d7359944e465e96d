"""Which ``memory_region_set_enabled`` calls toggle the MSI-X PBA: region names from the live process.

QEMU's ``MemoryRegion`` has a ``const char *name`` field ("msix-pba" for the PBA, set in
``hw/pci/msix.c``), but its offset depends on the QEMU version and build, and Debian's binary has no
debug info to say where it is. The method, run in user space while recording:

1. The probe records the ``mr`` pointer of every call.
2. For the distinct pointers seen, read the first :data:`SCAN_BYTES` of each ``MemoryRegion`` from
   ``/proc/PID/mem`` (root can read any process).
3. At every 8-aligned offset, treat the word as a ``char *`` and try to read a short name-like
   NUL-terminated string through it (letters, digits and ``_.:/()[], +-``). QEMU ``g_strdup``s every
   region name, so only pointers into writable anonymous memory (the heap) count: that rules out
   words pointing at shared read-only structures (a ``MemoryRegionOps`` whose first function
   pointer happens to spell "074B7V", say). An offset where some region is called "msix-pba" wins
   outright and is final; otherwise the offset that names the most regions with the most distinct
   pointers wins (ties: the lowest offset), and every later batch of new regions is scanned again
   until "msix-pba" confirms one. (Debian's QEMU 7.2: offset 232; the test stand-in: 88.)
4. ``is_pba`` is then ``name == "msix-pba"``; the ``pba_regions`` table lists every region seen
   with its name and the offset used.

If the process is gone before a pointer could be read (or no offset fits), its name stays empty,
its ``name_offset`` is -1 and ``is_pba`` is false for it: the table still has every call with
its ``mr``, so the PBA can be identified afterwards by its toggle pattern (enabled on a pending
interrupt, disabled on the next unmask: alternating ``enabled`` 1/0 on one ``mr``).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfiobench.schema import PBA_REGIONS, TABLE_DTYPES

PBA_NAME = "msix-pba"
SCAN_BYTES = 512
MAX_NAME = 64
# QEMU region names: "msix-pba", "pam-pci", "vfio 0000:00:01.0 BAR 0 mmaps[0]", "alias ich9-pm"...
_NAME = re.compile(rb"[A-Za-z0-9_][A-Za-z0-9_.:/()\[\], +-]+")


def _read(mem: Any, addr: int, size: int) -> bytes | None:
    try:
        mem.seek(addr)
        data: bytes = mem.read(size)
        return data
    except (OSError, ValueError, OverflowError):
        return None


def _read_cstr(mem: Any, addr: int) -> str | None:
    """A name-like NUL-terminated string of 2..63 chars at ``addr``, else None."""
    if addr < 4096 or addr >= 1 << 47:
        return None
    raw = _read(mem, addr, MAX_NAME)
    if not raw or b"\0" not in raw:
        return None
    s = raw[: raw.index(b"\0")]
    if not _NAME.fullmatch(s):
        return None
    return s.decode("ascii")


@dataclass
class RegionNames:
    """Resolves ``MemoryRegion`` pointers of one process to names (see the module docstring)."""

    pid: int
    offset: int | None = None
    names: dict[int, str] = field(default_factory=dict)
    unresolved: set[int] = field(default_factory=set)

    confirmed: bool = False  # the offset was found through a region called "msix-pba"

    def _heap_ranges(self) -> list[tuple[int, int]]:
        """Writable anonymous mappings (heap, malloc arenas) of the process."""
        ranges = []
        try:
            with open(f"/proc/{self.pid}/maps", encoding="ascii", errors="replace") as f:
                for line in f:
                    parts = line.split()
                    path = parts[5] if len(parts) > 5 else ""
                    if parts[1].startswith("rw") and path in ("", "[heap]"):
                        lo, hi = parts[0].split("-")
                        ranges.append((int(lo, 16), int(hi, 16)))
        except (OSError, IndexError, ValueError):
            return []
        return ranges

    def _scan(self, mem: Any, mrs: list[int]) -> tuple[int | None, bool]:
        """(offset, confirmed): the name offset that fits ``mrs`` best."""
        heap = self._heap_ranges()
        blobs = {mr: _read(mem, mr, SCAN_BYTES) for mr in mrs}
        scores: dict[int, tuple[int, int]] = {}
        for off in range(0, SCAN_BYTES, 8):
            named = 0
            ptrs = set()
            for blob in blobs.values():
                if blob and len(blob) >= off + 8:
                    (ptr,) = struct.unpack_from("<Q", blob, off)
                    if not any(lo <= ptr < hi for lo, hi in heap):
                        continue
                    name = _read_cstr(mem, ptr)
                    if name == PBA_NAME:
                        return off, True  # the name we are after: no doubt left
                    if name is not None:
                        named += 1
                        ptrs.add(ptr)
            if named:
                scores[off] = (named, len(ptrs))
        if not scores:
            return None, False
        best = max(scores.values())
        return min(off for off, score in scores.items() if score == best), False

    def _name_at(self, mem: Any, mr: int) -> str | None:
        if self.offset is None:
            return None
        raw = _read(mem, mr + self.offset, 8)
        if not raw or len(raw) != 8:
            return None
        return _read_cstr(mem, struct.unpack("<Q", raw)[0])

    def resolve(self, mrs: Iterable[int]) -> None:
        """Look up names of pointers not seen before (best effort; never raises).

        Until the offset is confirmed by a region called "msix-pba", every batch of new pointers
        is scanned again; when the scan then finds "msix-pba" at another offset, every name is
        looked up again at the confirmed one.
        """
        new = [int(m) for m in mrs if int(m) not in self.names and int(m) not in self.unresolved]
        if not new:
            return
        try:
            mem = open(f"/proc/{self.pid}/mem", "rb", buffering=0)  # noqa: SIM115
        except OSError:
            self.unresolved.update(new)
            return
        with mem:
            if not self.confirmed:
                offset, confirmed = self._scan(mem, new)
                if self.offset is None or (confirmed and offset != self.offset):
                    known = [*self.names, *self.unresolved]
                    self.names.clear()
                    self.unresolved.clear()
                    self.offset = offset
                    new = known + new
                self.confirmed = confirmed
            for mr in new:
                name = self._name_at(mem, mr)
                if name is None:
                    self.unresolved.add(mr)
                else:
                    self.names[mr] = name

    def is_pba(self, mrs: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Boolean array: which of ``mrs`` are the PBA region (by name)."""
        pba = [mr for mr, name in self.names.items() if name == PBA_NAME]
        return np.isin(mrs, np.array(pba, dtype=np.uint64))

    def table(self) -> np.ndarray[Any, Any]:
        """The ``pba_regions`` table: one row per region seen.

        Columns: ``mr`` (pointer), ``name`` ("" if unresolved), ``name_offset`` (bytes into
        ``MemoryRegion``, -1 if unknown), ``is_pba``.
        """
        rows = [(mr, name, self.offset, name == PBA_NAME) for mr, name in sorted(self.names.items())]
        rows += [(mr, "", -1, False) for mr in sorted(self.unresolved)]
        out = np.empty(len(rows), dtype=TABLE_DTYPES[PBA_REGIONS])
        for i, (mr, name, off, pba) in enumerate(rows):
            out[i] = (mr, name, -1 if off is None else off, pba)
        return out
