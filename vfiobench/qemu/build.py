"""Build patched QEMU variants from each lab release's own Debian QEMU source, cached by patch content.

One cohesive engine (over 500 lines): the recipe, the cache key, the build steps and the heavy-jobs
lock describe one build and change together.

The variants compared by vfiobench are Debian's QEMU rebuilt with the project's patches
(``vfiobench/qemu/patches/<major>/*.patch``, package data, chosen by the source's QEMU major
version, see :mod:`.patchset`), each adding one ``vfio-pci`` property that defaults to today's
behaviour:

=====================  =====================  ==================================================
patch                  property               effect when ``=on``
=====================  =====================  ==================================================
``pba-always-on``      ``x-pba-always-on``    PBA emulation enabled once at MSI-X enable, never
                                              toggled (reads still return the emulated bits)
``pba-disable``        ``x-pba-disable``      PBA emulation never enabled
``msix-fd-cache``      ``x-msix-fd-cache``    SET_IRQS skipped when a vector's eventfd is unchanged
=====================  =====================  ==================================================

The patches share no lines, so any subset applies in any order; they are applied in
:data:`SERIES` order (the documented order) with ``patch --fuzz=0`` (:mod:`.patchset`).

Releases (``release=``, ``vfiobench qemu build --release R``; :mod:`vfiobench.lab.releases`): the
release this machine runs (bookworm, QEMU 7.2) builds here, in ``~/.cache/vfiobench/qemu/``
itself, with this machine's apt sources; the others (trixie, QEMU 10.0; trixie-backports, QEMU
11.1) build in a chroot of that release (:mod:`.buildroot`), made once, so the binary links the
libraries the release's L1 has, and their trees live in ``~/.cache/vfiobench/qemu/<release>/``.
Each step below then runs in the chroot. Which source a release builds is chosen by
:mod:`.sourcepick` and recorded (``qemu_source`` in ``build.json``): the release's own, except
trixie-backports, whose 11.1 source the project's mirror lists but does not serve, and which
builds the newest source sid lists and the mirror serves (10.2.2). A recipe:

1. ``apt-get source qemu`` (needs a ``deb-src`` line, added by :mod:`.debsource` when root)
   then ``dpkg-source -x`` (Debian's own patch series applied) into
   ``~/.cache/vfiobench/qemu/src-<version>/``, kept pristine;
2. one work tree per source version (``work-<version>/``); the selected patches are applied to
   copies of the pristine files they touch, and only files whose content differs are written, so
   ninja rebuilds only what a patch change affects (seconds instead of minutes);
3. ``configure --target-list=x86_64-softmmu`` with debug info, not stripped, no modules, only the
   features the lab needs (so the binary runs in the release's L1 with Debian's libraries and
   firmware; :func:`configure_args`: QEMU 9+ also needs ``--enable-pixman`` and
   ``--disable-install-blobs``);
4. the binary lands in ``build-<version>-<key>/bin/qemu-system-x86_64`` where ``key`` hashes the
   recipe, the source version and the selected patches' names and contents: a cache hit returns
   it without building; any change to a patch file gives a new key and an (incremental) rebuild.
   Bookworm's keys and paths are those of the builds before releases existed.

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
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from vfiobench.errors import QemuError
from vfiobench.lab.releases import get_release
from vfiobench.qemu.buildroot import BuildRoot, builds_on_host
from vfiobench.qemu.debsource import (
    HOST,
    Progress,
    Shell,
    ensure_build_deps,
    ensure_deb_src,
    fetch_source,
    has_qemu_source,
    run_logged,
    safe_version,
    source_version,
)
from vfiobench.qemu.patchset import DEFAULT_MAJOR, SERIES, Patch, qemu_major, resolve_patches, sync_work_tree
from vfiobench.qemu.sourcepick import RECORD_NAME, SourceChoice, choose_source

__all__ = ["SERIES", "BuildResult", "build_qemu", "device_properties", "run_qtests"]


#: Bump when the build recipe (configure flags, install layout) changes: every cache key changes.
RECIPE_VERSION = 2


#: The QEMU binary built (x86_64 system emulator only).
BINARY_NAME = "qemu-system-x86_64"


#: Debian's firmware search path, as in debian/rules (FIRMWAREPATH).
FIRMWARE_PATH: tuple[str, ...] = ("/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu")


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


#: configure arguments QEMU 9 and later need on top of :data:`CONFIGURE_ARGS` (7.2's stay as they
#: were, so bookworm's cache keys do too): pixman became an optional feature (off under
#: ``--without-default-features``), and without it the VGA devices and the VNC/SDL displays are not
#: built (7.2 always linked it); and the dfsg source has no firmware blobs, which newer meson refuses
#: to install (Debian's own rules pass ``--disable-install-blobs`` too).
CONFIGURE_ARGS_9: tuple[str, ...] = ("--enable-pixman", "--disable-install-blobs")


def configure_args(source_version: str) -> tuple[str, ...]:
    """The configure arguments for a Debian source version (its QEMU major version decides)."""
    return CONFIGURE_ARGS + (CONFIGURE_ARGS_9 if qemu_major(source_version) >= 9 else ())


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


_NINJA_RE = re.compile(r"^\[(\d+)/(\d+)\]")


def build_key(source_version: str, patches: Sequence[Patch]) -> str:
    """The cache key of a build: 16 hex digits of SHA-256.

    It covers the recipe (:data:`RECIPE_VERSION`, :func:`configure_args`), the Debian source
    version (which names the release: ``+deb12u18`` bookworm, ``+deb13u1`` trixie, ``~bpo13+1``
    trixie-backports), and each patch's name and exact content in application order: the same
    inputs give the same key, a one-byte change in any patch gives another.
    """
    h = hashlib.sha256()
    h.update(f"vfiobench-qemu-recipe-{RECIPE_VERSION}\0".encode())
    h.update("\0".join(configure_args(source_version)).encode() + b"\0\0")
    h.update(source_version.encode() + b"\0\0")
    for p in patches:
        h.update(p.name.encode() + b"\0" + p.sha256.encode() + b"\0")
    return h.hexdigest()[:16]


def cache_root() -> Path:
    """``$VFIOBENCH_CACHE/qemu`` (default ``~/.cache/vfiobench/qemu``)."""
    base = os.environ.get("VFIOBENCH_CACHE") or str(Path.home() / ".cache" / "vfiobench")
    return Path(base).expanduser() / "qemu"


@dataclass(frozen=True)
class Site:
    """Where a release's QEMU is built: this machine, or the release's chroot.

    Attributes:
        release: The lab release's name.
        base: The cache directory of its trees and builds (``qemu/`` itself on this machine's
            release, ``qemu/<release>/`` otherwise).
        root: The chroot, or None on this machine.
    """

    release: str
    base: Path
    root: BuildRoot | None = None

    @property
    def shell(self) -> Shell:
        """Where commands run (:data:`~vfiobench.qemu.debsource.HOST` on this machine)."""
        return self.root.shell() if self.root is not None else HOST

    def session(self) -> contextlib.AbstractContextManager[Shell]:
        """The chroot's mounts while commands run (nothing on this machine)."""
        return self.root.session() if self.root is not None else contextlib.nullcontext(HOST)

    def choice(self) -> SourceChoice | None:
        """The source the release builds (:func:`~vfiobench.qemu.sourcepick.choose_source`).

        None when apt cannot be asked (a chroot without root) or lists no qemu source in the
        release's suites (no deb-src entry yet): :meth:`version` then falls back on
        :func:`source_version`.
        """
        if self.root is not None and os.geteuid() != 0:
            return None
        suites = get_release(self.release).qemu_source_suites
        return choose_source(self.shell, self.release, suites, record=self.base / RECORD_NAME)

    def version(self, choice: SourceChoice | None = None) -> str:
        """The Debian source version (no epoch) the release builds: ``choice``'s, or asked now."""
        choice = choice or self.choice()
        return choice.version if choice is not None else source_version(self.base, self.shell)


