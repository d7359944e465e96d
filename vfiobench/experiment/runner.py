"""Execute an experiment plan through a backend, resumably.

Layout of an experiment directory::

    <out>/experiment.json        the spec text, its digest, the planned run ids and, under
                                 "repetitions", the rule and where each cell stands against it
    <out>/runs/<run_id>/         one run per planned run (the run store format)
    <out>/runs/.retry/<run_id>.N a partial or failed run moved aside before it is redone (kept, not lost)

Re-running the same command on the same directory skips every run already ``complete`` and redoes
the rest in plan order; a different spec on the same directory is refused.

Adaptive repetitions (``repetitions = { min, max, target }``): the runner first runs the plan every
cell shares (warm-ups and ``min`` rounds), then, round by round, asks the stopping rule
(:mod:`vfiobench.experiment.stopping`) which cells need another one and runs that round for them
only. Decisions are made from the runs on disk, so a resumed experiment re-derives them and goes on
where it stopped. A round with a failed run ends the call (the CLI exits 1): re-running retries the
failed runs, then the rule continues from complete rounds only.
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from vfiobench.errors import ExperimentError, RunStoreError
from vfiobench.experiment.plan import Cell, PlannedRun, cells, make_plan, round_runs
from vfiobench.experiment.spec import ExperimentSpec
from vfiobench.experiment.stopping import CellState, StoppingRule, fixed_state
from vfiobench.store import load_run, recover_interrupted, utc_now

RunDone = Callable[[PlannedRun, Path], None]
Show = Callable[[str], None]


class Backend(Protocol):
    """Where runs execute: the emulated lab, or a real host."""

    def batch_key(self, run: PlannedRun) -> Hashable:
        """Consecutive runs with equal keys execute in one :meth:`execute` call (one lab boot)."""
        ...

    def execute(self, runs: Sequence[PlannedRun], runs_dir: Path, done: RunDone) -> None:
        """Execute ``runs`` in order, writing each to ``runs_dir / run.run_id``; call ``done`` after each."""
        ...


@dataclass
class ExperimentState:
    """What is done and what is left of an experiment directory.

    Attributes:
        plan: every run planned so far (for an adaptive experiment, the rounds added up to now).
        complete: ids of the planned runs that are complete.
        cells: where each cell stands against the repetitions rule (empty until evaluated).
    """

    plan: list[PlannedRun]
    complete: set[str]
    cells: list[CellState] = field(default_factory=list)

    @property
    def todo(self) -> list[PlannedRun]:
        """Planned runs not yet complete, in plan order."""
        return [r for r in self.plan if r.run_id not in self.complete]


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def read_manifest(out: Path) -> dict[str, Any] | None:
    """``<out>/experiment.json`` (None when absent).

    Raises:
        ExperimentError: the file is not valid JSON.
    """
    manifest = out / "experiment.json"
    if not manifest.is_file():
        return None
    try:
        data = json.loads(manifest.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ExperimentError(f"{manifest}: not valid JSON ({e})") from None
    return data if isinstance(data, dict) else {}


def _check_or_write_manifest(spec: ExperimentSpec, out: Path, plan: list[PlannedRun]) -> None:
    old = read_manifest(out)
    if old is not None:
        if old.get("digest") != spec.digest:
            raise ExperimentError(
                f"{out}: was started with a different spec ({old.get('path')}, digest {old.get('digest')})",
                "use a new --out directory for a changed spec",
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    _write_json_atomic(
        out / "experiment.json",
        {
            "name": spec.name,
            "path": spec.path,
            "digest": spec.digest,
            "created_utc": utc_now(),
            "baseline": spec.baseline,
            "runs": [r.run_id for r in plan],
            "repetitions": {"rule": spec.repetitions.to_dict(), "cells": []},
            "spec": spec.source_text,
        },
    )


def record_state(out: Path, spec: ExperimentSpec, state: ExperimentState) -> None:
    """Write the planned runs and each cell's standing against the rule into ``experiment.json``."""
    data = read_manifest(out) or {}
    data["runs"] = [r.run_id for r in state.plan]
    data["repetitions"] = {
        "rule": spec.repetitions.to_dict(),
        "description": spec.repetitions.describe(),
        "updated_utc": utc_now(),
        "cells": [c.to_dict() for c in state.cells],
    }
    _write_json_atomic(out / "experiment.json", data)


