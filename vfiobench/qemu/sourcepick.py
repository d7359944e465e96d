"""Which Debian source of QEMU a release's build uses: chosen explicitly, and recorded.

A release names the suites its QEMU source may come from, in order
(:attr:`vfiobench.lab.releases.Release.qemu_source_suites`): ``("trixie-backports", "sid")`` for
trixie-backports, the release's own suite for the others. A suite covers its ``-updates`` and
``-security`` pockets where apt has them (trixie's QEMU may be a security update).

:func:`choose_source` asks apt which versions each suite lists (``apt-cache madison qemu``, the
``Sources`` lines), newest first within a suite, suites in order:

- one suite: its newest listed source, as ``apt-get source`` would fetch it (no question to the
  mirror; :func:`vfiobench.qemu.debsource.fetch_source` names a file the mirror does not serve);
- several suites: the first source whose ``.dsc`` the mirror serves (HTTP HEAD on the URI
  ``apt-get source --print-uris`` gives). The project's mirror lists trixie-backports' 11.1.3
  source and sid's 11.1.x ones but answers 404 for each, so trixie-backports builds sid's
  10.2.2, the newest source it serves.

The :class:`SourceChoice` says what was built and why in one line (:attr:`SourceChoice.note`,
e.g. ``1:10.2.2+ds-1 (sid; not served by the mirror: trixie-backports' 1:11.1.3+ds-2~bpo13+1,
sid's 1:11.1.3+ds-1 and 1:11.1.2+ds-3)``), which lands in the build's ``build.json``
(``qemu_source``), in the ``qemu_source`` label of every run recorded with the binary
(:func:`recorded_source`) and, for a fallback, on ``vfiobench qemu build``'s stderr.

The last choice of a release is kept in ``qemu-source.json`` in its cache directory: when the
mirror cannot be reached (not a 404: no answer), a choice recorded for the same listing is used
again, so cached builds stay usable offline.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vfiobench.errors import QemuError
from vfiobench.qemu.debsource import Shell

#: The pockets a suite covers (``trixie`` → trixie, trixie-updates, trixie-security).
POCKETS: tuple[str, ...] = ("", "-updates", "-security")

#: Name of the file recording a release's last choice, in its QEMU cache directory.
RECORD_NAME = "qemu-source.json"

_MADISON_RE = re.compile(r"^\s*(\S+)\s*\|\s*(\S+)\s*\|\s*(\S+)\s+([^/\s]+)(?:/\S+)?\s+Sources\s*$")

_DSC_RE = re.compile(r"^'(\S+\.dsc)'\s", re.MULTILINE)


class MirrorUnreachable(QemuError):
    """The mirror gave no answer (network trouble), as opposed to answering 404."""


@dataclass(frozen=True)
class Listed:
    """One source version a suite lists.

    Attributes:
        suite: The suite whose ``Sources`` list it (``sid``, ``trixie-security``).
        group: The entry of the release's ``qemu_sources`` that suite belongs to (``trixie``).
        version: The Debian version, epoch included (``1:10.2.2+ds-1``).
    """

    suite: str
    group: str
    version: str

    @property
    def file_version(self) -> str:
        """The version as in file names, without epoch (``10.2.2+ds-1``): names cache entries."""
        return self.version.split(":", 1)[1] if ":" in self.version else self.version


@dataclass(frozen=True)
class SourceChoice:
    """The source a build uses, and the ones before it the mirror does not serve.

    Attributes:
        release: The lab release.
        chosen: The source built.
        unserved: Sources listed before it (in suite order, newest first) that the mirror does not
            serve, each with the mirror's answer (``404 Not Found``).
        suites: The release's source suites, in order.
        asked: Whether the mirror was asked (several suites), or the choice is apt's alone.
        recorded_utc: When the mirror was last asked for this choice ("" when not asked, or asked
            now); set when the mirror could not be reached and a recorded choice was used.
    """

    release: str
    chosen: Listed
    unserved: tuple[tuple[Listed, str], ...] = ()
    suites: tuple[str, ...] = ()
    asked: bool = False
    recorded_utc: str = ""

    @property
    def version(self) -> str:
        """The chosen version without epoch, as cache directories and build keys use it."""
        return self.chosen.file_version

    @property
    def fallback(self) -> bool:
        """Whether the chosen source is not from the release's first (own) suite."""
        return bool(self.suites) and self.chosen.group != self.suites[0]

    @property
    def note(self) -> str:
        """One line: the version built, its suite and, when others came first, why not them."""
        if not self.unserved:
            return f"{self.chosen.version} ({self.chosen.suite})"
        why = f"not served by the mirror: {_listing(self.unserved)}"
        return f"{self.chosen.version} ({self.chosen.suite}; {why})"

    def as_dict(self) -> dict[str, Any]:
        """The choice for ``build.json`` (``source_choice``)."""
        return {
            "version": self.chosen.version,
            "suite": self.chosen.suite,
            "suites": list(self.suites),
            "fallback": self.fallback,
            "unserved": [{"suite": u.suite, "version": u.version, "status": why} for u, why in self.unserved],
            "mirror_asked": self.asked,
            **({"recorded_utc": self.recorded_utc} if self.recorded_utc else {}),
        }


