"""The text of the QEMU patches a compare page's builds carry, found and written beside the page.

run.json ``qemu.patches`` names each patch of a variant's binary. The text of each patch is found,
most trustworthy first:

1. ``build``: the copy ``vfiobench qemu build`` keeps in the binary's cache directory
   (``<build_dir>/patches/NN-<name>.patch``, exactly what was applied), when that directory is on
   this machine;
2. ``package``: the patch shipped with this vfiobench (``vfiobench/qemu/patches/<name>.patch``),
   checked against the build: the cache key in the binary's path (``build-<version>-<key>``) is
   recomputed from this text (:func:`vfiobench.qemu.build.build_key`); a mismatch is shown, since
   the text then differs from what was built;
3. none: the name is shown without text.

:func:`write_patch_files` copies the texts to ``<out>/patches/`` beside the HTML (``vfiobench
report --compare`` does), so the page's links work offline; the page also embeds each text in a
``<details>`` block (:mod:`vfiobench.report.pages.builds`), so it reads without the files too.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from vfiobench.store import RunMeta, RunSet

_SUBJECT_RE = re.compile(r"^Subject: (?:\[PATCH[^\]]*\] )?(.+(?:\n[ \t].+)*)$", re.MULTILINE)
_BUILD_DIR_RE = re.compile(r"^build-(?P<version>.+)-(?P<key>[0-9a-f]{16})$")


@dataclass(frozen=True)
class PatchText:
    """One patch as applied to a variant's binary.

    Attributes:
        name: the name recorded in run.json (``pba-always-on``).
        text: the patch text, or None when it was found nowhere.
        origin: ``build`` (the build's cache copy), ``package`` (this vfiobench's), or ``missing``.
        matches_build: for ``package`` texts, whether the binary's cache key recomputes from it
            (None when it cannot be checked: no key in the path, or a non-package patch set).
    """

    name: str
    text: str | None
    origin: str
    matches_build: bool | None = None

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the text ('' when missing)."""
        return hashlib.sha256(self.text.encode()).hexdigest() if self.text is not None else ""

    @property
    def subject(self) -> str:
        """The patch's ``Subject:`` line without its ``[PATCH]`` prefix ('' when there is none)."""
        m = _SUBJECT_RE.search(self.text) if self.text is not None else None
        return " ".join(m.group(1).split()) if m else ""

    @property
    def lines(self) -> int:
        """Lines of the text (0 when missing)."""
        return self.text.count("\n") if self.text is not None else 0

    @property
    def filename(self) -> str:
        """File name beside the page: ``<name>-<first 12 hex of sha256>.patch`` (two texts never collide)."""
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", self.name.removesuffix(".patch")) or "patch"
        return f"{stem}-{self.sha256[:12]}.patch"


def _build_dir(qemu_path: str) -> Path | None:
    """The build directory ``<cache>/build-<version>-<key>`` of ``.../bin/qemu-system-x86_64``, if any."""
    p = PurePosixPath(qemu_path)
    if len(p.parts) >= 3 and p.parent.name == "bin" and _BUILD_DIR_RE.match(p.parent.parent.name):
        return Path(p.parent.parent)
    return None


def _from_build(build_dir: Path, names: list[str]) -> dict[str, str]:
    """Patch texts kept in a build's cache directory, by name (empty when the directory is not here)."""
    found: dict[str, str] = {}
    pdir = build_dir / "patches"
    try:
        meta = json.loads((build_dir / "build.json").read_text(encoding="utf-8"))
        files = sorted(pdir.glob("*.patch"))
    except (OSError, ValueError):
        return found
    recorded = [str(p.get("name")) for p in meta.get("patches", []) if isinstance(p, dict)]
    for f in files:
        name = re.sub(r"^\d+-", "", f.name).removesuffix(".patch")
        if name in names and name in recorded:
            try:
                found[name] = f.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
    return found


def patch_texts(meta: RunMeta) -> list[PatchText]:
    """The text of every patch of a run's QEMU binary, from the best source available (module doc)."""
    names = [n.removesuffix(".patch") for n in meta.qemu.patches]
    if not names:
        return []
    bdir = _build_dir(meta.qemu.path)
    exact = _from_build(bdir, names) if bdir is not None else {}
    from vfiobench.qemu.patchset import DEFAULT_MAJOR, shipped_patches

    m = _BUILD_DIR_RE.match(bdir.name) if bdir is not None else None
    qemu = m.group("version") if m else DEFAULT_MAJOR  # the patches shipped for that QEMU version
    shipped = {p.name: p for p in shipped_patches(qemu)}
    matches: bool | None = None
    if m and all(n in shipped for n in names):
        from vfiobench.qemu.build import build_key
        from vfiobench.qemu.patchset import resolve_patches

        matches = build_key(m.group("version"), resolve_patches(names, qemu)) == m.group("key")
    out = []
    for name in names:
        if name in exact:
            out.append(PatchText(name, exact[name], "build"))
        elif name in shipped:
            out.append(PatchText(name, shipped[name].text.decode("utf-8", "replace"), "package", matches))
        else:
            out.append(PatchText(name, None, "missing"))
    return out


def variant_patches(runset: RunSet) -> dict[str, list[PatchText]]:
    """Each variant's patches (from its first run: every run of a variant uses one binary)."""
    out: dict[str, list[PatchText]] = {}
    for run in runset:
        if run.variant not in out:
            out[run.variant] = patch_texts(run.meta)
    return out


def write_patch_files(metas: Iterable[RunMeta], dest: Path) -> list[Path]:
    """Write the text of every patch the runs' binaries carry to ``dest/<PatchText.filename>``.

    Returns:
        The files written (one per distinct text; patches found nowhere are skipped).
    """
    written: dict[str, Path] = {}
    seen: set[str] = set()
    for meta in metas:
        key = meta.variant + "\0" + meta.qemu.path + "\0" + ",".join(meta.qemu.patches)
        if key in seen:
            continue
        seen.add(key)
        for p in patch_texts(meta):
            if p.text is None or p.filename in written:
                continue
            dest.mkdir(parents=True, exist_ok=True)
            path = dest / p.filename
            path.write_text(p.text, encoding="utf-8")
            written[p.filename] = path
    return list(written.values())
