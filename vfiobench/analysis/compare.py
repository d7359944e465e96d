"""Comparable sets of runs: runs grouped by release × workload × accel (never pooled), warm-ups set aside.

An experiment such as ``pba.toml`` measures every variant in several **groups** of comparable runs
(one workload under one accelerator on one lab release; the pages call them the experiment's
*cells*). A variant's
numbers only mean something against the baseline *in the same group*: ``no-mask`` under KVM and
``mask-every-irq`` under TCG differ by orders of magnitude, so pooling them would compare the mix of
groups, not the variants; so would pooling QEMU 7.2 on Linux 6.1 with QEMU 11.1 on Linux 7.3.
:func:`make_comparison` groups the runs by ``group_by`` (default ``release`` × ``workload`` ×
``accel``: ``meta.labels["release"]``, ``meta.workload.name`` and ``meta.labels["accel"]``; a run
without the key, such as a host run without ``release``, falls in one group for that key) and drops
warm-up runs (``labels.warmup``) unless asked to keep them.

The :class:`Comparison` it returns caches the per-interrupt accounting and the A/B tables, so each is
computed once however many tables (:mod:`~vfiobench.analysis.headline`,
:mod:`~vfiobench.analysis.overhead`, ...) read them.

Example:
    >>> from vfiobench.store import load_runs                                  # doctest: +SKIP
    >>> cmp = make_comparison(load_runs("data/experiments/pba"), baseline="stock")  # doctest: +SKIP
    >>> [g.label for g in cmp.groups]                                          # doctest: +SKIP
    ['mask-every-irq · kvm', 'mask-every-irq · tcg', 'no-mask · kvm', 'no-mask · tcg']
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from vfiobench.errors import AnalysisError
from vfiobench.store import Run, RunSet

#: Default grouping of a comparison: one group per experiment, lab release, workload and accelerator
#: (runs without a ``release`` label, e.g. from a real host, group by workload and accelerator alone).
#: Runs of two experiments are never pooled: each experiment interleaved its own variants, and two
#: recordings of one cell (e.g. stock on bookworm in ``pba`` and in ``auto``) ran at other times. When
#: every run is of one experiment (or of none) the key is dropped, so labels stay ``release · workload
#: · accel``, the experiment's own cell names.
DEFAULT_GROUP_BY: tuple[str, ...] = ("experiment", "release", "workload", "accel")

#: A grouping key kept only when the runs differ in it (see :func:`split_groups`).
SPLIT_ONLY_IF_MIXED: tuple[str, ...] = ("experiment",)

#: Run attributes a grouping key may name besides ``workload`` and the run's labels.
META_KEYS: tuple[str, ...] = ("variant", "kind", "status", "source")

#: Metrics of the per-group A/B tables (see :func:`vfiobench.analysis.metric_samples`).
AB_METRICS: tuple[str, ...] = ("us_per_irq", "latency_ns")


def group_value(run: Run, key: str) -> Any:
    """The value of grouping key ``key`` for ``run`` (None when the run does not record it).

    ``workload`` is ``meta.workload.name``; ``variant``/``kind``/``status``/``source`` are run.json
    fields; anything else is a label (``accel``, ``repetition``...).
    """
    if key == "workload":
        return run.meta.workload.name or None
    if key in META_KEYS:
        return getattr(run.meta, key)
    value = run.meta.labels.get(key)
    return None if value == "" else value


def is_warmup(run: Run) -> bool:
    """True for a warm-up run (run.json ``labels.warmup`` true): recorded, never compared."""
    return run.meta.labels.get("warmup") is True


@dataclass(frozen=True)
class RunGroup:
    """One group of comparable runs: the runs sharing every grouping value.

    Attributes:
        key: ``((key, value), ...)`` in ``group_by`` order; value None when the runs lack the key.
        runs: the group's runs (all variants).
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