def build_site(release: str | None = None, root: Path | None = None) -> Site:
    """The :class:`Site` of ``release`` (None: the lab's default, bookworm).

    Args:
        release: A lab release name (:data:`vfiobench.lab.releases.RELEASES`).
        root: The QEMU cache directory (default :func:`cache_root`).

    Raises:
        LabError: Unknown release (the message lists the known ones).
    """
    r = get_release(release)
    cache = root or cache_root()
    if builds_on_host(r):
        return Site(r.name, cache)
    broot = BuildRoot(r, cache)
    return Site(r.name, broot.tree, broot)


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
        meta: ``build.json``.
        release: The lab release whose source and libraries it was built from.
        qemu_source: The source built and why, in one line (:attr:`SourceChoice.note`; the
            version alone for builds made before the choice was recorded).
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
    release: str = "bookworm"
    qemu_source: str = ""

    @property
    def source_fallback(self) -> bool:
        """Whether the source is not from the release's own suite (a notice is due)."""
        return bool(self.meta.get("source_choice", {}).get("fallback"))


def build_dir_for(source_version: str, key: str, root: Path | None = None) -> Path:
    """``<cache>/build-<source-version>-<key>``."""
    return (root or cache_root()) / f"build-{safe_version(source_version)}-{key}"


def _cached_result(bdir: Path) -> BuildResult | None:
    meta_path = bdir / "build.json"
    binary = bdir / "bin" / BINARY_NAME
    if not (meta_path.is_file() and binary.is_file()):
        return None
    meta = json.loads(meta_path.read_text())
    meta.setdefault("release", "bookworm")  # builds from before releases
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
        release=str(meta["release"]),
        qemu_source=str(meta.get("qemu_source") or meta["source_version"]),
    )