def run_statuses(plan: Sequence[PlannedRun], runs_dir: Path) -> dict[str, str]:
    """Status of each planned run already on disk: complete, partial, failed or corrupt (read-only)."""
    statuses: dict[str, str] = {}
    for run in plan:
        path = runs_dir / run.run_id
        if path.exists():
            try:
                statuses[run.run_id] = load_run(path).meta.status
            except RunStoreError:
                statuses[run.run_id] = "corrupt"
    return statuses


def scan_runs(plan: Sequence[PlannedRun], runs_dir: Path) -> set[str]:
    """Ids of the planned runs complete on disk; partial/failed ones are moved aside to be redone."""
    complete: set[str] = set()
    for run in plan:
        recover_interrupted(runs_dir / run.run_id)  # a killed recording's run: kept, then set aside below
        status = run_statuses([run], runs_dir).get(run.run_id)
        if status is None:
            continue
        if status == "complete":
            complete.add(run.run_id)
            continue
        path = runs_dir / run.run_id
        retry = runs_dir / ".retry"
        retry.mkdir(exist_ok=True)
        for n in itertools.count():
            dest = retry / f"{run.run_id}.{n}"
            if not dest.exists():
                path.rename(dest)
                break
    return complete


def scan(spec: ExperimentSpec, out: Path) -> ExperimentState:
    """Find which runs of the shared plan (:func:`make_plan`) are complete; set the others aside."""
    plan = make_plan(spec)
    return ExperimentState(plan, scan_runs(plan, out / "runs"))


def run_experiment(
    spec: ExperimentSpec,
    out: Path,
    backend: Backend,
    *,
    progress: bool = True,
    show: Show | None = None,
) -> ExperimentState:
    """Run (or resume) an experiment; returns the final state.

    Args:
        spec: the experiment.
        out: its directory.
        backend: where runs execute.
        progress: show a progress bar.
        show: where the stopping rule's decisions are printed (None: nowhere).

    Raises:
        ExperimentError: ``out`` holds a different experiment.
    """
    plan = make_plan(spec)
    _check_or_write_manifest(spec, out, plan)
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    state = ExperimentState([], set())
    say = show or (lambda _: None)

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        TextColumn("{task.fields[current]}"),
    )
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(spec.name, total=0, completed=0, current="")

        def done(run: PlannedRun, path: Path) -> None:
            if load_run(path).meta.status == "complete":
                state.complete.add(run.run_id)
            bar.update(task, completed=len(state.complete), current=run.run_id)

        def execute(runs: list[PlannedRun]) -> bool:
            """Plan ``runs``, execute those not complete; True when all of them are complete."""
            state.plan += runs
            state.complete |= scan_runs(runs, runs_dir)
            bar.update(task, total=len(state.plan), completed=len(state.complete))
            todo = [r for r in runs if r.run_id not in state.complete]
            for _, group in itertools.groupby(todo, key=backend.batch_key):
                batch = list(group)
                bar.update(task, current=f"{batch[0].run_id} (+{len(batch) - 1})")
                backend.execute(batch, runs_dir, done)
            return all(r.run_id in state.complete for r in runs)

        rule = spec.repetitions
        if not execute(plan):
            say(f"{spec.name}: {len(state.todo)} runs did not complete; re-run to retry them")
            return state
        if not rule.adaptive:
            state.cells = [fixed_state(c, rule.min) for c in cells(spec)]
            record_state(out, spec, state)
            return state
        judge = StoppingRule(spec, runs_dir)
        running = cells(spec)
        decided: dict[Cell, CellState] = {}
        for rounds in range(rule.min, rule.max + 1):
            for cell in running:
                decided[cell] = judge.evaluate(cell, rounds)
                say(decided[cell].summary())
            state.cells = [decided[c] for c in cells(spec)]
            record_state(out, spec, state)
            running = [c for c in running if decided[c].status == "running"]
            if not running:
                break
            if not execute(round_runs(spec, rounds, only=running)):
                say(f"{spec.name}: {len(state.todo)} runs did not complete; re-run to retry them")
                record_state(out, spec, state)
                return state
    return state
