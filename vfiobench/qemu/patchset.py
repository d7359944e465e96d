"""The project's QEMU patches: loading, selecting, applying, and syncing a work tree.

The patches are package data, one directory per QEMU version they were made against, named by
its major version or ``major.minor`` (``git format-patch`` output against Debian's source after
``dpkg-source -x``)::

    vfiobench/qemu/patches/7/*.patch      Debian bookworm, QEMU 7.2
    vfiobench/qemu/patches/10/*.patch     Debian trixie, QEMU 10.0
    vfiobench/qemu/patches/10.2/*.patch   Debian sid's QEMU 10.2.2, built for trixie-backports

A source of QEMU ``M.m`` gets each patch from the highest directory ``<= M.m`` that has it
(:func:`available_patches`; a directory ``M`` stands for ``M.0``), so a version needs its own file
only where the code differs: 7.2 takes ``7``, 10.0 ``10``, 10.2 and 11.1 ``10.2``.
Each patch adds one ``vfio-pci`` property that defaults to today's behaviour, with the same name
and meaning in every version. They share no lines, so any subset applies in any order;
:data:`SERIES` is the documented order in which they are applied (``patch --fuzz=0``).

Setting ``x-pba-always-on`` and ``x-pba-disable`` on one device is contradictory; with both on the
PBA is enabled at MSI-X enable and never touched again (always-on wins), without the pending-bit
bookkeeping.

Beside them, the auto-detection series meant for upstream, ``git format-patch`` files in
``vfiobench/qemu/series/<version>/`` (``0000-cover-letter.patch`` aside), chosen per QEMU version
the same way and applied as one patch named :data:`SERIES_NAME` (the files in order; ``patch`` applies
them one after the other). It changes the lines the property patches change, so it is never
combined with them (:func:`resolve_patches` refuses).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import json
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from vfiobench.errors import QemuError

#: Documented application order of the package's patches (they are independent; see module doc).
SERIES: tuple[str, ...] = ("pba-always-on", "pba-disable", "msix-fd-cache")

#: The name the auto-detection series (``vfiobench/qemu/series/<version>/``) is applied under.
SERIES_NAME = "msix-mask-auto"


#: The QEMU major version patches are chosen for when no source version is given (bookworm's 7.2).
DEFAULT_MAJOR = 7


_MAJOR_RE = re.compile(r"^(?:\d+:)?(\d+)\.")

_VERSION_RE = re.compile(r"^(?:\d+:)?(\d+)(?:\.(\d+))?(?=$|[.+~-])")

_DIR_RE = re.compile(r"^\d+(?:\.\d+)?$")


_PROP_RE = re.compile(r'^\+\s*DEFINE_PROP_\w+\("([^"]+)"', re.MULTILINE)


_FILE_RE = re.compile(r"^\+\+\+ b/(\S+)", re.MULTILINE)


_SUBJECT_RE = re.compile(r"^Subject: (?:\[PATCH[^\]]*\] )?(.+(?:\n[ \t].+)*)$", re.MULTILINE)


@dataclass(frozen=True)
class Patch:
    """One patch file: its name, where it came from, and its exact content.

    Attributes:
        name: File name without ``.patch`` (``pba-always-on``).
        origin: ``package`` for the shipped patches, else the file's path.
        text: The patch content, byte for byte as read (it is what the cache key hashes).
    """

    name: str
    origin: str
    text: bytes

    @property
    def sha256(self) -> str:
        """Hex SHA-256 of the patch content."""
        return hashlib.sha256(self.text).hexdigest()

    @property
    def files(self) -> tuple[str, ...]:
        """Source files the patch changes, relative to the source tree (``hw/vfio/pci.c``)."""
        return tuple(dict.fromkeys(_FILE_RE.findall(self.text.decode("utf-8", "replace"))))

    @property
    def properties(self) -> tuple[str, ...]:
        """Device properties the patch adds (from its ``DEFINE_PROP_*`` lines)."""
        return tuple(_PROP_RE.findall(self.text.decode("utf-8", "replace")))

    @property
    def subject(self) -> str:
        """The patch's one-line subject (``vfio/pci: add ...``), or its name."""
        m = _SUBJECT_RE.search(self.text.decode("utf-8", "replace"))
        return " ".join(m.group(1).split()) if m else self.name


def qemu_major(qemu: int | str) -> int:
    """The QEMU major version of a Debian source version (``1:10.0.13+ds-0+deb13u1`` → 10).

    Args:
        qemu: A major version (returned as is) or a Debian source version, epoch optional.

    Raises:
        QemuError: A version that does not start with ``MAJOR.``.
    """
    if isinstance(qemu, int):
        return qemu
    m = _MAJOR_RE.match(qemu)
    if not m:
        raise QemuError(f"cannot tell the QEMU major version of source version {qemu!r}")
    return int(m.group(1))