def list_builds(root: Path | None = None) -> list[BuildResult]:
    """Every complete build in a cache directory (:attr:`Site.base`), oldest first."""
    base = root or cache_root()
    found = [r for d in sorted(base.glob("build-*")) if (r := _cached_result(d)) is not None]
    return sorted(found, key=lambda r: str(r.meta.get("built_at", "")))


def _ancestors() -> set[int]:
    """PIDs of this process and all its ancestors (from /proc)."""
    pids: set[int] = set()
    pid = os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: ppid (after "pid (comm) state")
    return pids


def lock_holder_is_ancestor(path: Path = HEAVY_LOCK) -> int | None:
    """The PID of an ancestor holding a flock on ``path`` (e.g. ``flock path vfiobench ...``).

    Read from ``/proc/locks``; waiters (``->`` lines) are ignored. Taking the lock again from a
    child would deadlock, so :func:`heavy_lock` skips it then.

    Returns:
        The holder's PID when it is this process or one of its ancestors, else None.
    """
    try:
        st = path.stat()
        table = Path("/proc/locks").read_text()
    except OSError:
        return None
    ancestors = _ancestors()
    for line in table.splitlines():
        fields = line.split()
        if len(fields) < 6 or "->" in fields or fields[1] != "FLOCK":
            continue
        pid, dev_ino = int(fields[4]), fields[5].split(":")
        if len(dev_ino) == 3 and int(dev_ino[2]) == st.st_ino and pid in ancestors:
            return pid
    return None


