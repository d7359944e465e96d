"""Introspection of a QEMU binary (or any x86-64 ELF): version, build-id, symbols, probe placement.

A small ``struct``-based ELF64 reader, so nothing beyond the standard library is needed (the lab VM
runs Debian's system Python). It answers what the probes need before they attach:

- :func:`inspect_binary` → :class:`BinaryInfo`: path, GNU build-id, ``-version`` output;
- :meth:`ElfFile.symbol` → a :class:`Symbol` from ``.symtab`` or ``.dynsym`` (address, size, which
  table), or ``None``;
- :func:`probe_offset`: where inside a function a uprobe should sit so the kernel *emulates* the probed
  instruction instead of single-stepping it. On x86-64 Linux emulates only ``push``, ``jmp``, ``call``
  and ``jcc`` at a uprobe; any other first instruction (``endbr64``, ``cmp``, ``mov``...) is single-stepped
  out of line, which costs 20–30 µs per hit in a VM. The function skips a leading ``endbr64`` and any
  ``cmp``/``test`` instructions (they only write flags, so the argument registers and the return
  address at ``[rsp]`` are intact afterwards) and stops at the first emulated instruction. Debian's
  QEMU 7.2 ``memory_region_set_enabled`` starts with ``cmp %sil,0x9a(%rdi); je ...``: the probe goes
  on the ``je`` at +7, where ``rdi``/``rsi`` still hold ``mr``/``enabled``.

Example:
    >>> elf = ElfFile("/usr/bin/qemu-system-x86_64")                      # doctest: +SKIP
    >>> sym = elf.symbol("memory_region_set_enabled")                     # doctest: +SKIP
    >>> probe_offset(elf.function_bytes(sym))                             # doctest: +SKIP
    7
"""

from __future__ import annotations

import os
import struct
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from vfiobench.errors import MissingBinaryError, MissingSymbolError, QemuError

_ELF_MAGIC = b"\x7fELF"
_SHT_SYMTAB = 2
_SHT_NOTE = 7
_SHT_DYNSYM = 11
_PT_LOAD = 1
_NT_GNU_BUILD_ID = 3
_STT_FUNC = 2
_ENDBR64 = b"\xf3\x0f\x1e\xfa"


@dataclass(frozen=True)
class Symbol:
    """A symbol of an ELF file: name, virtual address, size, and the table it came from."""

    name: str
    address: int
    size: int
    table: str  # ".symtab" or ".dynsym"
    is_function: bool


@dataclass(frozen=True)
class _Section:
    name_off: int
    type: int
    addr: int
    offset: int
    size: int
    link: int
    entsize: int


