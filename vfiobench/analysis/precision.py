"""How precisely a comparison is known: the relative half-width of its 95 % interval.

The adaptive repetitions of an experiment (``repetitions = { min, max, target }`` in a spec) stop
adding runs to a cell once every variant's interval is narrow enough; this module defines "narrow
enough" and reads back what an experiment recorded about it.

**Relative half-width** (:func:`relative_half_width`), one number per comparison of a variant with
the baseline (a row of :func:`~vfiobench.analysis.ab.df_ab`):

* **ratio**: the interval is ``exp(d ± h)`` (Welch on log per-run values), symmetric on the log
  scale, so the width is ``exp(h) - 1 = sqrt(hi / lo) - 1``: the interval's ends are within a factor
  ``1 + width`` of the estimate (``hi = est·(1 + w)``, ``lo = est/(1 + w)``). A ratio of 1.00
  [0.95, 1.05] has width 0.05, and so has 5.0 [4.76, 5.25]: the rule asks the same relative
  precision of an effect and of a null result, which a width relative to the ratio's distance from 1
  could not.
* **difference** (a side near zero: an operation a variant removed): the half-width ``(hi - lo) / 2``
  divided by the **larger side's mean**, the scale of what is compared. A difference is chosen exactly
  when one side is near zero, so that scale is the estimate's own size for a removed operation
  (182 → <1: divided by 182), while dividing by the estimate itself would never stop for a variant
  that changes nothing where both sides are near zero (0.3 → 0.3 µs: ``0 ± 0.05`` is infinitely
  imprecise relative to 0, but known to 17 % of the quantity).
* no interval (fewer than :data:`~vfiobench.analysis.inference.MIN_RUNS` runs a side): NaN, never
  within a target.

The rule uses the width only, never the p-value: whether a difference is significant does not decide
when to stop, so stopping cannot favour one answer (stopping when ``p < 0.05`` would).

Example:
    >>> round(relative_half_width("ratio", 5.0, 4.0, 6.25), 4)   # sqrt(6.25 / 4) - 1
    0.25
    >>> relative_half_width("difference", 180.0, 171.0, 189.0, 180.5, 0.5)   # 9 / 180.5
    0.04986149584487535
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from vfiobench.analysis.compare import Comparison
from vfiobench.errors import AnalysisError
from vfiobench.store import RunSet

#: The name of an experiment's metadata file: ``<out>/experiment.json`` beside ``<out>/runs/``.
EXPERIMENT_JSON = "experiment.json"

#: Columns of :func:`df_precision`.
PRECISION_COLUMNS: list[str] = [
    "variant", "metric", "kind", "estimate", "ci_low", "ci_high", "runs_baseline", "runs_variant",
    "half_width",
]  # fmt: skip


def relative_half_width(
    kind: str,
    estimate: float,
    ci_low: float | None,
    ci_high: float | None,
    center_a: float = math.nan,
    center_b: float = math.nan,
) -> float:
    """The interval's relative half-width (see the module docstring); NaN without an interval.

    Args:
        kind: ``"ratio"`` or ``"difference"``.
        estimate: the point estimate (ratio ``a / b`` or difference ``a - b``).
        ci_low: the interval's low end (None or NaN: no interval).
        ci_high: its high end.
        center_a: the baseline side's mean (a difference's scale is the larger side's).
        center_b: the candidate side's mean.
    """
    if ci_low is None or ci_high is None or not (math.isfinite(ci_low) and math.isfinite(ci_high)):
        return math.nan
    if kind == "ratio":
        if ci_low <= 0:
            return math.inf
        return math.sqrt(ci_high / ci_low) - 1.0
    half = (ci_high - ci_low) / 2.0
    scale = max(abs(center_a), abs(center_b)) if math.isfinite(center_a + center_b) else abs(estimate)
    if half == 0.0:
        return 0.0
    return half / scale if scale > 0 else math.inf


def df_precision(runset: RunSet, baseline: str, metrics: Sequence[str] = ("us_per_irq",)) -> pd.DataFrame:
    """Every non-baseline variant's relative half-width on each metric, over the runs given.

    The runs should be one cell (one workload under one accelerator: see
    :func:`~vfiobench.analysis.compare.split_groups`); warm-ups should be left out by the caller.

    Returns:
        ``[variant, metric, kind, estimate, ci_low, ci_high, runs_baseline, runs_variant,
        half_width]``, one row per (variant, metric); ``half_width`` NaN where there is no interval
        yet, and a variant without samples of a metric gets a row with ``kind`` "no samples".
    """
    from vfiobench.analysis.ab import df_ab

    variants = [v for v in runset.variants if v != baseline]
    rows: list[dict[str, Any]] = []
    for metric in metrics:
        try:
            ab = df_ab(runset, metric, baseline=baseline)
        except AnalysisError:
            ab = pd.DataFrame(columns=["variant"])
        seen = set(ab["variant"])
        for rec in ab.to_dict(orient="records"):
            kind = str(rec["kind"])
            pre = "" if kind == "ratio" else "diff_"
            est = float(rec["ratio" if kind == "ratio" else "difference"])
            lo, hi = (
                float(rec[f"{pre}low" if pre else "ci_low"]),
                float(rec[f"{pre}high" if pre else "ci_high"]),
            )
            width = relative_half_width(
                kind, est, lo, hi, float(rec["stat_baseline"]), float(rec["stat_variant"])
            )
            rows.append(
                {
                    "variant": rec["variant"],
                    "metric": metric,
                    "kind": kind,
                    "estimate": est,
                    "ci_low": lo,
                    "ci_high": hi,
                    "runs_baseline": int(rec["runs_baseline"]),
                    "runs_variant": int(rec["runs_variant"]),
                    "half_width": width,
                }
            )
        for v in variants:
            if v not in seen:
                rows.append({"variant": v, "metric": metric, "kind": "no samples", "half_width": math.nan})
    return pd.DataFrame(rows, columns=PRECISION_COLUMNS)


def within_target(precision: pd.DataFrame, target: float) -> bool:
    """True when every row of :func:`df_precision` has an interval and its width is ``<= target``."""
    widths = pd.to_numeric(precision["half_width"], errors="coerce")
    return bool(len(widths)) and bool((widths.notna() & (widths <= target)).all())


def experiment_records(runset: RunSet) -> dict[str, dict[str, Any]]:
    """The metadata each experiment of these runs recorded (``experiment.json``), by experiment name.

    Looked for beside each run's ``runs/`` directory (``<out>/experiment.json``, where ``vfiobench
    run`` writes it) and beside an exported run (``<dest>/<name>.experiment.json``, where
    ``python -m vfiobench.experiment.export`` copies it, plus ``<name>.<digest>.experiment.json``
    for each further part of an experiment recorded in parts: their cells and runs are added to
    the first part's record, and ``parts`` lists every part's spec path and digest). Runs of no
    experiment, or whose file is gone, contribute nothing; an unreadable file is skipped.
    """
    found: dict[str, dict[str, Any]] = {}
    for run in runset:
        name = run.meta.labels.get("experiment")
        if not isinstance(name, str) or name in found:
            continue
        exported = [run.path.parent / f"{name}.{EXPERIMENT_JSON}"]
        exported += sorted(run.path.parent.glob(f"{name}.*.{EXPERIMENT_JSON}"))
        for paths in ([run.path.parent.parent / EXPERIMENT_JSON], exported):
            parts = [d for d in map(read_record, paths) if d is not None and d.get("name") == name]
            if parts:
                found[name] = _merged(parts)
                break
    return found


def read_record(path: Path) -> dict[str, Any] | None:
    """An experiment record (``experiment.json``) as a dict; None when absent or not a JSON object."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """One record of an experiment's parts: the first part's, with every part's cells and runs."""
    if len(parts) == 1:
        return parts[0]
    merged = dict(parts[0])
    merged["parts"] = [{"path": p.get("path"), "digest": p.get("digest")} for p in parts]
    merged["runs"] = [r for p in parts for r in p.get("runs") or []]
    rules: list[dict[str, Any]] = [p["repetitions"] for p in parts if isinstance(p.get("repetitions"), dict)]
    if rules:
        merged["repetitions"] = {**rules[0], "cells": [c for r in rules for c in r.get("cells") or []]}
    return merged


