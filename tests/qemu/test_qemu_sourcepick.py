"""Which Debian QEMU source a release builds: versions, apt's listing, the mirror's answers, records.

Pure tests (a fake apt answers ``apt-cache madison`` and ``apt-get source --print-uris`` with the
project's mirror's real listing for trixie-backports' chroot, a fake mirror answers HEAD), plus a
cross-check of the version order against this machine's dpkg.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vfiobench.cli import main
from vfiobench.errors import QemuError
from vfiobench.lab.releases import RELEASES
from vfiobench.qemu import build as qb
from vfiobench.qemu import sourcepick as sp
from vfiobench.qemu.buildroot import PIN_FILE, SOURCES_FILE, BuildRoot
from vfiobench.qemu.debsource import Shell

#: ``apt-cache madison qemu`` in trixie-backports' chroot, 2026-12 (the project's mirror).
MADISON = """\
      qemu | 1:10.0.13+ds-0+deb13u1 | http://deb.debian.org/debian trixie/main Sources
      qemu | 1:10.0.2+ds-2+deb13u1 | http://deb.debian.org/debian-security trixie-security/main Sources
      qemu | 1:11.1.3+ds-2~bpo13+1 | http://deb.debian.org/debian trixie-backports/main Sources
      qemu | 1:10.2.2+ds-1 | http://deb.debian.org/debian sid/main Sources
      qemu | 1:11.1.2+ds-3 | http://deb.debian.org/debian sid/main Sources
      qemu | 1:11.1.3+ds-1 | http://deb.debian.org/debian sid/main Sources
