"""Real builds of each lab release's Debian QEMU with the patches: properties, firmware, cache, qtests.

Marked ``qemubuild``; every test runs once per release (``[bookworm]``, ``[trixie]``,
``[trixie-backports]``; conftest.py). A release other than this machine's builds, and its binaries
run, in that release's chroot. The first run builds (minutes), later runs reuse the cache and a
changed patch rebuilds incrementally (seconds).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest

from vfiobench.cli import main
from vfiobench.qemu import build as qb
from vfiobench.qemu import patchset as ps

pytestmark = pytest.mark.qemubuild

NEW_PROPERTIES = ("x-pba-always-on", "x-pba-disable", "x-msix-fd-cache")


def test_irq_path_resolves_in_the_unpatched_build(stock_build: qb.BuildResult) -> None:
    """The project's unpatched build: every QEMU part of ``irq_path``, and msix_set_pending's copy
    inlined in msix_notify (at -O2); Debian's stripped binary: vfio_msi_interrupt skipped."""
    from vfiobench.probes.catalog import get_probe
    from vfiobench.probes.resolve import inlined_copies, resolve_parts
    from vfiobench.qemu.binary import ElfFile

    if shutil.which("addr2line") is None or shutil.which("objdump") is None:
        pytest.skip("addr2line/objdump (binutils) is missing")
    elf = ElfFile(stock_build.binary)
    notify = elf.require_symbol("msix_notify")
    copies = inlined_copies(elf, "msix_set_pending", notify)
    assert len(copies) == 1 and notify.address < copies[0] < notify.address + notify.size
    # the out-of-line copy is called from elsewhere only (ivshmem/virtio vector polling), never here
    span = [f"--start-address={notify.address:#x}", f"--stop-address={notify.address + notify.size:#x}"]
    disasm = subprocess.run(["objdump", "-d", *span, str(elf.path)], capture_output=True, text=True)
    assert disasm.returncode == 0 and "<msix_set_pending>" not in disasm.stdout
    if not Path("/sys/kernel/tracing/events").is_dir():
        pytest.skip("tracefs is not mounted: resolving irq_path's parts needs it (the checks above ran)")
    parts = {t.part.event: t for t in resolve_parts(get_probe("irq_path"), None, stock_build.binary)}
    assert all(parts[e].skipped is None for e in ("qemu_irq", "msix_set_pending", "msix_notify"))
    debian = _debian_binary(stock_build.release)
    if debian.is_file() and ElfFile(debian).symbol("vfio_msi_interrupt") is None:
        parts = {t.part.event: t for t in resolve_parts(get_probe("irq_path"), None, debian)}
        assert "no symbol 'vfio_msi_interrupt'" in (parts["qemu_irq"].skipped or "")
        assert parts["msix_notify"].skipped is None


def test_patched_build_lists_each_property_with_default_off(all_patches_build: qb.BuildResult) -> None:
    r = all_patches_build
    assert r.binary.is_file() and r.binary == r.build_dir / "bin" / "qemu-system-x86_64"
    assert r.patches == list(qb.SERIES)
    assert r.properties == list(NEW_PROPERTIES)
    props = qb.device_properties(r.binary, release=r.release)
    for name in NEW_PROPERTIES:
        assert name in props, f"{name} missing from -device vfio-pci,help"
        assert props[name].startswith("<bool>")
        assert qb.property_default(props[name]) == OFF[r.release]
    assert qb.property_default(props["x-no-kvm-msix"]) == OFF[r.release]  # upstream's, still there
    meta = json.loads((r.build_dir / "build.json").read_text())
    # the patch files for this source's QEMU major version
    shipped = ps.available_patches(r.source_version)
    assert [p["sha256"] for p in meta["patches"]] == [p.sha256 for p in shipped]
    assert ps.qemu_major(r.source_version) == QEMU_MAJOR[r.release]
    assert r.meta["release"] == r.release  # (build.json of builds from before releases has none)
    # which source, and why, as the runs' qemu_source label will say
    choice = r.meta["source_choice"]
    assert r.qemu_source == r.meta["qemu_source"] and r.qemu_source.startswith(f"{choice['version']} (")
    assert choice["suite"] == SOURCE_SUITE[r.release] and choice["fallback"] == (
        r.release == "trixie-backports"
    )
    assert sorted(p.name for p in (r.build_dir / "patches").iterdir()) == [
        "01-pba-always-on.patch",
        "02-pba-disable.patch",
        "03-msix-fd-cache.patch",
    ]


