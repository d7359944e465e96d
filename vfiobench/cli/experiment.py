"""``vfiobench run``: run or resume an A/B experiment described by a TOML spec."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

EPILOG = """\
examples:
  vfiobench run pba --out data/experiments/pba           the shipped stock-vs-fixes experiment (lab)
  vfiobench run pba --out data/experiments/pba --dry-run print the interleaved plan, run nothing
                                                         (adaptive repetitions: up to min, then the rule)
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


def _dry_run(spec: Any, out: Path) -> None:
    """Print the plan every cell runs, what is done of it, and what an adaptive rule adds."""
    from vfiobench.experiment.plan import cells, make_plan, round_runs, round_size
    from vfiobench.experiment.runner import read_manifest, run_statuses

    plan = make_plan(spec)
    runs_dir = out / "runs"
    statuses = run_statuses(plan, runs_dir)
    for run in plan:
        print(f"{run.index:4d}  {statuses.get(run.run_id, 'todo'):8s}  {run.run_id}")
    rule = spec.repetitions
    print(f"{spec.name}: {len(plan)} runs ({spec.warmup} warm-up + {rule.describe()})")
    if not rule.adaptive:
        return
    per_cell = round_size(spec) // len(cells(spec))
    more = (rule.max - rule.min) * round_size(spec)
    print(
        f"then rounds r{rule.min}..r{rule.max - 1}, one at a time, only for the cells whose rule is "
        f"not met yet ({per_cell} runs a cell a round; a cell stops when its rule is met or at "
        f"{rule.max} repetitions): up to {more} more runs, {len(plan) + more} in all"
    )
    later = [r for rep in range(rule.min, rule.max) for r in round_runs(spec, rep)]
    done = run_statuses(later, runs_dir)
    if done:
        print(f"already on disk beyond r{rule.min - 1}: {len(done)} runs")
    record = (read_manifest(out) or {}).get("repetitions", {})
    for cell in record.get("cells", []):
        width = cell.get("half_width")
        shown = "no interval yet" if width is None else f"widest ±{width:.1%}"
        state = cell.get("reason") or "running"
        print(f"  {cell.get('cell')}: {cell.get('repetitions')} repetitions, {shown}: {state}")


def _run(args: argparse.Namespace) -> int:
    from vfiobench.experiment.backends import make_backend
    from vfiobench.experiment.runner import run_experiment
    from vfiobench.experiment.spec import load_spec

    spec = load_spec(args.spec)
    if args.dry_run:
        _dry_run(spec, args.out)
        return 0
    state = run_experiment(spec, args.out, make_backend(spec), progress=not args.no_progress, show=print)
    left = len(state.todo)
    print(f"{spec.name}: {len(state.complete)}/{len(state.plan)} runs complete in {args.out / 'runs'}")
    if spec.repetitions.adaptive:
        for cell in state.cells:
            print(f"  {cell.summary()}")
    return 0 if left == 0 else 1
