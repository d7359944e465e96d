"""The patch set and the build cache's logic: pure tests, plus applying to Debian's real source."""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vfiobench.cli import main
from vfiobench.errors import QemuError
from vfiobench.qemu import build as qb
from vfiobench.qemu import debsource as ds
from vfiobench.qemu import patchset as ps

REPO = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the shipped patches


@pytest.mark.parametrize("version", ps.patch_versions())
def test_shipped_patches_in_documented_order_each_adds_its_property(version: str) -> None:
    patches = ps.available_patches(version)
    assert [p.name for p in patches] == ["pba-always-on", "pba-disable", "msix-fd-cache"]
    assert [p.properties for p in patches] == [
        ("x-pba-always-on",),
        ("x-pba-disable",),
        ("x-msix-fd-cache",),
    ]
    for p in patches:
        assert p.files[0] == "hw/vfio/pci.c" or p.files[:2] == ("hw/vfio/cpr.c", "hw/vfio/pci.c")
        # (hw/vfio/cpr.c: the CPR load of QEMU 10.1+ sets the PBA region's state, see test below)
        assert set(p.files) <= {"hw/vfio/pci.c", "hw/vfio/pci.h", "hw/vfio/trace-events", "hw/vfio/cpr.c"}
        text = p.text.decode()
        # every property defaults to today's behaviour (off)
        assert re.search(rf'DEFINE_PROP_BOOL\("{p.properties[0]}", VFIOPCIDevice, \w+, false\)', text)
        # and each adds a trace event
        assert re.search(r"^\+vfio_msix_\w+\(", text, re.MULTILINE)
        assert p.subject.startswith("vfio/pci: add x-")
        assert f"qemu 1:{version}." in " ".join(text.split("---\n", 1)[0].split())  # says what it applies to


def _added(p: ps.Patch, pattern: str) -> list[str]:
    return re.findall(pattern, p.text.decode(), re.MULTILINE)


def test_every_qemu_version_gets_the_same_properties_and_trace_events() -> None:
    """A rebased patch keeps its property (name, type, default off), its trace events, its subject."""
    versions = ps.patch_versions()
    assert versions == ["7", "10", "10.2"]
    first = {p.name: p for p in ps.available_patches(versions[0])}
    for version in versions[1:]:
        for p in ps.available_patches(version):
            was = first[p.name]
            assert p.text != was.text, p.name  # a file of its own (7.2's does not apply to 10.0, ...)
            pci = tuple(f for f in p.files if f != "hw/vfio/cpr.c")
            assert (p.subject, p.properties, pci) == (was.subject, was.properties, was.files)
            for pattern in (
                r'^\+\s*DEFINE_PROP_BOOL\("[^"]+".*$',
                r"^\+vfio_msix_\w+\(.*$",
                r"^\+\s+bool \w+; /\* x-[\w-]+: .*$",  # the device's new field
            ):
                assert _added(p, pattern) == _added(was, pattern), (p.name, pattern)


