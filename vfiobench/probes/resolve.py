"""Prerequisite checks, run before anything is compiled or attached.

BCC's own errors mislead (a missing symbol and a missing binary both read "could not determine
address of symbol"; any kprobe on a kernel without kprobes reads "not traceable (either
non-existing, inlined, or marked as notrace)"; "Need super-user privileges" also appears for
refused program types). Each function here detects one real cause and raises the named error
from :mod:`vfiobench.errors` with what to do. :func:`resolve_targets` runs all those a set of
probes needs and returns where each uprobe goes.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vfiobench.errors import (
    BccError,
    KprobesUnavailableError,
    MissingBinaryError,
    MissingSymbolError,
    PrivilegeError,
    ProbeError,
    TracefsError,
)
from vfiobench.probes.catalog import ProbePart, ProbeSpec
from vfiobench.qemu.binary import ElfFile, Symbol, is_emulated, probe_offset

TRACEFS_CANDIDATES = (Path("/sys/kernel/tracing"), Path("/sys/kernel/debug/tracing"))

#: Field offsets the ioctl programs assume (struct vb_sys_{enter,exit}_ioctl_args in vfiobench.bpf.h).
IOCTL_ENTER_OFFSETS = {"fd": 16, "cmd": 24, "arg": 32}
IOCTL_EXIT_OFFSETS = {"ret": 16}

#: Field offsets the irq_path program assumes (struct vb_irq_handler_*_args, vb_kvm_msi_set_irq_args).
TRACEPOINT_OFFSETS: dict[str, dict[str, int]] = {
    "irq:irq_handler_entry": {"irq": 8, "name": 12},
    "irq:irq_handler_exit": {"irq": 8, "ret": 12},
    "kvm:kvm_msi_set_irq": {"address": 8, "data": 16},
}


def require_root() -> None:
    """Raise :class:`PrivilegeError` unless running as root (unprivileged BPF is disabled)."""
    if os.geteuid() != 0:
        raise PrivilegeError(
            f"loading eBPF programs needs root (running as uid {os.geteuid()})",
            "run as root, e.g. sudo vfiobench record ...",
        )


def tracefs() -> Path:
    """The mounted tracefs directory.

    Raises:
        TracefsError: tracefs is not mounted at /sys/kernel/tracing (or under debugfs).
    """
    for path in TRACEFS_CANDIDATES:
        if (path / "events").is_dir():
            return path
    raise TracefsError(
        "tracefs is not mounted (no /sys/kernel/tracing/events)",
        "mount -t tracefs tracefs /sys/kernel/tracing",
    )


def require_bcc() -> None:
    """Raise :class:`BccError` unless the ``bcc`` Python module imports."""
    try:
        import bcc  # noqa: F401
    except ImportError as e:
        raise BccError(
            f"the BCC Python module is not importable ({e})",
            "apt-get install python3-bpfcc; in a virtualenv, symlink /usr/lib/python3/dist-packages/bcc "
            "into its site-packages (make test does this)",
        ) from None


def require_kprobes(symbol: str, *alternatives: str) -> str:
    """Check the kernel has kprobes and a probe-able function ``symbol`` (or one of ``alternatives``).

    Alternatives cover renames across kernel releases: ``eventfd_signal`` is an inline wrapper
    of ``eventfd_signal_mask`` since Linux 6.8, so only the latter can be probed there.

    Returns:
        The first of ``symbol, *alternatives`` the running kernel has.

    Raises:
        KprobesUnavailableError: ``<tracefs>/kprobe_events`` is absent (no ``CONFIG_KPROBES``).
        MissingSymbolError: the kernel has none of them (module not loaded, inlined).
    """
    tfs = tracefs()
    if not (tfs / "kprobe_events").exists():
        raise KprobesUnavailableError(
            f"this kernel has no kprobes ({tfs / 'kprobe_events'} is absent), so {symbol} cannot be probed",
            "run this probe where kprobes exist (the lab VM or a real host) or leave it out with --probe",
        )
    found = first_kernel_symbol((symbol, *alternatives))
    if found is not None:
        return found
    names = " or ".join((symbol, *alternatives))
    raise MissingSymbolError(
        f"the running kernel has no function {names} in /proc/kallsyms",
        "load its module first (modprobe vfio-pci) or check the kernel version",
    )


def first_kernel_symbol(names: Sequence[str], kallsyms: Path = Path("/proc/kallsyms")) -> str | None:
    """The first of ``names`` that is a text symbol in ``kallsyms`` (None: none is)."""
    return next((name for name in names if kernel_has_symbol(name, kallsyms)), None)


def kernel_has_symbol(symbol: str, kallsyms: Path = Path("/proc/kallsyms")) -> bool:
    """True when ``symbol`` is a text symbol in ``/proc/kallsyms`` (modules included)."""
    pat = re.compile(rf" [tTwW] {re.escape(symbol)}(\s|$)")
    try:
        with open(kallsyms, encoding="ascii", errors="replace") as f:
            return any(pat.search(line) for line in f)
    except OSError:
        return False


def _format_offsets(fmt: Path) -> dict[str, int]:
    offsets = {}
    for m in re.finditer(r"field:[^;]*?(\w+);\s*offset:(\d+);", fmt.read_text(encoding="ascii")):
        offsets[m.group(1)] = int(m.group(2))
    return offsets


def require_ioctl_tracepoints() -> None:
    """Check ``syscalls:sys_{enter,exit}_ioctl`` exist with the field offsets the program assumes.

    Raises:
        ProbeError: the kernel lacks syscall tracepoints or lays them out differently.
    """
    base = tracefs() / "events" / "syscalls"
    for event, expected in (("sys_enter_ioctl", IOCTL_ENTER_OFFSETS), ("sys_exit_ioctl", IOCTL_EXIT_OFFSETS)):
        fmt = base / event / "format"
        if not fmt.is_file():
            raise ProbeError(
                f"tracepoint syscalls:{event} does not exist ({fmt} missing)",
                "use a kernel built with CONFIG_FTRACE_SYSCALLS",
            )
        have = _format_offsets(fmt)
        wrong = {k: have.get(k) for k, v in expected.items() if have.get(k) != v}
        if wrong:
            raise ProbeError(
                f"tracepoint syscalls:{event} has fields at unexpected offsets {wrong} (expected {expected})",
                "update struct vb_sys_*_ioctl_args in vfiobench.bpf.h for this kernel",
            )


def require_tracepoint(name: str, expected: dict[str, int]) -> None:
    """Check tracepoint ``name`` (``category:event``) exists with fields at the ``expected`` offsets.

    Raises:
        ProbeError: the tracepoint is missing (e.g. its module is not loaded) or laid out differently.
    """
    category, event = name.split(":", 1)
    fmt = tracefs() / "events" / category / event / "format"
    if not fmt.is_file():
        hint = "modprobe kvm (and kvm_intel or kvm_amd)" if category == "kvm" else "use a kernel that has it"
        raise ProbeError(f"tracepoint {name} does not exist ({fmt} missing)", hint)
    have = _format_offsets(fmt)
    wrong = {k: have.get(k) for k, v in expected.items() if have.get(k) != v}
    if wrong:
        raise ProbeError(
            f"tracepoint {name} has fields at unexpected offsets {wrong} (expected {expected})",
            "update the tracepoint structs in irq_path.bpf.c for this kernel",
        )


#: Attach tracepoint parts that have raw-tracepoint programs as raw tracepoints (when the kernel
#: and BCC can). False (tests, or a kernel whose raw tracepoints misbehave) keeps classic ones.
RAW_TRACEPOINTS = True


def raw_tracepoints_usable() -> bool:
    """Whether raw tracepoint programs can be attached here (Linux >= 4.17; what BCC looks for)."""
    return RAW_TRACEPOINTS and _kernel_has_raw_tracepoints()


@functools.cache
def _kernel_has_raw_tracepoints() -> bool:
    """Looked up once per process: each lookup reads all of /proc/kallsyms."""
    return first_kernel_symbol(("bpf_find_raw_tracepoint", "bpf_get_raw_tracepoint")) is not None


def require_raw_tracepoint(name: str) -> None:
    """Check tracepoint ``name`` (``category:event``) exists, for a raw tracepoint program.

    A raw program reads the tracepoint's C arguments, not its record, so no field offsets matter.

    Raises:
        ProbeError: the tracepoint is missing (e.g. its module is not loaded).
    """
    category, event = name.split(":", 1)
    if not (tracefs() / "events" / category / event).is_dir():
        hint = "modprobe kvm (and kvm_intel or kvm_amd)" if category == "kvm" else "use a kernel that has it"
        raise ProbeError(f"tracepoint {name} does not exist", hint)


def require_process(pid: int) -> Path:
    """The executable of process ``pid`` (``/proc/PID/exe`` resolved).

    Raises:
        ProbeError: no such process.
        MissingBinaryError: its executable is unreadable.
    """
    proc = Path(f"/proc/{pid}")
    if not proc.is_dir():
        raise ProbeError(f"no process with pid {pid}", "check the QEMU pid (pgrep -f qemu-system)")
    try:
        exe = os.readlink(proc / "exe")
    except OSError as e:
        raise MissingBinaryError(f"cannot read /proc/{pid}/exe ({e.strerror})", "run as root") from None
    if exe.endswith(" (deleted)"):
        return proc / "exe"  # the binary was replaced on disk: probe the running inode
    return Path(exe)


@dataclass
class UprobeTarget:
    """Where one uprobe goes: binary, symbol, its address and the offset past non-emulated code."""

    binary: Path
    symbol: str
    address: int
    offset: int
    single_stepped: bool


@dataclass
class PartTarget:
    """Where one part of a composite probe goes, or why it is skipped.

    Attributes:
        part: the catalog's part.
        uprobe: the resolved function (uprobe parts).
        kernel_symbol: the kernel function probed (kprobe parts: the first of ``part.targets``
            the running kernel has).
        raw: tracepoint parts: attached as raw tracepoints (``part.raw_fns``).
        inlined: ``(caller, offset, address)`` of each copy of the function inlined into
            ``part.inlined_in`` (offset from the caller's start, virtual address).
        note: what could not be found without skipping the part (e.g. no inlined copies).
        skipped: why the part is not attached (``None``: attached).
    """

    part: ProbePart
    uprobe: UprobeTarget | None = None
    kernel_symbol: str | None = None
    raw: bool = False
    inlined: list[tuple[str, int, int]] = field(default_factory=list)
    note: str = ""
    skipped: str | None = None

    def describe(self) -> str:
        """``event=where`` for ``run.json``; a skipped part reads ``event=skipped (reason)``."""
        if self.skipped is not None:
            return f"{self.part.event}=skipped ({self.skipped})"
        where = self.part.describe()
        if self.kernel_symbol is not None and self.kernel_symbol != self.part.symbol:
            where = f"{self.part.kind}:{self.kernel_symbol}"
        if self.raw:
            where = "raw_" + where
        if self.uprobe is not None:
            t = self.uprobe
            where += f"+{t.offset:#x}" + (" (single-stepped)" if t.single_stepped else "")
        if self.inlined:
            where += " and inlined copies at " + ", ".join(f"{c}+{off:#x}" for c, off, _ in self.inlined)
        if self.note:
            where += f" ({self.note})"
        return f"{self.part.event}={where}"


@dataclass
class Resolution:
    """Everything :func:`resolve_targets` found out, ready for the tracer."""

    binary: Path | None = None
    uprobes: dict[str, UprobeTarget] = field(default_factory=dict)
    parts: dict[str, list[PartTarget]] = field(default_factory=dict)


def resolve_uprobe(elf: ElfFile, symbol: str) -> UprobeTarget:
    """Resolve one uprobe target in ``elf``.

    Raises:
        MissingSymbolError: ``symbol`` is not in ``.symtab``/``.dynsym``.
    """
    sym = elf.require_symbol(symbol)
    code = elf.function_bytes(sym)
    off = probe_offset(code)
    stepped = not (off < len(code) and is_emulated(code, off))
    return UprobeTarget(elf.path, symbol, sym.address, off, stepped)


def inlined_copies(elf: ElfFile, function: str, caller: Symbol) -> list[int]:
    """Addresses in ``caller`` where an inlined copy of ``function`` starts, from the DWARF line table.

    Every byte address of ``caller`` goes through ``addr2line -i`` (binutils) once; a copy starts
    where the inline chain begins to include ``function``. Interleaved code can split one copy into
    several runs: the BPF side counts one hit per enclosing call.

    Raises:
        MissingSymbolError: no ``addr2line``, or the binary has no debug info for ``caller``.
    """
    tool = shutil.which("addr2line")
    if tool is None:
        raise MissingSymbolError(
            "addr2line is missing, so inlined copies cannot be found", "apt-get install binutils"
        )
    addrs = [caller.address + i for i in range(max(caller.size, 1))]
    out = subprocess.run(
        [tool, "-a", "-i", "-f", "-e", str(elf.path)],
        input="\n".join(f"{a:#x}" for a in addrs) + "\n",
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    ).stdout
    chains: dict[int, list[str]] = {}
    current: list[str] | None = None
    has_lines = False
    lines = out.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("0x"):
            current = chains.setdefault(int(line, 16), [])
            i += 1
            continue
        if current is not None:
            current.append(line.strip())
        if i + 1 < len(lines) and not lines[i + 1].startswith("??"):
            has_lines = True
        i += 2  # function name, then file:line ("??:?" without DWARF)
    if not has_lines:
        raise MissingSymbolError(
            f"{elf.path}: no debug info for {caller.name} (addr2line finds no lines)",
            "use the project's QEMU build (vfiobench qemu build), which keeps debug info",
        )
    starts, prev = [], False
    for a in addrs:
        inside = function in chains.get(a, [])[:-1]
        if inside and not prev:
            starts.append(a)
        prev = inside
    return starts


def _binary_for(pid: int | None, qemu: str | os.PathLike[str] | None) -> Path | None:
    if qemu is not None:
        return Path(qemu)
    if pid is not None:
        return require_process(pid)
    return None


def resolve_parts(spec: ProbeSpec, pid: int | None, qemu: str | os.PathLike[str] | None) -> list[PartTarget]:
    """Resolve each part of a composite probe; a part whose target is missing is marked skipped.

    Raises:
        ProbeError: no part of ``spec`` can attach (the message lists each reason).
    """
    targets: list[PartTarget] = []
    elf: ElfFile | None = None
    elf_error = ""
    if any(p.kind == "uprobe" for p in spec.parts):
        binary = _binary_for(pid, qemu)
        if binary is None:
            elf_error = "needs the QEMU binary: pass --pid PID or --qemu PATH"
        else:
            try:
                elf = ElfFile(binary)
            except ProbeError as e:
                elf_error = e.message
    by_event: dict[str, PartTarget] = {}
    for part in spec.parts:
        t = PartTarget(part)
        try:
            if part.needs is not None and by_event[part.needs].skipped is not None:
                raise ProbeError(f"needs {part.needs}, which is skipped")
            if part.kind == "tracepoint" and part.raw_fns and raw_tracepoints_usable():
                for tp in part.targets:
                    require_raw_tracepoint(tp)
                t.raw = True
            elif part.kind == "tracepoint":
                for tp in part.targets:
                    require_tracepoint(tp, TRACEPOINT_OFFSETS[tp])
            elif part.kind == "kprobe":
                t.kernel_symbol = require_kprobes(*part.targets)
            else:
                if elf is None:
                    raise ProbeError(elf_error)
                t.uprobe = resolve_uprobe(elf, part.symbol)
                for caller_name in part.inlined_in:
                    caller = elf.symbol(caller_name)
                    if caller is None:
                        continue
                    try:
                        t.inlined += [
                            (caller_name, a - caller.address, a)
                            for a in inlined_copies(elf, part.symbol, caller)
                        ]
                    except ProbeError as e:
                        t.note = f"copies inlined in {caller_name} not searched: {e.message}"
                if part.inlined_in and not t.inlined and not t.note:
                    t.note = f"no copy inlined in {', '.join(part.inlined_in)}"
        except MissingSymbolError as e:
            t.skipped = e.message
            if part.kind == "uprobe":
                t.skipped += ", which the project's QEMU build keeps (vfiobench qemu build)"
        except ProbeError as e:
            t.skipped = e.message
        by_event[part.event] = t
        targets.append(t)
    if all(t.skipped is not None for t in targets):
        raise ProbeError(
            f"no part of probe {spec.name} can attach: " + "; ".join(t.describe() for t in targets),
            f"leave {spec.name} out with --probe, or fix one of the reasons",
        )
    return targets


def resolve_targets(
    probes: list[ProbeSpec], pid: int | None, qemu: str | os.PathLike[str] | None, *, check_root: bool = True
) -> Resolution:
    """Check every prerequisite of ``probes`` and resolve their targets; attach nothing.

    Order: root, tracefs, BCC, then per probe kind: syscall tracepoints, kprobes, the binary and its
    symbols. The first failure raises its named error.

    Args:
        probes: the probes to attach.
        pid: the target process (its ``/proc/PID/exe`` is the binary unless ``qemu`` is given).
        qemu: the QEMU binary, overriding ``/proc/PID/exe``.
        check_root: skip the root check (``vfiobench doctor`` reports it separately).
    """
    if check_root:
        require_root()
    tracefs()
    require_bcc()
    if pid is not None:
        require_process(pid)
    res = Resolution()
    for p in probes:
        if p.kind == "tracepoint":
            require_ioctl_tracepoints()
        elif p.kind == "kprobe":
            assert p.symbol is not None
            require_kprobes(p.symbol)
        elif p.kind == "composite":
            res.parts[p.name] = resolve_parts(p, pid, qemu)
            binaries = [t.uprobe.binary for t in res.parts[p.name] if t.uprobe is not None]
            if binaries and res.binary is None:
                res.binary = binaries[0]
    uprobes = [p for p in probes if p.kind == "uprobe"]
    if uprobes:
        if qemu is not None:
            binary = Path(qemu)
        elif pid is not None:
            binary = require_process(pid)
        else:
            raise MissingBinaryError(
                f"probe {uprobes[0].name} needs the QEMU binary", "pass --pid PID or --qemu PATH"
            )
        elf = ElfFile(binary)
        res.binary = binary
        for p in uprobes:
            assert p.symbol is not None
            res.uprobes[p.name] = resolve_uprobe(elf, p.symbol)
    return res
