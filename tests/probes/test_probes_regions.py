"""Region names from a live process's memory: the offset scan, on fake MemoryRegions in this process."""

from __future__ import annotations

import ctypes as ct
import os

import numpy as np

from vfiobench.probes.regions import SCAN_BYTES, RegionNames


class FakeRegion(ct.Structure):
    """As large as the scan window: the scan must not run into whatever the heap holds next (another
    fake region's name pointer once did, when the two happened to be allocated 288 bytes apart)."""

    _fields_ = [("words", ct.c_void_p * (SCAN_BYTES // 8))]


def _region(keep: list[object], strings: dict[int, bytes], binary: dict[int, bytes]) -> int:
    """A fake MemoryRegion: word i points at strings[i] (a C string) or binary[i] (not a name)."""
    r = FakeRegion()
    for i, s in {**strings, **binary}.items():
        buf = ct.create_string_buffer(s)
        keep.append(buf)
        r.words[i] = ct.addressof(buf)
    keep.append(r)
    return ct.addressof(r)


def test_offset_is_confirmed_by_msix_pba_and_names_are_looked_up_again() -> None:
    keep: list[object] = []
    # word 2 is a decoy string pointer, the name is word 5 (offset 40)
    bar = _region(keep, {2: b"decoy-string", 5: b"vfio-bar2"}, {0: b"\x01\x02\xff\x80"})
    pba = _region(keep, {2: b"another-decoy", 5: b"msix-pba"}, {0: b"\x01\x02\xff\x80"})
    names = RegionNames(os.getpid())
    names.resolve([bar])
    # one region, two plausible offsets: the lowest wins for now, unconfirmed
    assert names.offset == 16 and not names.confirmed and names.names[bar] == "decoy-string"
    names.resolve([pba])
    assert names.offset == 40 and names.confirmed
    assert names.names == {bar: "vfio-bar2", pba: "msix-pba"}
    np.testing.assert_array_equal(
        names.is_pba(np.array([bar, pba, pba], dtype=np.uint64)), [False, True, True]
    )
    table = names.table()
    assert sorted(table["name"].tolist()) == ["msix-pba", "vfio-bar2"]
    assert set(table["name_offset"].tolist()) == {40}


def test_unreadable_pointers_stay_unresolved() -> None:
    names = RegionNames(os.getpid())
    names.resolve([16])  # the zero page: unreadable
    assert names.unresolved == {16} and names.names == {}
    t = names.table()
    assert t["name"].tolist() == [""] and t["name_offset"].tolist() == [-1] and not t["is_pba"].any()


def test_a_gone_process_leaves_everything_unresolved() -> None:
    names = RegionNames(4_000_000)  # above pid_max: no such process
    names.resolve([0x5555_0000])
    assert names.unresolved == {0x5555_0000} and names.offset is None


def test_a_name_at_the_end_of_a_mapping_is_read() -> None:
    """A name whose 64-byte read window would run into an unmapped page."""
    libc = ct.CDLL(None, use_errno=True)
    libc.mmap.restype = ct.c_void_p
    libc.mmap.argtypes = [ct.c_void_p, ct.c_size_t, ct.c_int, ct.c_int, ct.c_int, ct.c_long]
    libc.munmap.argtypes = [ct.c_void_p, ct.c_size_t]
    base = libc.mmap(None, 8192, 0x1 | 0x2, 0x02 | 0x20, -1, 0)  # PROT_READ|WRITE, PRIVATE|ANONYMOUS
    assert base not in (None, ct.c_void_p(-1).value)
    assert libc.munmap(base + 4096, 4096) == 0  # nothing readable after the first page
    try:
        name = b"msix-pba\0"
        ct.memmove(base + 4096 - len(name), name, len(name))
        region = (ct.c_uint64 * 8)()
        region[3] = base + 4096 - len(name)
        names = RegionNames(os.getpid())
        names.resolve([ct.addressof(region)])
        assert names.names == {ct.addressof(region): "msix-pba"} and names.offset == 24
    finally:
        libc.munmap(base, 4096)


def test_strings_outside_the_heap_are_not_names() -> None:
    """A word pointing at read-only data of a library (a shared structure, not a g_strdup'ed name)."""
    libc = ct.CDLL(None)
    libc.strerror.restype = ct.c_void_p
    rodata = libc.strerror(2)  # "No such file or directory", in libc's read-only data
    assert ct.string_at(rodata) == b"No such file or directory"
    keep: list[object] = []
    mr = _region(keep, {4: b"pam-pci"}, {})
    ct.cast(mr, ct.POINTER(ct.c_void_p))[0] = rodata  # word 0: name-like, but not on the heap
    names = RegionNames(os.getpid())
    names.resolve([mr])
    assert names.offset == 32 and names.names == {mr: "pam-pci"}