qemu-system-x86 | 1:11.1.3+ds-2~bpo13+1 | http://deb.debian.org/debian trixie-backports/main amd64 Packages
"""

POOL = "http://deb.debian.org/debian/pool/main/q/qemu"


class FakeApt(Shell):
    """A shell whose apt answers from :data:`MADISON`; records what it was asked."""

    def __init__(self, madison: str = MADISON) -> None:
        super().__init__()
        object.__setattr__(self, "madison", madison)
        object.__setattr__(self, "asked", [])

    def capture(self, cmd: Any, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        self.asked.append(list(cmd))  # type: ignore[attr-defined]
        if cmd[:2] == ["apt-cache", "madison"]:
            return subprocess.CompletedProcess(cmd, 0, self.madison, "")  # type: ignore[attr-defined]
        if cmd[:3] == ["apt-get", "source", "--print-uris"]:
            version = cmd[-1].split("=", 1)[1].split(":", 1)[1]
            quoted = version.replace("+", "%2b").replace("~", "%7e")
            out = f"'{POOL}/qemu_{quoted}.dsc' qemu_{version}.dsc 9505 SHA256:00\n"
            return subprocess.CompletedProcess(cmd, 0, out, "")
        raise AssertionError(cmd)


def mirror(serves: set[str]) -> tuple[list[str], sp.Served]:
    """A fake mirror serving the .dsc of the versions in ``serves`` (file versions); logs HEADs."""
    heads: list[str] = []

    def served(uri: str) -> tuple[bool, str]:
        heads.append(uri.rsplit("/", 1)[1])
        name = uri.rsplit("/", 1)[1].replace("%2b", "+").replace("%7e", "~")
        ok = name.removeprefix("qemu_").removesuffix(".dsc") in serves
        return (True, "200 OK") if ok else (False, "404 Not Found")

    return heads, served


BPO = ("trixie-backports", "sid")


# ------------------------------------------------------------------ versions and the listing


def test_debian_versions_compare_as_dpkg_does() -> None:
    pairs = [
        ("1:10.2.2+ds-1", "1:11.1.2+ds-3"),
        ("1:11.1.2+ds-3", "1:11.1.3+ds-1"),
        ("1:11.1.3+ds-2~bpo13+1", "1:11.1.3+ds-2"),
        ("1:10.0.2+ds-2+deb13u1", "1:10.0.13+ds-0+deb13u1"),
        ("7.2+dfsg-7+deb12u18", "1:7.2+dfsg-7+deb12u15"),  # the epoch wins
        ("1.0~rc1", "1.0"),
        ("1.0", "1.0a"),
        ("1.0-1", "1.0-1+b1"),
        ("1.0+dfsg", "1.0.1"),
        ("2.0-10", "2.0-9"),
    ]
    expected = [-1, -1, -1, -1, -1, -1, -1, -1, -1, 1]
    assert [sp.compare_versions(a, b) for a, b in pairs] == expected
    assert [sp.compare_versions(b, a) for a, b in pairs] == [-e for e in expected]
    assert sp.compare_versions("1:10.2.2+ds-1", "1:10.2.2+ds-1") == 0
    assert sp.compare_versions("1.0-01", "1.0-1") == 0  # leading zeros do not count
    if shutil.which("dpkg") is None:
        pytest.skip("dpkg is not installed to cross-check against")
    for a, b in pairs:
        lt = subprocess.run(["dpkg", "--compare-versions", a, "lt", b], check=False).returncode == 0
        assert lt == (sp.compare_versions(a, b) < 0), (a, b)


def test_madison_sources_grouped_by_the_release_suites_newest_first() -> None:
    pairs = sp.parse_madison(MADISON)
    assert len(pairs) == 6 and ("sid", "1:10.2.2+ds-1") in pairs  # the Packages line is not a source
    bpo = sp.group_listing(pairs, BPO)
    assert [(x.suite, x.version) for x in bpo] == [
        ("trixie-backports", "1:11.1.3+ds-2~bpo13+1"),
        ("sid", "1:11.1.3+ds-1"),
        ("sid", "1:11.1.2+ds-3"),
        ("sid", "1:10.2.2+ds-1"),
    ]
    assert bpo[-1].file_version == "10.2.2+ds-1" and bpo[-1].group == "sid"
    # trixie covers its security pocket (a newer version there would come first)
    trixie = sp.group_listing(pairs, ("trixie",))
    assert [(x.suite, x.group, x.version) for x in trixie] == [
        ("trixie", "trixie", "1:10.0.13+ds-0+deb13u1"),
        ("trixie-security", "trixie", "1:10.0.2+ds-2+deb13u1"),
    ]
    assert sp.group_listing(pairs, ("forky",)) == []


# ------------------------------------------------------------------ the choice


def test_own_source_served_is_built_without_a_notice() -> None:
    heads, served = mirror({"11.1.3+ds-2~bpo13+1", "10.2.2+ds-1"})
    c = sp.choose_source(FakeApt(), "trixie-backports", BPO, served=served)
    assert c is not None and (c.chosen.suite, c.version) == ("trixie-backports", "11.1.3+ds-2~bpo13+1")
    assert not c.fallback and c.unserved == () and c.asked
    assert c.note == "1:11.1.3+ds-2~bpo13+1 (trixie-backports)"
    assert heads == ["qemu_11.1.3%2bds-2%7ebpo13%2b1.dsc"]  # asked once, stopped at the first served


def test_unserved_own_source_falls_back_to_the_newest_served_and_says_why(tmp_path: Path) -> None:
    """The project's mirror: 404 for trixie-backports' 11.1.3 and sid's 11.1.x, 200 for sid's 10.2.2."""
    heads, served = mirror({"10.2.2+ds-1"})
    record = tmp_path / sp.RECORD_NAME
    c = sp.choose_source(FakeApt(), "trixie-backports", BPO, served=served, record=record)
    assert c is not None and c.fallback and c.version == "10.2.2+ds-1"
    assert c.note == (
        "1:10.2.2+ds-1 (sid; not served by the mirror: trixie-backports' 1:11.1.3+ds-2~bpo13+1, "
        "sid's 1:11.1.3+ds-1 and 1:11.1.2+ds-3)"
    )
    assert len(heads) == 4
    d = c.as_dict()
    assert (d["suite"], d["version"]) == ("sid", "1:10.2.2+ds-1")
    assert d["fallback"] is True and d["mirror_asked"] is True
    assert [u["status"] for u in d["unserved"]] == ["404 Not Found"] * 3
    assert json.loads(record.read_text())["chosen"] == ["sid", "1:10.2.2+ds-1"]


def test_nothing_served_is_one_line_naming_every_version() -> None:
    _, served = mirror(set())
    with pytest.raises(QemuError) as e:
        sp.choose_source(FakeApt(), "trixie-backports", BPO, served=served)
    assert e.value.message == (
        "source package qemu is listed for trixie-backports but not served by the mirror: "
        "trixie-backports' 1:11.1.3+ds-2~bpo13+1, sid's 1:11.1.3+ds-1, 1:11.1.2+ds-3 and "
        "1:10.2.2+ds-1 (.dsc: 404 Not Found)"
    )
    assert "\n" not in str(e.value)


def test_one_suite_is_apts_choice_without_asking_the_mirror() -> None:
    heads, served = mirror(set())
    apt = FakeApt()
    c = sp.choose_source(apt, "trixie", ("trixie",), served=served)
    assert c is not None and c.note == "1:10.0.13+ds-0+deb13u1 (trixie)"
    assert c.version == "10.0.13+ds-0+deb13u1"
    assert heads == [] and not c.asked and not c.fallback
    assert [a[:2] for a in apt.asked] == [["apt-cache", "madison"]]  # type: ignore[attr-defined]
    assert sp.choose_source(FakeApt(""), "trixie", ("trixie",), served=served) is None  # no deb-src


def test_unreachable_mirror_reuses_the_choice_recorded_for_the_same_listing(tmp_path: Path) -> None:
    record = tmp_path / sp.RECORD_NAME
    _, served = mirror({"10.2.2+ds-1"})
    first = sp.choose_source(FakeApt(), "trixie-backports", BPO, served=served, record=record)

    def offline(uri: str) -> tuple[bool, str]:
        raise sp.MirrorUnreachable(f"cannot reach the mirror for {uri}: [Errno -3] no name")

    again = sp.choose_source(FakeApt(), "trixie-backports", BPO, served=offline, record=record)
    assert again is not None and first is not None
    assert (again.chosen, again.unserved, again.note) == (first.chosen, first.unserved, first.note)
    assert again.recorded_utc == json.loads(record.read_text())["checked_utc"]
    # the listing changed (a new sid upload): the record says nothing about it
    newer = MADISON + "      qemu | 1:11.2.0+ds-1 | http://deb.debian.org/debian sid/main Sources\n"
    with pytest.raises(QemuError, match="cannot tell which qemu source of trixie-backports the mirror"):
        sp.choose_source(FakeApt(newer), "trixie-backports", BPO, served=offline, record=record)
    with pytest.raises(QemuError, match="no name"):
        sp.choose_source(FakeApt(), "trixie-backports", BPO, served=offline)  # no record at all


def test_head_status_tells_404_from_no_answer() -> None:
    with pytest.raises(sp.MirrorUnreachable, match="cannot reach the mirror"):
        sp.head_status("http://127.0.0.1:9/qemu_1.0-1.dsc", timeout=5)


# ------------------------------------------------------------------ releases and their chroots


def test_releases_name_their_source_suites() -> None:
    assert {n: r.qemu_source_suites for n, r in RELEASES.items()} == {
        "bookworm": ("bookworm",),
        "trixie": ("trixie",),
        "trixie-backports": ("trixie-backports", "sid"),
    }
    for r in RELEASES.values():  # a release prefers its own source: QEMU's own, then others
        assert r.qemu_source_suites[0] == (r.backports or r.suite)


def test_only_trixie_backports_chroot_gets_a_pinned_deb_src_entry_for_sid(tmp_path: Path) -> None:
    bpo = BuildRoot(RELEASES["trixie-backports"], tmp_path)
    assert bpo.extra_source_suites() == ("sid",)
    entries = bpo.source_entries()
    assert entries[SOURCES_FILE].splitlines()[1:] == [
        "deb-src [check-valid-until=no] http://deb.debian.org/debian sid main"
    ]
    assert "deb " not in entries[SOURCES_FILE]  # source packages only
    assert entries[PIN_FILE].splitlines()[1:] == ["Package: *", "Pin: release n=sid", "Pin-Priority: -1"]
    trixie = BuildRoot(RELEASES["trixie"], tmp_path)
    assert trixie.extra_source_suites() == () and trixie.source_entries() == {}
    # what is on disk is compared with what the release wants, files absent when none is wanted
    root = tmp_path / "root"
    assert not bpo.source_entries_current(root) and trixie.source_entries_current(root)
    bpo._write_source_entries(root)
    assert bpo.source_entries_current(root) and not trixie.source_entries_current(root)
    trixie._write_source_entries(root)
    assert not (root / SOURCES_FILE).exists() and not (root / PIN_FILE).exists()


# ------------------------------------------------------------------ where the choice is recorded


def _fake_build(tmp_path: Path, meta: dict[str, Any]) -> Path:
    bdir = tmp_path / "build-10.2.2+ds-1-0123456789abcdef"
    (bdir / "bin").mkdir(parents=True)
    (bdir / "bin" / "qemu-system-x86_64").write_bytes(b"\x7fELF")
    (bdir / "build.json").write_text(json.dumps(meta))
    return bdir


NOTE = (
    "1:10.2.2+ds-1 (sid; not served by the mirror: trixie-backports' 1:11.1.3+ds-2~bpo13+1, "
    "sid's 1:11.1.3+ds-1 and 1:11.1.2+ds-3)"
)

#: build.json of a trixie-backports build that fell back to sid's source
FALLBACK_BUILD = {
    "source_version": "10.2.2+ds-1",
    "qemu_source": NOTE,
    "source_choice": {"fallback": True},
    "release": "trixie-backports",
    "key": "0123456789abcdef",
    "patches": [],
}


def test_recorded_source_is_read_beside_a_builds_binary(tmp_path: Path) -> None:
    bdir = _fake_build(tmp_path, {"qemu_source": NOTE})
    assert sp.recorded_source(bdir / "bin" / "qemu-system-x86_64") == NOTE
    assert sp.recorded_source(str(bdir / "bin" / "qemu-system-x86_64")) == NOTE
    assert sp.recorded_source("/usr/bin/qemu-system-x86_64") is None  # Debian's: no build.json
    assert sp.recorded_source(bdir / "qemu-system-x86_64") is None
    older = _fake_build(tmp_path / "old", {"source_version": "7.2+dfsg-7+deb12u18"})
    assert sp.recorded_source(older / "bin" / "qemu-system-x86_64") is None


def test_cli_prints_the_fallback_as_one_notice_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    meta = dict(FALLBACK_BUILD)
    bdir = _fake_build(tmp_path, meta)
    result = qb._cached_result(bdir)
    assert result is not None and result.source_fallback and result.qemu_source == NOTE
    monkeypatch.setattr(qb, "build_qemu", lambda *a, **k: result)
    assert main(["qemu", "build", "--release", "trixie-backports"]) == 0
    out = capsys.readouterr()
    assert out.out.strip() == str(bdir / "bin" / "qemu-system-x86_64")
    notices = [line for line in out.err.splitlines() if line.startswith("vfiobench: notice:")]
    assert notices == [f"vfiobench: notice: QEMU source {NOTE}"]
    # its own source: no notice
    own = _fake_build(tmp_path / "own", {**meta, "source_choice": {"fallback": False}})
    monkeypatch.setattr(qb, "build_qemu", lambda *a, **k: qb._cached_result(own))
    assert main(["qemu", "build", "--release", "trixie-backports"]) == 0
    assert "notice" not in capsys.readouterr().err


def test_an_experiment_says_a_fallback_once_per_variant_and_release(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vfiobench.experiment.backends import BinaryResolver
    from vfiobench.experiment.spec import Variant

    meta = dict(FALLBACK_BUILD)
    result = qb._cached_result(_fake_build(tmp_path, meta))
    calls: list[tuple[list[str], str | None]] = []

    def build(selection: list[str], *, release: str | None = None, progress: Any = None) -> Any:
        calls.append((selection, release))
        return result

    monkeypatch.setattr(qb, "build_qemu", build)
    shown: list[str] = []
    resolve = BinaryResolver(shown.append)
    variant = Variant("pba-always-on", qemu="build", patches=("pba-always-on",))
    for _ in range(2):
        assert resolve(variant, release="trixie-backports") == str(result.binary)  # type: ignore[union-attr]
    assert calls == [(["pba-always-on"], "trixie-backports")]
    assert shown == [f"notice: pba-always-on on trixie-backports: QEMU source {NOTE}"]