def df_ab_widths(ab: pd.DataFrame) -> pd.DataFrame:
    """The relative half-width of every available row of an A/B table (:meth:`Comparison.ab`).

    Returns:
        ``[group, metric, variant, kind, runs_baseline, runs_variant, half_width]``; rows that are
        not available (no samples, no baseline) are left out.
    """
    cols = ["group", "metric", "variant", "kind", "runs_baseline", "runs_variant", "half_width"]
    if ab.empty or "kind" not in ab.columns:
        return pd.DataFrame(columns=cols)
    rows = []
    for rec in ab.to_dict(orient="records"):
        if not rec.get("available", True):
            continue
        kind = str(rec["kind"])
        ratio = kind == "ratio"
        lo = float(rec["ci_low"] if ratio else rec["diff_low"])
        hi = float(rec["ci_high"] if ratio else rec["diff_high"])
        est = float(rec["ratio"] if ratio else rec["difference"])
        width = relative_half_width(
            kind, est, lo, hi, float(rec["stat_baseline"]), float(rec["stat_variant"])
        )
        rows.append(
            {
                "group": rec.get("group", "all runs"),
                "metric": rec["metric"],
                "variant": rec["variant"],
                "kind": kind,
                "runs_baseline": int(rec["runs_baseline"]),
                "runs_variant": int(rec["runs_variant"]),
                "half_width": width,
            }
        )
    return pd.DataFrame(rows, columns=cols)


