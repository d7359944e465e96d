"""Fixtures of the QEMU build tests: Debian's qemu source and the patched builds (cached).

Tests marked ``qemubuild`` need ``apt-get source qemu`` (Debian with a deb-src entry, or root so
vfiobench adds one) and QEMU's build dependencies (root installs them). Elsewhere they skip with
the reason. The first build takes ~6 minutes on 2 cores; later runs reuse ``~/.cache/vfiobench/qemu``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from vfiobench.errors import QemuError
from vfiobench.qemu import build as qb
from vfiobench.qemu import debsource as ds


def source_unavailable_reason() -> str | None:
    """Why Debian's qemu source cannot be fetched/built here, or None when it can."""
    for tool in ("apt-get", "apt-cache", "dpkg-source", "dpkg-query"):
        if shutil.which(tool) is None:
            return f"{tool} not found: building QEMU from Debian source needs a Debian system"
    if not Path("/etc/debian_version").is_file():
        return "not a Debian system (no /etc/debian_version)"
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


@pytest.fixture(scope="session")
def source_ready() -> str:
    """The Debian source version, or skip with the reason it cannot be used."""
    reason = source_unavailable_reason()
    if reason:
        pytest.skip(reason)
    return ds.source_version(qb.cache_root())


@pytest.fixture(scope="session")
def pristine_source(source_ready: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Debian's qemu source after ``dpkg-source -x`` (fetched once into the cache)."""
    log = tmp_path_factory.mktemp("fetch") / "fetch.log"
    with open(log, "w") as fh:
        return ds.fetch_source(source_ready, fh, qb.cache_root())


def _progress(message: str) -> None:
    print(f"[qemu build] {message}", flush=True)


@pytest.fixture(scope="session")
def all_patches_build(source_ready: str) -> qb.BuildResult:
    """QEMU with every shipped patch (built once, then a cache hit)."""
    return qb.build_qemu(list(qb.SERIES), progress=_progress)


@pytest.fixture(scope="session")
def stock_build(source_ready: str, all_patches_build: qb.BuildResult) -> qb.BuildResult:
    """The unpatched source, same recipe (an incremental rebuild after the patched one)."""
    return qb.build_qemu([], progress=_progress)