class ElfFile:
    """A read-only view of an x86-64 little-endian ELF64 file.

    Raises:
        MissingBinaryError: the path does not exist, is not a regular file, or is not ELF64 x86-64.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise MissingBinaryError(f"{self.path}: no such file", "pass the QEMU binary with --qemu PATH")
        if not self.path.is_file():
            raise MissingBinaryError(f"{self.path}: not a regular file", "pass the QEMU binary itself")
        try:
            self.data = self.path.read_bytes()
        except OSError as e:
            raise MissingBinaryError(f"{self.path}: unreadable ({e.strerror})") from None
        if self.data[:4] != _ELF_MAGIC:
            raise MissingBinaryError(
                f"{self.path}: not an ELF file", "pass the QEMU executable, not a script"
            )
        if self.data[4] != 2 or self.data[5] != 1:
            raise MissingBinaryError(f"{self.path}: not a little-endian 64-bit ELF file")
        (self.e_type, machine) = struct.unpack_from("<HH", self.data, 16)
        if machine != 62:
            raise MissingBinaryError(f"{self.path}: ELF machine {machine} is not x86-64")
        (shoff,) = struct.unpack_from("<Q", self.data, 0x28)
        shentsize, shnum, shstrndx = struct.unpack_from("<HHH", self.data, 0x3A)
        (phoff,) = struct.unpack_from("<Q", self.data, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", self.data, 0x36)
        self.sections = [_Section(*_unpack_section(self.data, shoff + i * shentsize)) for i in range(shnum)]
        self._shstr = self.sections[shstrndx] if shstrndx < len(self.sections) else None
        self.segments: list[tuple[int, int, int, int]] = []  # (vaddr, offset, filesz, flags)
        for i in range(phnum):
            p_type, p_flags, p_offset, p_vaddr, _paddr, p_filesz = struct.unpack_from(
                "<IIQQQQ", self.data, phoff + i * phentsize
            )
            if p_type == _PT_LOAD:
                self.segments.append((p_vaddr, p_offset, p_filesz, p_flags))

    def section_name(self, sec: _Section) -> str:
        """The name of a section (from the section header string table)."""
        if self._shstr is None:
            return ""
        return _cstr(self.data, self._shstr.offset + sec.name_off)

    def section(self, name: str) -> _Section | None:
        """The first section called ``name``, or ``None``."""
        for sec in self.sections:
            if self.section_name(sec) == name:
                return sec
        return None

    @cached_property
    def build_id(self) -> str:
        """The GNU build-id as lowercase hex ("" when the binary has none)."""
        for sec in self.sections:
            if sec.type != _SHT_NOTE:
                continue
            pos, end = sec.offset, sec.offset + sec.size
            while pos + 12 <= end:
                namesz, descsz, ntype = struct.unpack_from("<III", self.data, pos)
                name_start = pos + 12
                desc_start = name_start + _align4(namesz)
                if ntype == _NT_GNU_BUILD_ID and self.data[name_start : name_start + 3] == b"GNU":
                    return self.data[desc_start : desc_start + descsz].hex()
                pos = desc_start + _align4(descsz)
        return ""

    @cached_property
    def _symbols(self) -> dict[str, Symbol]:
        found: dict[str, Symbol] = {}
        for sec in self.sections:
            if sec.type not in (_SHT_SYMTAB, _SHT_DYNSYM) or sec.entsize == 0:
                continue
            table = ".symtab" if sec.type == _SHT_SYMTAB else ".dynsym"
            strtab = self.sections[sec.link]
            blob = self.data[sec.offset : sec.offset + sec.size]
            for st_name, st_info, _other, shndx, value, size in struct.iter_unpack("<IBBHQQ", blob):
                if st_name == 0 or shndx == 0 or value == 0:
                    continue  # unnamed or undefined (imported) symbols
                name = _cstr(self.data, strtab.offset + st_name)
                name = name.split("@", 1)[0]
                if name not in found or table == ".symtab":
                    found[name] = Symbol(name, value, size, table, (st_info & 0xF) == _STT_FUNC)
        return found

    def symbol(self, name: str) -> Symbol | None:
        """The defined symbol ``name`` from ``.symtab`` (preferred) or ``.dynsym``, or ``None``."""
        return self._symbols.get(name)

    def require_symbol(self, name: str) -> Symbol:
        """Like :meth:`symbol`, but raise a :class:`~vfiobench.errors.MissingSymbolError`."""
        sym = self.symbol(name)
        if sym is None:
            raise MissingSymbolError(
                f"{self.path}: no symbol {name!r} in .symtab or .dynsym",
                "use a QEMU build that exports it (Debian's does) or one built with symbols",
            )
        return sym

    def file_offset(self, vaddr: int) -> int:
        """Translate a virtual address to a file offset through the PT_LOAD segments."""
        for seg_vaddr, seg_off, filesz, _flags in self.segments:
            if seg_vaddr <= vaddr < seg_vaddr + filesz:
                return vaddr - seg_vaddr + seg_off
        raise QemuError(f"{self.path}: address {vaddr:#x} is in no loaded segment")

    def function_bytes(self, sym: Symbol, limit: int = 64) -> bytes:
        """The first ``limit`` bytes of a function's code (fewer if the symbol is smaller)."""
        off = self.file_offset(sym.address)
        n = min(limit, sym.size) if sym.size else limit
        return self.data[off : off + n]

    def starts_with_endbr64(self, sym: Symbol) -> bool:
        """True when the function's first instruction is ``endbr64`` (a single-stepped uprobe)."""
        return self.function_bytes(sym, 4) == _ENDBR64


def _unpack_section(data: bytes, off: int) -> tuple[int, int, int, int, int, int, int]:
    name, stype, _flags, addr, offset, size, link, _info, _align, entsize = struct.unpack_from(
        "<IIQQQQIIQQ", data, off
    )
    return name, stype, addr, offset, size, link, entsize


def _cstr(data: bytes, off: int) -> str:
    end = data.find(b"\0", off)
    return data[off:end].decode("utf-8", "replace")


def _align4(n: int) -> int:
    return (n + 3) & ~3


# ---- probe placement: a tiny decoder for the handful of entry instructions worth skipping -----------