def release_ranks(runs: Iterable[Run]) -> dict[str, int]:
    """Each release of ``runs`` (label ``release``) ranked oldest first, 0 up, by its L1 kernel.

    The analysis knows no list of releases (that is the lab's); a newer Debian release runs a newer
    kernel (bookworm 6.1, trixie 6.12, trixie-backports 7.3), so the runs say the order themselves:
    each release by the oldest kernel its runs record, compared as numbers. A release with a run
    that records no kernel ranks first; ties go by name.
    """

    def version(kernel: str) -> tuple[int, ...]:
        return tuple(int(x) for x in re.findall(r"\d+", kernel.split("-")[0])[:3])

    kernels: dict[str, tuple[int, ...]] = {}
    for r in runs:
        release = r.meta.labels.get("release")
        if isinstance(release, str):
            v = version(r.meta.host.kernel_release or "")
            kernels[release] = min(kernels.get(release, v), v)
    return {name: i for i, name in enumerate(sorted(kernels, key=lambda n: (kernels[n], n)))}


def split_groups(runset: RunSet, group_by: Sequence[str] = DEFAULT_GROUP_BY) -> list[RunGroup]:
    """Group runs, in the order their first run appears in plan order.

    Plan order is by experiment, then release (oldest first, :func:`release_ranks`; an experiment
    recorded in parts has one plan per part), then by each run's
    position in its plan (labels ``experiment``, ``release`` and ``order``, which ``vfiobench run``
    writes); runs without them come first, in the order given. Runs lacking a key share one group
    for it (``None``); an empty ``group_by`` gives one group. A key of :data:`SPLIT_ONLY_IF_MIXED`
    on which every run agrees is left out of the keys.
    """
    ranks = release_ranks(runset)

    def plan_position(run: Run) -> tuple[str, int, float]:
        labels = run.meta.labels
        order = labels.get("order")
        return (
            str(labels.get("experiment", "")),
            ranks.get(str(labels.get("release")), -1),
            float(order) if isinstance(order, int) else 0.0,
        )

    group_by = [
        k for k in group_by if k not in SPLIT_ONLY_IF_MIXED or len({group_value(r, k) for r in runset}) > 1
    ]
    groups: dict[tuple[tuple[str, Any], ...], list[Run]] = {}
    for run in sorted(runset, key=plan_position):
        key = tuple((k, group_value(run, k)) for k in group_by)
        groups.setdefault(key, []).append(run)
    return [RunGroup(key, RunSet(runs)) for key, runs in groups.items()]


