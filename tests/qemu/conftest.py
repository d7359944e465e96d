"""Fixtures of the QEMU build tests: each lab release's Debian qemu source and its patched builds (cached).

Tests marked ``qemubuild`` need ``apt-get source qemu`` of the release: bookworm on this machine
(Debian with a deb-src entry, or root so vfiobench adds one, and QEMU's build dependencies), the
other releases in their chroot (root: debootstrap and chroot). Elsewhere they skip with the reason.

The build fixtures are parametrized by release (``[bookworm]``, ``[trixie]``,
``[trixie-backports]`` in the test ids; ``-k trixie`` selects both trixie ones). Each builds the
source :mod:`vfiobench.qemu.sourcepick` chooses for the release: trixie-backports' own QEMU 11.1
source is listed but not served by the project's mirror (404), so trixie-backports builds sid's
10.2.2, the newest source the mirror serves (test_qemu_buildroot.py checks that choice against
the mirror itself, and the one-line error when nothing is served).

A cold build takes minutes (bookworm ~4, trixie more, plus ~3 to make its chroot once); later
runs reuse ``~/.cache/vfiobench/qemu``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vfiobench.errors import QemuError
from vfiobench.lab.releases import RELEASES
from vfiobench.qemu import build as qb
from vfiobench.qemu import debsource as ds


def source_unavailable_reason(release: str = "bookworm") -> str | None:
    """Why ``release``'s Debian qemu source cannot be fetched/built here, or None when it can."""
    for tool in ("apt-get", "apt-cache", "dpkg-source", "dpkg-query"):
        if shutil.which(tool) is None:
            return f"{tool} not found: building QEMU from Debian source needs a Debian system"
    if not Path("/etc/debian_version").is_file():
        return "not a Debian system (no /etc/debian_version)"
    site = qb.build_site(release)
    if site.root is not None:
        if os.geteuid() != 0:
            return f"{release}'s QEMU builds in a chroot, which needs root"
        if shutil.which("debootstrap") is None:
            return f"debootstrap is not installed (needed for {release}'s build chroot)"
        return None
    try:
        if os.geteuid() == 0:
            ds.ensure_deb_src()
        ds.source_version(qb.cache_root())
    except QemuError as e:
        return f"apt-get source qemu cannot work here: {e}"
    root = qb.cache_root()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        return f"the QEMU build cache {root} is not writable ({e.strerror}); set VFIOBENCH_CACHE"
    missing = ds.missing_build_deps()
    if missing and os.geteuid() != 0:
        return f"QEMU build dependencies missing and not root: {' '.join(missing)}"
    return None


def _progress(message: str) -> None:
    print(f"[qemu build] {message}", flush=True)


@pytest.fixture(scope="session", params=list(RELEASES))
def release(request: pytest.FixtureRequest) -> str:
    """A lab release (every test using it runs once per release)."""
    return str(request.param)


@pytest.fixture(scope="session")
def source_ready(release: str) -> str:
    """The release's Debian source version, or skip with the reason it cannot be used."""
    reason = source_unavailable_reason(release)
    if reason:
        pytest.skip(reason)
    site = qb.build_site(release)
    if site.root is not None:
        with qb.heavy_lock(progress=_progress):
            site.root.ensure(_progress)
    return site.version()


@pytest.fixture(scope="session")
def pristine_source(release: str, source_ready: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The release's Debian qemu source after ``dpkg-source -x`` (fetched once into the cache)."""
    site = qb.build_site(release)
    choice = site.choice()
    request = f"qemu={choice.chosen.version}" if choice is not None else None
    log = tmp_path_factory.mktemp("fetch") / "fetch.log"
    with site.session() as shell, open(log, "w") as fh:
        return ds.fetch_source(source_ready, fh, site.base, _progress, shell, request=request)


@pytest.fixture(scope="session")
def all_patches_build(release: str, source_ready: str) -> qb.BuildResult:
    """The release's QEMU with every shipped patch (built once, then a cache hit)."""
    return qb.build_qemu(list(qb.SERIES), release=release, progress=_progress)


@pytest.fixture(scope="session")
def stock_build(release: str, all_patches_build: qb.BuildResult) -> qb.BuildResult:
    """The unpatched source, same recipe (an incremental rebuild after the patched one)."""
    return qb.build_qemu([], release=release, progress=_progress)


@pytest.fixture(scope="session")
def auto_build(release: str, source_ready: str) -> qb.BuildResult:
    """The release's QEMU with the auto-detection series (``msix-mask-auto``), built once."""
    from vfiobench.qemu.patchset import SERIES_NAME

    return qb.build_qemu([SERIES_NAME], release=release, progress=_progress)
