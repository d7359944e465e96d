"""The chroots other releases' QEMU builds run in: what they hold, their mounts, which source
trixie-backports builds, and what they say when the release's archive lacks a package or a source.

Marked ``qemubuild`` and ``root``: they make (once, ~3 min each, then cached) the trixie and
trixie-backports build roots under ``~/.cache/vfiobench/qemu/``.
"""

from __future__ import annotations

import collections
import functools
import json
import os
import re
import shutil
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vfiobench.cli import main
from vfiobench.errors import QemuError
from vfiobench.lab.image import mounts_below
from vfiobench.qemu import build as qb
from vfiobench.qemu import debsource as ds
from vfiobench.qemu import sourcepick as sp
from vfiobench.qemu.buildroot import PIN_FILE, SOURCES_FILE, BuildRoot

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


def _listed(root: BuildRoot) -> list[tuple[str, str, str]]:
    """``(suite, version, .dsc URI)`` of every source trixie-backports may build, in its order."""
    shell = root.shell()
    madison = shell.capture(["apt-cache", "madison", "qemu"]).stdout
    out = []
    for suite in ("trixie-backports", "sid"):
        versions = [v for s, v in sp.parse_madison(madison) if s == suite]
        for v in sorted(versions, key=functools.cmp_to_key(lambda a, b: sp.compare_versions(b, a))):
            uris = shell.capture(["apt-get", "source", "--print-uris", "-qq", f"qemu={v}"]).stdout
            dsc = next(w.strip("'") for w in uris.split() if w.strip("'").endswith(".dsc") and "://" in w)
            out.append((suite, v, dsc))
    return out


def test_trixie_backports_builds_the_newest_source_the_mirror_serves_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The mirror is asked directly (HTTP HEAD on each ``.dsc`` apt would fetch, in order): the
    build uses the first it serves, and says why when that is not backports' own (2026-12: 404 for
    backports' 11.1.3 and sid's 11.1.x, so sid's 10.2.2), in build.json and as one notice line."""
    root = _root("trixie-backports")
    listed = _listed(root)
    assert listed[0][0] == "trixie-backports" and listed[0][1].startswith("1:11.1.")
    assert any(suite == "sid" for suite, _, _ in listed)
    served = [_served(dsc) for _, _, dsc in listed]
    assert any(served), "the mirror serves no QEMU source trixie-backports could build"
    first = served.index(True)
    suite, version, _ = listed[first]
    skipped = [f"{s}:{v}" for s, v, _ in listed[:first]]
    capsys.readouterr()  # what making sure of the root printed
    rc = main(["qemu", "build", "--release", "trixie-backports"])
    out = capsys.readouterr()
    assert rc == 0, out.err
    binary = out.out.strip()
    assert binary.endswith("/bin/qemu-system-x86_64")
    meta = json.loads((Path(binary).parent.parent / "build.json").read_text())
    choice = meta["source_choice"]
    assert (choice["suite"], choice["version"]) == (suite, version)
    assert [f"{u['suite']}:{u['version']}" for u in choice["unserved"]] == skipped
    assert meta["source_version"] == version.split(":", 1)[-1]
    notices = [line for line in out.err.splitlines() if line.startswith("vfiobench: notice:")]
    if first == 0:
        assert notices == [] and meta["qemu_source"] == f"{version} (trixie-backports)"
        return
    assert meta["qemu_source"].startswith(f"{version} ({suite}; not served by the mirror: trixie-backports' ")
    assert notices == [f"vfiobench: notice: QEMU source {meta['qemu_source']}"]
    print(notices[0])
    assert mounts_below(root.path) == []


