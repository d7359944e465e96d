"""Introspection of a QEMU binary (or any x86-64 ELF): version, build-id, symbols, probe placement.

pyelftools parses the ELF file (Debian packages it as ``python3-pyelftools``, which the lab's L1
image installs for its system Python). On top of it this module answers what the probes need
before they attach:

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

import io
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import NoteSection, SymbolTableSection
from elftools.elf.sections import Symbol as _ElfSymbol
from elftools.elf.segments import Segment

from vfiobench.errors import MissingBinaryError, MissingSymbolError, QemuError

_ELF_MAGIC = b"\x7fELF"
_ENDBR64 = b"\xf3\x0f\x1e\xfa"


@dataclass(frozen=True)
class Symbol:
    """A symbol of an ELF file: name, virtual address, size, and the table it came from."""

    name: str
    address: int
    size: int
    table: str  # ".symtab" or ".dynsym"
    is_function: bool


class _SymbolTable:
    """One symbol table and a lookup by name that lets pyelftools decode only the matching entries.

    pyelftools decodes one entry at a time (about 25 µs each: half a second for the 20,000 entries
    of Debian's QEMU ``.dynsym``, more than a second for the ``.symtab`` of the project's builds).
    The lookup instead searches the raw bytes: the string-table offsets where the name is stored
    (followed by NUL, or by ``@`` and a symbol version), then the entries whose ``st_name`` (the
    first 4 bytes of an ``Elf64_Sym``, little-endian) is one of those offsets.
    """

    def __init__(self, section: SymbolTableSection, label: str) -> None:
        self.section = section
        self.label = label
        self._entries = section.data()
        self._strings = section.stringtable.data()
        self._entsize = int(section["sh_entsize"])

    def named(self, name: str) -> list[_ElfSymbol]:
        """The entries called ``name`` or ``name@version``, in table order, decoded by pyelftools."""
        encoded = name.encode()
        indices: list[int] = []
        for end in (b"\0", b"@"):
            pos = self._strings.find(encoded + end)
            while pos != -1:
                indices += self._entries_named_at(pos)
                pos = self._strings.find(encoded + end, pos + 1)
        return [self.section.get_symbol(i) for i in sorted(indices)]

    def _entries_named_at(self, offset: int) -> Iterator[int]:
        key = offset.to_bytes(4, "little")
        pos = self._entries.find(key)
        while pos != -1:
            if pos % self._entsize == 0:
                yield pos // self._entsize
            pos = self._entries.find(key, pos + 1)


class ElfFile:
    """A read-only view of an x86-64 little-endian ELF64 file.

    Attributes:
        path: the file.
        data: its bytes (read once; later changes on disk are not seen).
        elf: the pyelftools view of ``data``, for anything this class does not answer.
        sections: the sections, as pyelftools objects.

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
        try:
            self.elf = ELFFile(io.BytesIO(self.data))
        except ELFError as e:
            raise MissingBinaryError(f"{self.path}: not a valid ELF file ({e})") from None
        if self.elf.elfclass != 64 or not self.elf.little_endian:
            raise MissingBinaryError(f"{self.path}: not a little-endian 64-bit ELF file")
        machine = self.elf["e_machine"]
        if machine != "EM_X86_64":
            raise MissingBinaryError(f"{self.path}: ELF machine {machine} is not x86-64")
        try:
            self.sections = list(self.elf.iter_sections())
        except ELFError as e:
            raise self._corrupt(e) from None
        self._found: dict[str, Symbol | None] = {}

    def _corrupt(self, e: ELFError) -> MissingBinaryError:
        return MissingBinaryError(f"{self.path}: truncated or corrupt ELF file ({e})")

    @cached_property
    def segments(self) -> list[Segment]:
        """The segments (program headers), as pyelftools objects, parsed on first use.

        Raises:
            MissingBinaryError: the program headers cannot be read.
        """
        try:
            return list(self.elf.iter_segments())
        except ELFError as e:
            raise self._corrupt(e) from None

    @cached_property
    def build_id(self) -> str:
        """The GNU build-id as lowercase hex ("" when the binary has none).

        Raises:
            MissingBinaryError: a note section cannot be read.
        """
        try:
            for sec in self.sections:
                if not isinstance(sec, NoteSection):
                    continue
                for note in sec.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID" and note["n_name"] == "GNU":
                        return bytes(note["n_descdata"]).hex()
        except ELFError as e:
            raise self._corrupt(e) from None
        return ""

    @cached_property
    def _symbol_tables(self) -> list[_SymbolTable]:
        """``.symtab`` then ``.dynsym`` (by section type), those present."""
        tables = []
        for sh_type, label in (("SHT_SYMTAB", ".symtab"), ("SHT_DYNSYM", ".dynsym")):
            sec = next((s for s in self.sections if s["sh_type"] == sh_type), None)
            if isinstance(sec, SymbolTableSection) and sec["sh_entsize"]:
                tables.append(_SymbolTable(sec, label))
        return tables

    def symbol(self, name: str) -> Symbol | None:
        """The defined symbol ``name`` from ``.symtab`` (preferred) or ``.dynsym``, or ``None``.

        Undefined (imported) and zero-address entries do not count; a version suffix
        (``name@VERSION``) is ignored. A name defined more than once resolves to its last entry in
        ``.symtab`` (static functions of different files can share a name) and its first in
        ``.dynsym``.
        """
        if name not in self._found:
            self._found[name] = self._lookup(name)
        return self._found[name]

    def _lookup(self, name: str) -> Symbol | None:
        if not name or "@" in name:
            return None
        for table in self._symbol_tables:
            defined = [
                s
                for s in table.named(name)
                if s["st_name"]
                and s["st_shndx"] != "SHN_UNDEF"
                and s["st_value"]
                and s.name.split("@", 1)[0] == name
            ]
            if defined:
                s = defined[-1] if table.label == ".symtab" else defined[0]
                is_function = s["st_info"]["type"] == "STT_FUNC"
                return Symbol(name, int(s["st_value"]), int(s["st_size"]), table.label, is_function)
        return None

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
        for seg in self.segments:
            start, filesz = int(seg["p_vaddr"]), int(seg["p_filesz"])
            if seg["p_type"] == "PT_LOAD" and start <= vaddr < start + filesz:
                return vaddr - start + int(seg["p_offset"])
        raise QemuError(f"{self.path}: address {vaddr:#x} is in no loaded segment")

    def function_bytes(self, sym: Symbol, limit: int = 64) -> bytes:
        """The first ``limit`` bytes of a function's code (fewer if the symbol is smaller)."""
        off = self.file_offset(sym.address)
        n = min(limit, sym.size) if sym.size else limit
        return self.data[off : off + n]

    def starts_with_endbr64(self, sym: Symbol) -> bool:
        """True when the function's first instruction is ``endbr64`` (a single-stepped uprobe)."""
        return self.function_bytes(sym, 4) == _ENDBR64


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
