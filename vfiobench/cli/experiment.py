"""``vfiobench run``: run or resume an A/B experiment described by a TOML spec."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  vfiobench run pba --out data/experiments/pba           the shipped stock-vs-fixes experiment (lab)
  vfiobench run pba --out data/experiments/pba --dry-run print the interleaved plan, run nothing
  vfiobench run my.toml --out runs/my                    re-run the same command to resume
"""


def register(sub: Any) -> None:
    """Add the ``run`` subcommand."""
    p = sub.add_parser(
        "run",
        help="run or resume an A/B experiment (variants x workloads x accels x repetitions)",
        description="Run every planned run of an experiment spec, interleaved, resuming where it stopped.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("spec", help="a spec TOML file, or the name of a shipped spec (e.g. pba)")
    p.add_argument("--out", required=True, type=Path, help="experiment directory (runs land in OUT/runs/)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the plan and what is already done; run nothing"
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs, CI)")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from vfiobench.experiment.backends import make_backend
    from vfiobench.experiment.plan import make_plan
    from vfiobench.experiment.runner import run_experiment, run_statuses
    from vfiobench.experiment.spec import load_spec

    spec = load_spec(args.spec)
    if args.dry_run:
        plan = make_plan(spec)
        statuses = run_statuses(plan, args.out / "runs")
        for run in plan:
            print(f"{run.index:4d}  {statuses.get(run.run_id, 'todo'):8s}  {run.run_id}")
        return 0
    state = run_experiment(spec, args.out, make_backend(spec), progress=not args.no_progress)
    left = len(state.todo)
    print(f"{spec.name}: {len(state.complete)}/{len(state.plan)} runs complete in {args.out / 'runs'}")
    return 0 if left == 0 else 1
