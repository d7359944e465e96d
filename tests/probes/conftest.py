"""Fixtures of the probe tests: the compiled C stand-in, and skips for machines without root/BPF."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from probe_helpers import STANDIN_SRC, StandIn, bpf_unavailable_reason, compile_c


@pytest.fixture(scope="session")
def bpf_ready() -> None:
    reason = bpf_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def standin_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in, built like QEMU's functions (push prologue, tail call into commit)."""
    d = tmp_path_factory.mktemp("standin")
    return compile_c(STANDIN_SRC, d / "standin", "-fno-omit-frame-pointer")


@pytest.fixture(scope="session")
def standin_cet_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in with endbr64 at every function entry (-fcf-protection)."""
    d = tmp_path_factory.mktemp("standin-cet")
    return compile_c(STANDIN_SRC, d / "standin-cet", "-fno-omit-frame-pointer", "-fcf-protection=full")


@pytest.fixture
def spawn() -> Iterator[type[StandIn]]:
    """Start stand-ins; every one is reaped at the end of the test."""
    started: list[StandIn] = []

    class Tracked(StandIn):
        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]
            started.append(self)

    yield Tracked
    for s in started:
        s.finish()