def test_stock_recipe_build_has_none_of_the_properties(
    stock_build: qb.BuildResult, all_patches_build: qb.BuildResult
) -> None:
    assert stock_build.patches == [] and stock_build.key != all_patches_build.key
    props = qb.device_properties(stock_build.binary, release=stock_build.release)
    assert "x-no-kvm-msix" in props
    assert not set(NEW_PROPERTIES) & set(props)


#: How ``-device vfio-pci,help`` shows a bool property's default off (QEMU 7.2: false, 10: off).
OFF = {"bookworm": "false", "trixie": "off", "trixie-backports": "off"}

#: The QEMU major version of each release's build (trixie-backports: sid's 10.2.2, since the
#: project's mirror does not serve backports' 11.1 source; test_qemu_buildroot.py asks the mirror).
QEMU_MAJOR = {"bookworm": 7, "trixie": 10, "trixie-backports": 10}

#: The suite each release's build takes its source from.
SOURCE_SUITE = {"bookworm": "bookworm", "trixie": "trixie", "trixie-backports": "sid"}


def _debian_binary(release: str) -> Path:
    """The release's own Debian QEMU binary: this machine's, or the one in the release's chroot."""
    site = qb.build_site(release)
    root = site.root.path if site.root is not None else Path("/")
    return root / "usr/bin/qemu-system-x86_64"


def _device_error(r: qb.BuildResult, device: str) -> str:
    """QEMU's error for ``-device DEVICE`` (there is no VFIO device here, so it always fails)."""
    args = ["-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-S"]
    run = qb.run_binary(r.binary, [*args, "-device", device], release=r.release)
    assert run.returncode != 0
    return run.stderr


def test_properties_are_accepted_on_the_command_line(
    all_patches_build: qb.BuildResult, stock_build: qb.BuildResult
) -> None:
    """The options parse; realize then fails only for want of a host device."""
    dev = "vfio-pci,host=0000:ff:1f.7,x-pba-always-on=on,x-pba-disable=off,x-msix-fd-cache=on"
    err = _device_error(all_patches_build, dev)
    assert "no such host device" in err and "not found" not in err and "expects" not in err
    bad = _device_error(all_patches_build, "vfio-pci,host=0000:ff:1f.7,x-pba-always-on=maybe")
    assert "Parameter 'x-pba-always-on' expects 'on' or 'off'" in bad
    stock = _device_error(stock_build, "vfio-pci,host=0000:ff:1f.7,x-pba-always-on=on")
    assert "Property 'vfio-pci.x-pba-always-on' not found" in stock


def test_binary_keeps_symbols_and_its_trace_events(all_patches_build: qb.BuildResult) -> None:
    binary = all_patches_build.binary
    nm = subprocess.run(["nm", str(binary)], capture_output=True, text=True, check=True).stdout
    symbols = {line.split()[-1] for line in nm.splitlines() if line.strip()}
    # static functions resolve (uprobes on them need this); Debian's stripped binary has none
    for sym in ("vfio_msi_interrupt", "vfio_msix_set_vector_trigger", "vfio_msix_vector_use"):
        assert sym in symbols, sym
    if all_patches_build.release == "bookworm":
        assert "vfio_msix_vector_do_use" in symbols
    elif shutil.which("addr2line") is not None:
        # gcc 14 inlines it into its one caller: the unmask path is vfio_msix_vector_use there
        from vfiobench.probes.resolve import inlined_copies
        from vfiobench.qemu.binary import ElfFile

        elf = ElfFile(binary)
        assert "vfio_msix_vector_do_use" not in symbols
        assert inlined_copies(elf, "vfio_msix_vector_do_use", elf.require_symbol("vfio_msix_vector_use"))
    section = subprocess.run(["readelf", "-S", str(binary)], capture_output=True, text=True, check=True)
    assert ".debug_info" in section.stdout
    run = qb.run_binary(binary, ["-trace", "help"], release=all_patches_build.release)
    assert run.returncode == 0, run.stderr
    listed = run.stdout.split()
    for event in ("vfio_msix_pba_always_on", "vfio_msix_pba_skip", "vfio_msix_fd_cache_hit"):
        assert event in listed


