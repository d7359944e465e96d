"""A/B experiments: specs (TOML), the interleaved plan, the resumable runner and its backends.

The shipped specs (``pba``, ``pba-disable``) are TOML files in ``specs/`` beside this package,
loaded by name with :func:`load_spec`.
"""

from vfiobench.experiment.plan import PlannedRun, make_plan
from vfiobench.experiment.runner import Backend, run_experiment
from vfiobench.experiment.spec import ExperimentSpec, load_spec, parse_spec

__all__ = [
    "Backend",
    "ExperimentSpec",
    "PlannedRun",
    "load_spec",
    "make_plan",
    "parse_spec",
    "run_experiment",
]
