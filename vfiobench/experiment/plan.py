"""The order runs execute in: repetitions interleaved across variants so drift cancels.

For repetition r (warm-ups first, labelled and later excluded), every variant runs every
(workload, accel) cell once, probed and then probe-free: ``A B C A B C ...`` rather than
``A A A B B B ...``, so a slow drift of the machine (thermal, background load, page cache) spreads
evenly over the variants instead of biasing the last one. Run ids are deterministic, which is what
lets an interrupted experiment resume without redoing or duplicating runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vfiobench.experiment.spec import ExperimentSpec, Variant, Workload
from vfiobench.store import Kind


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

    @property
    def probed(self) -> bool:
        """True when probes are attached for this run."""
        return self.kind == "probed"

    def labels(self, experiment: str) -> dict[str, Any]:
        """The run.json ``labels`` identifying this run's place in the experiment."""
        return {
            "experiment": experiment,
            "accel": self.accel,
            "repetition": self.repetition,
            "warmup": self.warmup,
            "order": self.index,
        }


def make_plan(spec: ExperimentSpec) -> list[PlannedRun]:
    """Expand a spec into its interleaved list of runs."""
    kinds: tuple[Kind, ...] = ("probed", "probe-free") if spec.probe_free else ("probed",)
    plan: list[PlannedRun] = []
    reps = [(i, True) for i in range(spec.warmup)] + [(i, False) for i in range(spec.repetitions)]
    for rep, warm in reps:
        for variant in spec.variants:
            for workload in spec.workloads:
                for accel in spec.accels:
                    for kind in kinds:
                        tag = f"w{rep}" if warm else f"r{rep}"
                        short = "p" if kind == "probed" else "f"
                        run_id = f"{spec.name}-{variant.name}-{workload.name}-{accel}-{tag}-{short}"
                        plan.append(PlannedRun(len(plan), run_id, variant, workload, accel, rep, warm, kind))
    return plan