def test_a_copy_of_the_binary_finds_debian_firmware(
    all_patches_build: qb.BuildResult, tmp_path: Path
) -> None:
    """As in the lab (binary copied to the 9p share): a q35 machine loads its BIOS and quits.

    With the release's firmware: this machine's for bookworm, the chroot's (the release's
    qemu-system-x86 pulls in its seabios) for the others.
    """
    r = all_patches_build
    site = qb.build_site(r.release)
    firmware = (site.root.path if site.root is not None else Path("/")) / "usr/share/seabios/bios-256k.bin"
    if not firmware.is_file():
        pytest.skip("Debian's seabios is not installed (qemu-system-x86 pulls it in)")
    # somewhere the release's binaries can run: tmp_path here, the release's tree for a chroot
    where = tmp_path if site.root is None else site.base / "test-copies" / tmp_path.name
    copy = where / "share" / "bin" / "qemu-0"
    copy.parent.mkdir(parents=True)
    try:
        shutil.copy2(r.binary, copy)
        dirs = qb.run_binary(copy, ["-L", "help"], release=r.release)
        assert dirs.returncode == 0, dirs.stderr
        assert "//usr/share/seabios" in dirs.stdout.split()
        qmp = '{"execute": "qmp_capabilities"}\n{"execute": "quit"}\n'
        args = ["-machine", "q35", "-accel", "tcg", "-nodefaults", "-display", "none", "-S", "-qmp", "stdio"]
        run = qb.run_binary(copy, args, release=r.release, input_text=qmp)
        assert run.returncode == 0, run.stderr
        assert '"return": {}' in run.stdout
        assert "could not load" not in run.stderr
    finally:
        if site.root is not None:
            shutil.rmtree(where, ignore_errors=True)
            with contextlib.suppress(OSError):
                where.parent.rmdir()  # test-copies/, when no other test's copy is in it


