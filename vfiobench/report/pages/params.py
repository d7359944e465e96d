"""Notebook parameters: validate them and open the runs; a bad one stops the notebook with a message.

Paths given as parameters may be relative: they are read from the working directory (the
repository root for ``papermill notebooks/run.ipynb out.ipynb``; ``notebooks/`` for JupyterLab
and ``vfiobench report``), else from the repository root when vfiobench runs from a checkout, so
the notebooks' defaults (``data/sample``) work from anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vfiobench.analysis.compare import DEFAULT_GROUP_BY, Comparison, make_comparison
from vfiobench.errors import ReportError, VfioBenchError
from vfiobench.report.pages.display import setup, stop
from vfiobench.store import Run, RunSet, load_run, load_runs


def repository_root() -> Path | None:
    """The source checkout vfiobench runs from (``notebooks/`` beside the package), or None."""
    root = Path(__file__).resolve().parents[3]
    return root if (root / "notebooks").is_dir() and (root / "vfiobench").is_dir() else None


def resolve_path(name: str, value: object) -> Path:
    """Validate a path parameter and find it (relative: from the working directory, else the repository).

    An absolute path is taken as given; a relative one is looked up in the working directory,
    then in the repository root (:func:`repository_root`).

    Raises:
        ReportError: ``value`` is not a non-empty string, or a relative path found in neither place;
            stops the notebook with the message shown in the page.
    """
    setup()
    path = Path(_check_str(name, value)).expanduser()
    if path.is_absolute() or path.exists():
        return path
    root = repository_root()
    if root is not None and (root / path).exists():
        return root / path
    where = f"in {Path.cwd()}" + (f" and in the repository {root}" if root not in (None, Path.cwd()) else "")
    stop(
        ReportError(
            f"parameter {name}: {value} not found (relative paths are looked up {where})",
            "pass an existing path, absolute or relative to the repository",
        )
    )


def _check_str(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        stop(ReportError(f"parameter {name} must be a non-empty string, got {value!r}"))
    return value


def _check_str_list(name: str, value: object) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Sequence):
        stop(
            ReportError(
                f"parameter {name} must be a list of strings or None, got {type(value).__name__} {value!r}",
                "pass a list, e.g. -y '" + name + ": [stock, pba-always-on]' to papermill",
            )
        )
    items = list(value)
    if not items or not all(isinstance(v, str) and v for v in items):
        stop(ReportError(f"parameter {name} must be a non-empty list of non-empty strings, got {value!r}"))
    return items


def open_run(run_dir: object) -> Run:
    """Validate the ``run_dir`` parameter and load the run; stop the notebook with a message if bad.

    Raises:
        ReportError: ``run_dir`` is not a non-empty string, or a relative path found nowhere.
        RunStoreError: the directory is missing, not a run, or corrupt (message names the file).
    """
    setup()
    path = resolve_path("run_dir", run_dir)
    try:
        return load_run(path)
    except VfioBenchError as e:
        stop(e)


def open_runs(runs: object, *, baseline: object, variants: object = None) -> RunSet:
    """Validate the compare-notebook parameters and load the runs to compare.

    Args:
        runs: a directory of runs (searched recursively) or a list of run directories.
        baseline: the variant every other variant is compared against.
        variants: variants to keep, or ``None`` for all found.

    Returns:
        The selected runs (at least two variants, the baseline among them).

    Raises:
        ReportError: a parameter has the wrong type, a variant is unknown, or fewer than two
            variants remain; stops the notebook with the message shown in the page.
        RunStoreError: a run directory is missing or corrupt.
    """
    setup()
    base = _check_str("baseline", baseline)
    wanted = _check_str_list("variants", variants)
    paths = [_check_str("runs", runs)] if isinstance(runs, str) else _check_str_list("runs", runs) or []
    found_paths = [resolve_path("runs", p) for p in paths]
    try:
        runset = load_runs(found_paths)
    except VfioBenchError as e:
        stop(e)
    where = ", ".join(paths)
    if not len(runset):
        stop(ReportError(f"no runs found in {where}", "point runs at a directory holding run.json files"))
    found = runset.variants
    if wanted is not None:
        unknown = [v for v in wanted if v not in found]
        if unknown:
            stop(
                ReportError(
                    f"unknown variant {', '.join(map(repr, unknown))}: the runs in {where} have "
                    f"variants {', '.join(found)}"
                )
            )
        runset = RunSet(r for r in runset if r.variant in wanted)
    if base not in runset.variants:
        stop(
            ReportError(
                f"baseline variant {base!r} is not among the runs compared ({', '.join(runset.variants)})",
                "set baseline to one of those variants",
            )
        )
    if len(runset.variants) < 2:
        stop(
            ReportError(
                f"an A/B comparison needs at least two variants; the runs in {where} have only {base!r}",
                "add runs of another variant",
            )
        )
    return runset


def _check_group_by(value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str) or not isinstance(value, Sequence):
        stop(
            ReportError(
                f"parameter group_by must be a list of strings, got {type(value).__name__} {value!r}",
                "pass e.g. -y 'group_by: [workload, accel]' to papermill, or [] for one group",
            )
        )
    items = list(value)
    if not all(isinstance(v, str) and v for v in items):
        stop(ReportError(f"parameter group_by must hold non-empty strings, got {value!r}"))
    return tuple(items)


def open_comparison(
    runset: RunSet,
    *,
    baseline: object,
    group_by: object = DEFAULT_GROUP_BY,
    include_warmup: object = False,
) -> Comparison:
    """Validate the grouping parameters and split the runs into groups (:func:`make_comparison`).

    Args:
        runset: the runs (from :func:`open_runs`).
        baseline: the baseline variant.
        group_by: grouping keys (``workload``, a run.json field, or a label such as ``accel``);
            ``[]`` or None compares every run in one group.
        include_warmup: keep warm-up runs (``labels.warmup``) in the comparison.

    Raises:
        ReportError: a bad parameter, or no measured runs / no baseline left once warm-ups are out;
            stops the notebook with the message shown in the page.
    """
    keys = _check_group_by(group_by)
    if not isinstance(include_warmup, bool):
        stop(ReportError(f"parameter include_warmup must be true or false, got {include_warmup!r}"))
    if not isinstance(baseline, str) or not baseline:
        stop(ReportError(f"parameter baseline must be a non-empty string, got {baseline!r}"))
    try:
        return make_comparison(runset, baseline=baseline, group_by=keys, include_warmup=include_warmup)
    except VfioBenchError as e:
        stop(ReportError(e.message, e.hint))
