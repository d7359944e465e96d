"""Build patched QEMU variants from Debian bookworm's own QEMU source, cached by patch content.

The variants compared by vfiobench are Debian's QEMU 7.2 rebuilt with the project's patches
(``vfiobench/qemu/patches/*.patch``, package data), each adding one ``vfio-pci`` property that
defaults to today's behaviour:

=====================  =====================  ==================================================
patch                  property               effect when ``=on``
=====================  =====================  ==================================================
``pba-always-on``      ``x-pba-always-on``    PBA emulation enabled once at MSI-X enable, never
                                              toggled (reads still return the emulated bits)
``pba-disable``        ``x-pba-disable``      PBA emulation never enabled
``msix-fd-cache``      ``x-msix-fd-cache``    SET_IRQS skipped when a vector's eventfd is unchanged
=====================  =====================  ==================================================

The patches share no lines, so any subset applies in any order; they are applied in
:data:`SERIES` order (the documented order) with ``patch --fuzz=0``. A recipe:

1. ``apt-get source qemu`` (needs a ``deb-src`` line, added by :func:`ensure_deb_src` when root)
   then ``dpkg-source -x`` (Debian's own patch series applied) into
   ``~/.cache/vfiobench/qemu/src-<version>/``, kept pristine;
2. one work tree per source version (``work-<version>/``); the selected patches are applied to
   copies of the pristine files they touch, and only files whose content differs are written, so
   ninja rebuilds only what a patch change affects (seconds instead of minutes);
3. ``configure --target-list=x86_64-softmmu`` with debug info, not stripped, no modules, only the
   features the lab needs (so the binary runs in the lab's Debian bookworm L1 with Debian's
   libraries and firmware);
4. the binary lands in ``build-<version>-<key>/bin/qemu-system-x86_64`` where ``key`` hashes the
   recipe, the source version and the selected patches' names and contents: a cache hit returns
   it without building; any change to a patch file gives a new key and an (incremental) rebuild.

Firmware: QEMU 7.2 rewrites every configured directory under its prefix relative to the
executable (``get_relocated_path``), so a copy of a ``--prefix=/usr`` binary outside ``/usr/bin``
would look for its BIOS in ``<dir>/../share/seabios``. The firmware path is therefore spelled
``//usr/share/...`` (the same directories for the kernel, but not "under the prefix" for that
check): like Debian's own binary, a copy anywhere (the lab's 9p share) finds Debian's firmware
(``qemu-system-data``, ``seabios``, ``ipxe-qemu``) without ``-L``.

Heavy steps (configure, ninja, qtests) take ``/tmp/vfiobench-heavy.lock`` (pass ``lock=False``
when the caller already holds it, e.g. under ``flock(1)``). Everything is logged under
``~/.cache/vfiobench/qemu/logs/``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vfiobench.errors import QemuError

#: Documented application order of the package's patches (they are independent; see module doc).
SERIES: tuple[str, ...] = ("pba-always-on", "pba-disable", "msix-fd-cache")

#: Bump when the build recipe (configure flags, install layout) changes: every cache key changes.
RECIPE_VERSION = 2

#: The QEMU binary built (x86_64 system emulator only).
BINARY_NAME = "qemu-system-x86_64"

#: Debian's firmware search path, as in debian/rules (FIRMWAREPATH).
FIRMWARE_PATH: tuple[str, ...] = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")

#: Build dependencies for :data:`CONFIGURE_ARGS` (a subset of ``apt-get build-dep qemu``).
BUILD_DEPS: tuple[str, ...] = (
    "dpkg-dev",
    "patch",
    "gcc",
    "make",
    "pkgconf",
    "python3",
    "ninja-build",
    "meson",
    "libglib2.0-dev",
    "libpixman-1-dev",
    "zlib1g-dev",
    "libfdt-dev",
    "libslirp-dev",
)

#: configure arguments. Paths mirror debian/rules so the binary behaves like Debian's; features
#: are explicit (``--without-default-features``) so what is linked never depends on which -dev
#: packages the build machine happens to have, and every library used is one Debian's
#: qemu-system-x86 already depends on (present in the lab's L1).
CONFIGURE_ARGS: tuple[str, ...] = (
    "--target-list=x86_64-softmmu",
    "--prefix=/usr",
    "--sysconfdir=/etc",
    "--libexecdir=/usr/lib/qemu",
    "--localstatedir=/var",
    # "//usr/...": not relocated relative to the executable (see the module docstring)
    "--firmwarepath=" + ":".join("/" + d for d in FIRMWARE_PATH),
    "--without-default-features",
    "--enable-kvm",
    "--enable-tcg",
    "--enable-slirp",
    "--enable-fdt=system",
    "--enable-trace-backends=log",
    "--enable-debug-info",
    "--disable-strip",
    "--disable-werror",
    "--disable-docs",
    "--disable-user",
    "--disable-tools",
    "--disable-guest-agent",
    "--disable-modules",
)

#: QEMU's own qtests closest to this patch set that run without VFIO hardware (tests/qtest has no
#: vfio test): ivshmem (the lab's device: ``/ivshmem/server`` drives MSI-X vectors through an
#: ivshmem server and reads the pending bits, hw/pci/msix.c), device introspection (lists every
#: device's properties, vfio-pci's new ones included), and PCI host bridges of both PC machines.
QTESTS: tuple[str, ...] = (
    "ivshmem-test",
    "device-introspect-test",
    "i440fx-test",
    "q35-test",
)

#: Of :data:`QTESTS`, those run with meson's ``slow`` setup (``G_TEST_SLOW=1``): ivshmem's MSI-X
#: tests (``/ivshmem/server``, ``/ivshmem/pair``) only run there. (device-introspect-test's slow
#: mode walks every machine type and exceeds its 30 s timeout, so it runs quick.)
SLOW_QTESTS: frozenset[str] = frozenset({"ivshmem-test"})

HEAVY_LOCK = Path("/tmp/vfiobench-heavy.lock")
DEB_SRC_FILE = Path("/etc/apt/sources.list.d/vfiobench-deb-src.sources")

_PROP_RE = re.compile(r'^\+\s*DEFINE_PROP_\w+\("([^"]+)"', re.MULTILINE)
_FILE_RE = re.compile(r"^\+\+\+ b/(\S+)", re.MULTILINE)
_SUBJECT_RE = re.compile(r"^Subject: (?:\[PATCH[^\]]*\] )?(.+(?:\n[ \t].+)*)$", re.MULTILINE)
_NINJA_RE = re.compile(r"^\[(\d+)/(\d+)\]")

Progress = Callable[[str], None]


# --------------------------------------------------------------------------------------------
# patches
# --------------------------------------------------------------------------------------------


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


def available_patches() -> list[Patch]:
    """The patches shipped in the package, in :data:`SERIES` order (others after, by name)."""
    root = importlib.resources.files("vfiobench.qemu").joinpath("patches")
    found = {
        entry.name.removesuffix(".patch"): entry.read_bytes()
        for entry in root.iterdir()
        if entry.name.endswith(".patch")
    }
    order = [n for n in SERIES if n in found] + sorted(set(found) - set(SERIES))
    return [Patch(n, "package", found[n]) for n in order]


def resolve_patches(selection: Sequence[str]) -> list[Patch]:
    """Turn ``--patch`` arguments into patches in application order.

    Args:
        selection: Package patch names (``pba-always-on`` or ``pba-always-on.patch``) or paths to
            patch files (anything containing ``/``). Duplicates are dropped.

    Returns:
        Package patches in :data:`SERIES` order, then patch files in the order given.

    Raises:
        QemuError: An unknown name or an unreadable/empty file.
    """
    shipped = {p.name: p for p in available_patches()}
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
                f"no QEMU patch named {item!r}",
                f"available: {', '.join(shipped) or 'none'}; or give a path to a .patch file",
            )
        chosen[name] = shipped[name]
    ordered = [chosen[n] for n in shipped if n in chosen]
    return ordered + files


def build_key(source_version: str, patches: Sequence[Patch]) -> str:
    """The cache key of a build: 16 hex digits of SHA-256.

    It covers the recipe (:data:`RECIPE_VERSION`, :data:`CONFIGURE_ARGS`), the Debian source
    version, and each patch's name and exact content in application order: the same inputs give
    the same key, a one-byte change in any patch gives another.
    """
    h = hashlib.sha256()
    h.update(f"vfiobench-qemu-recipe-{RECIPE_VERSION}\0".encode())
    h.update("\0".join(CONFIGURE_ARGS).encode() + b"\0\0")
    h.update(source_version.encode() + b"\0\0")
    for p in patches:
        h.update(p.name.encode() + b"\0" + p.sha256.encode() + b"\0")
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------------------------
# cache layout and result
# --------------------------------------------------------------------------------------------


def cache_root() -> Path:
    """``$VFIOBENCH_CACHE/qemu`` (default ``~/.cache/vfiobench/qemu``)."""
    base = os.environ.get("VFIOBENCH_CACHE") or str(Path.home() / ".cache" / "vfiobench")
    return Path(base).expanduser() / "qemu"


def _safe(version: str) -> str:
    """A version string usable in a directory name (``1:7.2+dfsg-7`` → ``1_7.2+dfsg-7``)."""
    return re.sub(r"[^A-Za-z0-9.+~-]", "_", version)


@dataclass
class BuildResult:
    """A built (or cached) QEMU variant.

    Attributes:
        binary: Path of ``qemu-system-x86_64`` (in ``<build_dir>/bin/``).
        build_dir: The cache directory holding the binary, ``build.json``, ``build.log`` and the
            applied patches (``patches/*.patch``).
        source_version: Debian source version (``7.2+dfsg-7+deb12u18``).
        key: The cache key (:func:`build_key`).
        patches: Names of the applied patches, in order.
        properties: vfio-pci properties the patches add.
        cached: True when returned from the cache without building.
        seconds: Wall time of this call's build (0.0 when cached).
        log: The build log.
    """

    binary: Path
    build_dir: Path
    source_version: str
    key: str
    patches: list[str]
    properties: list[str]
    cached: bool
    seconds: float
    log: Path
    meta: dict[str, Any] = field(default_factory=dict)


def build_dir_for(source_version: str, key: str, root: Path | None = None) -> Path:
    """``<cache>/build-<source-version>-<key>``."""
    return (root or cache_root()) / f"build-{_safe(source_version)}-{key}"


def _cached_result(bdir: Path) -> BuildResult | None:
    meta_path = bdir / "build.json"
    binary = bdir / "bin" / BINARY_NAME
    if not (meta_path.is_file() and binary.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    return BuildResult(
        binary=binary,
        build_dir=bdir,
        source_version=meta["source_version"],
        key=meta["key"],
        patches=[p["name"] for p in meta["patches"]],
        properties=list(meta.get("properties", [])),
        cached=True,
        seconds=0.0,
        log=bdir / "build.log",
        meta=meta,
    )


def list_builds(root: Path | None = None) -> list[BuildResult]:
    """Every complete build in the cache, oldest first."""
    base = root or cache_root()
    found = [r for d in sorted(base.glob("build-*")) if (r := _cached_result(d)) is not None]
    return sorted(found, key=lambda r: str(r.meta.get("built_at", "")))


# --------------------------------------------------------------------------------------------
# running things
# --------------------------------------------------------------------------------------------


def _run(
    cmd: Sequence[str],
    log: IO[str],
    *,
    cwd: Path | None = None,
    what: str,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run ``cmd``, copying its output into ``log`` (and to ``on_line``); raise on failure."""
    log.write(f"\n$ {' '.join(cmd)}\n")
    log.flush()
    tail: list[str] = []
    try:
        proc = subprocess.Popen(
            list(cmd),
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            env=env,
        )
    except FileNotFoundError:
        raise QemuError(f"cannot {what}: {cmd[0]} not found", "run `make system` as root") from None
    assert proc.stdout is not None
    with proc:
        try:
            for line in proc.stdout:
                log.write(line)
                tail = [*tail[-11:], line.rstrip()]
                if on_line is not None:
                    on_line(line.rstrip("\n"))
        except BaseException:
            proc.kill()
            raise
    log.flush()
    if proc.returncode != 0:
        last = next((t for t in reversed(tail) if t.strip()), "")
        raise QemuError(
            f"cannot {what}: {cmd[0]} exited with {proc.returncode}: {last[:200]}",
            f"see {log.name}",
        )


def _capture(cmd: Sequence[str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            list(cmd), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise QemuError(f"{cmd[0]} not found", "this needs Debian's apt/dpkg tools") from None


@contextlib.contextmanager
def heavy_lock(enabled: bool = True, progress: Progress | None = None) -> Iterator[None]:
    """Hold ``/tmp/vfiobench-heavy.lock`` (shared with flock(1)) for the duration."""
    if not enabled:
        yield
        return
    with open(HEAVY_LOCK, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(f"waiting for {HEAVY_LOCK} (another heavy job runs; --no-lock if you hold it)")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


# --------------------------------------------------------------------------------------------
# apt: deb-src, build dependencies, source
# --------------------------------------------------------------------------------------------


def deb_src_entries(sources: dict[str, str]) -> str:
    """deb-src stanzas mirroring the configured Debian ``deb`` entries.

    Args:
        sources: Map of apt source file name to its content (``debian.sources`` in deb822 form,
            ``sources.list`` in one-line form).

    Returns:
        A deb822 ``.sources`` text with one ``Types: deb-src`` stanza per Debian ``deb`` stanza or
        line (same URIs, suites, components, keyring), or ``""`` when there is none.
    """
    stanzas: list[str] = []
    for name, text in sorted(sources.items()):
        if name.endswith(".sources"):
            for block in re.split(r"\n\s*\n", text):
                fields = _deb822(block)
                if "deb" not in fields.get("Types", "").split():
                    continue
                if fields.get("Enabled", "yes").lower() == "no":
                    continue
                if "debian" not in fields.get("URIs", ""):
                    continue
                keep = ["URIs", "Suites", "Components", "Signed-By"]
                lines = ["Types: deb-src"] + [f"{k}: {fields[k]}" for k in keep if k in fields]
                stanzas.append("\n".join(lines))
        else:
            for raw in text.splitlines():
                m = re.match(r"^\s*deb\s+(\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s+(.+?)\s*$", raw)
                if not m or "debian" not in m.group(2):
                    continue
                opts = m.group(1) or ""
                signed = re.search(r"signed-by=(\S+?)[\s\]]", opts)
                lines = [
                    "Types: deb-src",
                    f"URIs: {m.group(2)}",
                    f"Suites: {m.group(3)}",
                    f"Components: {m.group(4)}",
                ]
                if signed:
                    lines.append(f"Signed-By: {signed.group(1)}")
                stanzas.append("\n".join(lines))
    unique = list(dict.fromkeys(stanzas))
    if not unique:
        return ""
    head = "# Added by vfiobench: source packages for `apt-get source qemu` (mirrors the deb entries).\n"
    return head + "\n\n".join(unique) + "\n"


def _deb822(block: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    key = ""
    for line in block.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0] in " \t" and key:
            fields[key] += " " + line.strip()
            continue
        k, _, v = line.partition(":")
        key = k.strip()
        fields[key] = v.strip()
    return fields


def _apt_sources() -> dict[str, str]:
    out: dict[str, str] = {}
    main = Path("/etc/apt/sources.list")
    if main.is_file():
        out[main.name] = main.read_text()
    d = Path("/etc/apt/sources.list.d")
    if d.is_dir():
        for f in sorted(d.iterdir()):
            if f.suffix in (".list", ".sources") and f != DEB_SRC_FILE:
                out[f.name] = f.read_text()
    return out


def _has_qemu_source() -> bool:
    r = _capture(["apt-cache", "showsrc", "--only-source", "qemu"])
    return r.returncode == 0 and "Package: qemu" in r.stdout


def ensure_deb_src(progress: Progress | None = None) -> None:
    """Make ``apt-get source qemu`` possible: add deb-src entries (root only) when missing.

    Raises:
        QemuError: No deb-src and not root, or nothing to mirror.
    """
    if _has_qemu_source():
        return
    if os.geteuid() != 0:
        raise QemuError(
            "apt has no deb-src entry for qemu, so `apt-get source qemu` cannot work",
            "run `make system` (or this command) as root once, or add a deb-src line by hand",
        )
    text = deb_src_entries(_apt_sources())
    if not text:
        raise QemuError("no Debian deb entry in /etc/apt to mirror as deb-src", "add a deb-src line")
    if progress:
        progress(f"adding deb-src entries in {DEB_SRC_FILE} and running apt-get update")
    DEB_SRC_FILE.write_text(text)
    r = _capture(["apt-get", "update", "-qq", "-o", "DPkg::Lock::Timeout=300"], timeout=600)
    if r.returncode != 0 or not _has_qemu_source():
        raise QemuError(f"apt-get update did not make qemu's source available: {r.stderr.strip()[:200]}")


def missing_build_deps(packages: Sequence[str] = BUILD_DEPS) -> list[str]:
    """The packages of ``packages`` that dpkg does not list as installed."""
    r = _capture(["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages])
    ok = {
        line.split()[0].split(":")[0]
        for line in r.stdout.splitlines()
        if line.endswith("install ok installed")
    }
    return [p for p in packages if p not in ok]


def ensure_build_deps(log: IO[str], progress: Progress | None = None) -> None:
    """Install missing :data:`BUILD_DEPS` (root), or fail naming them."""
    missing = missing_build_deps()
    if not missing:
        return
    if os.geteuid() != 0:
        raise QemuError(
            f"QEMU build dependencies missing: {' '.join(missing)}",
            "run `make system` as root, or apt-get install them",
        )
    if progress:
        progress(f"installing build dependencies: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    _run(
        [
            "apt-get",
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "-o",
            "DPkg::Lock::Timeout=300",
            *missing,
        ],
        log,
        what="install QEMU build dependencies",
        env=env,
    )


def source_version(root: Path | None = None) -> str:
    """The Debian source version ``apt-get source qemu`` fetches (``7.2+dfsg-7+deb12u18``).

    Without apt's answer (offline, no deb-src), falls back to the only source tree already in the
    cache.

    Raises:
        QemuError: apt cannot tell and the cache does not hold exactly one source tree.
    """
    r = _capture(["apt-get", "source", "--print-uris", "-qq", "qemu"])
    m = re.search(r"\sqemu_([^\s/]+)\.dsc\s", r.stdout)
    if r.returncode == 0 and m:
        return m.group(1)
    trees = sorted((root or cache_root()).glob("src-*/debian/changelog"))
    if len(trees) == 1:
        return trees[0].parent.parent.name.removeprefix("src-")
    detail = (r.stderr.strip().splitlines() or ["no output"])[-1]
    raise QemuError(
        f"cannot tell which qemu source apt would fetch: {detail[:200]}",
        "run as root once so vfiobench adds a deb-src entry, or `make system`",
    )


def fetch_source(
    version: str, log: IO[str], root: Path | None = None, progress: Progress | None = None
) -> Path:
    """``apt-get source`` + ``dpkg-source -x`` into ``<cache>/src-<version>/`` (once).

    Returns:
        The pristine source tree (Debian's patches applied, ours not).
    """
    base = root or cache_root()
    dest = base / f"src-{_safe(version)}"
    if (dest / "debian" / "changelog").is_file() and (dest / "configure").is_file():
        return dest
    base.mkdir(parents=True, exist_ok=True)
    downloads = base / "downloads"
    downloads.mkdir(exist_ok=True)
    if progress:
        progress(f"fetching Debian qemu {version} source (apt-get source)")
    dsc = downloads / f"qemu_{version}.dsc"
    if not dsc.is_file():
        _run(
            ["apt-get", "source", "--download-only", "-qq", "qemu"],
            log,
            cwd=downloads,
            what="apt-get source qemu",
        )
    if not dsc.is_file():
        raise QemuError(f"apt-get source did not produce {dsc.name}", "apt's source version changed; retry")
    tmp = Path(tempfile.mkdtemp(prefix="src-", dir=base))
    try:
        _run(
            ["dpkg-source", "--no-check", "-x", str(dsc), str(tmp / "src")],
            log,
            what="extract the qemu source (dpkg-source -x)",
        )
        if dest.exists():
            shutil.rmtree(dest)
        (tmp / "src").rename(dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


# --------------------------------------------------------------------------------------------
# patching a work tree
# --------------------------------------------------------------------------------------------


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


def _work_tree(pristine: Path, version: str, root: Path, log: IO[str], progress: Progress | None) -> Path:
    work = root / f"work-{_safe(version)}"
    if (work / "configure").is_file():
        return work
    if progress:
        progress(f"copying the source to the work tree {work}")
    tmp = root / f".work-{_safe(version)}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    _run(["cp", "-a", "--reflink=auto", str(pristine), str(tmp)], log, what="copy the source tree")
    tmp.rename(work)
    return work


# --------------------------------------------------------------------------------------------
# configure, ninja, install
# --------------------------------------------------------------------------------------------


def _pkgversion(version: str) -> str:
    return f"Debian {version}, vfiobench"


def _configure(work: Path, version: str, log: IO[str], progress: Progress | None) -> Path:
    bdir = work / "build"
    args = [*CONFIGURE_ARGS, f"--with-pkgversion={_pkgversion(version)}"]
    stamp = bdir / ".vfiobench-configure.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == args and (bdir / "build.ninja").is_file():
        return bdir
    if progress:
        progress("configuring (x86_64-softmmu, debug info, not stripped)")
    shutil.rmtree(bdir, ignore_errors=True)
    bdir.mkdir()
    _run(["../configure", *args], log, cwd=bdir, what="configure QEMU")
    stamp.write_text(json.dumps(args))
    return bdir


def _ninja(bdir: Path, targets: Sequence[str], log: IO[str], progress: Progress | None, what: str) -> None:
    state = {"shown": -1}

    def on_line(line: str) -> None:
        m = _NINJA_RE.match(line)
        if not m or progress is None:
            return
        done, total = int(m.group(1)), int(m.group(2))
        pct = 100 * done // max(total, 1)
        if pct // 10 != state["shown"] // 10 or done == total:
            state["shown"] = pct
            progress(f"{what}: {done}/{total} steps ({pct}%)")

    jobs = str(os.cpu_count() or 2)
    _run(["ninja", "-j", jobs, *targets], log, cwd=bdir, what=what, on_line=on_line)


def _link_firmware(root: Path) -> None:
    """Point ``root``'s firmware directories at Debian's (the build tree's ``qemu-bundle/usr``).

    Run from its build directory, QEMU looks for firmware under ``qemu-bundle/`` + each configured
    path; the dfsg source ships no BIOS, so the bundle gets links to Debian's firmware.
    """
    for path in FIRMWARE_PATH:
        link = root / path.removeprefix("/usr/")
        if link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)


def _install(
    bdir: Path,
    dest: Path,
    *,
    version: str,
    key: str,
    patches: Sequence[Patch],
    seconds: float,
    log_path: Path,
) -> BuildResult:
    tmp = dest.with_name(dest.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    (tmp / "bin").mkdir(parents=True)
    shutil.copy2(bdir / BINARY_NAME, tmp / "bin" / BINARY_NAME)
    (tmp / "patches").mkdir()
    for i, p in enumerate(patches, 1):
        (tmp / "patches" / f"{i:02d}-{p.name}.patch").write_bytes(p.text)
    props = [prop for p in patches for prop in p.properties]
    meta: dict[str, Any] = {
        "source_package": "qemu",
        "source_version": version,
        "key": key,
        "recipe_version": RECIPE_VERSION,
        "configure_args": [*CONFIGURE_ARGS, f"--with-pkgversion={_pkgversion(version)}"],
        "patches": [
            {"name": p.name, "origin": p.origin, "sha256": p.sha256, "properties": list(p.properties)}
            for p in patches
        ],
        "properties": props,
        "binary": f"bin/{BINARY_NAME}",
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
    }
    (tmp / "build.json").write_text(json.dumps(meta, indent=2) + "\n")
    shutil.copyfile(log_path, tmp / "build.log")
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    return BuildResult(
        binary=dest / "bin" / BINARY_NAME,
        build_dir=dest,
        source_version=version,
        key=key,
        patches=[p.name for p in patches],
        properties=props,
        cached=False,
        seconds=seconds,
        log=dest / "build.log",
        meta=meta,
    )


def build_qemu(
    selection: Sequence[str] = (),
    *,
    root: Path | None = None,
    lock: bool = True,
    progress: Progress | None = None,
) -> BuildResult:
    """Build (or fetch from the cache) QEMU with the selected patches.

    Args:
        selection: Patch names or patch file paths (see :func:`resolve_patches`); empty builds the
            unpatched Debian source with the same recipe (the fair "stock" baseline).
        root: Cache directory (default :func:`cache_root`).
        lock: Take ``/tmp/vfiobench-heavy.lock`` around the heavy part (False when the caller
            already holds it).
        progress: Called with one-line progress messages.

    Returns:
        The build; ``cached`` tells whether it came from the cache without building.

    Raises:
        QemuError: No deb-src and not root, missing build dependencies, a patch that does not
            apply, or a failing configure/compile (the log path is in the hint).
    """
    base = root or cache_root()
    patches = resolve_patches(selection)
    if not _has_qemu_source() and os.geteuid() == 0:
        ensure_deb_src(progress)
    version = source_version(base)
    key = build_key(version, patches)
    dest = build_dir_for(version, key, base)
    hit = _cached_result(dest)
    if hit is not None:
        return hit
    logs = base / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"build-{_safe(version)}-{key}.log"
    with heavy_lock(lock, progress):
        hit = _cached_result(dest)  # built by someone else while we waited
        if hit is not None:
            return hit
        start = time.monotonic()
        with open(log_path, "w") as log:
            log.write(
                f"vfiobench qemu build: source {version}, key {key}, patches {[p.name for p in patches]}\n"
            )
            if progress:
                progress(
                    f"building QEMU {version} with [{', '.join(p.name for p in patches)}]; log {log_path}"
                )
            ensure_build_deps(log, progress)
            pristine = fetch_source(version, log, base, progress)
            work = _work_tree(pristine, version, base, log, progress)
            written = sync_work_tree(pristine, work, patches)
            log.write(f"work tree files rewritten: {written}\n")
            bdir = _configure(work, version, log, progress)
            _ninja(bdir, [BINARY_NAME], log, progress, "compiling")
            seconds = time.monotonic() - start
            log.write(f"build finished in {seconds:.1f} s\n")
        result = _install(
            bdir, dest, version=version, key=key, patches=patches, seconds=seconds, log_path=log_path
        )
    if progress:
        progress(f"built in {seconds:.0f} s: {result.binary}")
    return result


# --------------------------------------------------------------------------------------------
# checks on a built binary
# --------------------------------------------------------------------------------------------


def device_properties(binary: Path | str, device: str = "vfio-pci") -> dict[str, str]:
    """Properties of ``device`` as the binary lists them (``-device DEVICE,help``).

    Returns:
        Property name → the rest of its help line (type and ``(default: ...)``).

    Raises:
        QemuError: The binary does not run or does not know the device.
    """
    try:
        r = subprocess.run(
            [str(binary), "-nodefaults", "-machine", "none", "-device", f"{device},help"],
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    except (FileNotFoundError, PermissionError) as e:
        raise QemuError(f"cannot run {binary}: {e.strerror}") from None
    if r.returncode != 0:
        raise QemuError(f"{binary} -device {device},help failed: {r.stderr.strip()[:200]}")
    props: dict[str, str] = {}
    for line in r.stdout.splitlines():
        m = re.match(r"^\s+([\w.-]+)=(.*)$", line)
        if m:
            props[m.group(1)] = m.group(2).strip()
    return props


def property_default(help_text: str) -> str | None:
    """``false`` from ``<bool> - on/off (default: false)``; None when no default is shown."""
    m = re.search(r"\(default: ([^)]*)\)", help_text)
    return m.group(1).strip().strip('"') if m else None


def run_qtests(
    selection: Sequence[str] = (),
    tests: Sequence[str] = QTESTS,
    *,
    root: Path | None = None,
    lock: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Build the variant, then run QEMU's own qtests ``tests`` against it (``meson test``).

    The work tree is synced to the selection first, so the qtests exercise exactly the patched
    source of this variant.

    Returns:
        The log file (also holds meson's per-test summary).

    Raises:
        QemuError: A qtest failed (the hint names the log).
    """
    base = root or cache_root()
    result = build_qemu(selection, root=base, lock=lock, progress=progress)
    version = result.source_version
    pristine = base / f"src-{_safe(version)}"
    work = base / f"work-{_safe(version)}"
    log_path = base / "logs" / f"qtest-{_safe(version)}-{result.key}.log"
    with heavy_lock(lock, progress), open(log_path, "w") as log:
        sync_work_tree(pristine, work, resolve_patches(selection))
        bdir = _configure(work, version, log, progress)
        # dfsg source has no firmware blobs: point the build tree's bundle at Debian's firmware
        _link_firmware(bdir / "qemu-bundle" / "usr")
        targets = [BINARY_NAME, *(f"tests/qtest/{t}" for t in tests)]
        _ninja(bdir, targets, log, progress, "building qtests")
        if progress:
            progress(f"running qtests: {', '.join(tests)}")
        for setup in ("slow", "quick"):
            names = [f"qtest-x86_64/{t}" for t in tests if (t in SLOW_QTESTS) == (setup == "slow")]
            if not names:
                continue
            meson = ["meson", "test", "--no-rebuild", "--setup", setup, "--print-errorlogs"]
            _run(
                [*meson, "--num-processes", "1", "--verbose", *names],
                log,
                cwd=bdir,
                what="run QEMU qtests",
                on_line=_qtest_progress(progress),
            )
    return log_path


def _qtest_progress(progress: Progress | None) -> Callable[[str], None]:
    """Forward meson's per-test result lines (``1/2 qemu:qtest... OK``) to ``progress``."""

    def on_line(line: str) -> None:
        if progress is not None and re.match(r"^\s*\d+/\d+ qemu:", line):
            progress(" ".join(line.split()))

    return on_line


def main_progress(message: str) -> None:
    """Default progress printer: one line on stderr."""
    print(f"[qemu build] {message}", file=sys.stderr, flush=True)
