"""Cells of an experiment: runs grouped by workload × accel (never pooled), warm-ups set aside.

An experiment such as ``experiments/pba.toml`` measures every variant in several **cells** (one
workload under one accelerator). A variant's numbers only mean something against the baseline *in
the same cell*: ``no-mask`` under KVM and ``mask-every-irq`` under TCG differ by orders of magnitude,
so pooling them would compare the mix of cells, not the variants. :func:`compare_cells` groups the
runs by ``group_by`` (default ``workload`` × ``accel``: ``meta.workload.name`` and
``meta.labels["accel"]``; a run without the key, such as a synthetic run without ``accel``, falls in
one group for that key) and drops warm-up runs (``labels.warmup``) unless asked to keep them.

The :class:`Comparison` it returns is what the compare page's sections take; it caches the
per-interrupt accounting and the A/B tables so each is computed once per page.

Example:
    >>> from vfiobench import notebook as nbk                                   # doctest: +SKIP
    >>> cmp = nbk.compare_cells(nbk.open_runs("data/experiments/pba", baseline="stock"),
    ...                         baseline="stock")                               # doctest: +SKIP
    >>> [c.label for c in cmp.cells]                                            # doctest: +SKIP
    ['mask-every-irq · kvm', 'mask-every-irq · tcg', 'no-mask · kvm', 'no-mask · tcg']
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vfiobench.errors import ReportError
from vfiobench.notebook.display import show_html, stop, table_html
from vfiobench.store import Run, RunSet

#: Default grouping of the compare page: one cell per workload and accelerator.
DEFAULT_GROUP_BY: tuple[str, ...] = ("workload", "accel")

#: Run attributes a grouping key may name besides ``workload`` and the run's labels.
_META_KEYS = ("variant", "kind", "status", "source")

#: Metrics of the per-cell A/B tables (see :func:`vfiobench.analysis.metric_samples`).
AB_METRICS: tuple[str, ...] = ("us_per_irq", "latency_ns")


def cell_value(run: Run, key: str) -> Any:
    """The value of grouping key ``key`` for ``run`` (None when the run does not record it).

    ``workload`` is ``meta.workload.name``; ``variant``/``kind``/``status``/``source`` are run.json
    fields; anything else is a label (``accel``, ``repetition``...).
    """
    if key == "workload":
        return run.meta.workload.name or None
    if key in _META_KEYS:
        return getattr(run.meta, key)
    value = run.meta.labels.get(key)
    return None if value == "" else value


def is_warmup(run: Run) -> bool:
    """True for a warm-up run (run.json ``labels.warmup`` true): recorded, never compared."""
    return run.meta.labels.get("warmup") is True


@dataclass(frozen=True)
class Cell:
    """One cell: the runs sharing every grouping value.

    Attributes:
        key: ``((key, value), ...)`` in ``group_by`` order; value None when the runs lack the key.
        runs: the cell's runs (all variants).
    """

    key: tuple[tuple[str, Any], ...]
    runs: RunSet

    @property
    def label(self) -> str:
        """The recorded grouping values joined with `` · `` (``"all runs"`` when none is recorded)."""
        parts = [str(v) for _, v in self.key if v is not None]
        return " · ".join(parts) if parts else "all runs"

    @property
    def values(self) -> dict[str, Any]:
        """The grouping values as a mapping."""
        return dict(self.key)


def split_cells(runset: RunSet, group_by: Sequence[str] = DEFAULT_GROUP_BY) -> list[Cell]:
    """Group runs into cells, in the order their first run appears in plan order.

    Plan order is by experiment, then by each run's position in its plan (labels ``experiment``
    and ``order``, which ``vfiobench run`` writes); runs without them come first, in the order
    given. Runs lacking a key share one group for it (``None``); an empty ``group_by`` gives one
    cell.
    """

    def plan_position(run: Run) -> tuple[str, float]:
        order = run.meta.labels.get("order")
        return str(run.meta.labels.get("experiment", "")), float(order) if isinstance(order, int) else 0.0

    groups: dict[tuple[tuple[str, Any], ...], list[Run]] = {}
    for run in sorted(runset, key=plan_position):
        key = tuple((k, cell_value(run, k)) for k in group_by)
        groups.setdefault(key, []).append(run)
    return [Cell(key, RunSet(runs)) for key, runs in groups.items()]


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


@dataclass
class Comparison:
    """The runs a compare page compares, split into cells, with cached analysis frames.

    Attributes:
        runs: the compared runs (warm-ups left out unless ``include_warmup``).
        baseline: the variant every other one is compared against, within each cell.
        group_by: the grouping keys.
        cells: the cells, in first-seen order.
        warmups_excluded: how many warm-up runs were left out.
        n_boot: bootstrap replicates of the A/B intervals.
    """

    runs: RunSet
    baseline: str
    group_by: tuple[str, ...]
    cells: list[Cell]
    warmups_excluded: int = 0
    n_boot: int = 2000
    _cache: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def variants(self) -> list[str]:
        """Variants in page order: the baseline, then by the experiment's run order (labels.order).

        Runs without an ``order`` label keep their first-seen order after those with one.
        """
        first: dict[str, tuple[int, float]] = {}
        for i, run in enumerate(self.runs):
            order = run.meta.labels.get("order")
            rank = (
                float(order) if isinstance(order, int | float) and not isinstance(order, bool) else 1e18 + i
            )
            if run.variant not in first or rank < first[run.variant][1]:
                first[run.variant] = (i, rank)
        return sorted(first, key=lambda v: (v != self.baseline, first[v][1], first[v][0]))

    def cell_of(self, run_id: str) -> Cell:
        """The cell holding run ``run_id``."""
        for cell in self.cells:
            if any(r.run_id == run_id for r in cell.runs):
                return cell
        raise KeyError(run_id)

    def per_interrupt(self) -> pd.DataFrame:
        """:func:`vfiobench.analysis.df_per_interrupt` of every run, with a ``cell`` column first.

        Returns:
            ``[cell, run_id, variant, kind, interrupts, ...]`` (the columns of ``df_per_interrupt``).
        """
        if "per_interrupt" not in self._cache:
            from vfiobench.analysis import df_per_interrupt

            parts = []
            for cell in self.cells:
                # a run label named "cell" (the lab's own cell name) gives way to the page's cell
                df = df_per_interrupt(cell.runs).drop(columns=["cell"], errors="ignore")
                df.insert(0, "cell", cell.label)
                parts.append(df)
            self._cache["per_interrupt"] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return self._cache["per_interrupt"].copy()

    def ab(self) -> pd.DataFrame:
        """Every variant against the baseline within each cell, on :data:`AB_METRICS`.

        Returns:
            ``[cell, variant, metric, quantity, statistic, stat_baseline, stat_variant, ratio,
            ci_low, ci_high, p_value, n_baseline, n_variant, runs_baseline, runs_variant,
            significant, verdict, available]`` (rows of :func:`vfiobench.analysis.df_ab`);
            ``available`` False with the reason in ``verdict`` when a metric has no samples in a
            cell or the cell has no baseline runs.
        """
        if "ab" not in self._cache:
            from vfiobench.analysis import df_ab
            from vfiobench.errors import AnalysisError

            parts = []
            for cell in self.cells:
                others = [v for v in cell.runs.variants if v != self.baseline]
                if not others:
                    continue
                for metric in AB_METRICS:
                    if self.baseline not in cell.runs.variants:
                        reason = f"no {self.baseline} runs in this cell"
                        rows = pd.DataFrame({"variant": others, "metric": metric, "verdict": reason})
                        parts.append(rows.assign(cell=cell.label, available=False))
                        continue
                    try:
                        df = df_ab(cell.runs, metric, baseline=self.baseline, n_boot=self.n_boot)
                        parts.append(df.assign(cell=cell.label, available=True))
                    except AnalysisError as e:
                        rows = pd.DataFrame({"variant": others, "metric": metric, "verdict": str(e)})
                        parts.append(rows.assign(cell=cell.label, available=False))
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["cell", "variant"])
            self._cache["ab"] = df[["cell", *[c for c in df.columns if c != "cell"]]]
        return self._cache["ab"].copy()


def compare_cells(
    runset: RunSet,
    *,
    baseline: object,
    group_by: object = DEFAULT_GROUP_BY,
    include_warmup: object = False,
    n_boot: int = 2000,
) -> Comparison:
    """Validate the grouping parameters, set warm-ups aside and split the runs into cells.

    Args:
        runset: the runs (from :func:`~vfiobench.notebook.open_runs`).
        baseline: the baseline variant.
        group_by: grouping keys (``workload``, a run.json field, or a label such as ``accel``);
            ``[]`` or None compares every run in one group.
        include_warmup: keep warm-up runs (``labels.warmup``) in the comparison.
        n_boot: bootstrap replicates of the A/B intervals.

    Raises:
        ReportError: a bad parameter, or no measured runs / no baseline left once warm-ups are out;
            stops the notebook with the message shown in the page.
    """
    keys = _check_group_by(group_by)
    if not isinstance(include_warmup, bool):
        stop(ReportError(f"parameter include_warmup must be true or false, got {include_warmup!r}"))
    if not isinstance(baseline, str) or not baseline:
        stop(ReportError(f"parameter baseline must be a non-empty string, got {baseline!r}"))
    for key in keys:
        if key not in DEFAULT_GROUP_BY and all(cell_value(r, key) is None for r in runset):
            labels = sorted({k for r in runset for k in r.meta.labels})
            stop(
                ReportError(
                    f"group_by key {key!r} is recorded by none of the runs, so it would group nothing",
                    f"use workload, {', '.join(_META_KEYS)} or a run label ({', '.join(labels) or 'none'})",
                )
            )
    warm = [r for r in runset if is_warmup(r)]
    kept = runset if include_warmup else RunSet(r for r in runset if not is_warmup(r))
    if not len(kept):
        stop(
            ReportError(
                f"all {len(warm)} runs are warm-up runs (labels.warmup); no measured repetition yet",
                "wait for the experiment's first repetition, or set include_warmup: true",
            )
        )
    if baseline not in kept.variants:
        stop(
            ReportError(
                f"baseline variant {baseline!r} has no measured runs (warm-ups excluded); "
                f"measured variants: {', '.join(kept.variants)}",
                "wait for the baseline's runs, or set include_warmup: true",
            )
        )
    if len(kept.variants) < 2:
        stop(
            ReportError(
                f"only {baseline!r} has measured runs (warm-ups excluded); nothing to compare it with",
                "wait for another variant's runs, or set include_warmup: true",
            )
        )
    return Comparison(
        runs=kept,
        baseline=baseline,
        group_by=keys,
        cells=split_cells(kept, keys),
        warmups_excluded=0 if include_warmup else len(warm),
        n_boot=n_boot,
    )


def df_cells(cmp: Comparison) -> pd.DataFrame:
    """One row per cell: its grouping values and its runs.

    Returns:
        ``[cell, *group_by, variants, probed_runs, probe_free_runs, baseline_runs]``.
    """
    rows = []
    for cell in cmp.cells:
        runs = list(cell.runs)
        rows.append(
            {"cell": cell.label}
            | {k: ("–" if v is None else v) for k, v in cell.key}
            | {
                "variants": len(cell.runs.variants),
                "probed_runs": sum(r.meta.kind == "probed" for r in runs),
                "probe_free_runs": sum(r.meta.kind == "probe-free" for r in runs),
                "baseline_runs": sum(r.variant == cmp.baseline for r in runs),
            }
        )
    cols = ["cell", *cmp.group_by, "variants", "probed_runs", "probe_free_runs", "baseline_runs"]
    return pd.DataFrame(rows, columns=cols)


def cells_html(cmp: Comparison) -> str:
    """What is compared: the grouping, the cells and their runs, and the warm-ups left out."""
    by = " × ".join(cmp.group_by) if cmp.group_by else "nothing (every run in one group)"
    parts = [
        f"<p>Compared within each cell of <b>{html.escape(by)}</b>: {len(cmp.cells)} "
        f"cell{'s' if len(cmp.cells) != 1 else ''}; runs of different cells are never pooled. "
        f"Baseline: <b>{html.escape(cmp.baseline)}</b>.</p>"
    ]
    if cmp.warmups_excluded:
        parts.append(
            f'<p class="vfb-note">{cmp.warmups_excluded} warm-up runs (labels.warmup) are left out '
            "of every number on this page.</p>"
        )
    missing = [c.label for c in cmp.cells if cmp.baseline not in c.runs.variants]
    if missing:
        parts.append(
            f'<p class="vfb-bad">No {html.escape(cmp.baseline)} runs in: {html.escape(", ".join(missing))}; '
            "their variants have no verdict.</p>"
        )
    if len(cmp.cells) > 1:
        parts.append(table_html(df_cells(cmp)))
    return "".join(parts)


def show_cells(cmp: Comparison) -> None:
    """Display :func:`cells_html`."""
    show_html(cells_html(cmp))