@dataclass
class Comparison:
    """The runs compared, split into groups, with cached analysis frames.

    Attributes:
        runs: the compared runs (warm-ups left out unless ``include_warmup``).
        baseline: the variant every other one is compared against, within each group.
        group_by: the grouping keys.
        groups: the groups, in plan order.
        warmups_excluded: how many warm-up runs were left out.
    """

    runs: RunSet
    baseline: str
    group_by: tuple[str, ...]
    groups: list[RunGroup]
    warmups_excluded: int = 0
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

    def group_of(self, run_id: str) -> RunGroup:
        """The group holding run ``run_id``."""
        for group in self.groups:
            if any(r.run_id == run_id for r in group.runs):
                return group
        raise KeyError(run_id)

    def per_interrupt(self) -> pd.DataFrame:
        """:func:`vfiobench.analysis.df_per_interrupt` of every run, with a ``group`` column first.

        Returns:
            ``[group, run_id, variant, kind, interrupts, ...]`` (the columns of
            ``df_per_interrupt``); ``group`` is the group's label.
        """
        if "per_interrupt" not in self._cache:
            from vfiobench.analysis.per_interrupt import df_per_interrupt

            parts = []
            for group in self.groups:
                # a run label named "group" gives way to the comparison's group
                df = df_per_interrupt(group.runs).drop(columns=["group"], errors="ignore")
                df.insert(0, "group", group.label)
                parts.append(df)
            self._cache["per_interrupt"] = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        return self._cache["per_interrupt"].copy()

    def ab(self) -> pd.DataFrame:
        """Every variant against the baseline within each group, on :data:`AB_METRICS`.

        Returns:
            ``[group, variant, metric, quantity, statistic, stat_baseline, stat_variant, ratio,
            ci_low, ci_high, p_value, n_baseline, n_variant, runs_baseline, runs_variant,
            significant, verdict, available]`` (rows of :func:`vfiobench.analysis.df_ab`);
            ``available`` False with the reason in ``verdict`` when a metric has no samples in a
            group or the group has no baseline runs.
        """
        if "ab" not in self._cache:
            from vfiobench.analysis.ab import df_ab

            parts = []
            for group in self.groups:
                others = [v for v in group.runs.variants if v != self.baseline]
                if not others:
                    continue
                for metric in AB_METRICS:
                    if self.baseline not in group.runs.variants:
                        reason = f"no {self.baseline} runs in this cell"
                        rows = pd.DataFrame({"variant": others, "metric": metric, "verdict": reason})
                        parts.append(rows.assign(group=group.label, available=False))
                        continue
                    try:
                        df = df_ab(group.runs, metric, baseline=self.baseline)
                        parts.append(df.assign(group=group.label, available=True))
                    except AnalysisError as e:
                        rows = pd.DataFrame({"variant": others, "metric": metric, "verdict": str(e)})
                        parts.append(rows.assign(group=group.label, available=False))
            df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["group", "variant"])
            self._cache["ab"] = df[["group", *[c for c in df.columns if c != "group"]]]
        return self._cache["ab"].copy()

    @property
    def has_stalls(self) -> bool:
        """Whether any run flagged interrupts that overlapped an L1 stall (lab runs)."""
        return any(int(r.meta.labels.get("stalled_interrupts") or 0) > 0 for r in self.runs)

    def ab_without_stalls(self) -> pd.DataFrame:
        """The end-to-end comparisons again, leaving out interrupts that overlapped an L1 stall.

        Returns:
            ``[group, variant, metric, ratio, ci_low, ci_high, significant, enough_runs, verdict,
            ratio_all, ci_low_all, ci_high_all, significant_all]``: per group, variant and workload
            metric (``latency_ns``), the comparison without stalled interrupts beside the one with all
            of them (``*_all``); empty when no run flagged a stall.
        """
        if "ab_nostall" not in self._cache:
            from vfiobench.analysis.ab import df_ab

            cols = ["group", "variant", "metric", "ratio", "ci_low", "ci_high", "significant", "enough_runs"]
            cols += ["verdict", "ratio_all", "ci_low_all", "ci_high_all", "significant_all"]
            parts = []
            if self.has_stalls:
                full = self.ab()
                for group in self.groups:
                    if self.baseline not in group.runs.variants or len(group.runs.variants) < 2:
                        continue
                    try:
                        df = df_ab(group.runs, "latency_ns", baseline=self.baseline, exclude_stalled=True)
                    except AnalysisError:
                        continue
                    ref = full[(full["group"] == group.label) & (full["metric"] == "latency_ns")]
                    ref = ref.set_index("variant")
                    for c in ("ratio", "ci_low", "ci_high", "significant"):
                        df[f"{c}_all"] = df["variant"].map(ref[c]) if c in ref.columns else None
                    parts.append(df.assign(group=group.label))
            out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
            self._cache["ab_nostall"] = out[cols]
        return self._cache["ab_nostall"].copy()


