"""The chroots other releases' QEMU builds run in: what they hold, their mounts, and what they say
when the release's archive lacks a package or a source.

Marked ``qemubuild`` and ``root``: they make (once, ~3 min each, then cached) the trixie and
trixie-backports build roots under ``~/.cache/vfiobench/qemu/``.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request

import pytest

from vfiobench.cli import main
from vfiobench.errors import QemuError
from vfiobench.lab.image import mounts_below
from vfiobench.qemu import build as qb
from vfiobench.qemu import debsource as ds
from vfiobench.qemu.buildroot import BuildRoot

pytestmark = [pytest.mark.qemubuild, pytest.mark.root]


def _root(release: str) -> BuildRoot:
    if os.geteuid() != 0:
        pytest.skip("making and entering a build chroot needs root")
    if shutil.which("debootstrap") is None:
        pytest.skip("debootstrap is not installed")
    site = qb.build_site(release)
    assert site.root is not None
    with qb.heavy_lock(progress=print):
        site.root.ensure(print)
    return site.root


def test_trixie_root_holds_the_release_and_mounts_only_while_used() -> None:
    root = _root("trixie")
    info = root.info()
    assert info["digest"] == root.digest() and info["suite"] == "trixie"
    assert info["packages"]["qemu-system-x86"].startswith("1:10.0.")  # trixie's, not backports' 11.1
    assert (root.path / "usr/share/seabios/bios-256k.bin").is_file()  # the qtests' firmware
    assert mounts_below(root.path) == []
    with root.session() as shell:
        mounted = {str(p.relative_to(root.path)) for p in mounts_below(root.path)}
        assert mounted == {"proc", "sys", "dev/pts", "dev/shm", "vfiobench"}
        with root.session():  # re-entrant: no second set of mounts
            assert len(mounts_below(root.path)) == len(mounted)
        r = shell.capture(["sh", "-c", ". /etc/os-release; echo $VERSION_CODENAME; ls /vfiobench; env"])
        assert r.returncode == 0, r.stderr
        lines = r.stdout.splitlines()
        assert lines[0] == "trixie"
        assert not any(line.startswith(("VIRTUAL_ENV=", "PYTHONPATH=")) for line in lines)
    assert mounts_below(root.path) == []  # all gone afterwards


def test_a_package_the_release_lacks_is_named_in_one_line() -> None:
    root = _root("trixie")
    with pytest.raises(QemuError) as e:
        root.install(["vfiobench-no-such-package"])
    assert e.value.message == (
        "package vfiobench-no-such-package is not in Debian trixie (http://deb.debian.org/debian): "
        "the trixie QEMU build root cannot be made"
    )
    assert "\n" not in str(e.value)
    assert mounts_below(root.path) == []


def test_a_source_package_the_release_lacks_is_named_in_one_line() -> None:
    root = _root("trixie")
    with pytest.raises(QemuError) as e:
        ds.source_version(root.tree, root.shell(), package="vfiobench-no-such-source")
    assert e.value.message == (
        "source package vfiobench-no-such-source is not in Debian trixie (http://deb.debian.org/debian)"
    )
    assert "\n" not in str(e.value)


def _served(url: str) -> bool:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=30):
            return True
    except urllib.error.HTTPError as e:
        if e.code == 404:
            return False
        raise


def test_missing_source_is_one_line_naming_the_package(capsys: pytest.CaptureFixture[str]) -> None:
    """trixie-backports' archive lists QEMU 11.1's source; whether the mirror serves it decides.

    The mirror is asked directly (HTTP HEAD on the ``.dsc`` apt would fetch): when it answers 404
    (the project's mirror, 2026-12), ``vfiobench qemu build --release trixie-backports`` must fail
    with one line naming the package, version and file; when it serves it, the build must work.
    """
    root = _root("trixie-backports")
    version = ds.source_version(root.tree, root.shell())
    assert version.startswith("11.1.")
    uris = root.shell().capture(
        ["apt-get", "source", "--print-uris", "-qq", "-t", "trixie-backports", "qemu"]
    )
    dsc = next(w.strip("'") for w in uris.stdout.split() if w.strip("'").endswith(".dsc") and "://" in w)
    served = _served(dsc)
    rc = main(["qemu", "build", "--release", "trixie-backports"])
    out = capsys.readouterr()
    if served:
        assert rc == 0, out.err
        assert out.out.strip().endswith("/bin/qemu-system-x86_64")
        return
    assert rc == 2
    errors = [line for line in out.err.splitlines() if line.startswith("vfiobench: error:")]
    assert errors == [line for line in out.err.splitlines() if "error" in line]  # only that line
    assert len(errors) == 1
    assert errors[0].startswith(
        f"vfiobench: error: source package qemu {version} is listed in Debian trixie + trixie-backports "
        f"(http://deb.debian.org/debian) but not served: qemu_{version}.dsc: 404 Not Found"
    )
    assert mounts_below(root.path) == []
