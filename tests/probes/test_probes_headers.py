"""Merging Debian's two kernel-header trees for BCC (on a fake /usr/src: no root needed)."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from vfiobench.errors import BccError
from vfiobench.probes import headers


@pytest.fixture
def fake_src(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    src = tmp_path / "usr-src"
    common = src / "linux-headers-6.1.0-9-common"
    archdir = src / f"linux-headers-6.1.0-9-{arch}"
    (common / "include" / "linux").mkdir(parents=True)
    (common / "include" / "linux" / "types.h").write_text("common types\n")
    (common / "Makefile").write_text("common makefile\n")
    (archdir / "include" / "generated").mkdir(parents=True)
    (archdir / "include" / "generated" / "autoconf.h").write_text("arch autoconf\n")
    (archdir / "Makefile").write_text("arch makefile\n")
    (src / "linux-headers-5.10.0-1-common").mkdir()  # an incomplete older pair is ignored
    monkeypatch.setattr(headers, "USR_SRC", src)
    monkeypatch.setattr(headers, "SYSTEM_CACHE", tmp_path / "cache")
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    return src


def test_merge_prefers_the_arch_tree_and_is_idempotent(fake_src: Path) -> None:
    release = "0.0.0-no-such-release"
    status = headers.headers_status(release)
    assert status.source == "mergeable" and status.path is not None
    merged = headers.prepare_headers(release)
    assert merged.source == "merged" and merged.path == status.path
    root = merged.path
    assert root is not None
    assert (root / "include" / "linux" / "types.h").read_text() == "common types\n"
    assert (root / "include" / "generated" / "autoconf.h").read_text() == "arch autoconf\n"
    assert (root / "Makefile").read_text() == "arch makefile\n"  # the arch tree wins
    assert (root / "Makefile").is_symlink() and (root / ".complete").is_file()
    again = headers.prepare_headers(release)
    assert again.path == root and headers.headers_status(release).source == "merged"
    assert headers.headers_env(release) == {"BCC_KERNEL_SOURCE": str(root)}
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no temp dirs left


def test_no_headers_at_all_names_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(headers, "USR_SRC", tmp_path)
    monkeypatch.delenv("BCC_KERNEL_SOURCE", raising=False)
    if Path("/sys/kernel/kheaders.tar.xz").exists():
        pytest.skip("this kernel ships its headers (CONFIG_IKHEADERS)")
    with pytest.raises(BccError, match="linux-headers-amd64"):
        headers.prepare_headers("0.0.0-no-such-release")


def test_env_override_is_respected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "include").mkdir()
    monkeypatch.setenv("BCC_KERNEL_SOURCE", str(tmp_path))
    status = headers.headers_status("0.0.0-no-such-release")
    assert status.source == "env" and status.path == tmp_path
    assert os.environ["BCC_KERNEL_SOURCE"] == str(tmp_path)