@contextlib.contextmanager
def heavy_lock(
    enabled: bool = True, progress: Progress | None = None, path: Path = HEAVY_LOCK
) -> Iterator[None]:
    """Hold the heavy-jobs lock (``/tmp/vfiobench-heavy.lock``, shared with flock(1)).

    Skipped when ``enabled`` is False or when an ancestor process already holds it (a command run
    under ``flock /tmp/vfiobench-heavy.lock ...``), which would otherwise deadlock.
    """
    if not enabled:
        yield
        return
    holder = lock_holder_is_ancestor(path)
    if holder is not None:
        if progress:
            progress(f"{path} is held by parent process {holder}; not taking it again")
        yield
        return
    with open(path, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(f"waiting for {path} (another heavy job runs)")
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _work_tree(pristine: Path, version: str, root: Path, log: IO[str], progress: Progress | None) -> Path:
    work = root / f"work-{safe_version(version)}"
    if (work / "configure").is_file():
        return work
    if progress:
        progress(f"copying the source to the work tree {work}")
    tmp = root / f".work-{safe_version(version)}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    run_logged(["cp", "-a", "--reflink=auto", str(pristine), str(tmp)], log, what="copy the source tree")
    tmp.rename(work)
    return work


def _pkgversion(version: str) -> str:
    return f"Debian {version}, vfiobench"


def _configure(work: Path, version: str, log: IO[str], progress: Progress | None, site: Site) -> Path:
    bdir = work / "build"
    args = [*configure_args(version), f"--with-pkgversion={_pkgversion(version)}"]
    # a chroot's recipe is part of the stamp: a remade root reconfigures (this machine's stays as it was)
    stamp_value: list[str] = args + ([f"#root {site.root.digest()}"] if site.root is not None else [])
    stamp = bdir / ".vfiobench-configure.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == stamp_value and (bdir / "build.ninja").is_file():
        return bdir
    if progress:
        progress("configuring (x86_64-softmmu, debug info, not stripped)")
    shutil.rmtree(bdir, ignore_errors=True)
    bdir.mkdir()
    site.shell.run(["../configure", *args], log, cwd=bdir, what="configure QEMU")
    stamp.write_text(json.dumps(stamp_value))
    return bdir


def _ninja(
    bdir: Path, targets: Sequence[str], log: IO[str], progress: Progress | None, what: str, shell: Shell
) -> None:
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
    shell.run(["ninja", "-j", jobs, *targets], log, cwd=bdir, what=what, on_line=on_line)


def _link_firmware(root: Path, system: Path = Path("/")) -> None:
    """Point ``root``'s firmware directories at Debian's (the build tree's ``qemu-bundle/usr``).

    Run from its build directory, QEMU looks for firmware under ``qemu-bundle/`` + each configured
    path; the dfsg source ships no BIOS, so the bundle gets links to Debian's firmware: a link to
    the whole directory, or (where the build put a directory of its own there, as QEMU 10 does
    with its keymaps in ``share/qemu``) one link per firmware file it lacks.

    Args:
        root: The bundle's ``usr`` directory.
        system: Where the release's ``/`` is seen from here (its chroot for another release); the
            links are absolute, so they resolve in the system the qtests run in.
    """
    for path in FIRMWARE_PATH:
        link = root / path.removeprefix("/usr/")
        if link.is_dir() and not link.is_symlink():
            debian = system / path.lstrip("/")
            for f in sorted(debian.iterdir()) if debian.is_dir() else []:
                if not ((link / f.name).exists() or (link / f.name).is_symlink()):
                    (link / f.name).symlink_to(f"{path}/{f.name}")
            continue
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
    site: Site,
    choice: SourceChoice | None,
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
        "qemu_source": choice.note if choice is not None else version,
        **({"source_choice": choice.as_dict()} if choice is not None else {}),
        "release": site.release,
        "built_in": "chroot" if site.root is not None else "host",
        "key": key,
        "recipe_version": RECIPE_VERSION,
        "configure_args": [*configure_args(version), f"--with-pkgversion={_pkgversion(version)}"],
        "patches": [
            {"name": p.name, "origin": p.origin, "sha256": p.sha256, "properties": list(p.properties)}
            for p in patches
        ],
        "properties": props,
        "binary": f"bin/{BINARY_NAME}",
        "built_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "build_seconds": round(seconds, 1),
    }
    if site.root is not None:
        meta["build_root"] = {k: v for k, v in site.root.info().items() if k != "updated_utc"}
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
        release=site.release,
        qemu_source=str(meta["qemu_source"]),
    )


def _known_version(site: Site) -> str | None:
    """The source version a cache lookup can use before any heavy step.

    None when the release's chroot is not made yet, or its extra source entries are not in place
    (so nothing of it is built either).
    """
    if site.root is not None and not site.root.ready():
        return None
    return site.version()


#: A release's chroot runs ``apt-get update`` before a build that misses the cache when its lists
#: are older than this (so builds fetch the release's current source without a network round trip
#: on every incremental rebuild).
REFRESH_AFTER_S = 24 * 3600.0


def _prepare_root(root: BuildRoot, progress: Progress | None) -> None:
    """Make the chroot, or refresh it when its package lists are stale (caller holds the lock)."""
    if not root.ready():
        root.ensure(progress)
        return
    stamp = root.info().get("updated_utc", "")
    try:
        age = time.time() - dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        age = REFRESH_AFTER_S
    if age >= REFRESH_AFTER_S:
        root.refresh(progress)