def _listing(items: Sequence[tuple[Listed, str]]) -> str:
    """``trixie-backports' 1:11.1.3+ds-2~bpo13+1, sid's 1:11.1.3+ds-1 and 1:11.1.2+ds-3``."""
    by_suite: dict[str, list[str]] = {}
    for item, _ in items:
        by_suite.setdefault(item.suite, []).append(item.version)
    parts = []
    for suite, versions in by_suite.items():
        owner = f"{suite}'" if suite.endswith("s") else f"{suite}'s"
        joined = versions[0] if len(versions) == 1 else ", ".join(versions[:-1]) + f" and {versions[-1]}"
        parts.append(f"{owner} {joined}")
    return ", ".join(parts)


# ------------------------------------------------------------------ Debian versions


def _order(c: str) -> int:
    if c == "":
        return 0
    if c == "~":
        return -1
    if c.isdigit():
        return 0
    if c.isalpha():
        return ord(c)
    return ord(c) + 256


def _verrevcmp(a: str, b: str) -> int:
    """Compare two upstream versions or two revisions as dpkg does (``verrevcmp``, lib/dpkg/version.c)."""
    i = j = 0
    while i < len(a) or j < len(b):
        while (i < len(a) and not a[i].isdigit()) or (j < len(b) and not b[j].isdigit()):
            ac, bc = _order(a[i] if i < len(a) else ""), _order(b[j] if j < len(b) else "")
            if ac != bc:
                return -1 if ac < bc else 1
            i, j = i + 1, j + 1
        while i < len(a) and a[i] == "0":
            i += 1
        while j < len(b) and b[j] == "0":
            j += 1
        first_diff = 0
        while i < len(a) and j < len(b) and a[i].isdigit() and b[j].isdigit():
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i, j = i + 1, j + 1
        if i < len(a) and a[i].isdigit():
            return 1
        if j < len(b) and b[j].isdigit():
            return -1
        if first_diff:
            return -1 if first_diff < 0 else 1
    return 0


def compare_versions(a: str, b: str) -> int:
    """Compare two Debian versions as dpkg does: negative, 0 or positive."""

    def split(v: str) -> tuple[int, str, str]:
        epoch, _, rest = v.rpartition(":") if ":" in v else ("0", "", v)
        upstream, _, revision = rest.rpartition("-") if "-" in rest else (rest, "", "")
        return int(epoch or 0), upstream, revision

    ea, ua, ra = split(a)
    eb, ub, rb = split(b)
    if ea != eb:
        return -1 if ea < eb else 1
    return _verrevcmp(ua, ub) or _verrevcmp(ra, rb)


def _descending(a: str, b: str) -> int:
    return compare_versions(b, a)


_NEWEST_FIRST = functools.cmp_to_key(_descending)


# ------------------------------------------------------------------ apt and the mirror


def parse_madison(text: str, package: str = "qemu") -> list[tuple[str, str]]:
    """``(suite, version)`` of every source ``apt-cache madison`` lists for ``package``."""
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = _MADISON_RE.match(line)
        if m and m.group(1) == package:
            out.append((m.group(4), m.group(2)))
    return out


def group_listing(pairs: Sequence[tuple[str, str]], suites: Sequence[str]) -> list[Listed]:
    """The listed versions of ``suites`` (and their pockets), suites in order, newest first within.

    Versions of suites that are not among ``suites`` (trixie's own, in trixie-backports' chroot)
    are left out; a version listed by two pockets of one suite counts once.
    """
    out: list[Listed] = []
    for group in suites:
        pockets = [group + p for p in POCKETS]
        found: dict[str, Listed] = {}
        for suite, version in pairs:
            if suite in pockets and version not in found:
                found[version] = Listed(suite, group, version)
        out += sorted(found.values(), key=lambda item: _NEWEST_FIRST(item.version))
    return out


def list_sources(shell: Shell, suites: Sequence[str], package: str = "qemu") -> list[Listed]:
    """What apt lists for ``package`` in ``suites`` (:func:`group_listing` of ``apt-cache madison``)."""
    r = shell.capture(["apt-cache", "madison", package])
    return group_listing(parse_madison(r.stdout, package), suites) if r.returncode == 0 else []


def dsc_uri(shell: Shell, version: str, package: str = "qemu") -> str:
    """The ``.dsc`` URI apt fetches for ``package=version`` (``apt-get source --print-uris``).

    Raises:
        QemuError: apt gives none.
    """
    r = shell.capture(["apt-get", "source", "--print-uris", "-qq", f"{package}={version}"])
    m = _DSC_RE.search(r.stdout)
    if r.returncode != 0 or m is None:
        said = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise QemuError(f"apt gives no .dsc for source {package} {version}: {said[:200]}")
    return m.group(1)