def test_qemu_version_and_the_patch_directory_chosen_for_it() -> None:
    assert ps.qemu_major("7.2+dfsg-7+deb12u18") == 7
    assert ps.qemu_major("1:10.0.13+ds-0+deb13u1") == 10
    assert ps.qemu_major("11.1.3+ds-2~bpo13+1") == 11
    assert ps.qemu_major(8) == 8
    with pytest.raises(QemuError, match="major version of source version 'ds-1'"):
        ps.qemu_major("ds-1")
    keys = [
        "7.2+dfsg-7+deb12u18",
        "1:10.0.13+ds-0+deb13u1",
        "1:10.2.2+ds-1",
        "11.1.3+ds-2~bpo13+1",
        "10.2",
        "10",
    ]
    assert [ps.version_key(v) for v in keys] == [(7, 2), (10, 0), (10, 2), (11, 1), (10, 2), (10, 0)]
    assert ps.version_key(8) == (8, 0) and ps.version_label("1:10.2.2+ds-1") == "10.2"
    with pytest.raises(QemuError, match="'ds-1'"):
        ps.version_key("ds-1")
    seven, ten, ten2 = ({p.name: p.sha256 for p in ps.available_patches(v)} for v in ("7", "10", "10.2"))
    assert len({tuple(seven.values()), tuple(ten.values()), tuple(ten2.values())}) == 3
    assert {p.name: p.sha256 for p in ps.available_patches("8.2+dfsg-1")} == seven  # highest dir <= 8.2
    assert {p.name: p.sha256 for p in ps.available_patches("1:10.1.0+ds-1")} == ten  # 10 stands for 10.0
    assert {p.name: p.sha256 for p in ps.available_patches("1:10.2.2+ds-1")} == ten2  # sid's, for bpo
    assert {p.name: p.sha256 for p in ps.available_patches("1:11.1.3+ds-2")} == ten2  # none of its own yet
    assert ps.available_patches(6) == []
    assert ps.available_patches() == ps.available_patches(7)  # the default: bookworm's QEMU
    assert ps.resolve_patches(["pba-disable"], "1:10.0.13+ds-0+deb13u1")[0].sha256 == ten["pba-disable"]
    assert ps.patch_versions("pba-disable") == ps.patch_versions() and ps.patch_versions("nope") == []


def test_the_102_patches_keep_the_pba_state_across_a_cpr_load() -> None:
    """QEMU 10.1+ restores PBA emulation on a CPR load (enabled only while a vector is pending):
    always-on must enable it there too, pba-disable must not, the fd cache needs nothing."""
    got = {p.name: p for p in ps.available_patches("10.2")}
    assert {n: "hw/vfio/cpr.c" in p.files for n, p in got.items()} == {
        "pba-always-on": True,
        "pba-disable": True,
        "msix-fd-cache": False,
    }
    assert _added(got["pba-always-on"], r"^\+    if \(msix && vdev->pba_always_on\) \{$")
    assert _added(got["pba-disable"], r"^\+        if \(msix && !vdev->pba_disable &&$")


def test_resolve_orders_by_series_drops_duplicates_and_keeps_files(tmp_path: Path) -> None:
    own = tmp_path / "mine.patch"
    own.write_text("--- a/hw/vfio/pci.c\n+++ b/hw/vfio/pci.c\n@@ -1 +1 @@\n-a\n+b\n")
    got = ps.resolve_patches(["msix-fd-cache", str(own), "pba-always-on.patch", "pba-always-on"])
    assert [p.name for p in got] == ["pba-always-on", "msix-fd-cache", "mine"]
    assert got[-1].origin == str(own.resolve())
    assert got[0].origin == "package"


def test_resolve_rejects_unknown_names_and_non_diffs(tmp_path: Path) -> None:
    with pytest.raises(QemuError, match="no QEMU patch named 'pba-sometimes' for QEMU 7") as e:
        ps.resolve_patches(["pba-sometimes"])
    assert e.value.hint is not None and "pba-always-on, pba-disable, msix-fd-cache" in e.value.hint
    junk = tmp_path / "junk.patch"
    junk.write_text("not a diff\n")
    with pytest.raises(QemuError, match="not a unified diff"):
        ps.resolve_patches([str(junk)])
    with pytest.raises(QemuError, match="cannot read patch file"):
        ps.resolve_patches([str(tmp_path / "missing.patch")])