#: Columns of :func:`df_stopping`.
STOPPING_COLUMNS: list[str] = [
    "group", "experiment", "repetitions", "status", "reason", "recorded_half_width", "metric",
    "widest_variant", "half_width",
]  # fmt: skip


def df_stopping(cmp: Comparison) -> pd.DataFrame:
    """Per cell and A/B metric: the repetitions rule's record and the precision of the page's intervals.

    ``repetitions``, ``status``, ``reason`` and ``recorded_half_width`` come from the experiment's
    record (:func:`experiment_records`, matched by the group's experiment and its cell name
    ``release · workload · accel``; None where there is none, e.g. runs of no experiment);
    ``half_width`` is the widest relative half-width over the cell's variants on ``metric``, computed
    from the runs compared (NaN: some variant has no interval), and ``widest_variant`` the variant
    it belongs to.

    Returns:
        The columns of :data:`STOPPING_COLUMNS`, one row per (cell, metric) with A/B rows.
    """
    records = experiment_records(cmp.runs)
    by_cell: dict[tuple[str, str], dict[str, Any]] = {}
    for name, data in records.items():
        for cell in (data.get("repetitions") or {}).get("cells", []):
            by_cell.setdefault((name, str(cell.get("cell"))), cell)
    widths = df_ab_widths(cmp.ab())
    rows: list[dict[str, Any]] = []
    for group in cmp.groups:
        # the experiment's own name for the cell: the group's values without the experiment's name
        exp_name = group.values.get("experiment") or next(iter(group.runs)).meta.labels.get("experiment")
        label = " · ".join(str(v) for k, v in group.key if v is not None and k != "experiment")
        cell = by_cell.get((str(exp_name), label), {})
        exp = str(exp_name) if cell else None
        for metric in dict.fromkeys(widths["metric"]):
            w = widths[(widths["group"] == group.label) & (widths["metric"] == metric)]
            if w.empty:
                continue
            hw = w["half_width"].astype(float)
            widest = w.loc[hw.fillna(math.inf).idxmax()]
            rows.append(
                {
                    "group": group.label,
                    "experiment": exp,
                    "repetitions": cell.get("repetitions"),
                    "status": cell.get("status"),
                    "reason": cell.get("reason"),
                    "recorded_half_width": cell.get("half_width"),
                    "metric": metric,
                    "widest_variant": widest["variant"],
                    "half_width": math.nan if hw.isna().any() else float(hw.max()),
                }
            )
    return pd.DataFrame(rows, columns=STOPPING_COLUMNS)


def stopping_rules(cmp: Comparison) -> dict[str, dict[str, Any]]:
    """The repetitions rule each experiment of the compared runs recorded (``{}`` without records)."""
    return {
        name: dict(data.get("repetitions") or {})
        for name, data in experiment_records(cmp.runs).items()
        if data.get("repetitions")
    }
