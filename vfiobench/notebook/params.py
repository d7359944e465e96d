"""Notebook parameters: validate them and open the runs; a bad one stops the notebook with a message."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from vfiobench.errors import ReportError, VfioBenchError
from vfiobench.notebook.display import setup, stop
from vfiobench.store import Run, RunSet, load_run, load_runs


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
        ReportError: ``run_dir`` is not a non-empty string.
        RunStoreError: the directory is missing, not a run, or corrupt (message names the file).
    """
    setup()
    path = _check_str("run_dir", run_dir)
    try:
        return load_run(Path(path).expanduser())
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
    try:
        runset = load_runs([Path(p).expanduser() for p in paths])
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
