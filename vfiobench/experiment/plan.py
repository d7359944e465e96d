"""The order runs execute in: repetitions interleaved across variants so drift cancels.

For repetition r (warm-ups first, labelled and later excluded), every variant runs every
(workload, accel) cell once, probed and then probe-free: ``A B C A B C ...`` rather than
``A A A B B B ...``, so a slow drift of the machine (thermal, background load, page cache) spreads
evenly over the variants instead of biasing the last one. Run ids are deterministic, which is what
lets an interrupted experiment resume without redoing or duplicating runs.

A run's id and its ``index`` (``labels.order``) depend only on (variant, workload, accel,
repetition, kind): its place in the full plan of ``max`` rounds. :func:`make_plan` is the part every
cell runs (warm-ups and ``min`` rounds; all of it for a fixed count); an adaptive experiment adds
each further round with :func:`round_runs`, for the cells whose stopping rule is not met yet
(:mod:`vfiobench.experiment.stopping`). So the same decisions give the same runs, with the same
ids, however often the experiment is interrupted and resumed.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from vfiobench.experiment.spec import ExperimentSpec, Variant, Workload
from vfiobench.store import Kind

#: A cell of an experiment: ``(workload name, accel, release)`` (release "" on the host backend);
#: every variant runs in every cell, and cells never pool releases.
Cell = tuple[str, str, str]


@dataclass(frozen=True)
class PlannedRun:
    """One run of an experiment, before it executes."""

    index: int
    run_id: str
    variant: Variant
    workload: Workload
    accel: str
    repetition: int
    warmup: bool
    kind: Kind
    release: str = ""

    @property
    def cell(self) -> Cell:
        """The ``(workload, accel, release)`` cell this run belongs to."""
        return (self.workload.name, self.accel, self.release)

    @property
    def probed(self) -> bool:
        """True when probes are attached for this run."""
        return self.kind == "probed"

    def labels(self, experiment: str) -> dict[str, Any]:
        """The run.json ``labels`` identifying this run's place in the experiment."""
        labels: dict[str, Any] = {
            "experiment": experiment,
            "accel": self.accel,
            "repetition": self.repetition,
            "warmup": self.warmup,
            "order": self.index,
        }
        if self.release:
            labels["release"] = self.release
        return labels


def cells(spec: ExperimentSpec) -> list[Cell]:
    """The spec's cells, in plan order."""
    return [(w.name, a, r) for r in spec.releases for w in spec.workloads for a in spec.accels]


def cell_label(cell: Cell) -> str:
    """``release · workload · accel`` (no release on the host), as the A/B page names its groups."""
    workload, accel, release = cell
    return " · ".join(p for p in (release, workload, accel) if p)


def _kinds(spec: ExperimentSpec) -> tuple[Kind, ...]:
    return ("probed", "probe-free") if spec.probe_free else ("probed",)


def round_size(spec: ExperimentSpec) -> int:
    """Runs in one full round (every variant, cell and kind once)."""
    return len(spec.variants) * len(cells(spec)) * len(_kinds(spec))


def round_runs(
    spec: ExperimentSpec, repetition: int, *, warmup: bool = False, only: Collection[Cell] | None = None
) -> list[PlannedRun]:
    """One round: every variant runs each cell (of ``only``, default all) once per kind, interleaved.

    ``index`` is the run's place in the full plan (warm-ups, then ``max`` rounds), whichever cells
    the round holds, so it never depends on which cells an adaptive experiment has stopped.
    """
    kinds = _kinds(spec)
    start = (repetition if warmup else spec.warmup + repetition) * round_size(spec)
    tag = f"w{repetition}" if warmup else f"r{repetition}"
    out: list[PlannedRun] = []
    position = start
    for release in spec.releases:  # one L1 boot per release and round: releases outermost
        for variant in spec.variants:
            for workload in spec.workloads:
                for accel in spec.accels:
                    for kind in kinds:
                        index, position = position, position + 1
                        if only is not None and (workload.name, accel, release) not in only:
                            continue
                        if not variant.runs_on(release):
                            continue  # its place in the plan stays reserved: indexes never shift
                        short = "p" if kind == "probed" else "f"
                        where = f"{release}-" if spec.release_axis else ""
                        run_id = f"{spec.name}-{where}{variant.name}-{workload.name}-{accel}-{tag}-{short}"
                        out.append(
                            PlannedRun(
                                index, run_id, variant, workload, accel, repetition, warmup, kind, release
                            )
                        )
    return out


def make_plan(spec: ExperimentSpec) -> list[PlannedRun]:
    """Expand a spec into its interleaved list of runs: warm-ups, then ``repetitions.min`` rounds.

    For a fixed ``repetitions = N`` this is the whole experiment; an adaptive one continues with
    :func:`round_runs` from repetition ``min`` on, cell by cell, as its stopping rule decides.
    """
    plan: list[PlannedRun] = []
    for rep in range(spec.warmup):
        plan += round_runs(spec, rep, warmup=True)
    for rep in range(spec.repetitions.min):
        plan += round_runs(spec, rep)
    return plan


def recorded_plan(spec: ExperimentSpec, repetitions: Mapping[Cell, int]) -> list[PlannedRun]:
    """Every run of an experiment whose cells ran ``repetitions[cell]`` rounds, in plan order.

    For a finished adaptive experiment, ``repetitions`` is what ``experiment.json`` recorded per cell
    (``repetitions.cells[].repetitions``); a cell not in the mapping gets ``repetitions.min``.
    """
    plan = make_plan(spec)
    for rep in range(spec.repetitions.min, max([spec.repetitions.min, *repetitions.values()])):
        plan += round_runs(spec, rep, only=[c for c in cells(spec) if repetitions.get(c, 0) > rep])
    return plan
