"""QEMU processes as exporter targets: who they are (VM name, VFIO devices) and how to find them.

Everything here reads ``/proc`` only (no BPF): :func:`read_target` turns a pid into a
:class:`QemuTarget`; :func:`discover` lists the running processes whose executable's name matches
a pattern (by default QEMU's system emulators, ``qemu-system-*``, and RHEL's ``qemu-kvm``).

The VM name and the devices come from QEMU's command line (:func:`parse_cmdline`), in every
syntax QEMU accepts and libvirt writes:

- ``-name vm1``, ``-name guest=vm1,debug-threads=on`` (libvirt), ``-name vm1,process=...``;
- ``-device vfio-pci,host=0000:65:00.0,id=hostdev0``, ``host=65:00.0`` (domain 0 implied),
  ``sysfsdev=/sys/bus/pci/devices/0000:65:00.0``, and libvirt's JSON form
  ``-device {"driver":"vfio-pci","host":"0000:65:00.0",...}``.

Example:
    >>> parse_cmdline(["qemu-system-x86_64", "-name", "guest=web1,debug-threads=on",
    ...                "-device", "vfio-pci,host=65:00.0,id=hostdev0"])
    ('web1', ('0000:65:00.0',))
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

#: Executable names ``--all-qemu`` treats as QEMU (matched against the whole basename).
DEFAULT_EXE_PATTERN = r"qemu-system-.*|qemu-kvm"

#: QEMU device models of a VFIO PCI device.
VFIO_DRIVERS = ("vfio-pci", "vfio-pci-nohotplug")

_BDF = re.compile(r"^(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{1,2}):([0-9a-fA-F]{1,2})\.([0-7])$")


def normalize_bdf(text: str) -> str | None:
    """A PCI address as ``dddd:bb:ss.f`` (lower case, domain 0 when omitted); None if it is not one.

    Example:
        >>> normalize_bdf("65:00.0"), normalize_bdf("0000:AF:1f.7"), normalize_bdf("vm1")
        ('0000:65:00.0', '0000:af:1f.7', None)
    """
    m = _BDF.match(text.strip())
    if m is None:
        return None
    domain, bus, slot, fn = m.groups()
    return f"{int(domain or '0', 16):04x}:{int(bus, 16):02x}:{int(slot, 16):02x}.{fn}"


def _option_value(value: str, key: str) -> str | None:
    """``KEY=VALUE`` from a QEMU ``-opt a,b=c`` value; the bare first item when ``key`` is ``""``.

    QEMU escapes a comma inside a value by doubling it (``name=a,,b``).
    """
    items = [i.replace("\0", ",") for i in value.replace(",,", "\0").split(",")]
    for i, item in enumerate(items):
        k, sep, v = item.partition("=")
        if sep and k == key:
            return v
        if not sep and i == 0 and key == "":
            return item
    return None


def _vfio_device(value: str) -> str | None:
    """The host PCI address of a ``-device`` value that is a vfio-pci device, else None."""
    if value.lstrip().startswith("{"):
        try:
            props = json.loads(value)
        except json.JSONDecodeError:
            return None
        if not isinstance(props, dict) or props.get("driver") not in VFIO_DRIVERS:
            return None
        host, sysfsdev = props.get("host"), props.get("sysfsdev")
    else:
        driver = _option_value(value, "driver") or _option_value(value, "")
        if driver not in VFIO_DRIVERS:
            return None
        host, sysfsdev = _option_value(value, "host"), _option_value(value, "sysfsdev")
    if isinstance(host, str):
        return normalize_bdf(host) or host
    if isinstance(sysfsdev, str):
        base = os.path.basename(sysfsdev.rstrip("/"))
        return normalize_bdf(base) or base
    return None


def parse_cmdline(argv: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """The VM name (``-name``; None when absent) and the vfio-pci devices' host addresses.

    Options may be written ``-opt value``, ``--opt value`` or ``-opt=value``.
    """
    name: str | None = None
    devices: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        opt, eq, inline = arg.partition("=") if arg.startswith("-") else (arg, "", "")
        opt = opt.lstrip("-")
        if opt in ("name", "device") and arg.startswith("-"):
            if eq:
                value = inline
            elif i + 1 < len(argv):
                value = argv[i + 1]
                i += 1
            else:
                break
            if opt == "name":
                name = _option_value(value, "guest") or _option_value(value, "") or name
            elif (dev := _vfio_device(value)) is not None:
                devices.append(dev)
        i += 1
    return name, tuple(dict.fromkeys(devices))


def proc_cmdline(pid: int) -> list[str]:
    """``/proc/PID/cmdline`` as a list (empty when the process is gone or unreadable)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


def start_time(pid: int) -> int | None:
    """The process's start time (clock ticks since boot, ``/proc/PID/stat`` field 22); None if gone.

    With the pid it identifies a process: a pid reused by a new process has another start time.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()
    if len(fields) < 20 or fields[0] == "Z":
        return None
    return int(fields[19])


def exe_name(pid: int) -> str | None:
    """Basename of ``/proc/PID/exe`` (without a `` (deleted)`` suffix); None for kernel threads."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None
    return os.path.basename(exe.removesuffix(" (deleted)"))


@dataclass(frozen=True)
class QemuTarget:
    """One QEMU process the exporter probes.

    Attributes:
        pid: The process id.
        started: Its start time in clock ticks since boot (tells a reused pid apart).
        vm: The VM name from ``-name``, else the pid as a string.
        devices: Host PCI addresses of its vfio-pci devices on the command line (hot-plugged ones
            are not there).
    """

    pid: int
    started: int
    vm: str
    devices: tuple[str, ...] = ()

    @property
    def device(self) -> str:
        """The ``device`` label: the VFIO device when the command line names exactly one, else ``""``."""
        return self.devices[0] if len(self.devices) == 1 else ""

    @property
    def labels(self) -> tuple[str, str, str]:
        """``(pid, vm, device)`` label values."""
        return str(self.pid), self.vm, self.device

    def alive(self) -> bool:
        """True while this process (not a later one with the same pid) runs and is not a zombie."""
        return start_time(self.pid) == self.started


def read_target(pid: int) -> QemuTarget | None:
    """The target for ``pid``, or None when no such process runs."""
    started = start_time(pid)
    if started is None:
        return None
    name, devices = parse_cmdline(proc_cmdline(pid)[1:])
    return QemuTarget(pid, started, name or str(pid), devices)


def discover(exe_pattern: str = DEFAULT_EXE_PATTERN, proc: Path = Path("/proc")) -> list[int]:
    """Pids of running processes whose executable's basename fully matches ``exe_pattern``."""
    pattern = re.compile(exe_pattern)
    pids = []
    for entry in os.scandir(proc):
        if entry.name.isdigit():
            name = exe_name(int(entry.name))
            if name is not None and pattern.fullmatch(name):
                pids.append(int(entry.name))
    return sorted(pids)
