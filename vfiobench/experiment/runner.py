"""Execute an experiment plan through a backend, resumably.

Layout of an experiment directory::

    <out>/experiment.json        the spec text, its digest and the planned run ids
    <out>/runs/<run_id>/         one run per planned run (the run store format)
    <out>/runs/.retry/<run_id>.N a partial or failed run moved aside before it is redone (kept, not lost)

Re-running the same command on the same directory skips every run already ``complete`` and redoes
the rest in plan order; a different spec on the same directory is refused.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vfiobench.errors import ExperimentError, RunStoreError
from vfiobench.experiment.plan import PlannedRun, make_plan
from vfiobench.experiment.spec import ExperimentSpec
from vfiobench.store import load_run, recover_interrupted, utc_now

RunDone = Callable[[PlannedRun, Path], None]


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
    """What is done and what is left of an experiment directory."""

    plan: list[PlannedRun]
    complete: set[str]

    @property
    def todo(self) -> list[PlannedRun]:
        """Planned runs not yet complete, in plan order."""
        return [r for r in self.plan if r.run_id not in self.complete]


def _check_or_write_manifest(spec: ExperimentSpec, out: Path, plan: list[PlannedRun]) -> None:
    manifest = out / "experiment.json"
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ExperimentError(f"{manifest}: not valid JSON ({e})") from None
        if old.get("digest") != spec.digest:
            raise ExperimentError(
                f"{out}: was started with a different spec ({old.get('path')}, digest {old.get('digest')})",
                "use a new --out directory for a changed spec",
            )
        return
    out.mkdir(parents=True, exist_ok=True)
    manifest.write_text(
        json.dumps(
            {
                "name": spec.name,
                "path": spec.path,
                "digest": spec.digest,
                "created_utc": utc_now(),
                "baseline": spec.baseline,
                "runs": [r.run_id for r in plan],
                "spec": spec.source_text,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )


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


def scan(spec: ExperimentSpec, out: Path) -> ExperimentState:
    """Find which planned runs are complete; move partial/failed ones aside to be redone."""
    plan = make_plan(spec)
    runs_dir = out / "runs"
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
    return ExperimentState(plan, complete)


def run_experiment(
    spec: ExperimentSpec,
    out: Path,
    backend: Backend,
    *,
    progress: bool = True,
) -> ExperimentState:
    """Run (or resume) an experiment; returns the final state.

    Raises:
        ExperimentError: ``out`` holds a different experiment.
    """
    plan = make_plan(spec)
    _check_or_write_manifest(spec, out, plan)
    state = scan(spec, out)
    runs_dir = out / "runs"
    runs_dir.mkdir(exist_ok=True)
    todo = state.todo

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
        task = bar.add_task(spec.name, total=len(plan), completed=len(state.complete), current="")

        def done(run: PlannedRun, path: Path) -> None:
            if load_run(path).meta.status == "complete":
                state.complete.add(run.run_id)
            bar.update(task, completed=len(state.complete), current=run.run_id)

        for _, group in itertools.groupby(todo, key=backend.batch_key):
            batch = list(group)
            bar.update(task, current=f"{batch[0].run_id} (+{len(batch) - 1})")
            backend.execute(batch, runs_dir, done)
    return state
