"""QEMU targets: command lines as QEMU and libvirt write them, and discovery in /proc."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path

import pytest
from fleet_helpers import copy_as
from probe_helpers import StandIn

from vfiobench.fleet.targets import discover, normalize_bdf, parse_cmdline, read_target


@pytest.mark.parametrize(
    ("argv", "name", "devices"),
    [
        (["-name", "vm1"], "vm1", ()),
        (["-name", "guest=web-3,debug-threads=on"], "web-3", ()),
        (["-name", "db,process=qemu:db"], "db", ()),
        (["--name", "a,,b"], "a,b", ()),  # a doubled comma is a comma in the value
        (["-device", "vfio-pci,host=0000:65:00.0,id=hostdev0"], None, ("0000:65:00.0",)),
        (["-device", "vfio-pci,host=af:1f.7"], None, ("0000:af:1f.7",)),
        (["-device", "driver=vfio-pci,sysfsdev=/sys/bus/pci/devices/0001:02:03.4/"], None, ("0001:02:03.4",)),
        (["-device", "vfio-pci-nohotplug,host=01:00.0"], None, ("0000:01:00.0",)),
        (
            ["-device", '{"driver":"vfio-pci","host":"0000:3b:00.1","id":"hostdev1","bus":"pci.2"}'],
            None,
            ("0000:3b:00.1",),
        ),
        (["-device", '{"driver":"virtio-net-pci","id":"net0"}', "-device", "e1000,host=01:00.0"], None, ()),
        (
            ["-device", "vfio-pci,host=01:00.0", "-device", "virtio-blk", "-device", "vfio-pci,host=02:00.0"],
            None,
            ("0000:01:00.0", "0000:02:00.0"),
        ),
        (
            ["-device", "vfio-pci,host=01:00.0", "-device", "vfio-pci,host=0000:01:00.0"],
            None,
            ("0000:01:00.0",),
        ),
        (["-device=vfio-pci,host=01:00.0", "-name=x"], "x", ("0000:01:00.0",)),
        (["-name"], None, ()),  # truncated: nothing, no error
        (["-m", "-name", "vm"], "vm", ()),
    ],
)
def test_parse_cmdline(argv: list[str], name: str | None, devices: tuple[str, ...]) -> None:
    assert parse_cmdline(argv) == (name, devices)


def test_normalize_bdf() -> None:
    assert normalize_bdf(" 0000:65:00.0 ") == "0000:65:00.0"
    assert normalize_bdf("1:2.3") == "0000:01:02.3"
    assert normalize_bdf("0000:65:00.8") is None  # functions are 0-7
    assert normalize_bdf("00:00") is None


def test_discover_and_read_a_renamed_process(tmp_path: Path, standin_bin: Path, spawn: type[StandIn]) -> None:
    """A process whose executable matches the pattern is found with its name and device; one whose
    executable does not is not, whatever its command line says."""
    name = f"qemu-system-vfbtest-{uuid.uuid4().hex[:8]}"
    fake = copy_as(standin_bin, name, tmp_path)
    args = ["-name", "guest=found", "-device", "vfio-pci,host=65:00.0"]
    match = spawn(fake, "toggle", 1, extra=args)
    spawn(standin_bin, "toggle", 1, extra=args)
    assert discover(name) == [match.pid]
    assert discover("qemu-system-vfbtest") == []  # a full match: the prefix alone is not
    t = read_target(match.pid)
    assert t is not None and (t.vm, t.devices, t.device) == ("found", ("0000:65:00.0",), "0000:65:00.0")
    assert t.alive()
    match.finish()
    assert not t.alive()
    assert read_target(match.pid) is None
    assert discover(name) == []


def test_a_target_without_name_is_its_pid() -> None:
    p = subprocess.Popen(["sleep", "30"])
    try:
        t = read_target(p.pid)
        assert t is not None and (t.vm, t.device, t.labels) == (str(p.pid), "", (str(p.pid), str(p.pid), ""))
    finally:
        p.kill()
        p.wait()
