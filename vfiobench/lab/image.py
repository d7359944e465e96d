"""Build the L1 guest image of the emulated lab, cached by its recipe.

The image is a Debian root (bookworm unless another release is asked for, see
:mod:`vfiobench.lab.releases`) made with ``debootstrap --variant=minbase``, packages installed
with ``apt-get`` inside a chroot (proc, sysfs and a fresh devpts mounted; no bind mount of the
host's ``/dev``), the lab init (:file:`init-lab.sh`) installed as ``/sbin/init-lab`` and the tree
packed into an ext4 file with ``mke2fs -d`` (no loop mount). The kernel and initramfs are copied
next to it for ``-kernel``/``-initrd``.

Everything lands in ``~/.cache/vfiobench/lab/<recipe-hash>/`` (``$VFIOBENCH_CACHE`` overrides
``~/.cache/vfiobench``)::

    l1.img        ext4 root (sparse)
    vmlinuz       the guest kernel
    initrd.img    its initramfs
    image.json    recipe, kernel release, versions of the packages that matter, build timings
    build.log     every command's output

The build goes to ``<hash>.building/`` and is renamed when complete, so a crashed build never looks
cached. A second build with the same recipe returns the cached image at once.

Inside L1 there is Debian's python3 with ``python3-bpfcc``, ``python3-numpy``, ``python3-pandas`` and
``python3-pyelftools`` (the probes read the QEMU binary's symbols with it).
Debian has no ``python3-pyarrow`` (bookworm nor trixie); the recipe unpacks PyPI's pyarrow wheel
(fetched with ``pip download``) into ``/usr/local/lib/python3.X/dist-packages`` so every vfiobench
module imports in L1 (the probes' tracer imports the run store). It is pinned to 21.0.0: later
pyarrow wheels refuse bookworm's numpy 1.24. The job inside L1 still writes its tables as
``.npz`` files into the 9p share and ``vfiobench lab run`` turns them into runs on the host (see
:mod:`vfiobench.lab.results`): the host's pandas/pyarrow write every run, whatever L1 has.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import importlib.resources
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from vfiobench.errors import LabError
from vfiobench.lab.releases import get_release

#: Bump when the build steps change in a way the recipe fields do not capture.
RECIPE_VERSION = 1

DEFAULT_PACKAGES: tuple[str, ...] = (
    "linux-image-amd64",
    "linux-headers-amd64",
    "qemu-system-x86",
    "python3",
    "python3-bpfcc",
    "python3-numpy",
    "python3-pandas",
    "python3-pyelftools",
    "pciutils",
    "kmod",
    "procps",
)

WHEEL_PLATFORMS: tuple[str, ...] = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")

#: Packages whose installed versions are recorded in ``image.json`` (and each lab run's labels).
VERSIONED_PACKAGES: tuple[str, ...] = (
    "linux-image-amd64",
    "linux-headers-amd64",
    "qemu-system-x86",
    "qemu-system-common",
    "seabios",
    "python3-bpfcc",
    "libbpfcc",
    "python3-numpy",
    "python3-pandas",
    "python3",
)

#: apt's ways of saying a package is not in the archive.
_APT_MISSING = re.compile(
    r"E: (?:Unable to locate package (\S+)|Package '?([^' ]+)'? has no installation candidate)"
)

#: Host tools the build needs.
BUILD_TOOLS: tuple[str, ...] = ("debootstrap", "mke2fs", "chroot", "mount", "umount")


#: Recipe fields added after the first images were cached, with their defaults: they enter the
#: hash only when set, so a bookworm image built before them stays cached.
_LATER_FIELDS: dict[str, Any] = {"release": "bookworm", "backports": "", "python": "3.11"}


@dataclass(frozen=True)
class Recipe:
    """What goes into the L1 image; its hash names the cache directory."""

    suite: str = "bookworm"
    mirror: str = "http://deb.debian.org/debian"
    security_mirror: str = "http://deb.debian.org/debian-security"
    packages: tuple[str, ...] = DEFAULT_PACKAGES
    wheels: tuple[str, ...] = ("pyarrow==21.0.0",)
    size: str = "3G"
    init_script: str = field(default="", repr=False)
    release: str = "bookworm"
    backports: str = ""
    python: str = "3.11"

    @classmethod
    def default(cls, release: str | None = None) -> Recipe:
        """The lab's recipe for ``release`` (None: the default release), with the packaged init script.

        Raises:
            LabError: unknown release.
        """
        r = get_release(release)
        return cls(
            suite=r.suite,
            packages=DEFAULT_PACKAGES + r.extra_packages,
            wheels=r.wheels,
            init_script=read_init_script(),
            release=r.name,
            backports=r.backports,
            python=r.python,
        )

    def sources_list(self) -> str:
        """The ``/etc/apt/sources.list`` of the image (same archive as the host, updates included)."""
        lines = [
            f"deb {self.mirror} {self.suite} main",
            f"deb {self.mirror} {self.suite}-updates main",
            f"deb {self.security_mirror} {self.suite}-security main",
        ]
        if self.backports:
            lines.append(f"deb {self.mirror} {self.backports} main")
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        """A short stable hash of the recipe (and of the build steps' version)."""
        data = dataclasses.asdict(self) | {"recipe_version": RECIPE_VERSION}
        for name, default in _LATER_FIELDS.items():
            if data[name] == default:
                del data[name]
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


def read_init_script() -> str:
    """The text of the packaged ``init-lab.sh``."""
    return importlib.resources.files("vfiobench.lab").joinpath("init-lab.sh").read_text(encoding="utf-8")


def cache_root() -> Path:
    """``$VFIOBENCH_CACHE/lab`` or ``~/.cache/vfiobench/lab``."""
    base = os.environ.get("VFIOBENCH_CACHE") or str(Path.home() / ".cache" / "vfiobench")
    return Path(base) / "lab"


@dataclass(frozen=True)
class Image:
    """A built L1 image: the files the launcher boots."""

    path: Path
    info: dict[str, Any]

    @property
    def disk(self) -> Path:
        """The ext4 root file."""
        return self.path / "l1.img"

    @property
    def kernel(self) -> Path:
        """The guest kernel (``-kernel``)."""
        return self.path / "vmlinuz"

    @property
    def initrd(self) -> Path:
        """The guest initramfs (``-initrd``)."""
        return self.path / "initrd.img"

    @property
    def release(self) -> str:
        """The Debian release the image was built from (images from before releases: bookworm)."""
        return str(self.info.get("recipe", {}).get("release", "bookworm"))

    @property
    def kernel_release(self) -> str:
        """``uname -r`` of the guest kernel."""
        return str(self.info.get("kernel_release", ""))

    @property
    def log(self) -> Path:
        """The build log."""
        return self.path / "build.log"


def cached_image(recipe: Recipe | None = None) -> Image | None:
    """The image for ``recipe`` if it is already built, else None."""
    recipe = recipe or Recipe.default()
    path = cache_root() / recipe.digest()
    info_file = path / "image.json"
    if not info_file.is_file():
        return None
    info = json.loads(info_file.read_text(encoding="utf-8"))
    img = Image(path, info)
    if not (img.disk.is_file() and img.kernel.is_file() and img.initrd.is_file()):
        return None
    return img


def check_build_host() -> None:
    """Raise :class:`LabError` when this machine cannot build the image (not root, tools missing)."""
    if os.geteuid() != 0:
        raise LabError("building the lab image needs root (debootstrap, chroot)", "run as root")
    missing = [t for t in BUILD_TOOLS if shutil.which(t) is None]
    if missing:
        raise LabError(
            f"missing host tools for the lab image: {', '.join(missing)}",
            "apt-get install debootstrap e2fsprogs (or run .ci/setup-system)",
        )


#: Progress callback: (step name, latest log line or "").
Progress = Callable[[str, str], None]


class _Builder:
    """The build steps; output of every command goes to ``log``."""

    def __init__(self, recipe: Recipe, work: Path, log: TextIO, progress: Progress) -> None:
        self.recipe = recipe
        self.work = work
        self.root = work / "root"
        self.log = log
        self.progress = progress
        self.step = ""
        self.timings: dict[str, float] = {}

    def say(self, text: str) -> None:
        self.log.write(f"=== {text}\n")
        self.log.flush()

    def run(
        self,
        cmd: Sequence[str],
        env: dict[str, str] | None = None,
        explain: Callable[[list[str]], LabError | None] | None = None,
    ) -> None:
        """Run a command, streaming its output into the log and the progress callback.

        Args:
            cmd: the command.
            env: extra environment.
            explain: given the output's last lines when the command fails, a more precise error
                than "step failed" (or None to keep that).
        """
        self.say("$ " + " ".join(cmd))
        full_env = os.environ | {"LC_ALL": "C", "DEBIAN_FRONTEND": "noninteractive"} | (env or {})
        with subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=full_env,
            text=True,
            errors="replace",
        ) as proc:
            assert proc.stdout is not None
            tail: list[str] = []
            for line in proc.stdout:
                self.log.write(line)
                tail = [*tail[-19:], line.rstrip()]
                self.progress(self.step, line.rstrip())
            rc = proc.wait()
        self.log.flush()
        if rc != 0:
            if explain is not None and (better := explain(tail)) is not None:
                raise better
            last = " | ".join(t for t in tail[-3:] if t)
            raise LabError(
                f"lab image build step {self.step!r} failed (exit {rc}): {last}",
                f"see {self.log.name}",
            )

    @contextlib.contextmanager
    def timed(self, step: str) -> Iterator[None]:
        self.step = step
        self.progress(step, "")
        t0 = time.monotonic()
        yield
        self.timings[step] = round(time.monotonic() - t0, 1)
        self.say(f"{step}: {self.timings[step]} s")

    @contextlib.contextmanager
    def chroot_mounts(self) -> Iterator[None]:
        """proc, sysfs and a private devpts inside the chroot, always unmounted afterwards."""
        targets = [
            (["-t", "proc", "proc"], self.root / "proc"),
            (["-t", "sysfs", "sysfs"], self.root / "sys"),
            (["-t", "devpts", "-o", "newinstance,ptmxmode=666", "devpts"], self.root / "dev" / "pts"),
        ]
        try:
            for args, target in targets:
                target.mkdir(parents=True, exist_ok=True)
                self.run(["mount", *args, str(target)])
            yield
        finally:
            unmount_below(self.root)

    def debootstrap(self) -> None:
        r = self.recipe
        self.run(["debootstrap", "--variant=minbase", r.suite, str(self.root), r.mirror])

    def install(self) -> None:
        r = self.recipe
        (self.root / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")
        (self.root / "usr/sbin/policy-rc.d").chmod(0o755)
        (self.root / "etc/apt/sources.list").write_text(r.sources_list())
        shutil.copyfile("/etc/resolv.conf", self.root / "etc/resolv.conf")
        with self.chroot_mounts():
            self.run(["chroot", str(self.root), "apt-get", "update"])
            self.run(
                [
                    "chroot",
                    str(self.root),
                    "apt-get",
                    "install",
                    "-y",
                    "--no-install-recommends",
                    *(["-t", r.backports] if r.backports else []),
                    *r.packages,
                ],
                explain=self._missing_package,
            )
            self.run(["chroot", str(self.root), "apt-get", "clean"])

    def _missing_package(self, tail: list[str]) -> LabError | None:
        """The one-line error naming the package, when a failed install says it is not in the archive."""
        name = apt_missing_package(tail)
        if name is None:
            return None
        r = self.recipe
        where = r.suite + (f" + {r.backports}" if r.backports else "")
        return LabError(
            f"package {name} is not in Debian {where} ({r.mirror}): "
            f"the {r.release} lab image cannot be built",
            f"check the mirror, or build another release (--release); log: {self.log.name}",
        )

    def wheels(self) -> None:
        """Download the recipe's wheels for L1's python and unpack them into its dist-packages."""
        if not self.recipe.wheels:
            return
        dest = self.work / "wheels"
        plat = [arg for p in WHEEL_PLATFORMS for arg in ("--platform", p)]
        abi = "cp" + self.recipe.python.replace(".", "")
        self.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                self.recipe.python,
                "--implementation",
                "cp",
                "--abi",
                abi,
                *plat,
                "-d",
                str(dest),
                *self.recipe.wheels,
            ]
        )
        site = self.root / "usr/local/lib" / f"python{self.recipe.python}" / "dist-packages"
        site.mkdir(parents=True, exist_ok=True)
        for whl in sorted(dest.glob("*.whl")):
            self.say(f"unpacking {whl.name} into {site}")
            with zipfile.ZipFile(whl) as z:
                z.extractall(site)
        shutil.rmtree(dest)

    def finish_root(self) -> dict[str, Any]:
        """Install the init, drop chroot leftovers, copy the kernel out; return facts for image.json."""
        init = self.root / "sbin" / "init-lab"
        init.write_text(self.recipe.init_script)
        init.chmod(0o755)
        (self.root / "usr/sbin/policy-rc.d").unlink(missing_ok=True)
        (self.root / "etc/resolv.conf").unlink(missing_ok=True)
        (self.root / "etc/hostname").write_text("l1\n")
        (self.root / "etc/fstab").write_text("/dev/vda / ext4 rw 0 1\n")
        for d in ("share", "sys/kernel/tracing"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        kernels = sorted((self.root / "boot").glob("vmlinuz-*"))
        if not kernels:
            raise LabError("the image has no kernel in /boot", f"see {self.log.name}")
        release = kernels[-1].name.removeprefix("vmlinuz-")
        initrd = self.root / "boot" / f"initrd.img-{release}"
        if not initrd.is_file():
            raise LabError(f"the image has no initramfs for {release}", f"see {self.log.name}")
        shutil.copyfile(kernels[-1], self.work / "vmlinuz")
        shutil.copyfile(initrd, self.work / "initrd.img")
        if not (self.root / "lib/modules" / release / "build").exists():
            raise LabError(f"the image has no kernel headers for {release}", "check the package list")
        return {"kernel_release": release, "packages": self._versions(), "wheels": list(self.recipe.wheels)}

    def _versions(self) -> dict[str, str]:
        out = subprocess.run(
            ["chroot", str(self.root), "dpkg-query", "-W", "-f", "${Package} ${Version}\\n"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        have = dict(line.split(" ", 1) for line in out.splitlines() if " " in line)
        return {p: have[p] for p in VERSIONED_PACKAGES if p in have}

    def mkfs(self) -> None:
        self.run(
            [
                "mke2fs",
                "-q",
                "-F",
                "-t",
                "ext4",
                "-L",
                "l1root",
                "-d",
                str(self.root),
                str(self.work / "l1.img"),
                self.recipe.size,
            ]
        )


def apt_missing_package(output: Sequence[str]) -> str | None:
    """The package apt says it cannot find in ``output`` lines (None: no such complaint)."""
    for line in output:
        m = _APT_MISSING.search(line)
        if m:
            return m.group(1) or m.group(2)
    return None


def mounts_below(path: Path) -> list[Path]:
    """Mount points at or below ``path`` (from ``/proc/self/mountinfo``), deepest first."""
    base = str(path.resolve())
    found: list[Path] = []
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        for line in f:
            mp = line.split()[4].replace("\\040", " ")
            if mp == base or mp.startswith(base + "/"):
                found.append(Path(mp))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_below(path: Path) -> None:
    """Unmount everything mounted at or below ``path`` (lazily if busy)."""
    for mp in mounts_below(path):
        if subprocess.run(["umount", str(mp)], capture_output=True, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(mp)], capture_output=True, check=False)


def safe_rmtree(path: Path) -> None:
    """Remove a build directory, refusing if anything is still mounted below it."""
    if not path.exists():
        return
    unmount_below(path)
    left = mounts_below(path)
    if left:
        raise LabError(f"{left[0]} is still mounted; not removing {path}", f"umount {left[0]} by hand")
    shutil.rmtree(path)


def build_image(
    recipe: Recipe | None = None,
    *,
    force: bool = False,
    keep_root: bool = False,
    progress: Progress | None = None,
) -> Image:
    """Build (or reuse) the L1 image for ``recipe``.

    Args:
        recipe: What to build; the lab's default recipe when None.
        force: Rebuild even when a cached image exists.
        keep_root: Keep the unpacked root tree (``root/``) next to the image for inspection.
        progress: Called with (step, latest output line) as the build goes.

    Returns:
        The built or cached image.

    Raises:
        LabError: not root, a host tool missing, or a build step failed (the message names the step
            and the log).
    """
    recipe = recipe or Recipe.default()
    if not force:
        img = cached_image(recipe)
        if img is not None:
            return img
    check_build_host()
    progress = progress or (lambda step, line: None)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / recipe.digest()
    work = root / f"{recipe.digest()}.building"
    with open(root / f"{recipe.digest()}.lock", "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)  # a concurrent build of the same recipe waits here
        if not force:
            img = cached_image(recipe)
            if img is not None:
                return img
        safe_rmtree(work)
        work.mkdir(parents=True)
        log_path = work / "build.log"
        t0 = time.monotonic()
        with open(log_path, "w", encoding="utf-8") as log:
            b = _Builder(recipe, work, log, progress)
            try:
                with b.timed("debootstrap"):
                    b.debootstrap()
                with b.timed("apt-get install"):
                    b.install()
                with b.timed("wheels"):
                    b.wheels()
                with b.timed("finish root"):
                    facts = b.finish_root()
                with b.timed("mke2fs"):
                    b.mkfs()
            except BaseException:
                unmount_below(work)
                raise
        if not keep_root:
            safe_rmtree(work / "root")
        info = {
            "recipe": dataclasses.asdict(recipe) | {"init_script": "sbin/init-lab (see recipe hash)"},
            "recipe_hash": recipe.digest(),
            "recipe_version": RECIPE_VERSION,
            "built_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "timings_s": b.timings | {"total": round(time.monotonic() - t0, 1)},
            **facts,
        }
        (work / "image.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        safe_rmtree(final)
        os.replace(work, final)
    img = cached_image(recipe)
    if img is None:
        raise LabError(f"the image in {final} is incomplete after the build", f"see {final}/build.log")
    return img
