"""``vfiobench report``: render runs into self-contained HTML pages and an index.

Imports nothing heavy at load time; papermill and nbconvert load when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vfiobench.errors import ReportError

EPILOG = """\
examples:
  vfiobench report data/sample --out reports/              one page per run + index.html
  vfiobench report data/sample --compare --out reports/    the same plus the A/B page (compare.html)
  vfiobench report data/runs/a data/runs/b --compare --no-runs --baseline stock
                                                           only the A/B page over two runs
  vfiobench report data/experiments/pba --compare --no-runs --out reports/pba
                                                           an experiment's A/B page: one comparison per
                                                           workload x accel cell, warm-ups left out

Each page is written as <name>.html (no code, Bokeh inline, opens offline) beside the executed
<name>.ipynb. A run or parameter the notebook cannot use still gets a page explaining why; the
command then exits 2 naming the first problem.
"""


def register(subparsers: Any) -> None:
    """Add the ``report`` subcommand."""
    p = subparsers.add_parser(
        "report",
        help="render runs into self-contained HTML reports (papermill + nbconvert)",
        description="Render runs into self-contained HTML reports: one page per run, the A/B "
        "page (--compare), and index.html.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("paths", nargs="+", metavar="RUN_DIR", help="run directories or directories of runs")
    p.add_argument("--out", "-o", default="reports", help="output directory (default: %(default)s)")
    p.add_argument("--compare", action="store_true", help="also render the A/B page over all given runs")
    p.add_argument("--no-runs", action="store_true", help="skip the per-run pages")
    p.add_argument(
        "--run-pages",
        choices=("all", "representative"),
        default="all",
        help="per-run pages for every run, or one per cell, variant and kind (the index lists every run "
        "either way; default: %(default)s)",
    )
    p.add_argument(
        "--baseline", default="stock", help="baseline variant of the A/B page (default: %(default)s)"
    )
    p.add_argument(
        "--variants",
        default=None,
        help="comma-separated variants the A/B page keeps (default: all found)",
    )
    p.add_argument(
        "--group-by",
        default=None,
        metavar="KEYS",
        help="comma-separated keys the A/B page compares within: workload, a run.json field or a label "
        "(default: workload,accel; '' compares all runs as one group)",
    )
    p.add_argument(
        "--include-warmup", action="store_true", help="keep warm-up runs (labels.warmup) on the A/B page"
    )
    p.add_argument(
        "--notebooks", type=Path, default=None, help="directory holding run.ipynb and compare.ipynb"
    )
    p.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=1,
        help="pages rendered at once, one kernel each (default: %(default)s)",
    )
    p.add_argument(
        "--experiment",
        default=None,
        metavar="NAME",
        help="keep only the runs of this experiment (run label 'experiment')",
    )
    p.add_argument(
        "--cover-letter",
        type=Path,
        default=None,
        metavar="FILE",
        help="also write the auto-detection series' cover letter, its evidence from these runs",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress output")
    p.set_defaults(func=run)


def _selected_paths(args: argparse.Namespace) -> list[str]:
    """``args.paths``, or the run directories of ``--experiment`` among them."""
    if args.experiment is None:
        return list(args.paths)
    from vfiobench.store import load_runs

    runs = load_runs(args.paths)
    kept = [str(r.path) for r in runs if r.meta.labels.get("experiment") == args.experiment]
    if not kept:
        raise ReportError(
            f"no run of experiment {args.experiment!r} in {', '.join(args.paths)}",
            "check --experiment against the runs' 'experiment' label",
        )
    return kept


def _write_cover_letter(args: argparse.Namespace, paths: list[str], variants: list[str] | None) -> None:
    from vfiobench.analysis.compare import make_comparison
    from vfiobench.qemu.patchset import series_files, series_versions
    from vfiobench.report.cover_letter import reproduce_commands, write_cover_letter
    from vfiobench.store import RunSet, load_runs

    runs = load_runs(paths)
    if variants:
        runs = RunSet(r for r in runs if r.variant in variants)
    cmp = make_comparison(runs, baseline=args.baseline, include_warmup=args.include_warmup)
    # the letter is about the series against the newest source vfiobench builds (the runs may have
    # used an older port of it: the evidence says which)
    series = series_versions()[-1]
    files = series_files(series)
    commands = reproduce_commands(cmp, args.experiment, args.cover_letter)
    out = write_cover_letter(cmp, args.cover_letter, files, commands, series)
    print(f"wrote {out}")


def run(args: argparse.Namespace) -> int:
    """Render the batch; returns 0, or raises :class:`ReportError` naming the first stopped page."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from vfiobench.report import Page, render_batch

    variants = [v.strip() for v in args.variants.split(",") if v.strip()] if args.variants else None
    paths = _selected_paths(args)
    if args.cover_letter is not None:
        _write_cover_letter(args, paths, variants)
        if args.no_runs and not args.compare:
            return 0
    console = Console(stderr=True)
    kwargs: dict[str, Any] = {
        "runs": not args.no_runs,
        "compare": args.compare,
        "baseline": args.baseline,
        "variants": variants,
        "group_by": None
        if args.group_by is None
        else [k.strip() for k in args.group_by.split(",") if k.strip()],
        "include_warmup": args.include_warmup,
        "notebooks_dir": args.notebooks,
        "jobs": args.jobs,
        "run_pages": args.run_pages,
    }
    if args.jobs < 1:
        raise ReportError(f"--jobs must be at least 1, not {args.jobs}")
    if args.quiet:
        batch = render_batch(paths, args.out, **kwargs)
    elif console.is_terminal:
        columns = (
            TextColumn("[bold]report"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
        )
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("", total=None)

            def before(page: Page, i: int, total: int) -> None:
                progress.update(task, total=total, description=page.name)

            def after(page: Page, done: int, total: int) -> None:
                progress.update(task, total=total, completed=done, description=page.name)
                if not page.ok:
                    progress.console.print(f"[red]stopped[/red] {page.html}: {page.error}")

            batch = render_batch(paths, args.out, before_page=before, on_page=after, **kwargs)
    else:

        def line(page: Page, done: int, total: int) -> None:
            state = "ok" if page.ok else f"stopped: {page.error}"
            print(f"[{done}/{total}] {page.html} ({state})", file=sys.stderr, flush=True)

        batch = render_batch(paths, args.out, on_page=line, **kwargs)
    if not args.quiet:
        print(f"wrote {batch.index} ({len(batch.pages)} pages)")
    if batch.failed:
        first = batch.failed[0]
        more = f" (and {len(batch.failed) - 1} more pages)" if len(batch.failed) > 1 else ""
        raise ReportError(f"{first.html}: {first.error}{more}")
    return 0