def test_build_key_depends_on_version_and_exact_patch_content() -> None:
    a, _, c = ps.available_patches()
    v = "7.2+dfsg-7+deb12u18"
    key = qb.build_key(v, [a, c])
    assert re.fullmatch(r"[0-9a-f]{16}", key)
    assert qb.build_key(v, [a, c]) == key  # deterministic
    assert qb.build_key(v, ps.resolve_patches(["msix-fd-cache", "pba-always-on"])) == key
    assert qb.build_key(v, [a]) != key
    assert qb.build_key(v, []) not in {key, qb.build_key(v, [a])}
    assert qb.build_key("7.2+dfsg-7+deb12u19", [a, c]) != key
    one_byte = ps.Patch(a.name, a.origin, a.text.replace(b"enabled for good", b"enabled for goods"))
    assert qb.build_key(v, [one_byte, c]) != key
    assert qb.build_dir_for(v, key, Path("/c")) == Path(f"/c/build-{v}-{key}")
    assert qb.build_dir_for("1:7.2", key, Path("/c")).name == f"build-1_7.2-{key}"


def test_bookworm_keys_are_those_from_before_releases() -> None:
    """Existing bookworm caches stay valid: the recipe, patches and key of 7.2 builds did not change."""
    v = "7.2+dfsg-7+deb12u18"
    assert qb.build_key(v, ps.resolve_patches(list(qb.SERIES), v)) == "2e0a762f68f6e333"
    assert qb.build_key(v, []) == "282d670c3250463d"
    assert qb.configure_args(v) == qb.CONFIGURE_ARGS
    assert qb.build_site("bookworm").base == qb.cache_root()  # bookworm builds here, paths as before


def test_qemu_10_configures_pixman_and_keys_by_its_own_args() -> None:
    v = "1:10.0.13+ds-0+deb13u1"
    assert qb.configure_args(v) == (*qb.CONFIGURE_ARGS, "--enable-pixman", "--disable-install-blobs")
    patches = ps.resolve_patches(list(qb.SERIES), v)
    assert qb.build_key(v, patches) != qb.build_key(v, ps.resolve_patches(list(qb.SERIES), 7))


def test_other_releases_build_in_their_chroot_with_their_own_sources() -> None:
    from vfiobench.qemu.buildroot import builds_on_host, host_suite

    assert host_suite() == "bookworm"  # this project's machines (PLATFORM.md)
    for name, suite, target in (
        ("trixie", "trixie", ()),
        ("trixie-backports", "trixie", ("-t", "trixie-backports")),
    ):
        site = qb.build_site(name)
        assert site.root is not None and not builds_on_host(site.root.release)
        assert site.base == qb.cache_root() / name and site.root.path == qb.cache_root() / f"chroot-{name}"
        assert site.shell.apt_args == target
        lines = site.root.sources_list().splitlines()
        # each deb line with its deb-src twin, the release's suites only
        assert lines[0::2] == [line.replace("deb-src ", "deb ", 1) for line in lines[1::2]]
        assert all(line.split()[2].startswith(suite) for line in lines)
        # trixie must not see backports: apt-get source takes the highest version it knows (11.1)
        assert any("backports" in line for line in lines) == bool(target)
    assert qb.build_site("trixie").root.digest() != qb.build_site("trixie-backports").root.digest()  # type: ignore[union-attr]


def test_chroot_shell_maps_paths_and_cleans_the_environment(tmp_path: Path) -> None:
    shell = ds.Shell(chroot=tmp_path / "root", tree=tmp_path / "tree", apt_args=("-t", "x"))
    assert shell.path(tmp_path / "tree" / "work-1" / "build") == "/vfiobench/work-1/build"
    assert shell.path(tmp_path / "tree") == "/vfiobench"
    assert shell.path(tmp_path / "root" / "usr/bin/qemu-system-x86_64") == "/usr/bin/qemu-system-x86_64"
    with pytest.raises(QemuError, match="neither below"):
        shell.path(tmp_path / "elsewhere")
    argv = shell.argv(["ninja", "-j", "2"], tmp_path / "tree" / "b")
    assert argv[:5] == ["chroot", str(tmp_path / "root"), "/usr/bin/env", "-i", "--chdir=/vfiobench/b"]
    assert argv[-3:] == ["ninja", "-j", "2"] and "HOME=/root" in argv
    assert ds.HOST.argv(["ls"], tmp_path) == ["ls"] and ds.HOST.path(tmp_path) == str(tmp_path)