def test_missing_source_is_one_line_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A mirror that serves none of trixie-backports' listed sources (its HEAD answers replaced):
    ``vfiobench qemu build`` fails with one line naming each version, and nothing stays mounted."""
    root = _root("trixie-backports")
    listed = _listed(root)
    capsys.readouterr()
    monkeypatch.setattr(sp, "head_status", lambda uri, timeout=30.0: (False, "404 Not Found"))
    rc = main(["qemu", "build", "--release", "trixie-backports"])
    out = capsys.readouterr()
    assert rc == 2
    errors = [line for line in out.err.splitlines() if line.startswith("vfiobench: error:")]
    assert errors == [line for line in out.err.splitlines() if "error" in line]  # only that line
    assert len(errors) == 1
    bpo = [v for s, v, _ in listed if s == "trixie-backports"]
    sid = [v for s, v, _ in listed if s == "sid"]
    names = ", ".join(sid[:-1]) + f" and {sid[-1]}" if len(sid) > 1 else sid[0]
    assert errors[0].startswith(
        "vfiobench: error: source package qemu is listed for trixie-backports but not served by the "
        f"mirror: trixie-backports' {', '.join(bpo)}, sid's {names} (.dsc: 404 Not Found)"
    )
    assert mounts_below(root.path) == []


def test_a_listed_source_the_mirror_does_not_serve_is_named_in_one_line(tmp_path: Path) -> None:
    """Fetching a listed source whose files answer 404 (what a one-suite release would meet)."""
    root = _root("trixie-backports")
    suite, version, dsc = _listed(root)[0]
    if _served(dsc):
        pytest.skip(f"the mirror serves {suite}'s {version} now")
    where = root.tree / f"test-fetch-{tmp_path.name}"
    try:
        with root.session() as shell, open(tmp_path / "fetch.log", "w") as log, pytest.raises(QemuError) as e:
            ds.fetch_source(version.split(":", 1)[-1], log, where, None, shell, request=f"qemu={version}")
    finally:
        shutil.rmtree(where, ignore_errors=True)
    file_version = version.split(":", 1)[-1]
    assert e.value.message == (
        f"source package qemu {file_version} is listed in Debian trixie + trixie-backports "
        f"(http://deb.debian.org/debian) but not served: qemu_{file_version}.dsc: 404 Not Found"
    )
    assert "\n" not in str(e.value)


def test_trixie_backports_root_takes_only_qemus_source_from_sid() -> None:
    """sid comes in as a pinned deb-src entry: apt lists its qemu sources, no binary of it is
    installable, the root's packages stay trixie's and backports', and the full build
    dependencies of the source the build uses resolve from trixie and trixie-backports alone."""
    root = _root("trixie-backports")
    assert root.ready() and root.info()["extra_source_entries"] == [
        "deb-src [check-valid-until=no] http://deb.debian.org/debian sid main"
    ]
    assert (root.path / SOURCES_FILE).is_file() and (root.path / PIN_FILE).is_file()
    shell = root.shell()
    with root.session():
        policy = shell.capture(["apt-cache", "policy"]).stdout
        assert " sid/" not in policy and "n=sid" not in policy  # no Packages index of sid at all
        installed = shell.capture(["dpkg-query", "-W", "-f", "${Version}", "qemu-system-x86"]).stdout
        assert installed == root.info()["packages"]["qemu-system-x86"] and "~bpo13" in installed
        choice = qb.build_site("trixie-backports").choice()
        assert choice is not None
        r = shell.capture(
            ["apt-get", "build-dep", "-s", "-q", "-t", "trixie-backports", f"qemu={choice.chosen.version}"],
            timeout=600,
        )
    assert r.returncode == 0, r.stderr[-2000:]
    inst = [line for line in r.stdout.splitlines() if line.startswith("Inst ")]
    origins = collections.Counter(re.search(r"\(\S+ (.*?) \[", line).group(1) for line in inst)  # type: ignore[union-attr]
    print(f"apt-get build-dep {choice.chosen.version}: {len(inst)} packages, {dict(origins)}")
    assert inst and all("stable" in o for o in origins), origins  # trixie, its security, backports
    assert not [o for o in origins if "unstable" in o or "sid" in o]
