"""The interactive way in: load runs, slice them, get a DataFrame or a Bokeh figure back.

One cohesive facade (over 500 lines): one method per question, each a thin call into a layer below.

Every method is a thin call into :mod:`vfiobench.analysis` (DataFrames, times in ns) or
:mod:`vfiobench.plots` (Bokeh figures); nothing here computes
anything of its own, so what a notebook shows is what the reports show.

Example:
    >>> import vfiobench as vb
    >>> runs = vb.load("data/sample")                                        # doctest: +SKIP
    >>> runs                                                                 # doctest: +SKIP
    Runs(12 runs: stock ×6, pba-always-on ×6; probed 6, probe-free 6; source synthetic)
    >>> stock = runs.filter(variant="stock", kind="probed")                  # doctest: +SKIP
    >>> stock.latency("pba_toggle")[["variant", "p50_ns", "p99_ns"]]          # doctest: +SKIP
    >>> runs.compare("stock", "pba-always-on")[["metric", "ratio", "verdict"]]  # doctest: +SKIP
    >>> vb.api.show(runs.plot_timeline_view())                               # doctest: +SKIP

In JupyterLab a :class:`Runs` displays as a table of its runs; :func:`show` displays any figure
with BokehJS inlined (linked views work in the notebook and in a saved page alike).
"""

from __future__ import annotations

import html
import os
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from vfiobench.errors import AnalysisError
from vfiobench.schema import OPERATION_TABLES, WORKLOAD
from vfiobench.store import Run, RunSet, load_runs

#: Columns of the runs table shown by :meth:`Runs._repr_html_`.
SUMMARY_COLUMNS: tuple[str, ...] = (
    "run_id", "variant", "kind", "source", "status", "workload", "accel", "repetition", "interrupts",
    "lost_events", "checks_ok",
)  # fmt: skip

Selector = str | Sequence[str] | None


def _as_set(value: Selector) -> set[str] | None:
    if value is None:
        return None
    return {value} if isinstance(value, str) else {str(v) for v in value}


