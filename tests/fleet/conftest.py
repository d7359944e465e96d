"""Fixtures of the fleet tests: the probe tests' stand-in and BPF skip, a Prometheus server, exporters."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from fleet_helpers import ExporterProcess, PrometheusServer

_PROBES = Path(__file__).resolve().parent.parent / "probes"
sys.path.insert(0, str(_PROBES))  # probe_helpers, which the probe tests' conftest imports


def _probe_fixtures() -> object:
    """The probe tests' conftest as a module of its own name (a plain import would find ours)."""
    spec = importlib.util.spec_from_file_location("probe_tests_conftest", _PROBES / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# the stand-in (tests/probes/standin.c), its process fixture and the BPF skip: the probe tests' own
_probes = _probe_fixtures()
bpf_ready = _probes.bpf_ready  # type: ignore[attr-defined]
standin_bin = _probes.standin_bin  # type: ignore[attr-defined]
spawn = _probes.spawn  # type: ignore[attr-defined]


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[Callable[..., ExporterProcess]]:
    """Start ``vfiobench exporter`` processes; each is stopped (SIGTERM) at the end of the test."""
    started: list[ExporterProcess] = []

    def start(args: Sequence[str], *, prefix: Sequence[str] = ()) -> ExporterProcess:
        e = ExporterProcess(args, tmp_path / f"exporter{len(started)}.log", prefix=prefix)
        started.append(e)
        return e

    yield start
    for e in started:
        e.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[Sequence[str]], PrometheusServer]]:
    """Start a real Prometheus scraping the given targets; stopped at the end of the test."""
    started: list[PrometheusServer] = []

    def start(targets: Sequence[str]) -> PrometheusServer:
        d = tmp_path / f"prometheus{len(started)}"
        d.mkdir()
        p = PrometheusServer(d, targets)
        started.append(p)
        return p

    yield start
    for p in started:
        p.close()