def head_status(uri: str, timeout: float = 30.0) -> tuple[bool, str]:
    """Whether the mirror serves ``uri`` (HTTP HEAD), with its answer (``200 OK``, ``404 Not Found``).

    Raises:
        MirrorUnreachable: No HTTP answer at all (name resolution, connection, timeout), or a
            server error, which says nothing about the file.
    """
    try:
        with urllib.request.urlopen(urllib.request.Request(uri, method="HEAD"), timeout=timeout) as r:
            return True, f"{r.status} {r.reason}"
    except urllib.error.HTTPError as e:
        if e.code in (404, 410):
            return False, f"{e.code} {e.reason}"
        raise MirrorUnreachable(f"the mirror answers {e.code} {e.reason} for {uri}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise MirrorUnreachable(f"cannot reach the mirror for {uri}: {reason}") from None


Served = Callable[[str], tuple[bool, str]]


def choose_source(
    shell: Shell,
    release: str,
    suites: Sequence[str],
    *,
    served: Served | None = None,
    record: Path | None = None,
    package: str = "qemu",
) -> SourceChoice | None:
    """The source a build of ``release`` uses (module doc).

    Args:
        shell: Where apt runs (this machine, or the release's chroot with its deb-src entries).
        release: The lab release's name (for messages).
        suites: The release's source suites, in order of preference.
        served: Asks the mirror about a URI (None: :func:`head_status`, looked up when called).
        record: The release's ``qemu-source.json`` (None: neither read nor written).
        package: The source package.

    Returns:
        The choice, or None when apt lists no source of ``package`` in ``suites`` (no deb-src
        entry, or apt cannot run): the caller then falls back on what it has.

    Raises:
        QemuError: Several suites and the mirror serves none of their sources (one line naming
            each version and the mirror's answer), or it cannot be reached and no choice for the
            same listing was recorded.
    """
    listed = list_sources(shell, suites, package)
    if not listed:
        return None
    if len(suites) == 1:
        return SourceChoice(release, listed[0], suites=tuple(suites))
    ask = served or head_status
    unserved: list[tuple[Listed, str]] = []
    try:
        for item in listed:
            ok, why = ask(dsc_uri(shell, item.version, package))
            if ok:
                choice = SourceChoice(release, item, tuple(unserved), tuple(suites), asked=True)
                if record is not None:
                    _write_record(record, listed, choice)
                return choice
            unserved.append((item, why))
    except MirrorUnreachable as e:
        again = _read_record(record, listed, release, suites) if record is not None else None
        if again is None:
            raise QemuError(
                f"cannot tell which qemu source of {release} the mirror serves: {e.message}",
                "check the network, or build another release (--release)",
            ) from None
        return again
    answers = sorted({why for _, why in unserved})
    raise QemuError(
        f"source package {package} is listed for {release} but not served by the mirror: "
        f"{_listing(unserved)} (.dsc: {', '.join(answers)})",
        "use a mirror that has the source, or build another release (--release)",
    )


def _write_record(path: Path, listed: Sequence[Listed], choice: SourceChoice) -> None:
    data = {
        "listed": [[x.suite, x.version] for x in listed],
        "chosen": [choice.chosen.suite, choice.chosen.version],
        "unserved": [[u.suite, u.version, why] for u, why in choice.unserved],
        "checked_utc": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    except OSError:
        pass  # a record is a convenience for offline use, never a reason to fail a build


def _read_record(
    path: Path, listed: Sequence[Listed], release: str, suites: Sequence[str]
) -> SourceChoice | None:
    """The recorded choice when it was made for exactly this listing, else None."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data["listed"] != [[x.suite, x.version] for x in listed]:
            return None
        by_key = {(x.suite, x.version): x for x in listed}
        chosen = by_key[(str(data["chosen"][0]), str(data["chosen"][1]))]
        unserved = tuple((by_key[(s, v)], str(why)) for s, v, why in data["unserved"])
        return SourceChoice(release, chosen, unserved, tuple(suites), True, str(data["checked_utc"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def recorded_source(binary: str | Path) -> str | None:
    """The ``qemu_source`` note of a vfiobench build, read from ``build.json`` beside ``bin/``.

    Args:
        binary: A QEMU binary's path (``.../build-<version>-<key>/bin/qemu-system-x86_64``).

    Returns:
        The note, or None for any other binary (Debian's, a path of one's own, an older build).
    """
    path = Path(binary)
    if path.parent.name != "bin":
        return None
    try:
        meta = json.loads((path.parent.parent / "build.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    note = meta.get("qemu_source") if isinstance(meta, dict) else None
    return str(note) if note else None
