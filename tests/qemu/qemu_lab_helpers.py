"""Helpers of the patched-QEMU lab tests (a uniquely named module, like tests/probes/probe_helpers.py)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from vfiobench.qemu import build as qb
from vfiobench.store import Run, load_run


def boot_cells(cells: Sequence[Any], release: str, out: Path) -> dict[str, Run]:
    """Run lab ``cells`` in one boot of ``release``'s L1 (under the heavy lock); run name -> run.

    Skips with the reason when the lab cannot run on this machine.
    """
    from vfiobench.lab.image import Recipe, build_image
    from vfiobench.lab.runner import run_lab, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(f"lab cannot run here: {reason}")
    lines: list[str] = []
    with qb.heavy_lock(True, lines.append):
        lab = run_lab(cells, out, image=build_image(Recipe.default(release)), show=lines.append)
    print("\n".join(lines))
    return {p.name: load_run(p) for p in lab.runs}


def measure_counts(run: Run) -> tuple[dict[str, int], dict[str, int], dict[str, int]]:
    """(probe counts, trace counts, workload counters) of a lab run's measure phase."""
    probes = json.loads(run.meta.labels["probe_counts_measure"])
    trace = json.loads(run.meta.labels["trace_counts_measure"])
    counters = {k: int(v) for k, v in run.meta.workload.params["counters"].items()}
    return probes, trace, counters