def make_comparison(
    runset: RunSet,
    *,
    baseline: str,
    group_by: Sequence[str] = DEFAULT_GROUP_BY,
    include_warmup: bool = False,
) -> Comparison:
    """Set warm-ups aside and split the runs into groups of comparable runs.

    Args:
        runset: the runs.
        baseline: the baseline variant.
        group_by: grouping keys (``workload``, a run.json field, or a label such as ``accel``);
            ``[]`` compares every run in one group.
        include_warmup: keep warm-up runs (``labels.warmup``) in the comparison.

    Raises:
        AnalysisError: a grouping key no run records, no measured runs once warm-ups are out, no
            measured baseline runs, or nothing to compare the baseline with.
    """
    keys = tuple(group_by)
    for key in keys:
        if key not in DEFAULT_GROUP_BY and all(group_value(r, key) is None for r in runset):
            labels = sorted({k for r in runset for k in r.meta.labels})
            raise AnalysisError(
                f"group_by key {key!r} is recorded by none of the runs, so it would group nothing",
                f"use workload, {', '.join(META_KEYS)} or a run label ({', '.join(labels) or 'none'})",
            )
    warm = [r for r in runset if is_warmup(r)]
    kept = runset if include_warmup else RunSet(r for r in runset if not is_warmup(r))
    if not len(kept):
        raise AnalysisError(
            f"all {len(warm)} runs are warm-up runs (labels.warmup); no measured repetition yet",
            "wait for the experiment's first repetition, or set include_warmup: true",
        )
    if baseline not in kept.variants:
        raise AnalysisError(
            f"baseline variant {baseline!r} has no measured runs (warm-ups excluded); "
            f"measured variants: {', '.join(kept.variants)}",
            "wait for the baseline's runs, or set include_warmup: true",
        )
    if len(kept.variants) < 2:
        raise AnalysisError(
            f"only {baseline!r} has measured runs (warm-ups excluded); nothing to compare it with",
            "wait for another variant's runs, or set include_warmup: true",
        )
    return Comparison(
        runs=kept,
        baseline=baseline,
        group_by=keys,
        groups=split_groups(kept, keys),
        warmups_excluded=0 if include_warmup else len(warm),
    )


def df_groups(cmp: Comparison) -> pd.DataFrame:
    """One row per group: its grouping values and its runs.

    Returns:
        ``[group, *group_by, variants, probed_runs, probe_free_runs, baseline_runs]``; ``group`` is
        the group's label, a value the group lacks is ``"–"``.
    """
    rows = []
    for group in cmp.groups:
        runs = list(group.runs)
        rows.append(
            {"group": group.label}
            | {k: ("–" if v is None else v) for k, v in group.key}
            | {
                "variants": len(group.runs.variants),
                "probed_runs": sum(r.meta.kind == "probed" for r in runs),
                "probe_free_runs": sum(r.meta.kind == "probe-free" for r in runs),
                "baseline_runs": sum(r.variant == cmp.baseline for r in runs),
            }
        )
    cols = ["group", *cmp.group_by, "variants", "probed_runs", "probe_free_runs", "baseline_runs"]
    return pd.DataFrame(rows, columns=cols)


def df_verdicts(runset: RunSet, baseline: str, metrics: Sequence[str] = AB_METRICS) -> pd.DataFrame:
    """A/B results of every variant against ``baseline`` on each metric that has samples (no groups).

    Returns:
        The rows of :func:`vfiobench.analysis.df_ab` for every metric, concatenated, plus
        ``available`` (False with the reason in ``verdict`` when a metric has no samples).
    """
    from vfiobench.analysis.ab import df_ab

    parts = []
    for metric in metrics:
        try:
            parts.append(df_ab(runset, metric, baseline=baseline).assign(available=True))
        except AnalysisError as e:
            parts.append(
                pd.DataFrame(
                    [{"metric": metric, "baseline": baseline, "verdict": str(e), "available": False}]
                )
            )
    return pd.concat(parts, ignore_index=True)


def df_group_repetitions(cmp: Comparison, metric: str) -> pd.DataFrame:
    """:func:`vfiobench.analysis.df_repetitions` of ``metric`` in every group, one row per run.

    Returns:
        ``[group, run_id, variant, ...]`` (the columns of ``df_repetitions``); groups without
        samples of ``metric`` are left out, so the frame is empty when no group has any.
    """
    from vfiobench.analysis.ab import df_repetitions

    parts = []
    for group in cmp.groups:
        try:
            reps = df_repetitions(group.runs, metric)
        except AnalysisError:
            continue
        reps.insert(0, "group", group.label)
        parts.append(reps)
    return (
        pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["group", "run_id", "variant"])
    )