def _modrm_len(code: bytes, pos: int) -> int:
    """Length of a ModRM byte plus SIB and displacement starting at ``pos``."""
    modrm = code[pos]
    mod, rm = modrm >> 6, modrm & 7
    n = 1
    if mod != 3 and rm == 4:
        sib = code[pos + 1]
        n += 1
        if mod == 0 and (sib & 7) == 5:
            n += 4
    if mod == 0 and rm == 5:
        n += 4  # rip-relative disp32
    elif mod == 1:
        n += 1
    elif mod == 2:
        n += 4
    return n


def _flags_only_len(code: bytes, pos: int) -> int:
    """Length of a ``cmp``/``test`` instruction at ``pos`` (they write only flags), else 0."""
    p = pos
    if 0x40 <= code[p] <= 0x4F:  # REX
        p += 1
    op = code[p]
    if op in (0x38, 0x39, 0x3A, 0x3B, 0x84, 0x85):  # cmp/test r/m, r
        return p + 1 + _modrm_len(code, p + 1) - pos
    reg = (code[p + 1] >> 3) & 7
    if op == 0x80 and reg == 7:  # cmp r/m8, imm8
        return p + 1 + _modrm_len(code, p + 1) + 1 - pos
    if op == 0x83 and reg == 7:  # cmp r/m, imm8
        return p + 1 + _modrm_len(code, p + 1) + 1 - pos
    if op == 0x81 and reg == 7:  # cmp r/m, imm32
        return p + 1 + _modrm_len(code, p + 1) + 4 - pos
    if op == 0xF6 and reg == 0:  # test r/m8, imm8
        return p + 1 + _modrm_len(code, p + 1) + 1 - pos
    if op == 0xF7 and reg == 0:  # test r/m, imm32
        return p + 1 + _modrm_len(code, p + 1) + 4 - pos
    return 0


def is_emulated(code: bytes, pos: int) -> bool:
    """True when the x86 uprobe code emulates the instruction at ``pos`` (no single-step)."""
    op = code[pos]
    if 0x50 <= op <= 0x57:  # push r64
        return True
    if op == 0x41 and pos + 1 < len(code) and 0x50 <= code[pos + 1] <= 0x57:  # push r8-r15
        return True
    if op in (0xE8, 0xE9, 0xEB) or 0x70 <= op <= 0x7F:  # call, jmp, jcc rel8
        return True
    return op == 0x0F and pos + 1 < len(code) and 0x80 <= code[pos + 1] <= 0x8F  # jcc rel32


def probe_offset(code: bytes) -> int:
    """Offset of the first instruction a uprobe can sit on without being single-stepped.

    Skips a leading ``endbr64`` and any ``cmp``/``test`` instructions, then returns the offset of
    the next instruction if the kernel emulates it (``push``, ``jmp``, ``call``, ``jcc``). Otherwise
    returns the offset after ``endbr64`` (or 0): the probe is then single-stepped, slower but exact.
    The argument registers and the return address at ``[rsp]`` are unchanged at the returned offset.
    """
    pos = 4 if code.startswith(_ENDBR64) else 0
    fallback = pos
    try:
        while pos < len(code):
            if is_emulated(code, pos):
                return pos
            n = _flags_only_len(code, pos)
            if n == 0:
                return fallback
            pos += n
    except IndexError:
        pass
    return fallback


# ---- the whole picture -------------------------------------------------------------------------------


@dataclass(frozen=True)
class BinaryInfo:
    """What a run records about the QEMU binary it traced."""

    path: str
    version: str
    build_id: str


def qemu_version(path: str | os.PathLike[str], timeout: float = 10.0) -> str:
    """First line of ``PATH -version`` ("" when the binary does not answer, e.g. a stand-in)."""
    try:
        out = subprocess.run(
            [os.fspath(path), "-version"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    if out.returncode != 0:
        return ""
    first = out.stdout.strip().splitlines()
    return first[0] if first else ""


def inspect_binary(path: str | os.PathLike[str], *, run_version: bool = True) -> BinaryInfo:
    """Path, ``-version`` output and GNU build-id of a binary.

    Args:
        path: the executable.
        run_version: run ``PATH -version`` (only for QEMU binaries; a stand-in would not answer).

    Raises:
        MissingBinaryError: the file is missing or not an x86-64 ELF executable.
    """
    elf = ElfFile(path)
    version = qemu_version(path) if run_version else ""
    return BinaryInfo(str(Path(path).resolve()), version, elf.build_id)