def test_unchanged_selection_is_a_cache_hit(all_patches_build: qb.BuildResult) -> None:
    before = all_patches_build.binary.stat()
    release = all_patches_build.release
    again = qb.build_qemu(["msix-fd-cache", "pba-disable", "pba-always-on"], release=release)  # any order
    assert again.cached and again.seconds == 0.0
    assert again.binary == all_patches_build.binary
    after = again.binary.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_cli_prints_the_cached_binary_path(
    all_patches_build: qb.BuildResult, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["qemu", "build", "--release", all_patches_build.release, "--patch", "pba-always-on"]
    argv += ["--patch", "pba-disable"]
    assert main([*argv, "--patch", "msix-fd-cache"]) == 0
    assert capsys.readouterr().out.strip() == str(all_patches_build.binary)
    assert main([*argv, "--patch", "msix-fd-cache", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)
    assert meta["key"] == all_patches_build.key
    assert meta["properties"] == list(NEW_PROPERTIES)
    assert meta["source_version"] == all_patches_build.source_version
    assert meta["release"] == all_patches_build.release


def test_changed_patch_content_rebuilds(all_patches_build: qb.BuildResult, tmp_path: Path) -> None:
    """A one-line edit of a patch gives a new key and a rebuilt binary carrying the edit."""
    token = uuid.uuid4().hex[:12]  # fresh every run, so this is never a cache hit
    release = all_patches_build.release
    shipped = ps.available_patches(all_patches_build.source_version)
    original = next(p for p in shipped if p.name == "pba-always-on")
    edited = tmp_path / "pba-always-on.patch"
    text = original.text.replace(b"PBA emulation enabled for good", f"PBA on for good {token}".encode())
    assert text != original.text
    edited.write_bytes(text)
    result = qb.build_qemu([str(edited)], release=release, progress=print)
    try:
        assert not result.cached and result.seconds > 0
        assert result.key != qb.build_key(all_patches_build.source_version, [original])
        assert token.encode() in result.binary.read_bytes()  # the trace format string, rebuilt
        assert token.encode() not in all_patches_build.binary.read_bytes()
        print(f"{release}: incremental rebuild after a patch change: {result.seconds:.1f} s")
        assert qb.build_qemu([str(edited)], release=release).cached  # and now it is cached
    finally:  # a fresh key every run: do not let them pile up in the cache
        shutil.rmtree(result.build_dir, ignore_errors=True)
        (qb.build_site(release).base / "logs" / f"{result.build_dir.name}.log").unlink(missing_ok=True)


@pytest.mark.parametrize("name", [*qb.SERIES, "series-patch-1"])
def test_each_patch_builds_on_its_own(release: str, source_ready: str, name: str, tmp_path: Path) -> None:
    """Every property patch alone, and the series' first patch alone (no functional change; 7.2's
    series is one squashed backport, so there it is the whole series)."""
    selection, series = [name], ps.series_files(source_ready)
    if name == "series-patch-1":
        (tmp_path / series[0][0]).write_bytes(series[0][1])
        selection = [str(tmp_path / series[0][0])]
    r = qb.build_qemu(selection, release=release, progress=print)
    print(f"{release}: {name} alone: {'cached' if r.cached else f'built in {r.seconds:.0f} s'}")
    props = qb.device_properties(r.binary, release=release)
    added = set(r.properties)
    if name in qb.SERIES:
        assert added == {NEW_PROPERTIES[qb.SERIES.index(name)]}
    else:
        whole = ps.series_patch(source_ready)
        assert whole is not None and added == (set(whole.properties) if len(series) == 1 else set())
    assert not (set(NEW_PROPERTIES) | {"x-msix-mask-auto"}) - added & set(props)
    assert added <= set(props)


def test_qemu_qtests_closest_to_vfio_msix_pass(all_patches_build: qb.BuildResult) -> None:
    log = qb.run_qtests(list(qb.SERIES), release=all_patches_build.release, progress=print)
    text = log.read_text()
    for name in qb.QTESTS:
        assert f"qtest-x86_64/{name}" in text
    oks = [int(n) for n in re.findall(r"^Ok:\s+(\d+)", text, re.MULTILINE)]
    bad = [int(n) for n in re.findall(r"^(?:Fail|Timeout|Unexpected Pass):\s+(\d+)", text, re.MULTILINE)]
    assert sum(oks) == len(qb.QTESTS), text[-3000:]
    assert bad and sum(bad) == 0
    # the MSI-X test (vectors through an ivshmem server, pending bits read) really ran
    assert re.search(r"/x86_64/ivshmem/server +OK", text), text[-3000:]


def test_series_build_lists_its_properties_and_passes_the_qtests(auto_build: qb.BuildResult) -> None:
    """The auto-detection series (on by default, threshold 16 masks in 1000 ms) and QEMU's qtests."""
    r = auto_build
    assert r.patches == [ps.SERIES_NAME] and ps.series_dir(r.source_version) == SERIES_DIR[r.release]
    props = qb.device_properties(r.binary, release=r.release)
    defaults = {name: qb.property_default(props[name]) for name in r.properties}
    on = {"bookworm": "true"}.get(r.release, "on")
    assert defaults == {
        "x-msix-mask-auto": on,
        "x-msix-mask-threshold": "16",
        "x-msix-mask-window-ms": "1000",
    }
    run = qb.run_binary(r.binary, ["-trace", "help"], release=r.release)
    assert {"vfio_msix_mask_auto", "vfio_msix_trigger_kept"} <= set(run.stdout.split())
    log = qb.run_qtests([ps.SERIES_NAME], release=r.release, progress=print).read_text()
    oks = [int(n) for n in re.findall(r"^Ok:\s+(\d+)", log, re.MULTILINE)]
    bad = [int(n) for n in re.findall(r"^(?:Fail|Timeout|Unexpected Pass):\s+(\d+)", log, re.MULTILINE)]
    assert sum(oks) == len(qb.QTESTS) and bad and sum(bad) == 0, log[-3000:]
    assert re.search(r"/x86_64/ivshmem/server +OK", log), log[-3000:]


#: The series directory each release's build takes (the newest not above its QEMU version).
SERIES_DIR = {"bookworm": "7", "trixie": "10", "trixie-backports": "10.2"}


def _needed(binary: Path) -> set[str]:
    out = subprocess.run(["readelf", "-d", str(binary)], capture_output=True, text=True, check=True).stdout
    return set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out))


def test_binary_needs_only_libraries_debians_qemu_already_needs(all_patches_build: qb.BuildResult) -> None:
    """So it runs in the release's lab L1 (which has the release's qemu-system-x86) over the 9p share."""
    debian = _debian_binary(all_patches_build.release)
    if not debian.is_file():
        pytest.skip("Debian's qemu-system-x86 is not installed to compare with")
    ours = _needed(all_patches_build.binary)
    assert "libglib-2.0.so.0" in ours
    assert ours <= _needed(debian) | {"libm.so.6", "libgcc_s.so.1", "libc.so.6"}, ours - _needed(debian)