class Runs(RunSet):
    """The runs, for exploring: the one interactive way in (what :func:`load` returns).

    A :class:`~vfiobench.store.RunSet` (iterate it, index it by run id, pass it to any
    :mod:`vfiobench.analysis` function) with the interactive methods on top: :meth:`filter`,
    :meth:`latency`, :meth:`per_interrupt`, :meth:`compare`, :meth:`timeline`, the ``plot_*``
    methods, and a table display in JupyterLab.

    Args:
        runs: the runs.

    Example:
        >>> runs = load("data/sample")                # doctest: +SKIP
        >>> len(runs), runs.variants                  # doctest: +SKIP
        (12, ['stock', 'pba-always-on'])
    """

    def __init__(self, runs: Iterable[Run]) -> None:
        super().__init__(runs)
        self._timelines: dict[float, pd.DataFrame] = {}  # by expect_fraction

    # ------------------------------------------------------------------------------------ the set

    @property
    def run_ids(self) -> list[str]:
        """Run identifiers, in load order."""
        return [r.run_id for r in self]

    def filter(
        self,
        variant: Selector = None,
        workload: Selector = None,
        accel: Selector = None,
        kind: Selector = None,
        source: Selector = None,
        **labels: Any,
    ) -> Runs:
        """The runs matching every given criterion; each takes one value or a list of accepted values.

        Args:
            variant: variant label(s), e.g. ``"stock"`` or ``["stock", "pba-always-on"]``.
            workload: workload name(s), e.g. ``"mask-every-irq"``.
            accel: the ``accel`` label (``"kvm"``, ``"tcg"``).
            kind: ``"probed"`` or ``"probe-free"``.
            source: ``"lab"``, ``"host"`` or ``"synthetic"``.
            **labels: any other run label, e.g. ``repetition=1``.

        Example:
            >>> runs.filter(variant="stock", kind="probed").run_ids      # doctest: +SKIP
            ['r1-stock-probed', 'r2-stock-probed', 'r3-stock-probed']
        """
        want: dict[str, set[str] | None] = {
            "variant": _as_set(variant),
            "workload": _as_set(workload),
            "accel": _as_set(accel),
            "kind": _as_set(kind),
            "source": _as_set(source),
        }

        from vfiobench.analysis.timeline import run_label

        def value(run: Run, key: str) -> Any:
            if key not in ("workload", "accel") and hasattr(run.meta, key):
                return getattr(run.meta, key)  # variant, kind, source, status
            return run_label(run, key)

        def keep(run: Run) -> bool:
            for key, accepted in want.items():
                if accepted is not None and str(value(run, key)) not in accepted:
                    return False
            for key, v in labels.items():
                accepted_l = {str(x) for x in v} if isinstance(v, list | tuple | set) else {str(v)}
                if str(value(run, key)) not in accepted_l:
                    return False
            return True

        return Runs(r for r in self if keep(r))

    def meta(self) -> pd.DataFrame:
        """One row per run (:meth:`~vfiobench.store.RunSet.meta_frame`).

        Example:
            >>> runs.meta()[["run_id", "variant", "kind", "lost_events"]]     # doctest: +SKIP
        """
        return self.meta_frame()

    def summary(self) -> pd.DataFrame:
        """The compact runs table shown in JupyterLab.

        Returns:
            ``[run_id, variant, kind, source, status, workload, accel, repetition, interrupts,
            lost_events, checks_ok]`` (``interrupts`` from the workload counters when recorded).

        Example:
            >>> runs.summary()                                               # doctest: +SKIP
        """
        rows = []
        for r in self:
            m = r.meta
            params = m.workload.params
            interrupts = params.get("delivered", (params.get("counters") or {}).get("delivered"))
            rows.append(
                {
                    "run_id": m.run_id,
                    "variant": m.variant,
                    "kind": m.kind,
                    "source": m.source,
                    "status": m.status,
                    "workload": m.workload.name,
                    "accel": m.labels.get("accel", params.get("accel")),
                    "repetition": m.labels.get("repetition"),
                    "interrupts": interrupts,
                    "lost_events": m.lost_events,
                    "checks_ok": m.checks_ok if m.checks else None,
                }
            )
        return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))

    def __repr__(self) -> str:
        if not len(self):
            return "Runs(0 runs)"
        from collections import Counter

        metas = [r.meta for r in self]
        variants = Counter(m.variant for m in metas)  # first-seen order
        by_variant = ", ".join(f"{v} ×{n}" for v, n in variants.items())
        kinds = ", ".join(f"{k} {n}" for k, n in Counter(m.kind for m in metas).items())
        sources = ", ".join(dict.fromkeys(m.source for m in metas))
        return f"Runs({len(self)} runs: {by_variant}; {kinds}; source {sources})"

    def _repr_html_(self) -> str:
        """JupyterLab display: a one-line summary and the runs table (escaped)."""
        table = self.summary().to_html(index=False, na_rep="–", escape=True, border=0)
        synthetic = any(r.meta.source == "synthetic" for r in self)
        warn = " <b>Synthetic data, not a measurement.</b>" if synthetic else ""
        return f"<p>{html.escape(repr(self))}{warn}</p>{table}"

    # ------------------------------------------------------------------------------- DataFrames

    def _operation(self, operation: str) -> tuple[pd.DataFrame, str]:
        """The samples table of an operation and its value column."""
        if operation not in OPERATION_TABLES:
            raise AnalysisError(
                f"unknown operation {operation!r}", f"use one of {', '.join(OPERATION_TABLES)}"
            )
        table = OPERATION_TABLES[operation]
        df = self.table(table)
        if table == WORKLOAD:
            if "latency_ns" not in df.columns:
                raise AnalysisError("no workload table with latency_ns in these runs")
            if "delivered" in df.columns:
                df = df[df["delivered"].astype(bool)]
            kinds = {r.run_id: r.meta.kind for r in self}
            return df.assign(kind=df["run_id"].map(kinds)), "latency_ns"
        if df.empty or not ({"dur_ns"} <= set(df.columns) or {"bucket", "count"} <= set(df.columns)):
            raise AnalysisError(f"no {table} calls in these runs (probe-free runs have none)")
        return df, "dur_ns"

    @staticmethod
    def _by(operation: str, by: Sequence[str] | None) -> list[str]:
        if by is not None:
            return list(by)
        return ["variant", "kind"] if OPERATION_TABLES.get(operation) == WORKLOAD else ["variant"]

    def latency(self, operation: str = "interrupt", by: Sequence[str] | None = None) -> pd.DataFrame:
        """Latency summary of an operation: count, mean, p50/p90/p99/p99.9, max (ns).

        Args:
            operation: ``"interrupt"`` (the workload's trigger → delivery latency) or a probed
                operation: ``"set_irqs"``, ``"set_vector_signal"``, ``"pba_toggle"``, ``"commit"``.
            by: grouping columns (default ``variant``; ``variant, kind`` for ``interrupt``, since
                probes inflate end-to-end times).

        Returns:
            :func:`~vfiobench.analysis.latency.df_latency_summary`: ``[*by, count, mean_ns,
            p50_ns, p90_ns, p99_ns, p999_ns, max_ns]``.

        Example:
            >>> runs.latency("pba_toggle")[["variant", "count", "p50_ns"]]    # doctest: +SKIP
        """
        from vfiobench.analysis import df_latency_summary

        df, value = self._operation(operation)
        return df_latency_summary(df, value=value, by=self._by(operation, by))

    def histogram(self, operation: str = "interrupt", by: Sequence[str] | None = None) -> pd.DataFrame:
        """Log-linear latency histogram of an operation per group.

        Returns:
            :func:`~vfiobench.analysis.latency.df_histograms`: ``[*by, bucket, lo_ns, hi_ns, count]``.

        Example:
            >>> runs.histogram("set_irqs").groupby("variant")["count"].sum()  # doctest: +SKIP
        """
        from vfiobench.analysis import df_histograms

        df, value = self._operation(operation)
        return df_histograms(df, value=value, by=self._by(operation, by))

    def cdf(self, operation: str = "interrupt", by: Sequence[str] | None = None) -> pd.DataFrame:
        """Empirical CDF of an operation's latency per group (:func:`~vfiobench.analysis.latency.df_cdf`).

        Example:
            >>> runs.cdf("pba_toggle").tail(3)                               # doctest: +SKIP
        """
        from vfiobench.analysis import df_cdf

        df, value = self._operation(operation)
        return df_cdf(df, value=value, by=self._by(operation, by))

    def per_interrupt(self) -> pd.DataFrame:
        """Counts and µs per delivered interrupt, one row per run.

        Returns:
            :func:`~vfiobench.analysis.per_interrupt.df_per_interrupt` (``set_irqs_per_irq``,
            ``pba_toggles_per_irq``, ``total_us_per_irq``...).

        Example:
            >>> runs.per_interrupt()[["run_id", "pba_toggles_per_irq"]]       # doctest: +SKIP
        """
        from vfiobench.analysis import df_per_interrupt

        return df_per_interrupt(self)

    def cost_breakdown(self) -> pd.DataFrame:
        """Exclusive µs per interrupt by operation per variant (``analysis.df_cost_breakdown``).

        Example:
            >>> runs.cost_breakdown()                                        # doctest: +SKIP
        """
        from vfiobench.analysis import df_cost_breakdown

        return df_cost_breakdown(self.per_interrupt())

    def compare(
        self,
        baseline: str,
        *variants: str,
        metrics: Sequence[str] = ("latency_ns", "us_per_irq"),
        include_warmup: bool = False,
    ) -> pd.DataFrame:
        """A/B: each variant against ``baseline`` on each metric, within each cell.

        A cell is one lab release × workload × accelerator, the grouping of the A/B page
        (:data:`~vfiobench.analysis.compare.DEFAULT_GROUP_BY`). Runs of different cells are never
        pooled (a no-mask run says nothing about a masked one, QEMU 7.2 nothing about 10.0), and
        warm-up runs (``labels.warmup``) are left out unless asked for.

        Args:
            baseline: the reference variant.
            *variants: the variants to compare (default: every other variant).
            metrics: ``latency_ns`` (probe-free runs when present), ``cycle_ns``, ``us_per_irq``
                (probed runs), or ``"<table>.<column>"``.
            include_warmup: keep warm-up runs.

        Returns:
            ``cell`` (``"[<release> · ]<workload> · <accel>"``, what the runs record of the three), then
            the rows of :func:`~vfiobench.analysis.ab.df_ab` for every metric: ``variant, baseline,
            metric, ratio`` (baseline / variant), ``ci_low, ci_high, p_value, significant, verdict``...

        Example:
            >>> runs.compare("stock", "pba-always-on")[["cell", "metric", "verdict"]]  # doctest: +SKIP
        """
        from vfiobench.analysis import df_ab

        keep = [baseline, *variants] if variants else None
        unknown = [v for v in (keep or [baseline]) if v not in self.variants]
        if unknown:
            raise AnalysisError(
                f"unknown variant {', '.join(map(repr, unknown))}",
                f"these runs have {', '.join(self.variants)}",
            )
        from vfiobench.analysis.compare import DEFAULT_GROUP_BY, split_groups

        rs = self.filter(variant=keep) if keep else self
        measured = RunSet(r for r in rs if include_warmup or not r.meta.labels.get("warmup"))
        cells = {g.label: g.runs for g in split_groups(measured, DEFAULT_GROUP_BY)}
        frames = []
        for cell, sub in sorted(cells.items()):
            if baseline not in sub.variants or len(sub.variants) < 2:
                continue
            for m in metrics:
                frames.append(df_ab(sub, m, baseline=baseline).assign(cell=cell))
        if not frames:
            raise AnalysisError(f"no cell (workload × accel) holds {baseline!r} and another variant")
        df = pd.concat(frames, ignore_index=True)
        return df[["cell", *[c for c in df.columns if c != "cell"]]]

    # --------------------------------------------------------------------------------- timelines

    def timeline(self, *, expect_fraction: float = 0.5) -> pd.DataFrame:
        """One row per interrupt: its milestones and the time in each stage.

        Returns:
            :func:`~vfiobench.analysis.timeline.df_timeline` (``latency_ns``, ``complete``,
            ``missing``, ``<milestone>_ts_ns``, ``stage_<milestone>_ns``...). Cached per object.

        Example:
            >>> tl = runs.filter(kind="probed").timeline()                     # doctest: +SKIP
            >>> tl[["run_id", "irq", "latency_ns", "stage_pba_on_ns"]].head()   # doctest: +SKIP
        """
        from vfiobench.analysis.timeline import df_timeline

        if expect_fraction not in self._timelines:
            self._timelines[expect_fraction] = df_timeline(
                self, expect_fraction=expect_fraction, labels=("workload", "accel")
            )
        return self._timelines[expect_fraction]

    def _groups(self) -> list[str]:
        """``variant``, ``kind``, plus ``workload`` and ``accel`` when they differ between the runs."""
        tl = self.timeline()
        return ["variant", "kind"] + [c for c in ("workload", "accel") if tl[c].nunique(dropna=False) > 1]

    def stage_summary(self, by: Sequence[str] | None = None) -> pd.DataFrame:
        """Median and p99 of each stage per group (:func:`~vfiobench.analysis.timeline.df_stage_summary`).

        Args:
            by: grouping columns of :meth:`timeline` (default ``variant, kind``, and ``workload``
                and ``accel`` when they differ between the runs: lab runs of one variant).

        Example:
            >>> runs.stage_summary()[["variant", "stage", "median_ns", "p99_ns"]]  # doctest: +SKIP
        """
        from vfiobench.analysis.timeline import df_stage_summary

        return df_stage_summary(self.timeline(), by=list(by) if by is not None else self._groups())

    def slowest(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` slowest delivered interrupts (rows of :meth:`timeline`), slowest first.

        Example:
            >>> runs.slowest(3)[["run_id", "irq", "latency_ns", "missing"]]    # doctest: +SKIP
        """
        from vfiobench.analysis.timeline import df_slowest

        return df_slowest(self.timeline(), n)

    def _timeline_row(self, run_id: str | None, irq: int | None) -> pd.DataFrame:
        tl = self.timeline()
        if run_id is None and irq is None:
            return self.slowest(1)
        sel = tl
        if run_id is not None:
            sel = sel[sel["run_id"] == run_id]
        if irq is not None:
            sel = sel[sel["irq"] == irq]
        if len(sel) != 1:
            raise AnalysisError(
                f"{len(sel)} interrupts match run_id={run_id!r} irq={irq!r}", "give both run_id and irq"
            )
        return sel

    def events(self, run_id: str | None = None, irq: int | None = None) -> pd.DataFrame:
        """The raw probe events of one interrupt (default: the slowest), in time order.

        Returns:
            :func:`~vfiobench.analysis.timeline.df_window_events`: ``[run_id, irq, table, event,
            ts_ns, dur_ns, end_ts_ns, tid, detail]``.

        Example:
            >>> runs.events("r1-stock-probed", 12)                           # doctest: +SKIP
        """
        from vfiobench.analysis.timeline import df_window_events

        row = self._timeline_row(run_id, irq)
        return df_window_events(self[str(row["run_id"].iloc[0])], row)

    # ------------------------------------------------------------------------------------ figures

    def plot_latency(self, operation: str = "interrupt", by: Sequence[str] | None = None) -> Any:
        """Latency histogram (log µs axis) of an operation, one layer per group.

        Example:
            >>> show(runs.plot_latency("pba_toggle"))                         # doctest: +SKIP
        """
        from vfiobench.plots import plot_latency_histogram

        keys = self._by(operation, by)
        return plot_latency_histogram(self.histogram(operation, keys), by=keys, title=f"{operation} latency")

    def plot_cdf(self, operation: str = "interrupt", by: Sequence[str] | None = None) -> Any:
        """CDF overlay of an operation's latency per group.

        Example:
            >>> show(runs.plot_cdf("interrupt"))                              # doctest: +SKIP
        """
        from vfiobench.plots import plot_cdf

        keys = self._by(operation, by)
        return plot_cdf(self.cdf(operation, keys), by=keys, title=f"{operation} latency CDF")

    def plot_cost_breakdown(self) -> Any:
        """Stacked exclusive µs per interrupt by operation, one bar per variant.

        Example:
            >>> show(runs.filter(kind="probed").plot_cost_breakdown())        # doctest: +SKIP
        """
        from vfiobench.plots import plot_cost_breakdown

        return plot_cost_breakdown(self.cost_breakdown())

    def plot_compare(
        self, baseline: str, *variants: str, metrics: Sequence[str] = ("latency_ns", "us_per_irq")
    ) -> Any:
        """Forest plot of :meth:`compare` (ratios with their 95% intervals over runs).

        Example:
            >>> show(runs.plot_compare("stock"))                              # doctest: +SKIP
        """
        from vfiobench.plots import plot_ab_forest

        ab = self.compare(baseline, *variants, metrics=metrics)
        if ab["cell"].nunique() > 1:
            ab = ab.assign(variant=ab["variant"] + " · " + ab["cell"])
        return plot_ab_forest(ab)

    def plot_timeline(self, run_id: str | None = None, irq: int | None = None) -> Any:
        """Gantt view of one interrupt (default: the slowest): stages and raw events, with hover.

        Example:
            >>> show(runs.plot_timeline("r1-stock-probed", 12))              # doctest: +SKIP
        """
        from vfiobench.plots.timeline import plot_interrupt_gantt

        return plot_interrupt_gantt(self._timeline_row(run_id, irq), self)

    def plot_slowest(self, n: int = 20) -> Any:
        """The ``n`` slowest interrupts, stages stacked.

        Example:
            >>> show(runs.plot_slowest(10))                                   # doctest: +SKIP
        """
        from vfiobench.plots.timeline import plot_slowest

        return plot_slowest(self.timeline(), n)

    def plot_stages(self, by: Sequence[str] | None = None) -> Any:
        """Stacked median and p99 per stage, one pair of bars per group (see :meth:`stage_summary`).

        Example:
            >>> show(runs.filter(kind="probed").plot_stages())                # doctest: +SKIP
        """
        from vfiobench.plots.timeline import plot_stage_breakdown

        keys = (
            list(by) if by is not None else [k for k in self._groups() if k != "kind" or self._mixed_kinds()]
        )
        summary = self.stage_summary(keys)
        summary.insert(0, "group", summary[keys].astype(str).agg(" · ".join, axis=1))
        return plot_stage_breakdown(summary, by="group")

    def to_perfetto(self, path: str | os.PathLike[str]) -> str:
        """Write the runs as one Perfetto trace (:mod:`vfiobench.export.perfetto`); returns the path.

        Example:
            >>> runs.filter(kind="probed").to_perfetto("runs.pftrace")      # doctest: +SKIP
            'runs.pftrace'
        """
        from vfiobench.export.perfetto import write_perfetto

        return str(write_perfetto(self, path).path)

    def _mixed_kinds(self) -> bool:
        return len({r.meta.kind for r in self}) > 1

    def plot_timeline_view(self, max_points: int = 600) -> Any:
        """Linked views: tap an interrupt in the latency scatter, see its Gantt below (works offline).

        Example:
            >>> show(runs.filter(kind="probed").plot_timeline_view())         # doctest: +SKIP
        """
        from vfiobench.plots.timeline import plot_timeline_view

        return plot_timeline_view(self.timeline(), self, max_points=max_points, by=self._groups())


def load(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> Runs:
    """Load runs from run directories and/or directories of runs (searched recursively).

    Raises:
        RunStoreError: a path does not exist or holds a corrupt run.

    Example:
        >>> import vfiobench as vb
        >>> runs = vb.load("data/sample")        # doctest: +SKIP
        >>> runs.variants                        # doctest: +SKIP
        ['stock', 'pba-always-on']
    """
    return Runs(load_runs(paths))


def show(fig: Any) -> None:
    """Display a Bokeh figure or layout in the notebook, BokehJS inlined once per kernel.

    Example:
        >>> show(runs.plot_stages())             # doctest: +SKIP
    """
    from vfiobench.plots.embed import show as _show

    _show(fig)


def save_html(fig: Any, path: str | os.PathLike[str], title: str = "vfiobench") -> str:
    """Write a figure or layout as a standalone HTML page (BokehJS inlined); returns the path.

    Example:
        >>> save_html(runs.plot_timeline_view(), "reports/timeline.html")  # doctest: +SKIP
    """
    from vfiobench.plots.embed import save_html as _save

    return str(_save(fig, path, title))