def build_qemu(
    selection: Sequence[str] = (),
    *,
    release: str | None = None,
    root: Path | None = None,
    lock: bool = True,
    progress: Progress | None = None,
) -> BuildResult:
    """Build (or fetch from the cache) QEMU with the selected patches.

    Args:
        selection: Patch names or patch file paths (see :func:`resolve_patches`); empty builds the
            unpatched Debian source with the same recipe (the fair "stock" baseline).
        release: The lab release whose Debian QEMU source is built (None: bookworm), on this
            machine or in the release's chroot (module doc).
        root: QEMU cache directory (default :func:`cache_root`).
        lock: Take ``/tmp/vfiobench-heavy.lock`` around the heavy part (False when the caller
            already holds it).
        progress: Called with one-line progress messages.

    Returns:
        The build; ``cached`` tells whether it came from the cache without building.

    Raises:
        QemuError: No deb-src and not root, missing build dependencies, a package or source the
            release's archive lacks (named), a patch that does not apply, or a failing
            configure/compile (the log path is in the hint).
        LabError: Unknown release.
    """
    site = build_site(release, root)
    if site.root is None and not has_qemu_source() and os.geteuid() == 0:
        ensure_deb_src(progress)
    known = _known_version(site)
    patches = resolve_patches(selection, known or DEFAULT_MAJOR)  # unknown names fail here
    if known is not None:
        hit = _cached_result(build_dir_for(known, build_key(known, patches), site.base))
        if hit is not None:
            return hit
    with heavy_lock(lock, progress):
        if site.root is not None:
            _prepare_root(site.root, progress)
        choice = site.choice()
        version = site.version(choice)
        patches = resolve_patches(selection, version)
        key = build_key(version, patches)
        dest = build_dir_for(version, key, site.base)
        hit = _cached_result(dest)  # built by someone else while we waited
        if hit is not None:
            return hit
        logs = site.base / "logs"
        try:
            logs.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise QemuError(
                f"cannot create the QEMU build cache {site.base}: {e.strerror}",
                "set VFIOBENCH_CACHE to a writable directory",
            ) from None
        log_path = logs / f"build-{safe_version(version)}-{key}.log"
        start = time.monotonic()
        with site.session() as shell, open(log_path, "w") as log:
            note = choice.note if choice is not None else version
            log.write(
                f"vfiobench qemu build: {site.release}, source {note}, key {key}, "
                f"patches {[p.name for p in patches]}\n"
            )
            if progress:
                names = ", ".join(p.name for p in patches)
                progress(f"building {site.release}'s QEMU {version} with [{names}]; log {log_path}")
            if site.root is None:
                ensure_build_deps(log, progress)
            request = f"qemu={choice.chosen.version}" if choice is not None else None
            pristine = fetch_source(version, log, site.base, progress, shell, request=request)
            work = _work_tree(pristine, version, site.base, log, progress)
            written = sync_work_tree(pristine, work, patches)
            log.write(f"work tree files rewritten: {written}\n")
            bdir = _configure(work, version, log, progress, site)
            _ninja(bdir, [BINARY_NAME], log, progress, "compiling", shell)
            seconds = time.monotonic() - start
            log.write(f"build finished in {seconds:.1f} s\n")
        result = _install(
            bdir,
            dest,
            version=version,
            key=key,
            patches=patches,
            seconds=seconds,
            log_path=log_path,
            site=site,
            choice=choice,
        )
    if progress:
        progress(f"built in {seconds:.0f} s: {result.binary}")
    return result


def stale_entries(keep_version: str, root: Path | None = None) -> list[Path]:
    """Cache entries that belong to other Debian source versions than ``keep_version``.

    Those are source trees (``src-*``), work trees (``work-*``, ``.work-*.tmp``), builds
    (``build-<version>-<key>``) and their logs. Every build of ``keep_version`` stays, whatever its
    patches; so do the downloads (the upstream tarball is shared between Debian revisions).
    """
    base = root or cache_root()
    if not base.is_dir():
        return []
    v = safe_version(keep_version)
    own = re.compile(rf"(?:src-|work-|\.work-){re.escape(v)}(?:\.tmp)?|build-{re.escape(v)}-[0-9a-f]{{16}}")
    stale = [
        p
        for p in sorted(base.iterdir())
        if p.name.startswith(("src-", "work-", ".work-", "build-")) and not own.fullmatch(p.name)
    ]
    logs = base / "logs"
    if logs.is_dir():
        stale += [
            p for p in sorted(logs.glob("build-*.log")) if not own.fullmatch(p.name.removesuffix(".log"))
        ]
    return stale


def prune_cache(
    keep_version: str, root: Path | None = None, *, dry_run: bool = False
) -> list[tuple[Path, int]]:
    """Remove :func:`stale_entries` (unless ``dry_run``); returns each entry with its size in bytes."""
    out = []
    for path in stale_entries(keep_version, root):
        files = (
            [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file() and not f.is_symlink()]
        )
        size = sum(f.stat().st_size for f in files)
        if not dry_run:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        out.append((path, size))
    return out


