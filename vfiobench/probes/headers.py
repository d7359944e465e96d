"""Kernel headers for BCC: find them, or merge Debian's header packages into one tree.

BCC compiles every probe against kernel headers. It finds them by itself at
``/lib/modules/$(uname -r)/build`` (a Debian kernel with its ``linux-headers`` package: the lab VM,
a real host) or in ``/sys/kernel/kheaders.tar.xz`` (``CONFIG_IKHEADERS``). Some kernels have neither
(a Firecracker guest kernel, for one). Then any Debian header tree will do for tracepoints and
uprobes, but Debian splits it in two packages (``linux-headers-V-common`` and ``linux-headers-V-amd64``)
and neither compiles alone: :func:`prepare_headers` merges them into one tree of symlinks (``cp -as``)
under ``/var/cache/vfiobench/kernel-headers/<V>-amd64`` (``~/.cache/vfiobench/...`` when that is not
writable) and :func:`headers_env` points ``BCC_KERNEL_SOURCE`` at it.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vfiobench.errors import BccError

USR_SRC = Path("/usr/src")
SYSTEM_CACHE = Path("/var/cache/vfiobench/kernel-headers")
_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}


@dataclass(frozen=True)
class HeadersStatus:
    """Where BCC's kernel headers come from.

    Attributes:
        source: ``"modules"`` (``/lib/modules/R/build``), ``"kheaders"`` (``/sys/kernel/kheaders.tar.xz``),
            ``"env"`` (``BCC_KERNEL_SOURCE`` already set), ``"merged"`` (a prepared merged tree),
            ``"mergeable"`` (Debian trees present, not merged yet) or ``"none"``.
        path: the directory BCC will use (``None`` for ``kheaders``/``none``).
        detail: a human-readable sentence for ``vfiobench doctor``.
    """

    source: str
    path: Path | None
    detail: str

    @property
    def usable(self) -> bool:
        """True when BCC can compile now, or after :func:`prepare_headers`."""
        return self.source != "none"


def _debian_pairs(usr_src: Path | None = None) -> list[tuple[str, Path, Path]]:
    """(version, common, arch) for every complete Debian headers pair, newest first."""
    usr_src = usr_src or USR_SRC
    arch = _ARCH.get(platform.machine(), platform.machine())
    pairs = []
    for common in usr_src.glob("linux-headers-*-common"):
        version = common.name.removeprefix("linux-headers-").removesuffix("-common")
        arch_dir = usr_src / f"linux-headers-{version}-{arch}"
        if arch_dir.is_dir():
            pairs.append((f"{version}-{arch}", common, arch_dir))

    def key(item: tuple[str, Path, Path]) -> list[int]:
        return [int(x) for x in re.findall(r"\d+", item[0])]

    return sorted(pairs, key=key, reverse=True)


def cache_root() -> Path:
    """``/var/cache/vfiobench/kernel-headers`` if writable (root), else ``~/.cache/vfiobench/...``."""
    try:
        SYSTEM_CACHE.mkdir(parents=True, exist_ok=True)
        if os.access(SYSTEM_CACHE, os.W_OK):
            return SYSTEM_CACHE
    except OSError:
        pass
    return Path.home() / ".cache" / "vfiobench" / "kernel-headers"


def _merged_dir(name: str) -> Path:
    return cache_root() / name


def headers_status(release: str | None = None) -> HeadersStatus:
    """Find out where BCC's kernel headers would come from, without changing anything."""
    release = release or platform.release()
    build = Path("/lib/modules") / release / "build"
    if (build / "include").is_dir():
        return HeadersStatus("modules", build, f"{build} (the running kernel's headers)")
    env = os.environ.get("BCC_KERNEL_SOURCE")
    if env and (Path(env) / "include").is_dir():
        return HeadersStatus("env", Path(env), f"BCC_KERNEL_SOURCE={env}")
    if Path("/sys/kernel/kheaders.tar.xz").is_file():
        return HeadersStatus("kheaders", None, "/sys/kernel/kheaders.tar.xz (CONFIG_IKHEADERS)")
    pairs = _debian_pairs()
    if pairs:
        name, _common, _arch = pairs[0]
        merged = _merged_dir(name)
        if (merged / ".complete").is_file():
            return HeadersStatus("merged", merged, f"{merged} (merged Debian linux-headers-{name})")
        return HeadersStatus(
            "mergeable", merged, f"Debian linux-headers-{name} present, not merged yet into {merged}"
        )
    return HeadersStatus("none", None, f"no headers for kernel {release}")


def prepare_headers(release: str | None = None) -> HeadersStatus:
    """Make sure BCC has kernel headers; merge Debian's two trees into one when needed.

    Idempotent: a tree already merged (marked by ``.complete``) is reused. Building goes into a
    temporary sibling directory renamed into place, so an interrupted merge never looks complete.

    Raises:
        BccError: no usable headers at all (the message says which package to install).
    """
    status = headers_status(release)
    if status.source != "mergeable":
        if status.source == "none":
            raise BccError(
                f"BCC needs kernel headers and none were found ({status.detail})",
                "apt-get install linux-headers-amd64 (any Debian version works for tracepoints and "
                "uprobes), then vfiobench doctor --prepare-headers",
            )
        return status
    name, common, arch = _debian_pairs()[0]
    dest = _merged_dir(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        subprocess.run(["cp", "-as", f"{common}/.", f"{tmp}/"], check=True, capture_output=True)
        subprocess.run(
            ["cp", "-as", "--remove-destination", f"{arch}/.", f"{tmp}/"], check=True, capture_output=True
        )
        (tmp / ".complete").write_text(f"{common}\n{arch}\n", encoding="utf-8")
        shutil.rmtree(dest, ignore_errors=True)
        os.replace(tmp, dest)
    except subprocess.CalledProcessError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise BccError(
            f"could not merge {common} and {arch} into {dest}: {e.stderr.decode().strip()}",
            "check free space and permissions of the cache directory",
        ) from None
    return HeadersStatus("merged", dest, f"{dest} (merged Debian linux-headers-{name})")


def headers_env(release: str | None = None) -> dict[str, str]:
    """Environment variables BCC needs (``BCC_KERNEL_SOURCE`` for a merged tree), preparing it."""
    status = prepare_headers(release)
    if status.source == "merged" and status.path is not None:
        return {"BCC_KERNEL_SOURCE": str(status.path)}
    return {}