def version_key(qemu: int | str) -> tuple[int, int]:
    """``(major, minor)`` of a QEMU version (``1:10.2.2+ds-1`` → (10, 2), ``10.2`` → (10, 2)).

    Args:
        qemu: A major version (``10`` → (10, 0)), a patch directory's name (``10``, ``10.2``) or a
            Debian source version, epoch optional.

    Raises:
        QemuError: A version that does not start with a number.
    """
    if isinstance(qemu, int):
        return (qemu, 0)
    m = _VERSION_RE.match(qemu)
    if not m:
        raise QemuError(f"cannot tell the QEMU major version of source version {qemu!r}")
    return (int(m.group(1)), int(m.group(2) or 0))


def version_label(qemu: int | str) -> str:
    """``10.2`` for a Debian version of QEMU 10.2, ``7`` for the major version 7 given alone."""
    if isinstance(qemu, int):
        return str(qemu)
    major, minor = version_key(qemu)
    return f"{major}.{minor}"


def _dirs(kind: str, name: str | None = None) -> list[str]:
    """Names of ``kind``'s version directories (``patches``, ``series``), oldest version first."""
    root = importlib.resources.files("vfiobench.qemu").joinpath(kind)
    dirs = [e for e in root.iterdir() if e.is_dir() and _DIR_RE.match(e.name)]
    if name is not None:
        dirs = [d for d in dirs if d.joinpath(f"{name}.patch").is_file()]
    return sorted((d.name for d in dirs), key=version_key)


def patch_versions(name: str | None = None) -> list[str]:
    """The patch directories (``7``, ``10``, ``10.2``), oldest QEMU version first.

    Args:
        name: Only the directories holding this patch (``pba-always-on``), when given.
    """
    return _dirs("patches", name)


def available_patches(qemu: int | str = DEFAULT_MAJOR) -> list[Patch]:
    """The patches shipped for a QEMU version, in :data:`SERIES` order (others after, by name).

    Args:
        qemu: The QEMU version (a major version, a directory name, or the Debian source version it
            is read from); each patch comes from the highest ``patches/<version>/`` directory not
            above it.

    Returns:
        The patches (empty when every patch directory is for a later QEMU).
    """
    wanted = version_key(qemu)
    root = importlib.resources.files("vfiobench.qemu").joinpath("patches")
    found: dict[str, bytes] = {}
    for d in (v for v in patch_versions() if version_key(v) <= wanted):  # later directories override
        for entry in root.joinpath(d).iterdir():
            if entry.name.endswith(".patch"):
                found[entry.name.removesuffix(".patch")] = entry.read_bytes()
    order = [n for n in SERIES if n in found] + sorted(set(found) - set(SERIES))
    return [Patch(n, "package", found[n]) for n in order]


def series_versions() -> list[str]:
    """The auto-detection series' directories (``7``, ``10``, ``10.2``), oldest QEMU version first.

    The last one is the series against the newest source the project builds: the one the cover
    letter (``make series``) is about.
    """
    return _dirs("series")


def series_dir(qemu: int | str = DEFAULT_MAJOR) -> str | None:
    """The series directory for a QEMU version: the highest not above it (None: none is)."""
    wanted = version_key(qemu)
    fitting = [v for v in series_versions() if version_key(v) <= wanted]
    return fitting[-1] if fitting else None


def series_files(qemu: int | str = DEFAULT_MAJOR) -> list[tuple[str, bytes]]:
    """The series' patch files for a QEMU version, ``(file name, content)`` in order (no cover letter).

    They come from :func:`series_dir` ([] when there is none).
    """
    found = series_dir(qemu)
    if found is None:
        return []
    d = importlib.resources.files("vfiobench.qemu").joinpath("series", found)
    names = sorted(
        e.name for e in d.iterdir() if e.name.endswith(".patch") and not e.name.startswith("0000-")
    )
    return [(n, d.joinpath(n).read_bytes()) for n in names]


def series_patch(qemu: int | str = DEFAULT_MAJOR) -> Patch | None:
    """The series for a QEMU version as one :class:`Patch` named :data:`SERIES_NAME` (None: none)."""
    files = series_files(qemu)
    if not files:
        return None
    return Patch(SERIES_NAME, "package", b"".join(text for _, text in files))


def shipped_patches(qemu: int | str = DEFAULT_MAJOR) -> list[Patch]:
    """Every patch a build can name for a QEMU version: the property patches, then the series."""
    series = series_patch(qemu)
    return available_patches(qemu) + ([series] if series is not None else [])


