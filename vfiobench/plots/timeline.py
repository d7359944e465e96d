"""Bokeh views of per-interrupt timelines (:mod:`vfiobench.analysis.timeline`).

* :func:`plot_interrupt_gantt` — one interrupt: a bar per stage (path order, top to bottom) on a
  µs-since-trigger axis, and below them one lane per probe table with every raw event in the
  interrupt's window (RCU-thread commits and ``msix_notify`` included); hover shows the raw event;
* :func:`plot_slowest` — the N slowest interrupts, one row each, their stages stacked;
* :func:`plot_stage_breakdown` — per variant, the stage medians stacked beside the stage p99s;
* :func:`plot_timeline_view` — linked: a latency scatter of the interrupts and the Gantt of the
  one picked (tap a point, or box-select: the first selected is shown). The link is a
  ``CustomJS`` callback copying the picked interrupt's rows from one shared ``ColumnDataSource``
  into the Gantt's, so it works in a saved standalone HTML file as well as in JupyterLab.

Every function returns a Bokeh model; :func:`vfiobench.plots.embed.save_html` writes one with
BokehJS inlined (the file opens offline).

Example:
    >>> from vfiobench.analysis.timeline import df_timeline, df_stage_summary   # doctest: +SKIP
    >>> tl = df_timeline(runs)                                                  # doctest: +SKIP
    >>> from vfiobench.plots.embed import save_html                             # doctest: +SKIP
    >>> save_html(plot_timeline_view(tl, runs), "timeline.html")                # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from bokeh.layouts import column
from bokeh.models import (
    CDSView,
    ColumnDataSource,
    CustomJS,
    DataRange1d,
    FactorRange,
    HoverTool,
    IndexFilter,
    NumeralTickFormatter,
    Range1d,
    TapTool,
)
from bokeh.models.annotations.legends import Legend
from bokeh.models.axes import CategoricalAxis
from bokeh.models.widgets.markups import Div
from bokeh.palettes import Category20_20
from bokeh.plotting import figure

from vfiobench.analysis.timeline import (
    MILESTONE_NAMES,
    df_stages,
    df_window_events,
)
from vfiobench.errors import AnalysisError
from vfiobench.plots.common import WIDTH, color_map
from vfiobench.store import Run, RunSet

#: One colour per stage, keyed by the milestone that ends it (stable across figures).
STAGE_COLORS: dict[str, str] = {m: Category20_20[i % 20] for i, m in enumerate(MILESTONE_NAMES[1:])}
EVENT_COLOR = "#555555"
#: Lane label prefix of raw-event lanes.
EVENT_LANE = "probe: "

_SEGMENT_COLUMNS = (
    "key", "lane", "left_us", "right_us", "dur_us", "what", "detail", "start_ts_ns", "color", "row_kind",
    "order",
)  # fmt: skip


def _key(run_id: Any, irq: Any) -> str:
    return f"{run_id}#{int(irq)}"


def _runs_by_id(runs: Run | RunSet | None) -> dict[str, Run]:
    if runs is None:
        return {}
    return {r.run_id: r for r in ([runs] if isinstance(runs, Run) else runs)}


def segments(timeline: pd.DataFrame, runs: Run | RunSet | None = None) -> pd.DataFrame:
    """Gantt rows for the interrupts of ``timeline``: their stages, and their raw events if ``runs``.

    Returns:
        ``[key, lane, left_us, right_us, dur_us, what, detail, start_ts_ns, color, row_kind, order]``:
        ``key`` ``"<run_id>#<irq>"``; ``lane`` the stage (``from → to``) or ``probe: <table>``;
        times in µs since the interrupt's trigger; ``row_kind`` ``stage``, ``missing`` (a stage
        with a missing milestone, drawn nowhere) or ``event``; ``order`` the lane's rank (the
        index of the milestone ending a stage; events after every stage).
    """
    st = df_stages(timeline)
    parts = []
    if not st.empty:
        run_ids = st["run_id"] if "run_id" in st.columns else pd.Series([""] * len(st))
        known = st["dur_ns"].notna().to_numpy(dtype=bool)
        left = st["start_ns"].astype("float64").to_numpy() / 1e3
        dur = st["dur_ns"].astype("float64").to_numpy() / 1e3
        parts.append(
            pd.DataFrame(
                {
                    "key": [_key(r, i) for r, i in zip(run_ids, st["irq"], strict=True)],
                    "lane": st["stage"].astype(str).to_numpy(),
                    "left_us": np.where(known, left, np.nan),
                    "right_us": np.where(known, left + dur, np.nan),
                    "dur_us": dur,
                    "what": st["label"].astype(str).to_numpy(),
                    "detail": [
                        f"{a} → {b}" + ("" if k else " (a milestone is missing)")
                        for a, b, k in zip(st["from_milestone"], st["to_milestone"], known, strict=True)
                    ],
                    "start_ts_ns": st["start_ts_ns"].astype("float64").to_numpy(),
                    "color": [STAGE_COLORS[str(m)] for m in st["to_milestone"]],
                    "row_kind": np.where(known, "stage", "missing"),
                    "order": st["order"].to_numpy(dtype=np.int64),
                }
            )
        )
    by_id = _runs_by_id(runs)
    if by_id and "run_id" in timeline.columns:
        trig = timeline.set_index(["run_id", "irq"])["trigger_ts_ns"].astype("int64")
        for run_id in dict.fromkeys(timeline["run_id"]):
            run = by_id.get(str(run_id))
            if run is None:
                continue
            ev = df_window_events(run, timeline)
            if ev.empty:
                continue
            t0 = trig.loc[list(zip(ev["run_id"], ev["irq"], strict=True))].to_numpy(dtype=np.int64)
            left = (ev["ts_ns"].to_numpy(dtype=np.int64) - t0) / 1e3
            dur = ev["dur_ns"].to_numpy(dtype=np.float64) / 1e3
            parts.append(
                pd.DataFrame(
                    {
                        "key": [_key(r, i) for r, i in zip(ev["run_id"], ev["irq"], strict=True)],
                        "lane": EVENT_LANE + ev["table"].astype(str),
                        "left_us": left,
                        "right_us": left + np.maximum(dur, 0.5),  # point events stay visible
                        "dur_us": dur,
                        "what": ev["event"].astype(str).to_numpy(),
                        "detail": [
                            f"tid={t} {d}".strip() for t, d in zip(ev["tid"], ev["detail"], strict=True)
                        ],
                        "start_ts_ns": ev["ts_ns"].to_numpy(dtype=np.float64),
                        "color": EVENT_COLOR,
                        "row_kind": "event",
                        "order": len(MILESTONE_NAMES),  # below every stage
                    }
                )
            )
    if not parts:
        return pd.DataFrame(columns=list(_SEGMENT_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(_SEGMENT_COLUMNS)]


def _lanes(seg: pd.DataFrame) -> list[str]:
    """Stage lanes in path order (by the milestone ending them), then the raw-event lanes by name."""
    ordered = seg[["order", "lane"]].drop_duplicates().sort_values(["order", "lane"], kind="stable")
    return [str(lane) for lane in dict.fromkeys(ordered["lane"])]


_HOVER = [
    ("", "@lane"),
    ("what", "@what"),
    ("start", "@left_us{0,0.0} µs after the trigger"),
    ("duration", "@dur_us{0,0.0} µs"),
    ("raw", "@detail"),
    ("ts_ns", "@start_ts_ns{0}"),
]


def _gantt_figure(seg: pd.DataFrame, lanes: Sequence[str], title: str) -> tuple[figure, ColumnDataSource]:
    src = ColumnDataSource({c: seg[c].tolist() for c in _SEGMENT_COLUMNS})
    right = float(np.nanmax(seg["right_us"])) if len(seg) and seg["right_us"].notna().any() else 1.0
    left = float(np.nanmin(seg["left_us"])) if len(seg) and seg["left_us"].notna().any() else 0.0
    p = figure(
        title=title,
        y_range=FactorRange(factors=list(reversed(list(lanes)))),
        x_range=Range1d(start=min(0.0, left), end=right * 1.03 + 1e-9),
        width=WIDTH + 240,
        height=max(220, 60 + 22 * len(lanes)),
        x_axis_label="µs since the trigger",
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
        name="vfb-gantt-figure",
    )
    p.hbar(y="lane", left="left_us", right="right_us", height=0.7, source=src, color="color", alpha=0.85)
    p.xaxis.formatter = NumeralTickFormatter(format="0,0")
    p.add_tools(HoverTool(tooltips=_HOVER))
    p.ygrid.grid_line_color = None
    p.yaxis.major_label_text_font_size = "8pt"
    return p, src


def plot_interrupt_gantt(
    timeline_row: pd.DataFrame | pd.Series, runs: Run | RunSet | None = None, *, title: str | None = None
) -> figure:
    """Gantt view of one interrupt: its stages and (with ``runs``) the raw events in its window.

    Args:
        timeline_row: one row of :func:`~vfiobench.analysis.timeline.df_timeline` (a Series or a
            one-row frame).
        runs: the run(s) holding it, to show the raw probe events (optional).
        title: figure title (default: run, interrupt number, latency, missing milestones).

    Returns:
        A figure with a categorical y range (one lane per stage, then ``probe: <table>`` lanes)
        and one ``hbar`` renderer whose source has the columns of :func:`segments`.
    """
    row = timeline_row.to_frame().T if isinstance(timeline_row, pd.Series) else timeline_row.copy()
    for col in [c for c in row.columns if str(c).endswith("_ns")]:
        row[col] = row[col].astype("Int64")  # a Series row comes back as objects
    if len(row) != 1:
        raise AnalysisError(f"plot_interrupt_gantt needs one timeline row, got {len(row)}")
    seg = segments(row, runs)
    r = row.iloc[0]
    return _gantt_figure(seg, _lanes(seg), title or _title(r))[0]


def _title(r: pd.Series) -> str:
    lat = r["latency_ns"]
    lat_s = "not delivered" if pd.isna(lat) else f"{float(lat) / 1e3:,.1f} µs"
    miss = f" — missing: {r['missing']}" if str(r.get("missing", "")) else ""
    where = f"{r.get('run_id', '')} interrupt #{int(r['irq'])}"
    return f"{where} (cycle {int(r['cycle'])}, vector {int(r['vector'])}): {lat_s}{miss}"


def plot_slowest(timeline: pd.DataFrame, n: int = 20, *, title: str | None = None) -> figure:
    """The ``n`` slowest delivered interrupts, one row each, their stages stacked from the trigger.

    Returns:
        A figure with a categorical y range (slowest on top) and one ``hbar`` renderer per stage
        (legend entries per stage); sources hold the columns of :func:`segments` plus ``row``.
    """
    from vfiobench.analysis.timeline import df_slowest

    top = df_slowest(timeline, n)
    if top.empty:
        raise AnalysisError("no delivered interrupt in this timeline")
    seg = segments(top)
    seg = seg[seg["row_kind"] == "stage"]
    labels = {
        _key(
            r.get("run_id", ""), r["irq"]
        ): f"{r.get('run_id', '')} #{int(r['irq'])} · {float(r['latency_ns']) / 1e3:,.0f} µs"
        for _, r in top.iterrows()
    }
    rows = list(labels.values())
    p = figure(
        title=title or f"The {len(rows)} slowest interrupts, by stage",
        y_range=FactorRange(factors=list(reversed(rows))),
        width=WIDTH + 240,
        height=max(240, 80 + 24 * len(rows)),
        x_axis_label="µs since the trigger",
        x_range=DataRange1d(start=0),
        tools="xpan,xwheel_zoom,box_zoom,reset,save",
    )
    items: list[Any] = []
    for lane in _lanes(seg):
        s = seg[seg["lane"] == lane]
        data: dict[str, Any] = {c: s[c].tolist() for c in _SEGMENT_COLUMNS}
        src = ColumnDataSource(data | {"row": [labels[k] for k in s["key"]]})
        color = s["color"].iloc[0]
        r = p.hbar(y="row", left="left_us", right="right_us", height=0.75, source=src, color=color, alpha=0.9)
        items.append((lane, [r]))
    p.add_layout(Legend(items=items, label_text_font_size="8pt"), "right")
    p.add_tools(HoverTool(tooltips=[("", "@row"), *_HOVER[:2], *_HOVER[3:4]]))
    p.xaxis.formatter = NumeralTickFormatter(format="0,0")
    p.ygrid.grid_line_color = None
    p.yaxis.major_label_text_font_size = "8pt"
    return p


def plot_stage_breakdown(summary: pd.DataFrame, by: str = "variant", *, title: str | None = None) -> figure:
    """Stacked bars per variant: the stage medians beside the stage p99s.

    Stacked p99s are not the p99 of the sum (slow stages rarely coincide); they show which stages
    have the long tails. A stage's colour is that of the milestone ending it (:data:`STAGE_COLORS`),
    so "trigger → SET_IRQS entry" (no PBA toggle) and "PBA enabled → SET_IRQS entry" share one.

    Args:
        summary: :func:`~vfiobench.analysis.timeline.df_stage_summary` (``[by, stage,
            to_milestone, median_ns, p99_ns]``).
        by: the bar group column.
        title: figure title.

    Returns:
        A figure with a categorical x range of ``(group, "median" | "p99")`` pairs and one
        ``vbar`` renderer per stage (``vbar_stack``).
    """
    need = [by, "stage", "to_milestone", "median_ns", "p99_ns"]
    missing = [c for c in need if c not in summary.columns]
    if missing:
        raise AnalysisError(f"plot_stage_breakdown: no column {', '.join(missing)} in the summary")
    groups = [str(g) for g in dict.fromkeys(summary[by])]
    stages = list(dict.fromkeys(summary.sort_values("order", kind="stable")["stage"].astype(str)))
    bars = [(g, s) for g in groups for s in ("median", "p99")]
    data: dict[str, Any] = {"bar": bars}
    colors = {}
    for stage in stages:
        rows = summary[summary["stage"].astype(str) == stage]
        colors[stage] = STAGE_COLORS[str(rows["to_milestone"].iloc[0])]
        vals = []
        for g, stat in bars:
            v = rows.loc[rows[by].astype(str) == g, f"{stat}_ns"]
            vals.append(float(v.iloc[0]) / 1e3 if len(v) and pd.notna(v.iloc[0]) else 0.0)
        data[stage] = vals
    data["total"] = [sum(data[s][i] for s in stages) for i in range(len(bars))]
    src = ColumnDataSource(data)
    p = figure(
        title=title or "Where the time goes: median and p99 of each stage, stacked",
        x_range=FactorRange(factors=bars, group_padding=0.8),
        width=max(WIDTH + 240, 420 + 150 * len(groups)),  # the legend takes ~330 px
        height=500,
        y_axis_label="µs (stacked over stages)",
        y_range=DataRange1d(start=0),
        tools="save,reset",
    )
    renderers = p.vbar_stack(stages, x="bar", width=0.8, source=src, color=[colors[s] for s in stages])
    legend_items: list[Any] = [(s, [r]) for s, r in zip(stages, renderers, strict=True)]
    p.add_layout(Legend(items=legend_items, label_text_font_size="8pt"), "right")
    p.add_tools(
        HoverTool(
            tooltips=[("", "@bar"), ("sum", "@total{0,0.0} µs"), ("stage", "$name"), ("µs", "@$name{0,0.0}")]
        )
    )
    p.xgrid.grid_line_color = None
    for axis in p.below:
        if isinstance(axis, CategoricalAxis):
            axis.group_label_orientation = 0.35 if len(groups) > 3 else "horizontal"
    p.yaxis.formatter = NumeralTickFormatter(format="0,0")
    return p


_LINK_JS = """
const idx = points.selected.indices;
if (!idx.length) { return; }
const key = points.data.key[idx[0]];
const all = segments.data;
const out = {};
for (const c of Object.keys(all)) { out[c] = []; }
let lo = 0, hi = 1;
for (let j = 0; j < all.key.length; j++) {
  if (all.key[j] !== key) { continue; }
  for (const c of Object.keys(all)) { out[c].push(all[c][j]); }
  const l = all.left_us[j], r = all.right_us[j];
  if (Number.isFinite(l)) { lo = Math.min(lo, l); }
  if (Number.isFinite(r)) { hi = Math.max(hi, r); }
}
gantt.data = out;
xr.start = lo;
xr.end = hi * 1.03;
title.text = points.data.title[idx[0]];
"""


def plot_timeline_view(
    timeline: pd.DataFrame,
    runs: Run | RunSet | None = None,
    *,
    max_points: int = 600,
    by: Sequence[str] = ("variant", "kind"),
    colors: Mapping[str, str] | None = None,
) -> Any:
    """Linked views: pick an interrupt in the latency scatter, see its timeline in the Gantt below.

    The scatter shows each delivered interrupt's latency against its trigger time (seconds since
    the run's first trigger), coloured by ``by`` (variant and run kind). Tapping a point (or box-selecting:
    the first selected is taken) shows its stages and raw events in the Gantt; it starts on the
    slowest. Works without a server: both views share one ``ColumnDataSource`` of every point's
    Gantt rows (named ``vfb-segments``) and a ``CustomJS`` callback copies the picked one's rows
    into the Gantt's source (``vfb-gantt``); the scatter's source is ``vfb-points``.

    Args:
        timeline: :func:`~vfiobench.analysis.timeline.df_timeline`.
        runs: the runs, to include the raw probe events (optional).
        max_points: at most this many interrupts are linked (the slowest fifth of them, then an
            even sample of the rest), to keep the page small.
        by: timeline columns whose values, joined with `` · ``, colour the points (legend).
        colors: group label → colour overrides.

    Returns:
        A ``column`` layout: a note, the scatter and the Gantt.
    """
    tl = timeline[timeline["delivered"].astype(bool)].copy()
    if tl.empty:
        raise AnalysisError("no delivered interrupt in this timeline: nothing to link")
    if "run_id" not in tl.columns:
        tl["run_id"] = ""
    lat = tl["latency_ns"].astype("float64")
    if len(tl) > max_points:
        n_slow = max(1, max_points // 5)
        slow = lat.sort_values(ascending=False, kind="stable").index[:n_slow]
        rest = tl.index.difference(slow)
        step = max(1, int(np.ceil(len(rest) / (max_points - n_slow))))
        tl = tl.loc[sorted([*slow, *rest[::step]])]
        lat = tl["latency_ns"].astype("float64")
    keys = [c for c in by if c in tl.columns] or ["run_id"]
    group = tl[keys].astype(str).agg(" · ".join, axis=1)
    cmap = color_map(list(group), colors)
    t0 = tl.groupby("run_id")["trigger_ts_ns"].transform("min").astype("int64")
    points = ColumnDataSource(
        {
            "key": [_key(r, i) for r, i in zip(tl["run_id"], tl["irq"], strict=True)],
            "t_s": ((tl["trigger_ts_ns"].astype("int64") - t0) / 1e9).tolist(),
            "latency_us": (lat / 1e3).tolist(),
            "group": group.tolist(),
            "color": [cmap[g] for g in group],
            "missing": tl["missing"].astype(str).tolist(),
            "title": [_title(r) for _, r in tl.iterrows()],
        },
        name="vfb-points",
    )
    seg = segments(tl, runs)
    all_src = ColumnDataSource({c: seg[c].tolist() for c in _SEGMENT_COLUMNS}, name="vfb-segments")
    first = int(np.argmax(lat.to_numpy()))
    first_key = points.data["key"][first]
    gantt_fig, gantt_src = _gantt_figure(
        seg[seg["key"] == first_key], _lanes(seg), points.data["title"][first]
    )
    gantt_src.name = "vfb-gantt"
    points.selected.indices = [first]
    scatter = figure(
        title="Interrupt latency (tap a point to see its timeline below)",
        width=WIDTH + 240,
        height=360,
        x_axis_label="trigger time (s since the run's first)",
        y_axis_label="latency (µs, log scale)",
        y_axis_type="log",
        tools="box_select,pan,wheel_zoom,reset,save",
        name="vfb-scatter",
    )
    for g in cmap:
        view_idx = [i for i, x in enumerate(points.data["group"]) if x == g]
        scatter.scatter(
            "t_s", "latency_us", source=points, view=CDSView(filter=IndexFilter(indices=view_idx)),
            color="color", size=6, alpha=0.7, legend_label=g, nonselection_alpha=0.25, selection_color="red",
        )  # fmt: skip
    scatter.legend.click_policy = "hide"
    scatter.legend.label_text_font_size = "8pt"
    if len(cmap) > 6:  # a long legend would hide the points: put it under the plot, in columns
        legend = scatter.legend[0]
        legend.ncols = 3
        legend.orientation = "vertical"
        scatter.height = 360 + 18 * -(-len(cmap) // 3)
        scatter.add_layout(legend, "below")
    else:
        scatter.legend.location = "top_left"
    scatter.add_tools(
        HoverTool(
            tooltips=[
                ("", "@key"),
                ("latency", "@latency_us{0,0.0} µs"),
                ("", "@group"),
                ("missing", "@missing"),
            ]
        )
    )
    scatter.add_tools(TapTool(behavior="select"))
    points.selected.js_on_change(
        "indices",
        CustomJS(
            args={
                "points": points,
                "segments": all_src,
                "gantt": gantt_src,
                "xr": gantt_fig.x_range,
                "title": gantt_fig.title,
            },
            code=_LINK_JS,
        ),
    )
    note = Div(
        text=(
            f"<p>{len(tl):,} interrupts linked. Stages run from one milestone to the next "
            "(see <code>vfiobench.analysis.timeline</code>); grey bars are the raw probe events in the "
            "interrupt's window. Hover for the raw values.</p>"
        ),
        width=WIDTH + 240,
    )
    return column(note, scatter, gantt_fig, name="vfb-timeline-view")


__all__ = [
    "STAGE_COLORS",
    "plot_interrupt_gantt",
    "plot_slowest",
    "plot_stage_breakdown",
    "plot_timeline_view",
    "segments",
]
