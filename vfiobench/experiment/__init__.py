"""A/B experiments: specs (TOML), the interleaved plan, the resumable runner and its backends.

Repetitions are a fixed count or adaptive (``repetitions = { min, max, target }``: each cell gets
rounds until its intervals are precise enough, :mod:`vfiobench.experiment.stopping`).

The shipped specs (``pba``, ``pba-disable``) are TOML files in ``specs/`` beside this package,
loaded by name with :func:`load_spec`.
"""

from vfiobench.experiment.plan import PlannedRun, make_plan, recorded_plan, round_runs
from vfiobench.experiment.runner import Backend, run_experiment
from vfiobench.experiment.spec import ExperimentSpec, Repetitions, load_spec, parse_spec

__all__ = [
    "Backend",
    "ExperimentSpec",
    "PlannedRun",
    "Repetitions",
    "load_spec",
    "make_plan",
    "parse_spec",
    "recorded_plan",
    "round_runs",
    "run_experiment",
]
