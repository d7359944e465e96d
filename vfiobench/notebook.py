"""Small helpers the report notebooks call, so the notebooks stay thin.

The notebooks in ``notebooks/`` hold one ``parameters`` cell and a handful of one-line calls into
this module and into :mod:`vfiobench.analysis` / :mod:`vfiobench.plots`. This module:

- validates notebook parameters and opens the runs (:func:`open_run`, :func:`open_runs`); a bad
  parameter shows a one-paragraph message in the page and raises a
  :class:`~vfiobench.errors.VfioBenchError` that stops the notebook (papermill then fails and
  ``vfiobench report`` prints the same message on one line);
- renders run metadata, lost-event counts and ground-truth checks as HTML tables;
- shows the "synthetic data" banner when a run was generated rather than recorded;
- shows Bokeh figures with BokehJS **inlined** into the page (no CDN), so the HTML opens offline.

Example (in a notebook)::

    from vfiobench import notebook as nbk
    run = nbk.open_run(run_dir)
    nbk.header(run)
    nbk.show_metadata(run)
"""

from __future__ import annotations

import hashlib
import html
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from vfiobench.errors import ReportError, VfioBenchError
from vfiobench.store import Run, RunMeta, RunSet, load_run, load_runs

#: Marks an output as this module's error box (report.py drops the traceback that follows it).
ERROR_OUTPUT_MARKER = "vfiobench-error"

#: Page style, emitted once by :func:`setup`.
PAGE_CSS = """
.vfb-banner{background:#fff3cd;border:2px solid #e0a800;color:#5c4400;padding:.6em 1em;margin:.5em 0;
  font-weight:600;border-radius:4px}
.vfb-error{background:#fdecea;border:2px solid #d93025;color:#5f1410;padding:.8em 1em;margin:.5em 0;
  border-radius:4px;font-size:1.05em;line-height:1.4}
.vfb-error b{display:block;margin-bottom:.3em}
.vfb-status{display:inline-block;padding:.1em .5em;border-radius:3px;font-weight:600;color:#fff}
.vfb-status-complete{background:#1e7e34}.vfb-status-partial{background:#c77700}
.vfb-status-failed{background:#b3261e}
.vfb-kv{border-collapse:collapse;margin:.3em 0}
.vfb-kv th{text-align:left;padding:.15em 1em .15em 0;vertical-align:top;white-space:nowrap;color:#444}
.vfb-kv td{padding:.15em 0;font-family:monospace;word-break:break-all}
table.vfb-table{border-collapse:collapse;margin:.3em 0}
table.vfb-table th,table.vfb-table td{border:1px solid #ccc;padding:.2em .6em;text-align:right}
table.vfb-table th{background:#f3f3f3}
table.vfb-table td{max-width:28em;overflow-wrap:anywhere}
table.vfb-table td:first-child,table.vfb-table th:first-child{text-align:left;white-space:nowrap}
.vfb-bad{color:#b3261e;font-weight:600}.vfb-good{color:#1e7e34;font-weight:600}
.vfb-note{color:#555;font-style:italic}
"""

_emitted_js: set[str] = set()
_setup_done = False


# --------------------------------------------------------------------------------------------- output


def show_html(markup: str, *, metadata: dict[str, Any] | None = None) -> None:
    """Display raw HTML in the notebook (the HTML report embeds it as is)."""
    from IPython.display import HTML, display

    display(HTML(markup), metadata=metadata or {})  # type: ignore[no-untyped-call]


def setup() -> None:
    """Emit the page style once per kernel; call it from the notebook's first code cell."""
    global _setup_done
    if not _setup_done:
        show_html(f"<style>{PAGE_CSS}</style>")
        _setup_done = True


def error_html(err: BaseException) -> str:
    """Render an expected failure as a one-paragraph HTML box (message, then what to do)."""
    if isinstance(err, VfioBenchError):
        message, hint = err.message, err.hint
    else:
        message, hint = f"{type(err).__name__}: {err}", None
    body = html.escape(message)
    if hint:
        body += f"<br>What to do: {html.escape(hint)}."
    return f'<div class="vfb-error"><b>This report stopped.</b>{body}</div>'


