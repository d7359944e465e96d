"""A Debian chroot per lab release to build QEMU in, so the binary runs in that release's L1.

:mod:`vfiobench.qemu.build` builds on this machine for the release the machine runs (bookworm
here) and in a chroot for the others (trixie, trixie-backports; :mod:`vfiobench.lab.releases`):
a QEMU linked against this machine's libraries would not run in an L1 with another release's.
The chroot is ``debootstrap --variant=minbase`` of the release's suite plus :data:`PACKAGES` from
that release (``-t trixie-backports`` for trixie-backports, as the lab's L1 installs them), with
``deb-src`` lines beside the lab image's ``deb`` lines so that ``apt-get source qemu`` in it
fetches that release's QEMU. Trixie's sources have no backports line: apt picks the highest
source version it knows, which would be backports' 11.1.

A release whose QEMU source may come from a suite its apt sources lack (trixie-backports: sid,
:attr:`~vfiobench.lab.releases.Release.qemu_sources`) gets that suite as a separate ``deb-src``
entry, ``/etc/apt/sources.list.d/vfiobench-qemu-sources.list``, and an apt pin at -1 for it in
``/etc/apt/preferences.d/vfiobench-qemu-sources``: a ``deb-src`` line brings source packages
only, and the pin keeps any binary package of that suite from ever being installed, so the
chroot's libraries stay the release's. The entry is written with ``check-valid-until=no``: the
project's mirror serves a sid ``Release`` file past its ``Valid-Until`` (an unrefreshed mirror),
which apt otherwise refuses; its signature is still checked, and so is every source file's hash
against it. These files are kept in step with the release (:meth:`BuildRoot.sync_source_entries`)
without remaking the root.

Layout in the QEMU cache (``~/.cache/vfiobench/qemu/``) for release ``R``::

    chroot-R/        the root, made once (chroot-R.json beside it: recipe hash, package versions,
                     timings; a changed recipe makes it again)
    R/               the release's downloads, source trees, work trees, builds and logs, laid out
                     as bookworm's directly under qemu/; the chroot sees it at /vfiobench
    chroot-R.log     what making and refreshing the root printed

Mounts follow the lab image's bookkeeping (:func:`vfiobench.lab.image.unmount_below`): proc,
sysfs, a private devpts, a tmpfs on ``/dev/shm`` (ivshmem-test's shared memory) and the bind
mount of ``R/``, held only while commands run (:meth:`BuildRoot.session`) and always unmounted
afterwards; a root is removed only with nothing mounted below it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from vfiobench.errors import QemuError
from vfiobench.lab.image import Recipe, apt_missing_package, safe_rmtree, unmount_below
from vfiobench.lab.releases import Release
from vfiobench.qemu.debsource import BUILD_DEPS, Progress, Shell, capture, run_logged

#: Packages of the chroot: the build dependencies, ``python3-venv`` (QEMU 8.1+ configures in a
#: venv) and the release's own ``qemu-system-x86`` (its firmware for the qtests, and Debian's binary
#: to compare the libraries ours needs with).
PACKAGES: tuple[str, ...] = (*BUILD_DEPS, "python3-venv", "qemu-system-x86")

#: Packages whose versions ``chroot-R.json`` records.
VERSIONED: tuple[str, ...] = ("gcc", "libglib2.0-dev", "meson", "python3", "qemu-system-x86", "seabios")

#: Where the release's cache directory appears inside the chroot.
MOUNT_POINT = "/vfiobench"

#: Bump when the steps that make a root change in a way the recipe does not capture.
ROOT_VERSION = 1

#: The chroot's extra source entry and pin (relative to its root; module doc).
SOURCES_FILE = "etc/apt/sources.list.d/vfiobench-qemu-sources.list"
PIN_FILE = "etc/apt/preferences.d/vfiobench-qemu-sources"

_DEPTH: dict[Path, int] = {}


def host_suite() -> str:
    """This machine's Debian suite (``VERSION_CODENAME`` of ``/etc/os-release``), or ``""``."""
    try:
        text = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        return ""
    m = re.search(r"^VERSION_CODENAME=\"?([^\"\n]*)\"?$", text, re.MULTILINE)
    return m.group(1) if m else ""


def builds_on_host(release: Release) -> bool:
    """Whether ``release``'s QEMU is built on this machine (it runs that suite, no backports)."""
    return not release.backports and release.suite == host_suite()


