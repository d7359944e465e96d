"""The stopping rule of adaptive repetitions: when a cell has enough runs.

``repetitions = { min = 6, max = 30, target = 0.10 }``: every cell (workload × accel) runs ``min``
rounds; after each round from then on, the cell's runs so far (warm-ups excluded) are compared
variant by variant with the baseline (:func:`vfiobench.analysis.precision.df_precision`, the A/B
page's own statistics), and the cell stops once every non-baseline variant's 95 % interval on every
metric of the rule has a relative half-width of at most ``target`` (``target reached``), or when it
has ``max`` rounds (``max reached``). The rule reads interval widths only, never a p-value, so
stopping does not bias the test.

A decision depends only on the runs of rounds ``0 .. n-1`` of that cell, read from disk; so an
interrupted experiment, resumed, takes the same decisions and plans the same runs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from vfiobench.experiment.plan import Cell, cell_label, round_runs
from vfiobench.experiment.spec import ExperimentSpec
from vfiobench.store import Run, RunSet, load_run

TARGET_REACHED = "target reached"
MAX_REACHED = "max reached"
FIXED = "fixed"

Status = Literal["running", "stopped"]


@dataclass
class CellState:
    """Where one cell stands against the rule.

    Attributes:
        cell: ``(workload, accel, release)``.
        repetitions: measured rounds the cell has (complete and evaluated).
        status: ``"running"`` (more rounds follow) or ``"stopped"``.
        reason: why it stopped (``target reached``, ``max reached``, ``fixed``), None while running.
        half_width: the widest relative half-width over variants and metrics (NaN: some comparison
            has no interval yet, or no samples).
        widths: the rows of :func:`~vfiobench.analysis.precision.df_precision` as dicts.
    """

    cell: Cell
    repetitions: int
    status: Status = "running"
    reason: str | None = None
    half_width: float = math.nan
    widths: list[dict[str, Any]] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``release · workload · accel``, as the A/B page names the cell (see :func:`cell_label`)."""
        return cell_label(self.cell)

    def to_dict(self) -> dict[str, Any]:
        """The cell's entry in ``experiment.json`` (NaN written as null)."""

        def clean(x: Any) -> Any:
            return None if isinstance(x, float) and not math.isfinite(x) else x

        return {
            "cell": self.label,
            "workload": self.cell[0],
            "accel": self.cell[1],
            "release": self.cell[2],
            "repetitions": self.repetitions,
            "status": self.status,
            "reason": self.reason,
            "half_width": clean(self.half_width),
            "widths": [{k: clean(v) for k, v in w.items()} for w in self.widths],
        }

    def summary(self) -> str:
        """One line: the cell, its repetitions, its widest half-width and the decision."""
        width = "no interval yet" if math.isnan(self.half_width) else f"widest ±{self.half_width:.1%}"
        what = self.reason if self.status == "stopped" else "one more round"
        return f"{self.label}: {self.repetitions} repetitions, {width} -> {what}"


class StoppingRule:
    """Evaluate the spec's rule on the runs on disk (runs are read once and kept)."""

    def __init__(self, spec: ExperimentSpec, runs_dir: Path) -> None:
        self.spec = spec
        self.runs_dir = runs_dir
        self._runs: dict[str, Run] = {}

    def _run(self, run_id: str) -> Run:
        if run_id not in self._runs:
            self._runs[run_id] = load_run(self.runs_dir / run_id)
        return self._runs[run_id]

    def cell_runs(self, cell: Cell, rounds: int) -> RunSet:
        """The measured runs of ``cell`` in rounds ``0 .. rounds - 1``."""
        ids = [r.run_id for rep in range(rounds) for r in round_runs(self.spec, rep, only=[cell])]
        return RunSet(self._run(i) for i in ids)

    def evaluate(self, cell: Cell, rounds: int) -> CellState:
        """The cell's state after ``rounds`` complete rounds (stopped when the rule is met, or at max)."""
        from vfiobench.analysis.precision import df_precision, within_target

        rule = self.spec.repetitions
        assert rule.target is not None, "a fixed count has no stopping rule"
        prec = df_precision(self.cell_runs(cell, rounds), self.spec.baseline, rule.metrics)
        widths = prec["half_width"].astype(float)
        worst = math.nan if widths.isna().any() or widths.empty else float(widths.max())
        records = json.loads(prec.to_json(orient="records"))  # plain floats, NaN as null
        state = CellState(cell, rounds, half_width=worst, widths=records)
        if within_target(prec, rule.target):
            state.status, state.reason = "stopped", TARGET_REACHED
        elif rounds >= rule.max:
            state.status, state.reason = "stopped", MAX_REACHED
        return state


def fixed_state(cell: Cell, repetitions: int) -> CellState:
    """A cell of a fixed-count experiment, once its rounds are done."""
    return CellState(cell, repetitions, "stopped", FIXED)