# ------------------------------------------------------------------ apt sources, deps, CLI


def test_deb_src_entries_mirror_deb822_and_one_line_sources() -> None:
    deb822 = (
        "Types: deb\n# a comment\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n\n"
        "Types: deb deb-src\nURIs: http://mirror.example/debian-security\nSuites: bookworm-security\n"
        "Components: main contrib\nEnabled: no\n"
    )
    one_line = (
        "# deb http://old/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://ftp.fr.debian.org/debian bookworm main contrib\n"
        "deb-src http://ftp.fr.debian.org/debian bookworm main\n"
    )
    text = ds.deb_src_entries({"debian.sources": deb822, "sources.list": one_line})
    stanzas = text.split("\n\n")
    assert stanzas[0].startswith("# Added by vfiobench")
    assert stanzas[0].endswith(
        "Types: deb-src\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    )
    assert stanzas[1] == (
        "Types: deb-src\nURIs: http://ftp.fr.debian.org/debian\nSuites: bookworm\n"
        "Components: main contrib\nSigned-By: /k.gpg\n"
    )
    assert "nodesource" not in text and "mirror.example" not in text and "old/debian" not in text
    assert ds.deb_src_entries({"x.sources": "Types: deb\nURIs: https://example.org/apt\n"}) == ""


def test_build_deps_are_installed_by_setup_system() -> None:
    script = (REPO / ".ci" / "setup-system").read_text()
    pkgs = set(re.search(r"PKGS=\(([^)]*)\)", script, re.DOTALL).group(1).split())  # type: ignore[union-attr]
    assert set(ds.BUILD_DEPS) <= pkgs, set(ds.BUILD_DEPS) - pkgs
    assert "deb-src" in script and "apt-get update" in script


def test_property_default_parsing() -> None:
    assert qb.property_default("<bool>       - on/off (default: false)") == "false"
    assert qb.property_default('<OnOffAuto>  - on/off/auto (default: "off")') == "off"
    assert qb.property_default("<str>") is None


def test_cli_list_and_unknown_patch(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["qemu", "build", "--list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    majors = ",".join(ps.patch_versions())
    assert [line.split()[:4] for line in lines[:3]] == [
        ["pba-always-on", "x-pba-always-on", "QEMU", majors],
        ["pba-disable", "x-pba-disable", "QEMU", majors],
        ["msix-fd-cache", "x-msix-fd-cache", "QEMU", majors],
    ]
    assert lines[3].split()[:4] == [
        "msix-mask-auto",
        "x-msix-mask-auto,",
        "x-msix-mask-threshold,",
        "x-msix-mask-window-ms",
    ]
    assert main(["qemu", "build", "--patch", "msix-mask-auto", "--patch", "pba-always-on"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "msix-mask-auto (the auto-detection series) cannot be combined with" in err[0]
    assert main(["qemu", "build", "--patch", "pba-sometimes"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vfiobench: error: no QEMU patch named 'pba-sometimes'")
    assert main(["qemu", "build", "--release", "potato"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vfiobench: error: unknown lab release 'potato'")


# ------------------------------------------------------------------ the auto-detection series


@pytest.mark.parametrize(
    ("version", "directory"), [(7, "7"), (10, "10"), ("1:10.2.2+ds-1", "10.2"), (11, "10.2")]
)
def test_series_is_chosen_per_version_and_applied_as_one_patch_in_file_order(
    version: int | str, directory: str
) -> None:
    assert ps.series_dir(version) == directory
    files = ps.series_files(version)
    expected = 1 if directory == "7" else 2  # 7.2: one squashed backport; 10.0 (and later): the series
    assert len(files) == expected and [n for n, _ in files] == sorted(n for n, _ in files)
    assert not any(n.startswith("0000-") for n, _ in files)  # the cover letter is not applied
    patch = ps.series_patch(version)
    assert patch is not None and patch.name == ps.SERIES_NAME
    assert patch.text == b"".join(t for _, t in files)
    assert patch.properties == ("x-msix-mask-auto", "x-msix-mask-threshold", "x-msix-mask-window-ms")
    text = patch.text.decode()
    # default on, and the thresholds the experiments use
    assert re.search(r'DEFINE_PROP_BOOL\("x-msix-mask-auto", VFIOPCIDevice, msix_mask_auto, true\)', text)
    assert re.search(r"msix_mask_threshold, 16\)", text) and re.search(r"msix_mask_window_ms, 1000\)", text)
    for event in ("vfio_msix_mask_auto", "vfio_msix_trigger_kept"):
        assert re.search(rf"^\+{event}\(", text, re.MULTILINE), event
    for _, t in files:
        assert b"Signed-off-by: " in t and t.startswith(b"From ")
    assert ps.shipped_patches(version)[-1] == patch
    assert [p.name for p in ps.resolve_patches([ps.SERIES_NAME], version)] == [ps.SERIES_NAME]


def test_make_series_writes_the_cover_letter_of_the_newest_series() -> None:
    """The series against the newest source the project builds (sid's 10.2.2, for trixie-backports)."""
    assert ps.series_versions() == ["7", "10", "10.2"]
    newest = ps.series_versions()[-1]
    makefile = (REPO / "Makefile").read_text()
    target = makefile.split("\nseries:", 1)[1].split("\n\n", 1)[0]
    assert f"--cover-letter vfiobench/qemu/series/{newest}/0000-cover-letter.patch" in " ".join(
        target.split()
    )
    assert (REPO / "vfiobench" / "qemu" / "series" / newest / "0000-cover-letter.patch").is_file()


# ------------------------------------------------------------------ incremental work tree


@pytest.mark.skipif(shutil.which("patch") is None, reason="GNU patch is not installed")
def test_sync_work_tree_writes_only_changed_files_and_restores_deselected(tmp_path: Path) -> None:
    pristine, work = tmp_path / "src", tmp_path / "work"
    for tree in (pristine, work):
        (tree / "d").mkdir(parents=True)
        (tree / "d" / "one.c").write_text("int a;\nint b;\nint c;\n")
        (tree / "d" / "two.c").write_text("int x;\n")
    p1 = ps.Patch(
        "p1", "t", b"--- a/d/one.c\n+++ b/d/one.c\n@@ -1,3 +1,3 @@\n int a;\n-int b;\n+int B;\n int c;\n"
    )
    p2 = ps.Patch("p2", "t", b"--- a/d/two.c\n+++ b/d/two.c\n@@ -1 +1 @@\n-int x;\n+int X;\n")
    old = time.time() - 1000
    for f in (work / "d" / "one.c", work / "d" / "two.c"):
        os.utime(f, (old, old))

    assert ps.sync_work_tree(pristine, work, [p1, p2]) == ["d/one.c", "d/two.c"]
    assert (work / "d" / "one.c").read_text() == "int a;\nint B;\nint c;\n"
    assert (work / "d" / "two.c").read_text() == "int X;\n"
    assert (pristine / "d" / "one.c").read_text() == "int a;\nint b;\nint c;\n"  # never touched

    os.utime(work / "d" / "one.c", (old, old))
    assert ps.sync_work_tree(pristine, work, [p1, p2]) == []  # nothing differs: nothing written
    assert ps.sync_work_tree(pristine, work, [p1]) == ["d/two.c"]  # p2 deselected: restored
    assert (work / "d" / "two.c").read_text() == "int x;\n"
    assert (work / "d" / "one.c").stat().st_mtime == pytest.approx(old)  # untouched, no rebuild

    bad = ps.Patch("bad", "t", b"--- a/d/two.c\n+++ b/d/two.c\n@@ -1 +1 @@\n-int y;\n+int Y;\n")
    with pytest.raises(QemuError, match="patch bad does not apply"):
        ps.sync_work_tree(pristine, work, [bad])
    assert (work / "d" / "two.c").read_text() == "int x;\n"  # a failed apply leaves the tree alone


# ------------------------------------------------------------------ Debian's real source


@pytest.mark.qemubuild
def test_every_subset_of_patches_applies_to_debian_source_in_any_order(
    pristine_source: Path, source_ready: str
) -> None:
    patches = ps.available_patches(source_ready)
    results: dict[frozenset[str], dict[str, bytes | None]] = {}
    orders = 0
    for r in range(1, len(patches) + 1):
        for perm in itertools.permutations(patches, r):
            got = ps.patched_files(pristine_source, perm)  # raises QemuError if one does not apply
            orders += 1
            key = frozenset(p.name for p in perm)
            assert results.setdefault(key, got) == got, f"order {[p.name for p in perm]} differs"
    assert orders == 15
    full = results[frozenset(p.name for p in patches)]["hw/vfio/pci.c"]
    assert full is not None
    original = (pristine_source / "hw" / "vfio" / "pci.c").read_bytes()
    for prop in ("x-pba-always-on", "x-pba-disable", "x-msix-fd-cache"):
        assert f'"{prop}"'.encode() in full and f'"{prop}"'.encode() not in original


@pytest.mark.qemubuild
def test_patches_pass_qemu_checkpatch(pristine_source: Path, source_ready: str, tmp_path: Path) -> None:
    """With the checkpatch.pl of the release's own source tree."""
    patches = ps.available_patches(source_ready)
    assert [p.name for p in patches] == list(qb.SERIES)  # a lost patch must not pass as "clean"
    for p in patches:
        (tmp_path / f"{p.name}.patch").write_bytes(p.text)
        r = subprocess.run(
            ["perl", "scripts/checkpatch.pl", "--no-signoff", str(tmp_path / f"{p.name}.patch")],
            capture_output=True,
            cwd=pristine_source,
            check=False,
        )
        out = r.stdout.decode()
        assert r.returncode == 0, f"{p.name}:\n{out}"
        assert re.search(r"total: 0 errors, 0 warnings", out), f"{p.name}:\n{out}"


@pytest.mark.qemubuild
def test_series_applies_to_the_release_source_and_passes_its_checkpatch(
    pristine_source: Path, source_ready: str, tmp_path: Path
) -> None:
    """Each file of the series, as a maintainer would check it: signed off, no warning."""
    series = ps.series_patch(source_ready)
    assert series is not None
    pci = ps.patched_files(pristine_source, [series])["hw/vfio/pci.c"]
    assert pci is not None and b'"x-msix-mask-auto"' in pci and b"vfio_msix_note_mask(vdev, nr);" in pci
    for name, text in ps.series_files(source_ready):
        (tmp_path / name).write_bytes(text)
        r = subprocess.run(
            ["perl", "scripts/checkpatch.pl", str(tmp_path / name)],
            capture_output=True,
            cwd=pristine_source,
            check=False,
        )
        out = r.stdout.decode()
        assert r.returncode == 0 and re.search(r"total: 0 errors, 0 warnings", out), f"{name}:\n{out}"


# ------------------------------------------------------------------ the heavy-jobs lock


@pytest.mark.skipif(shutil.which("flock") is None, reason="flock(1) (util-linux) is not installed")
def test_heavy_lock_under_flock_is_not_taken_again(tmp_path: Path) -> None:
    lock = tmp_path / "heavy.lock"
    code = (
        "import sys; from pathlib import Path; from vfiobench.qemu import build as b\n"
        f"with b.heavy_lock(True, print, Path({str(lock)!r})):\n    print('inside')\n"
    )
    r = subprocess.run(
        ["flock", str(lock), sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr
    assert "held by parent process" in r.stdout and r.stdout.rstrip().endswith("inside")
    assert qb.lock_holder_is_ancestor(lock) is None  # nobody holds it now


def _flocked(path: Path) -> bool:
    """Whether /proc/locks lists a held (not waiting) flock on ``path``'s inode."""
    ino = str(path.stat().st_ino)
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()
        if "->" not in fields and len(fields) > 5 and fields[5].split(":")[-1] == ino:
            return True
    return False


def test_heavy_lock_waits_for_another_holder(tmp_path: Path) -> None:
    lock, released = tmp_path / "heavy.lock", tmp_path / "released"
    lock.touch()
    holder = (
        "import fcntl, pathlib, time\n"
        f"fh = open({str(lock)!r}, 'a+'); fcntl.flock(fh, fcntl.LOCK_EX)\n"
        "time.sleep(1)\n"
        f"pathlib.Path({str(released)!r}).touch(); fcntl.flock(fh, fcntl.LOCK_UN)\n"
    )
    other = subprocess.Popen([sys.executable, "-c", holder])
    try:
        deadline = time.monotonic() + 10
        while not _flocked(lock):
            assert time.monotonic() < deadline, "the other process did not take the lock"
            time.sleep(0.01)
        messages: list[str] = []
        with qb.heavy_lock(True, messages.append, lock):
            assert released.exists()  # we got in only after the other holder let go
        assert messages and messages[0].startswith("waiting for")
    finally:
        other.wait(timeout=10)


def test_without_deb_src_or_build_deps_a_non_root_user_gets_named_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(ds, "has_qemu_source", lambda: False)
    monkeypatch.setattr(ds.os, "geteuid", lambda: 1000)
    with pytest.raises(QemuError, match="no deb-src entry for qemu") as e:
        ds.ensure_deb_src()
    assert e.value.hint is not None and "make system" in e.value.hint
    monkeypatch.setattr(ds, "missing_build_deps", lambda: ["meson", "libfdt-dev"])
    with open(tmp_path / "log", "w") as log, pytest.raises(QemuError, match="missing: meson libfdt-dev"):
        ds.ensure_build_deps(log)


def test_prune_removes_other_versions_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Runs anywhere: a fake cache with two Debian versions; only the other one's entries go."""
    from vfiobench.cli import main
    from vfiobench.qemu import build as qb

    monkeypatch.setenv("VFIOBENCH_CACHE", str(tmp_path))
    root = qb.cache_root()
    old, new = "7.2+dfsg-7+deb12u13", "7.2+dfsg-7+deb12u18"
    keep = [f"src-{new}", f"work-{new}", f"build-{new}-0123456789abcdef", f"build-{new}-fedcba9876543210"]
    stale = [f"src-{old}", f"work-{old}", f".work-{old}.tmp", f"build-{old}-0123456789abcdef"]
    for name in keep + stale:
        (root / name / "sub").mkdir(parents=True)
        (root / name / "sub" / "f").write_bytes(b"x" * 1000)
    (root / "downloads").mkdir()
    (root / "downloads" / "qemu_7.2+dfsg.orig.tar.xz").write_bytes(b"y")
    (root / "logs").mkdir()
    for name in (f"build-{old}-0123456789abcdef.log", f"build-{new}-0123456789abcdef.log"):
        (root / "logs" / name).write_text("log")

    assert main(["qemu", "prune", "--keep", new, "--dry-run"]) == 0
    assert "would remove 5 entries" in capsys.readouterr().out
    assert all((root / n).exists() for n in stale)  # a dry run removes nothing

    assert main(["qemu", "prune", "--keep", new]) == 0
    out = capsys.readouterr().out
    assert "removed 5 entries" in out and f"kept everything of {new}" in out
    assert sorted(p.name for p in root.iterdir()) == sorted([*keep, "downloads", "logs"])
    assert [p.name for p in (root / "logs").iterdir()] == [f"build-{new}-0123456789abcdef.log"]
    assert qb.prune_cache(new, root) == []  # nothing left to prune