def run_binary(
    binary: Path | str,
    args: Sequence[str],
    *,
    release: str | None = None,
    root: Path | None = None,
    timeout: float = 60,
    input_text: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run a QEMU binary where ``release``'s libraries are: here, or in the release's chroot.

    Args:
        binary: The binary: on this machine's release any path; otherwise a build of the release
            (below its cache directory) or a path inside its chroot (its Debian binary).
        args: Arguments.
        release: The lab release (None: bookworm).
        root: QEMU cache directory (default :func:`cache_root`).
        timeout: Seconds before the binary is killed.
        input_text: Standard input (none when None).

    Raises:
        QemuError: The binary cannot be started.
    """
    site = build_site(release, root)
    with site.session() as shell:
        cmd = shell.argv([shell.path(Path(binary)), *args])
        try:
            return subprocess.run(
                cmd,
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input_text,
                stdin=subprocess.DEVNULL if input_text is None else None,
            )
        except (FileNotFoundError, PermissionError) as e:
            raise QemuError(f"cannot run {binary}: {e.strerror}") from None


def device_properties(
    binary: Path | str, device: str = "vfio-pci", *, release: str | None = None
) -> dict[str, str]:
    """Properties of ``device`` as the binary lists them (``-device DEVICE,help``).

    Args:
        binary: The QEMU binary.
        device: The device whose properties are listed.
        release: The lab release the binary belongs to (:func:`run_binary`).

    Returns:
        Property name → the rest of its help line (type and ``(default: ...)``).

    Raises:
        QemuError: The binary does not run or does not know the device.
    """
    r = run_binary(binary, ["-nodefaults", "-machine", "none", "-device", f"{device},help"], release=release)
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
    release: str | None = None,
    root: Path | None = None,
    lock: bool = True,
    progress: Progress | None = None,
) -> Path:
    """Build the variant, then run QEMU's own qtests ``tests`` against it (``meson test``).

    The work tree is synced to the selection first, so the qtests exercise exactly the patched
    source of this variant; for a release built in a chroot they run there too.

    Returns:
        The log file (also holds meson's per-test summary).

    Raises:
        QemuError: A qtest failed (the hint names the log).
    """
    site = build_site(release, root)
    result = build_qemu(selection, release=release, root=root, lock=lock, progress=progress)
    version = result.source_version
    pristine = site.base / f"src-{safe_version(version)}"
    work = site.base / f"work-{safe_version(version)}"
    log_path = site.base / "logs" / f"qtest-{safe_version(version)}-{result.key}.log"
    with heavy_lock(lock, progress), site.session() as shell, open(log_path, "w") as log:
        sync_work_tree(pristine, work, resolve_patches(selection, version))
        bdir = _configure(work, version, log, progress, site)
        # dfsg source has no firmware blobs: point the build tree's bundle at Debian's firmware
        _link_firmware(bdir / "qemu-bundle" / "usr", site.root.path if site.root is not None else Path("/"))
        targets = [BINARY_NAME, *(f"tests/qtest/{t}" for t in tests)]
        _ninja(bdir, targets, log, progress, "building qtests", shell)
        if progress:
            progress(f"running qtests: {', '.join(tests)}")
        # QEMU 8.1+ configures with its own venv's meson; the test runner must be the same one
        meson = "pyvenv/bin/meson" if (bdir / "pyvenv" / "bin" / "meson").exists() else "meson"
        for setup in ("slow", "quick"):
            names = [f"qtest-x86_64/{t}" for t in tests if (t in SLOW_QTESTS) == (setup == "slow")]
            if not names:
                continue
            cmd = [meson, "test", "--no-rebuild", "--setup", setup, "--print-errorlogs"]
            shell.run(
                [*cmd, "--num-processes", "1", "--verbose", *names],
                log,
                cwd=bdir,
                what="run QEMU qtests",
                on_line=_qtest_progress(progress),
            )
    return log_path


def _qtest_progress(progress: Progress | None) -> Callable[[str], None]:
    """Forward meson's per-test result lines (``1/2 qemu:qtest... OK``) to ``progress``."""

    def on_line(line: str) -> None:
        if progress is not None and re.match(r"^\s*\d+/\d+ qemu:", line) and "RUNNING" not in line:
            progress(" ".join(line.split()))

    return on_line


def main_progress(message: str) -> None:
    """Default progress printer: one line on stderr."""
    print(f"[qemu build] {message}", file=sys.stderr, flush=True)