def resolve_patches(selection: Sequence[str], qemu: int | str = DEFAULT_MAJOR) -> list[Patch]:
    """Turn ``--patch`` arguments into patches in application order.

    Args:
        selection: Package patch names (``pba-always-on`` or ``pba-always-on.patch``) or paths to
            patch files (anything containing ``/``). Duplicates are dropped.
        qemu: The QEMU major version (or Debian source version) package patches are chosen for
            (see :func:`available_patches`).

    Returns:
        Package patches in :data:`SERIES` order, then patch files in the order given.

    Raises:
        QemuError: An unknown name or an unreadable/empty file, or the series named with another
            package patch.
    """
    shipped = {p.name: p for p in shipped_patches(qemu)}
    chosen: dict[str, Patch] = {}
    files: list[Patch] = []
    for item in selection:
        if "/" in item or (item.endswith(".patch") and Path(item).is_file()):
            path = Path(item).expanduser()
            try:
                text = path.read_bytes()
            except OSError as e:
                raise QemuError(f"cannot read patch file {path}: {e.strerror}") from None
            if not _FILE_RE.search(text.decode("utf-8", "replace")):
                raise QemuError(f"{path} is not a unified diff (no '+++ b/...' line)")
            if all(p.sha256 != hashlib.sha256(text).hexdigest() for p in files):
                files.append(Patch(path.name.removesuffix(".patch"), str(path.resolve()), text))
            continue
        name = item.removesuffix(".patch")
        if name not in shipped:
            raise QemuError(
                f"no QEMU patch named {item!r} for QEMU {version_label(qemu)}",
                f"available: {', '.join(shipped) or 'none'}; or give a path to a .patch file",
            )
        chosen[name] = shipped[name]
    if SERIES_NAME in chosen and len(chosen) > 1:
        others = ", ".join(n for n in chosen if n != SERIES_NAME)
        raise QemuError(
            f"{SERIES_NAME} (the auto-detection series) cannot be combined with {others}",
            "it changes the same lines; build it alone (its properties cover what they do)",
        )
    ordered = [chosen[n] for n in shipped if n in chosen]
    return ordered + files


def apply_patches(tree: Path, patches: Sequence[Patch]) -> None:
    """Apply ``patches`` in order to ``tree`` with ``patch -p1 --fuzz=0``.

    Raises:
        QemuError: A patch does not apply cleanly (the message names it and patch's complaint).
    """
    for p in patches:
        r = subprocess.run(
            ["patch", "-p1", "--fuzz=0", "--batch", "--forward", "--no-backup-if-mismatch", "-d", str(tree)],
            input=p.text,
            capture_output=True,
            check=False,
        )
        if r.returncode != 0:
            out = (r.stdout + r.stderr).decode("utf-8", "replace").strip().splitlines()
            why = next((line for line in out if "FAILED" in line or "rror" in line), out[-1] if out else "")
            raise QemuError(
                f"patch {p.name} does not apply to the Debian qemu source: {why}",
                "regenerate it against `apt-get source qemu` after dpkg-source -x",
            )


def patched_files(pristine: Path, patches: Sequence[Patch]) -> dict[str, bytes | None]:
    """Contents of every file ``patches`` touch after applying them to ``pristine``.

    Only the touched files are copied (to a temporary directory), so this takes milliseconds.

    Returns:
        Relative path → new content (None when a patch deleted the file).
    """
    touched = list(dict.fromkeys(f for p in patches for f in p.files))
    with tempfile.TemporaryDirectory(prefix="vfiobench-patch-") as tmp:
        stage = Path(tmp)
        for rel in touched:
            src = pristine / rel
            if src.is_file():
                (stage / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(src, stage / rel)
        apply_patches(stage, patches)
        return {rel: (stage / rel).read_bytes() if (stage / rel).is_file() else None for rel in touched}


def sync_work_tree(pristine: Path, work: Path, patches: Sequence[Patch]) -> list[str]:
    """Make ``work`` equal to ``pristine`` + ``patches``, writing only files whose content differs.

    Files patched by an earlier build but not by this selection are restored from ``pristine``.
    Unchanged files keep their mtime, so ninja rebuilds only what the patch change affects.

    Returns:
        The relative paths written (empty when the tree already matched).
    """
    record = work / ".vfiobench-patched.json"
    previous: list[str] = json.loads(record.read_text()) if record.is_file() else []
    wanted = patched_files(pristine, patches)
    written: list[str] = []
    for rel in dict.fromkeys([*previous, *wanted]):
        content = wanted[rel] if rel in wanted else _read_or_none(pristine / rel)
        target = work / rel
        if _read_or_none(target) == content:
            continue
        if content is None:
            target.unlink()
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        written.append(rel)
    record.write_text(json.dumps(sorted(wanted)))
    return written


def _read_or_none(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None