def stop(err: VfioBenchError) -> NoReturn:
    """Show ``err`` as a message box in the page, then raise it to stop the notebook.

    papermill records the notebook as failed; :mod:`vfiobench.report` keeps this box, drops the
    traceback and exits non-zero with the same message on one line.
    """
    setup()
    show_html(error_html(err), metadata={ERROR_OUTPUT_MARKER: True})
    raise err


# ----------------------------------------------------------------------------------------- parameters


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


# -------------------------------------------------------------------------------------------- banner


def is_synthetic(target: Run | RunSet) -> bool:
    """True when any run was generated (``source == "synthetic"``) rather than recorded."""
    runs = [target] if isinstance(target, Run) else list(target)
    return any(r.meta.source == "synthetic" for r in runs)


SYNTHETIC_BANNER = (
    '<div class="vfb-banner" id="vfb-synthetic-banner">SYNTHETIC DATA: these runs were generated by '
    "vfiobench.sample with a fixed seed to exercise the report, not recorded on a host or in the lab. "
    "No number on this page is a measurement.</div>"
)


def status_badge(status: str) -> str:
    """An HTML badge for a run status (complete/partial/failed)."""
    s = html.escape(status)
    return f'<span class="vfb-status vfb-status-{s}">{s}</span>'


def header(target: Run | RunSet, title: str | None = None, *, baseline: str | None = None) -> None:
    """Show the page title, the synthetic-data banner when it applies, and the run status.

    Args:
        target: the run (run page) or the runs (compare page).
        title: page title; default ``"Run <run_id> · <variant>"`` or
            ``"A/B comparison: <baseline> (baseline) vs <v2> ..."``.
        baseline: the compare page's baseline variant (named first in the default title).
    """
    setup()
    if isinstance(target, Run):
        default = f"Run {target.run_id} · {target.variant}"
        statuses = [target.meta.status]
    else:
        names = [f"{v} (baseline)" if v == baseline else v for v in target.variants]
        names.sort(key=lambda n: not n.endswith("(baseline)"))
        default = "A/B comparison: " + " vs ".join(names)
        statuses = [r.meta.status for r in target]
    parts = [f"<h1>{html.escape(title or default)}</h1>"]
    if is_synthetic(target):
        parts.append(SYNTHETIC_BANNER)
    bad = [s for s in statuses if s != "complete"]
    if isinstance(target, Run):
        parts.append(f"<p>Status: {status_badge(target.meta.status)}</p>")
        if target.meta.error:
            parts.append(f'<p class="vfb-bad">Recording error: {html.escape(target.meta.error)}</p>')
    elif bad:
        parts.append(
            f'<p class="vfb-bad">{len(bad)} of {len(statuses)} runs are not complete '
            "(see the run table); their numbers cover only what was recorded.</p>"
        )
    parts.append(trust_summary_html(target))
    show_html("\n".join(parts))


def trust_summary_html(target: Run | RunSet) -> str:
    """One line a reviewer reads first: runs by kind, events lost, ground-truth checks passed."""
    runs = [target] if isinstance(target, Run) else list(target)
    probed = sum(r.meta.kind == "probed" for r in runs)
    lost = sum(r.meta.lost_events for r in runs)
    lossy = sum(r.meta.lost_events > 0 for r in runs)
    checks = [c for r in runs for c in r.meta.checks]
    failed = sum(not c.ok for c in checks)
    items = []
    if isinstance(target, RunSet):
        items.append(f"{len(runs)} runs ({probed} probed, {len(runs) - probed} probe-free)")
    else:
        items.append(f"{target.meta.kind} run")
    if lost:
        where = f" in {lossy} of {len(runs)} runs" if isinstance(target, RunSet) else ""
        items.append(f'<span class="vfb-bad">{lost:,} probe events lost{where}</span>')
    else:
        items.append('<span class="vfb-good">no probe events lost</span>')
    if not checks:
        items.append("no ground-truth checks recorded")
    elif failed:
        items.append(f'<span class="vfb-bad">{failed} of {len(checks)} ground-truth checks failed</span>')
    else:
        items.append(
            f'<span class="vfb-good">{len(checks)} of {len(checks)} ground-truth checks passed</span>'
        )
    return f'<p class="vfb-summary">{"; ".join(items)}.</p>'


# -------------------------------------------------------------------------------------------- tables


def _fmt_number(x: Any) -> str:
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        if math.isinf(x):
            return "∞" if x > 0 else "−∞"
        if x == int(x) and abs(x) < 1e15:
            return f"{int(x):,}"
        return f"{x:,.0f}" if abs(x) >= 1e4 else f"{x:.4g}"
    return html.escape(str(x))