@dataclass(frozen=True)
class BuildRoot:
    """The chroot a release's QEMU is built and tested in.

    Attributes:
        release: The lab release (suite, backports).
        cache: The QEMU cache directory (``~/.cache/vfiobench/qemu``).
    """

    release: Release
    cache: Path

    @property
    def path(self) -> Path:
        """The chroot's root directory."""
        return self.cache / f"chroot-{self.release.name}"

    @property
    def tree(self) -> Path:
        """The release's cache directory (sources, work trees, builds), seen at /vfiobench."""
        return self.cache / self.release.name

    @property
    def info_path(self) -> Path:
        """``chroot-R.json``: what the root was made from and of."""
        return self.cache / f"chroot-{self.release.name}.json"

    @property
    def log_path(self) -> Path:
        """``chroot-R.log``."""
        return self.cache / f"chroot-{self.release.name}.log"

    def _recipe(self) -> Recipe:
        return Recipe(suite=self.release.suite, backports=self.release.backports, release=self.release.name)

    def sources_list(self) -> str:
        """The chroot's ``sources.list``: the lab image's ``deb`` lines, each with its ``deb-src``."""
        lines = self._recipe().sources_list().splitlines()
        return "\n".join(f"{line}\n{line.replace('deb ', 'deb-src ', 1)}" for line in lines) + "\n"

    def extra_source_suites(self) -> tuple[str, ...]:
        """The release's QEMU source suites that its ``sources.list`` lacks (``("sid",)``)."""
        have = {line.split()[2] for line in self._recipe().sources_list().splitlines() if line.strip()}
        return tuple(s for s in self.release.qemu_source_suites if s not in have)

    def source_entries(self) -> dict[str, str]:
        """The extra source entry and its pin (path relative to the root → content), or ``{}``."""
        extra = self.extra_source_suites()
        if not extra:
            return {}
        mirror = self._recipe().mirror
        head = f"# vfiobench: other suites the QEMU source of {self.release.name} may come from\n"
        entries = "".join(f"deb-src [check-valid-until=no] {mirror} {s} main\n" for s in extra)
        pins = "\n".join(
            f"# vfiobench: no binary package from {s}, only the QEMU source\n"
            f"Package: *\nPin: release n={s}\nPin-Priority: -1\n"
            for s in extra
        )
        return {SOURCES_FILE: head + entries, PIN_FILE: pins}

    def source_entries_current(self, root: Path | None = None) -> bool:
        """Whether the root's extra source entry and pin are what :meth:`source_entries` says."""
        base = root or self.path
        wanted = self.source_entries()
        for rel in (SOURCES_FILE, PIN_FILE):
            path = base / rel
            have = path.read_text(encoding="utf-8") if path.is_file() else None
            if have != wanted.get(rel):
                return False
        return True

    def _write_source_entries(self, root: Path) -> None:
        wanted = self.source_entries()
        for rel in (SOURCES_FILE, PIN_FILE):
            path = root / rel
            if rel in wanted:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(wanted[rel], encoding="utf-8")
            else:
                path.unlink(missing_ok=True)

    @property
    def archive(self) -> str:
        """What apt in the chroot fetches from (``Debian trixie + trixie-backports (http://...)``)."""
        r = self.release
        return (
            f"Debian {r.suite}" + (f" + {r.backports}" if r.backports else "") + f" ({self._recipe().mirror})"
        )

    def digest(self) -> str:
        """A short hash of what makes the root (suite, sources, packages, steps' version)."""
        data = {
            "sources": self.sources_list(),
            "packages": PACKAGES,
            "target": self.release.backports,
            "version": ROOT_VERSION,
        }
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def shell(self) -> Shell:
        """Commands in the chroot, seeing :attr:`tree` at :data:`MOUNT_POINT`."""
        t = ("-t", self.release.backports) if self.release.backports else ()
        return Shell(
            chroot=self.path, tree=self.tree, mount_point=MOUNT_POINT, apt_args=t, archive=self.archive
        )

    def info(self) -> dict[str, Any]:
        """``chroot-R.json`` (empty when the root was never made)."""
        try:
            return dict(json.loads(self.info_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def made(self) -> bool:
        """Whether the root exists and was made from the current recipe."""
        return self.info().get("digest") == self.digest() and (self.path / "usr/bin/apt-get").is_file()

    def ready(self) -> bool:
        """Whether the root is :meth:`made` and its extra source entries are current."""
        return self.made() and self.source_entries_current()

    def ensure(self, progress: Progress | None = None) -> None:
        """Make the root unless :meth:`ready` (root only; the caller holds the heavy-jobs lock).

        Raises:
            QemuError: Not root, debootstrap missing or failing (naming the suite), or a package
                that is not in the release (naming it).
        """
        if self.ready():
            return
        if self.made() and os.geteuid() == 0:
            self.sync_source_entries(progress)
            return
        if os.geteuid() != 0:
            raise QemuError(
                f"building QEMU for {self.release.name} needs its chroot, and making it needs root",
                "run as root once (debootstrap, chroot)",
            )
        if shutil.which("debootstrap") is None:
            raise QemuError(
                "debootstrap is not installed", "apt-get install debootstrap (or .ci/setup-system)"
            )
        self.cache.mkdir(parents=True, exist_ok=True)
        tmp = self.cache / f"chroot-{self.release.name}.building"
        with self._lock(), open(self.log_path, "a", encoding="utf-8") as log:
            safe_rmtree(tmp)
            timings: dict[str, float] = {}
            t0 = time.monotonic()
            if progress:
                progress(
                    f"making the {self.release.name} build root {self.path} (debootstrap; log {log.name})"
                )
            mirror = self._recipe().mirror
            try:
                run_logged(
                    ["debootstrap", "--variant=minbase", self.release.suite, str(tmp), mirror],
                    log,
                    what=f"debootstrap Debian {self.release.suite}",
                )
            except QemuError as e:
                raise QemuError(
                    f"cannot debootstrap Debian {self.release.suite} from {mirror}: {e.message}",
                    f"check the mirror; log: {log.name}",
                ) from None
            timings["debootstrap_s"] = round(time.monotonic() - t0, 1)
            (tmp / "etc/apt/sources.list").write_text(self.sources_list(), encoding="utf-8")
            self._write_source_entries(tmp)
            policy = tmp / "usr/sbin/policy-rc.d"
            policy.write_text("#!/bin/sh\nexit 101\n", encoding="utf-8")
            policy.chmod(0o755)
            t1 = time.monotonic()
            with _mounted(tmp, None):
                self._apt(tmp, PACKAGES, log, progress)
            timings["packages_s"] = round(time.monotonic() - t1, 1)
            safe_rmtree(self.path)
            self.info_path.unlink(missing_ok=True)
            tmp.rename(self.path)
            self._write_info(timings)

    def sync_source_entries(self, progress: Progress | None = None) -> None:
        """Write the extra source entry and pin as the release wants them, then ``apt-get update``.

        Root only, the root made; nothing happens when they are current already.
        """
        if self.source_entries_current():
            return
        with open(self.log_path, "a", encoding="utf-8") as log, self.session() as shell:
            suites = ", ".join(self.extra_source_suites()) or "none"
            if progress:
                progress(
                    f"{self.release.name} build root: extra QEMU source suites now {suites} (apt-get update)"
                )
            self._write_source_entries(self.path)
            shutil.copyfile("/etc/resolv.conf", self.path / "etc/resolv.conf")
            shell.run(
                ["apt-get", "update", "-q"], log, what=f"apt-get update in the {self.release.name} chroot"
            )
        self._write_info(self.info().get("timings", {}))

    def refresh(self, progress: Progress | None = None) -> None:
        """``apt-get update`` and upgrade :data:`PACKAGES` in the root (root only, the root made).

        Run before a build that misses the cache, so it fetches the release's current source.
        """
        with open(self.log_path, "a", encoding="utf-8") as log, self.session():
            if progress:
                progress(f"refreshing the {self.release.name} build root (apt-get update)")
            self._apt(self.path, PACKAGES, log, progress)
        self._write_info(self.info().get("timings", {}))

    def install(self, packages: Sequence[str], progress: Progress | None = None) -> None:
        """Install ``packages`` from the release into the root (``apt-get install -y``).

        Raises:
            QemuError: A package the release does not have (one line naming it) or another failure.
        """
        with open(self.log_path, "a", encoding="utf-8") as log, self.session():
            self._apt(self.path, packages, log, progress, update=False)

    def _apt(
        self,
        root: Path,
        packages: Sequence[str],
        log: IO[str],
        progress: Progress | None,
        update: bool = True,
    ) -> None:
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
        shell = Shell(chroot=root)
        if update:
            shell.run(
                ["apt-get", "update", "-q"], log, what=f"apt-get update in the {self.release.name} chroot"
            )
        if progress:
            progress(f"installing in the {self.release.name} build root: {' '.join(packages)}")
        lines: list[str] = []
        t = ["-t", self.release.backports] if self.release.backports else []
        try:
            shell.run(
                ["apt-get", "install", "-y", "-q", "--no-install-recommends", *t, *packages],
                log,
                what=f"apt-get install in the {self.release.name} chroot",
                on_line=lines.append,
            )
        except QemuError:
            name = apt_missing_package(lines[-40:])
            if name is None:
                raise
            raise QemuError(
                f"package {name} is not in {self.archive}: the {self.release.name} QEMU build root "
                "cannot be made",
                f"check the mirror, or build another release (--release); log: {log.name}",
            ) from None
        shell.run(["apt-get", "clean"], log, what="apt-get clean")

    def _write_info(self, timings: dict[str, float]) -> None:
        r = capture(["chroot", str(self.path), "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"])
        have = dict(line.split(" ", 1) for line in r.stdout.splitlines() if " " in line)
        info = {
            "release": self.release.name,
            "suite": self.release.suite,
            "backports": self.release.backports,
            "qemu_source_suites": list(self.release.qemu_source_suites),
            "extra_source_entries": self.source_entries().get(SOURCES_FILE, "").splitlines()[1:],
            "digest": self.digest(),
            "packages": {p: have[p] for p in VERSIONED if p in have},
            "timings": timings,
            "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        self.info_path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        """One process at a time mounts in or remakes this root (re-entrant within a process)."""
        if _DEPTH.get(self.path, 0):
            _DEPTH[self.path] += 1
            try:
                yield
            finally:
                _DEPTH[self.path] -= 1
            return
        self.cache.mkdir(parents=True, exist_ok=True)
        with open(self.cache / f"chroot-{self.release.name}.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            _DEPTH[self.path] = 1
            try:
                yield
            finally:
                _DEPTH[self.path] = 0
                fcntl.flock(fh, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def session(self) -> Iterator[Shell]:
        """The root with proc, sysfs, devpts, /dev/shm and the release's tree mounted (root only).

        Re-entrant: a nested session reuses the mounts. Everything is unmounted on the way out.

        Yields:
            :meth:`shell`.

        Raises:
            QemuError: Not root, or the root was never made.
        """
        if os.geteuid() != 0:
            raise QemuError(f"running commands in the {self.release.name} chroot needs root", "run as root")
        if not (self.path / "usr/bin/apt-get").is_file():
            raise QemuError(f"the {self.release.name} build root {self.path} does not exist", "build first")
        with self._lock():
            if _DEPTH[self.path] > 1:
                yield self.shell()
                return
            self.tree.mkdir(parents=True, exist_ok=True)
            with _mounted(self.path, self.tree):
                yield self.shell()


@contextlib.contextmanager
def _mounted(root: Path, tree: Path | None) -> Iterator[None]:
    """proc, sysfs, a private devpts and a tmpfs /dev/shm in ``root``, always unmounted afterwards.

    ``tree`` (unless None) is bind-mounted at :data:`MOUNT_POINT`.
    """
    targets: list[tuple[list[str], Path]] = [
        (["-t", "proc", "proc"], root / "proc"),
        (["-t", "sysfs", "sysfs"], root / "sys"),
        (["-t", "devpts", "-o", "newinstance,ptmxmode=666", "devpts"], root / "dev/pts"),
        (["-t", "tmpfs", "-o", "mode=1777", "tmpfs"], root / "dev/shm"),
    ]
    if tree is not None:
        targets.append((["--bind", str(tree)], root / MOUNT_POINT.lstrip("/")))
    try:
        for args, target in targets:
            target.mkdir(parents=True, exist_ok=True)
            r = capture(["mount", *args, str(target)])
            if r.returncode != 0:
                raise QemuError(f"cannot mount {target}: {r.stderr.strip()[:200]}")
        yield
    finally:
        unmount_below(root)