def table_html(df: pd.DataFrame, *, caption: str | None = None, empty: str = "(no rows)") -> str:
    """Render a DataFrame as a compact HTML table (index dropped, numbers formatted, text escaped)."""
    if df.empty:
        return f'<p class="vfb-note">{html.escape(empty)}</p>'
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    rows = []
    for rec in df.itertuples(index=False, name=None):
        cells = []
        for v in rec:
            if hasattr(v, "item") and not isinstance(v, str):
                v = v.item()  # numpy scalar -> python
            cells.append(f"<td>{_fmt_number(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="vfb-table">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def show_table(df: pd.DataFrame, *, caption: str | None = None, empty: str = "(no rows)") -> None:
    """Display a DataFrame with :func:`table_html`."""
    show_html(table_html(df, caption=caption, empty=empty))


def _kv_html(items: Iterable[tuple[str, str]]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<table class="vfb-kv">{rows}</table>'


def _esc(v: Any) -> str:
    if v is None or v == "" or v == [] or v == {}:
        return '<span class="vfb-note">not recorded</span>'
    if isinstance(v, dict | list):
        return html.escape(json.dumps(v, sort_keys=True, default=str))
    return html.escape(str(v))


def metadata_items(meta: RunMeta) -> list[tuple[str, str]]:
    """Key/value rows (values already HTML) describing a run: variant, QEMU, host, workload, status."""
    q, h, w = meta.qemu, meta.host, meta.workload
    cmdline = " ".join(q.cmdline) if q.cmdline else None
    return [
        ("run id", _esc(meta.run_id)),
        ("variant", _esc(meta.variant)),
        ("status", status_badge(meta.status)),
        ("source", _esc(meta.source)),
        ("kind", _esc(meta.kind)),
        ("started (UTC)", _esc(meta.started_utc)),
        ("ended (UTC)", _esc(meta.ended_utc)),
        ("QEMU binary", _esc(q.path)),
        ("QEMU version", _esc(q.version)),
        ("QEMU build-id", _esc(q.build_id)),
        ("QEMU command line", _esc(cmdline)),
        ("QEMU patches", _esc(", ".join(q.patches)) if q.patches else "none"),
        ("host kernel", _esc(h.kernel_release)),
        ("host CPU", _esc(f"{h.cpu_model} ({h.cpus} CPUs)" if h.cpu_model else None)),
        ("hostname", _esc(h.hostname)),
        ("workload", _esc(w.name)),
        ("workload parameters", _esc(w.params or None)),
        ("labels", _esc(meta.labels or None)),
        ("vfiobench", _esc(meta.vfiobench_version)),
        ("error", _esc(meta.error) if meta.error else "none"),
    ]


def show_metadata(run: Run) -> None:
    """Display the run's metadata table."""
    show_html(_kv_html(metadata_items(run.meta)))


def df_lost_events(target: Run | RunSet) -> pd.DataFrame:
    """Events kept and lost per probe, one row per (run, probe).

    Columns: ``run_id``, ``variant``, ``probe``, ``target``, ``mode``, ``events``, ``lost``,
    ``lost_pct`` (lost as a percentage of events + lost; 0 when the probe saw nothing).
    """
    runs = [target] if isinstance(target, Run) else list(target)
    rows = []
    for r in runs:
        for name, p in r.meta.probes.items():
            total = p.events + p.lost
            rows.append(
                {
                    "run_id": r.run_id,
                    "variant": r.variant,
                    "probe": name,
                    "target": p.target,
                    "mode": p.mode,
                    "events": p.events,
                    "lost": p.lost,
                    "lost_pct": 100.0 * p.lost / total if total else 0.0,
                }
            )
    cols = ["run_id", "variant", "probe", "target", "mode", "events", "lost", "lost_pct"]
    return pd.DataFrame(rows, columns=cols)


def lost_events_html(target: Run | RunSet) -> str:
    """HTML for the lost-event table, with a one-line verdict above it."""
    df = df_lost_events(target)
    runs = [target] if isinstance(target, Run) else list(target)
    if df.empty:
        free = all(r.meta.kind == "probe-free" for r in runs)
        if isinstance(target, Run):
            why = "this run is probe-free (no probes attached)" if free else "no probes recorded"
        else:
            why = "every run is probe-free (no probes attached)" if free else "no probes recorded"
        return f'<p class="vfb-note">No probe statistics: {why}.</p>'
    lost = int(df["lost"].sum())
    verdict = (
        f'<p class="vfb-bad">{lost:,} events were lost; counts below are lower bounds.</p>'
        if lost
        else '<p class="vfb-good">No events lost.</p>'
    )
    if isinstance(target, Run):
        df = df.drop(columns=["run_id", "variant"])
    return verdict + table_html(df)


def show_lost_events(target: Run | RunSet) -> None:
    """Display lost-event counts per probe (every report page shows them)."""
    show_html(lost_events_html(target))


def df_checks(target: Run | RunSet) -> pd.DataFrame:
    """Ground-truth checks, one row per (run, check).

    Columns: ``run_id``, ``variant``, ``check``, ``expected``, ``observed``, ``ok``, ``detail``.
    """
    runs = [target] if isinstance(target, Run) else list(target)
    rows = [
        {
            "run_id": r.run_id,
            "variant": r.variant,
            "check": c.name,
            "expected": c.expected,
            "observed": c.observed,
            "ok": c.ok,
            "detail": c.detail,
        }
        for r in runs
        for c in r.meta.checks
    ]
    return pd.DataFrame(rows, columns=["run_id", "variant", "check", "expected", "observed", "ok", "detail"])


def checks_html(target: Run | RunSet) -> str:
    """HTML for the ground-truth checks with a one-line verdict (all passed / N failed / none)."""
    df = df_checks(target)
    if df.empty:
        return (
            '<p class="vfb-note">No ground-truth checks recorded: nothing cross-checks these probe '
            "counts (lab runs check them against QEMU's trace log and the workload's own counters).</p>"
        )
    failed = int((~df["ok"].astype(bool)).sum())
    verdict = (
        f'<p class="vfb-bad">{failed} of {len(df)} ground-truth checks FAILED.</p>'
        if failed
        else f'<p class="vfb-good">All {len(df)} ground-truth checks passed.</p>'
    )
    if isinstance(target, Run):
        df = df.drop(columns=["run_id", "variant"])
    return verdict + table_html(df)


def show_checks(target: Run | RunSet) -> None:
    """Display the ground-truth checks."""
    show_html(checks_html(target))


def df_runs(runset: RunSet) -> pd.DataFrame:
    """One row per run for the compare page.

    Columns: ``run_id``, ``variant``, ``status``, ``source``, ``kind``, ``workload``,
    ``repetition`` (label, if any), ``qemu_version``, ``lost_events``, ``checks`` (``"3/3 ok"``).
    """
    rows = []
    for r in runset:
        m = r.meta
        ok = sum(c.ok for c in m.checks)
        rows.append(
            {
                "run_id": m.run_id,
                "variant": m.variant,
                "status": m.status,
                "source": m.source,
                "kind": m.kind,
                "workload": m.workload.name,
                "repetition": m.labels.get("repetition"),
                "qemu_version": m.qemu.version,
                "lost_events": m.lost_events,
                "checks": f"{ok}/{len(m.checks)} ok" if m.checks else "none",
            }
        )
    cols = [
        "run_id",
        "variant",
        "status",
        "source",
        "kind",
        "workload",
        "repetition",
        "qemu_version",
        "lost_events",
        "checks",
    ]
    return pd.DataFrame(rows, columns=cols)


def show_runs(runset: RunSet) -> None:
    """Display the compared runs, one row each, and the QEMU build of each variant."""
    show_table(df_runs(runset))
    builds = []
    for variant in runset.variants:
        r = next(r for r in runset if r.variant == variant)
        q = r.meta.qemu
        builds.append(
            {
                "variant": variant,
                "QEMU binary": q.path,
                "version": q.version,
                "build-id": q.build_id,
                "patches": ", ".join(q.patches),
                "QEMU command line": " ".join(q.cmdline),
                "host kernel": r.meta.host.kernel_release,
                "host CPU": r.meta.host.cpu_model,
                "workload": r.meta.workload.name,
                "workload parameters": json.dumps(r.meta.workload.params, sort_keys=True, default=str),
            }
        )
    show_table(pd.DataFrame(builds), caption="Build, host and workload per variant (first run of each)")


def note(text: str) -> None:
    """Display a short explanatory note (plain text, escaped)."""
    show_html(f'<p class="vfb-note">{html.escape(text)}</p>')


# --------------------------------------------------------------------------------------------- bokeh


def bokeh_html(fig: Any) -> str:
    """HTML for one Bokeh object: the BokehJS code it still needs (inline, once), its div and script.

    The JavaScript is taken from :data:`bokeh.resources.INLINE`, so the page never loads anything
    from a CDN; code already emitted by this kernel is not repeated.

    Raises:
        ReportError: the figure needs a resource only available by URL (a custom extension).
    """
    from bokeh.core.templates import JS_RESOURCES
    from bokeh.embed import components
    from bokeh.embed.bundle import bundle_for_objs_and_resources
    from bokeh.resources import INLINE

    bundle = bundle_for_objs_and_resources([fig], INLINE)
    if bundle.js_files or bundle.css_files:
        urls = [str(u) for u in [*bundle.js_files, *bundle.css_files]]
        raise ReportError(f"Bokeh object needs external resources {urls}; the report must open offline")
    new_js = []
    for code in bundle.js_raw:
        key = hashlib.sha256(code.encode()).hexdigest()
        if key not in _emitted_js:
            _emitted_js.add(key)
            new_js.append(code)
    css = "".join(f"<style>{c}</style>" for c in bundle.css_raw)
    script, div = components(fig)
    js = JS_RESOURCES.render(js_raw=new_js, js_files=[]) if new_js else ""
    return f"{css}{js}{div}{script}"


def show(fig: Any) -> None:
    """Display a Bokeh figure (or layout) with its resources inline; ``None`` shows nothing."""
    if fig is None:
        return
    setup()
    show_html(bokeh_html(fig))


def reset_for_tests() -> None:
    """Forget what was emitted (a fresh kernel starts empty; tests call this between pages)."""
    global _setup_done
    _emitted_js.clear()
    _setup_done = False


# ------------------------------------------------------------------------------------------ analysis


def _as_runset(target: Run | RunSet) -> RunSet:
    return RunSet([target]) if isinstance(target, Run) else target


def in_us(df: pd.DataFrame) -> pd.DataFrame:
    """Copy of ``df`` with every ``*_ns`` column converted to µs and renamed ``*_us`` (for reading)."""
    out = df.copy()
    for col in [c for c in df.columns if str(c).endswith("_ns")]:
        out[str(col).removesuffix("_ns") + "_us"] = out.pop(col).astype("float64") / 1e3
    return out


def df_operation_latency(target: Run | RunSet) -> pd.DataFrame:
    """Latency summary of every probed operation, and of the interrupt itself (workload table).

    Probe tables are summarised per variant over their calls (``dur_ns``); the workload's
    end-to-end ``latency_ns`` per variant and run kind, since probes inflate it.

    Returns:
        ``[operation, variant, kind, count, mean_us, p50_us, p90_us, p99_us, p999_us, max_us]``
        (``kind`` only set for the interrupt latency rows).
    """
    from vfiobench.analysis import df_latency_summary, schema

    runset = _as_runset(target)
    parts = []
    for name in schema.PROBE_TABLES:
        df = runset.table(name)
        if df.empty or not ("dur_ns" in df.columns or {"bucket", "count"} <= set(df.columns)):
            continue
        s = df_latency_summary(df, value="dur_ns", by=("variant",))
        s.insert(0, "operation", schema.OPERATION_LABELS.get(name, name))
        s.insert(2, "kind", "")
        parts.append(s)
    w = runset.table(schema.WORKLOAD)
    if not w.empty and "latency_ns" in w.columns:
        if "delivered" in w.columns:
            w = w[w["delivered"].astype(bool)]
        kinds = pd.Series({r.run_id: r.meta.kind for r in runset}, dtype=object)
        w = w.assign(kind=w["run_id"].map(kinds))
        s = df_latency_summary(w, value="latency_ns", by=("variant", "kind"))
        s.insert(0, "operation", "interrupt latency (end to end)")
        parts.append(s)
    cols = [
        "operation",
        "variant",
        "kind",
        "count",
        "mean_ns",
        "p50_ns",
        "p90_ns",
        "p99_ns",
        "p999_ns",
        "max_ns",
    ]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=cols)
    return in_us(out[cols])


def show_latency(target: Run | RunSet) -> None:
    """Display :func:`df_operation_latency` (µs); a run page drops the variant column."""
    df = df_operation_latency(target)
    if isinstance(target, Run):
        df = df.drop(columns=["variant"])
    show_table(df, empty="No latency data: this run has neither probe tables nor a workload table.")


#: Columns of :func:`vfiobench.analysis.df_per_interrupt` shown on the pages, with their labels.
PER_INTERRUPT_COLUMNS: dict[str, str] = {
    "interrupts": "delivered interrupts",
    "set_irqs_per_irq": "SET_IRQS ioctls / irq",
    "set_vector_signal_per_irq": "vfio_msi_set_vector_signal / irq",
    "pba_toggles_per_irq": "PBA toggles / irq",
    "commits_per_irq": "memory transaction commits / irq",
    "set_irqs_us_per_irq": "SET_IRQS µs / irq (incl.)",
    "set_vector_signal_us_per_irq": "set_vector_signal µs / irq (incl.)",
    "pba_toggle_us_per_irq": "PBA toggle µs / irq (incl.)",
    "commit_us_per_irq": "commit µs / irq (incl.)",
    "total_us_per_irq": "total µs / irq in probed calls (excl.)",
    "events_outside": "probe events outside the workload window",
    "lost_events": "lost events",
}


def df_per_interrupt_view(target: Run | RunSet) -> pd.DataFrame:
    """The per-interrupt accounting, one row per run, with readable column names.

    Returns:
        ``[run_id, variant, kind, <labels of PER_INTERRUPT_COLUMNS present>]``.
    """
    from vfiobench.analysis import df_per_interrupt

    df = df_per_interrupt(_as_runset(target))
    keep = [c for c in PER_INTERRUPT_COLUMNS if c in df.columns]
    return df[["run_id", "variant", "kind", *keep]].rename(columns=PER_INTERRUPT_COLUMNS)


def show_per_interrupt(target: Run | RunSet) -> None:
    """Display per-interrupt counts and costs (a run page shows one column of values)."""
    from vfiobench.errors import AnalysisError

    try:
        df = df_per_interrupt_view(target)
    except AnalysisError as e:
        note(f"Per-interrupt accounting not available: {e}")
        return
    if isinstance(target, RunSet):
        free = df[df["kind"] == "probe-free"]
        df = df[df["kind"] != "probe-free"]
        if len(free):
            note(f"{len(free)} probe-free runs left out: they have no probe tables (see Probe overhead).")
    if isinstance(target, Run):
        row = df.drop(columns=["run_id", "variant", "kind"]).iloc[0]
        show_html(
            _kv_html((str(k), _fmt_number(v.item() if hasattr(v, "item") else v)) for k, v in row.items())
        )
    else:
        show_table(df)


def df_verdicts(
    runset: RunSet, baseline: str, metrics: Sequence[str] = ("us_per_irq", "latency_ns")
) -> pd.DataFrame:
    """A/B results of every variant against ``baseline`` on each metric that has samples.

    Returns:
        The rows of :func:`vfiobench.analysis.df_ab` for every metric, concatenated, plus
        ``available`` (False with the reason in ``verdict`` when a metric has no samples).
    """
    from vfiobench.analysis import df_ab
    from vfiobench.errors import AnalysisError

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


def show_verdicts(
    runset: RunSet, baseline: str, metrics: Sequence[str] = ("us_per_irq", "latency_ns")
) -> None:
    """Display one verdict line per (variant, metric) and the table of ratios behind them."""
    df = df_verdicts(runset, baseline, metrics)
    items = []
    for rec in df.to_dict("records"):
        cls = "vfb-good" if rec.get("available") and rec.get("significant") else "vfb-note"
        text = (
            rec["verdict"] if rec.get("available") else f"{rec['metric']}: not available ({rec['verdict']})"
        )
        items.append(f'<li class="{cls}">{html.escape(str(text))}</li>')
    show_html(f'<ul class="vfb-verdicts">{"".join(items)}</ul>')
    ok = df[df["available"].astype(bool)]
    if not ok.empty:
        cols = [
            "variant", "metric", "statistic", "unit", "stat_baseline", "stat_variant", "ratio",
            "ci_low", "ci_high", "p_value", "runs_baseline", "runs_variant", "n_variant",
        ]  # fmt: skip
        in_ns = ok["metric"].astype(str).str.endswith("_ns")
        table = ok.assign(
            unit=["µs" if ns or "us" in str(m) else "" for ns, m in zip(in_ns, ok["metric"], strict=True)]
        )
        for col in ("stat_baseline", "stat_variant"):
            table[col] = table[col].astype("float64").where(~in_ns, table[col].astype("float64") / 1e3)
        show_table(
            table[cols],
            caption=f"baseline: {baseline}; ratio = baseline / variant; CI: cluster bootstrap over runs; "
            "p: Mann–Whitney U",
        )
        from vfiobench.plots import plot_ab_forest

        show(plot_ab_forest(ok.reset_index(drop=True)))


def show_repetitions(runset: RunSet, metric: str) -> None:
    """Display per-run statistics of ``metric`` so run-to-run spread is visible."""
    from vfiobench.analysis import df_repetitions
    from vfiobench.errors import AnalysisError
    from vfiobench.plots import plot_repetitions

    try:
        reps = df_repetitions(runset, metric)
    except AnalysisError as e:
        note(f"{metric}: not available ({e})")
        return
    scale, unit = (1e-3, "µs") if metric.endswith("_ns") else (1.0, "µs" if "us" in metric else "")
    shown = reps.copy()
    for col in ("median", "mean", "p90"):
        shown[col] = shown[col] * scale
    show_table(shown, caption=f"{metric} per run ({unit})" if unit else f"{metric} per run")
    show(plot_repetitions(reps, "median", title=f"{metric}: median per run", unit_scale=scale, unit=unit))


# ------------------------------------------------------------------------------------------- figures


def as_runset(target: Run | RunSet) -> RunSet:
    """A run set of one run (so set-wide analysis functions apply to a run page too)."""
    return _as_runset(target)


def df_calls(target: Run | RunSet) -> pd.DataFrame:
    """Every streamed probe call of the runs in one long table.

    Tables recorded in histogram mode (no ``ts_ns``/``dur_ns``) are left out.

    Returns:
        ``[run_id, variant, operation, ts_ns, dur_ns]``; ``operation`` the operation's display name.
    """
    from vfiobench.analysis import schema

    runset = _as_runset(target)
    parts = []
    for name in schema.PROBE_TABLES:
        df = runset.table(name)
        if df.empty or not {"ts_ns", "dur_ns"} <= set(df.columns):
            continue
        df = df[["run_id", "variant", "ts_ns", "dur_ns"]]
        parts.append(df.assign(operation=schema.OPERATION_LABELS.get(name, name)))
    cols = ["run_id", "variant", "operation", "ts_ns", "dur_ns"]
    return pd.concat(parts, ignore_index=True)[cols] if parts else pd.DataFrame(columns=cols)


def show_operation_plots(run: Run) -> None:
    """A run's latency histogram and CDF, one layer per probed operation (log µs axis)."""
    from vfiobench.analysis import df_cdf, df_histograms
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    calls = df_calls(run)
    if calls.empty:
        note("No probe calls recorded (probe-free run): no per-operation distributions.")
        return
    show(
        plot_latency_histogram(
            df_histograms(calls, by=("operation",)), by="operation", title="Call duration by operation"
        )
    )
    show(plot_cdf(df_cdf(calls, by=("operation",)), by="operation", title="Call duration CDF by operation"))


def show_interrupt_latency_plots(target: Run | RunSet) -> None:
    """Distribution of the end-to-end interrupt latency (workload table), per variant and run kind."""
    from vfiobench.analysis import df_cdf, df_histograms, schema
    from vfiobench.plots import plot_cdf, plot_latency_histogram

    runset = _as_runset(target)
    w = runset.table(schema.WORKLOAD)
    if w.empty or "latency_ns" not in w.columns:
        note("No workload table with latency_ns: no interrupt-latency distribution.")
        return
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    kinds = {r.run_id: r.meta.kind for r in runset}
    w = w.assign(kind=w["run_id"].map(kinds))
    show(
        plot_latency_histogram(
            df_histograms(w, value="latency_ns", by=("variant", "kind")),
            by=("variant", "kind"),
            title="Interrupt latency (trigger to delivery)",
        )
    )
    if isinstance(target, RunSet):
        show(
            plot_cdf(
                df_cdf(w, value="latency_ns", by=("variant", "kind")),
                by=("variant", "kind"),
                title="Interrupt latency CDF (probed runs carry probe overhead)",
            )
        )


def show_operation_cdfs(runset: RunSet) -> None:
    """One CDF per probed operation, variants overlaid (all runs of a variant merged)."""
    from vfiobench.analysis import df_cdf
    from vfiobench.plots import plot_cdf

    calls = df_calls(runset)
    if calls.empty:
        note("No probe calls recorded in these runs.")
        return
    for op in calls["operation"].unique():
        show(
            plot_cdf(
                df_cdf(calls[calls["operation"] == op], by=("variant",)), title=f"{op}: call duration CDF"
            )
        )


def show_rates(target: Run | RunSet, bin_s: float = 0.5) -> None:
    """Probe event rates over time; a compare page shows the first probed run of each variant."""
    from vfiobench.analysis import df_probe_rates
    from vfiobench.plots import plot_rate_timeline

    runset = _as_runset(target)
    probed = [r for r in runset if r.meta.probes]
    if isinstance(target, RunSet):
        probed = [next(r for r in probed if r.variant == v) for v in dict.fromkeys(r.variant for r in probed)]
    rates = df_probe_rates(RunSet(probed), bin_s=bin_s)
    if rates.empty:
        note("No timestamped probe events: no rate timeline.")
        return
    by = ("probe",) if isinstance(target, Run) else ("probe", "variant")
    show(plot_rate_timeline(rates, by=by, title=f"Probe events per second ({bin_s:g} s bins)"))


def show_cost_breakdown(target: Run | RunSet) -> None:
    """Stacked bars of exclusive µs per delivered interrupt by operation (probed runs)."""
    from vfiobench.analysis import df_cost_breakdown, df_per_interrupt
    from vfiobench.errors import AnalysisError
    from vfiobench.plots import plot_cost_breakdown

    try:
        breakdown = df_cost_breakdown(df_per_interrupt(_as_runset(target)))
    except AnalysisError as e:
        note(f"Cost breakdown not available: {e}")
        return
    if breakdown.empty:
        note("No probed runs: no per-operation cost breakdown.")
        return
    show(plot_cost_breakdown(breakdown))


def df_probe_overhead(runset: RunSet) -> pd.DataFrame:
    """Median interrupt latency of probed vs probe-free runs of each variant, and their ratio.

    Returns:
        ``[variant, probed_p50_us, probe_free_p50_us, overhead_ratio, probed_runs, probe_free_runs]``;
        NaN where a variant lacks runs of one kind.
    """
    from vfiobench.analysis import df_latency_summary, schema

    w = runset.table(schema.WORKLOAD)
    cols = [
        "variant",
        "probed_p50_us",
        "probe_free_p50_us",
        "overhead_ratio",
        "probed_runs",
        "probe_free_runs",
    ]
    if w.empty or "latency_ns" not in w.columns:
        return pd.DataFrame(columns=cols)
    if "delivered" in w.columns:
        w = w[w["delivered"].astype(bool)]
    kinds = {r.run_id: r.meta.kind for r in runset}
    w = w.assign(kind=w["run_id"].map(kinds))
    s = df_latency_summary(w, value="latency_ns", by=("variant", "kind"))
    rows = []
    for v in runset.variants:
        p50 = {k: s.loc[(s["variant"] == v) & (s["kind"] == k), "p50_ns"] for k in ("probed", "probe-free")}
        a = float(p50["probed"].iloc[0]) / 1e3 if len(p50["probed"]) else float("nan")
        b = float(p50["probe-free"].iloc[0]) / 1e3 if len(p50["probe-free"]) else float("nan")
        n = {
            k: sum(1 for r in runset if r.variant == v and r.meta.kind == k) for k in ("probed", "probe-free")
        }
        rows.append([v, a, b, a / b if b else float("nan"), n["probed"], n["probe-free"]])
    return pd.DataFrame(rows, columns=cols)


def show_probe_overhead(runset: RunSet) -> None:
    """Display :func:`df_probe_overhead`, the factor by which probes slow the measured path."""
    show_table(
        df_probe_overhead(runset),
        caption="median interrupt latency with and without probes (overhead_ratio = probed / probe-free)",
        empty="No workload latency in these runs: probe overhead cannot be shown.",
    )
