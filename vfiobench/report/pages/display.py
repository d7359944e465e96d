"""Output primitives of the report pages: HTML, tables, message boxes, Bokeh figures (BokehJS inline).

:func:`setup` (called by every page's first cell through :func:`~vfiobench.report.pages.open_run`
and friends) emits the page style once and makes an expected failure (a
:class:`~vfiobench.errors.VfioBenchError`) show as its one-line message in the kernel's error
output instead of a traceback, so ``papermill`` run by hand prints one paragraph too.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable
from typing import Any, NoReturn

import pandas as pd

from vfiobench.errors import VfioBenchError
from vfiobench.plots import embed
from vfiobench.report.markers import ERROR_OUTPUT_MARKER

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
.vfb-kv{border-collapse:collapse;margin:.3em 0;width:auto !important}
.vfb-kv th,.vfb-kv td{text-align:left !important;vertical-align:top}
.vfb-kv th{padding:.15em 1em .15em 0;white-space:nowrap;color:#444}
.vfb-kv td{padding:.15em 0;font-family:monospace;overflow-wrap:anywhere;max-width:60em}
table.vfb-table{border-collapse:collapse;margin:.3em 0}
table.vfb-table th,table.vfb-table td{border:1px solid #ccc;padding:.2em .6em;text-align:right}
table.vfb-table th{background:#f3f3f3}
table.vfb-table td{max-width:28em;overflow-wrap:anywhere}
table.vfb-table td:first-child,table.vfb-table th:first-child{text-align:left;white-space:nowrap}
.vfb-bad{color:#b3261e;font-weight:600}.vfb-good{color:#1e7e34;font-weight:600}
.vfb-note{color:#555;font-style:italic}
.vfb-headline{overflow-x:auto}.vfb-headline table.vfb-table{font-size:.8em}
.vfb-headline table.vfb-table td{white-space:nowrap}
.vfb-headline table.vfb-table th{vertical-align:bottom}
.vfb-headline table.vfb-table td:nth-child(2){text-align:left}
"""

_setup_done = False


def show_html(markup: str, *, metadata: dict[str, Any] | None = None) -> None:
    """Display raw HTML in the notebook (the HTML report embeds it as is)."""
    from IPython.display import HTML, display

    display(HTML(markup), metadata=metadata or {})  # type: ignore[no-untyped-call]


def _short_error(
    shell: Any, etype: type[BaseException], value: BaseException, tb: Any, tb_offset: Any = None
) -> Any:
    """IPython handler of :class:`VfioBenchError`: the exception's one-line message, no traceback."""
    shell.showtraceback((etype, value, tb), exception_only=True)


def setup() -> None:
    """Emit the page style once per kernel, and show expected failures without a traceback.

    Call it from the notebook's first code cell (:func:`~vfiobench.report.pages.open_run` does).
    """
    global _setup_done
    if not _setup_done:
        show_html(f"<style>{PAGE_CSS}</style>")
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            shell.set_custom_exc((VfioBenchError,), _short_error)
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


def fmt_number(x: Any) -> str:
    """Format a table cell: ints with thousands separators, floats to 4 significant digits, text escaped."""
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
        return f"{x:,.0f}" if abs(x) >= 1e3 else f"{x:.4g}"  # 4 digits at least, separators alike
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
            cells.append(f"<td>{fmt_number(v)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f'<table class="vfb-table">{cap}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


def show_table(df: pd.DataFrame, *, caption: str | None = None, empty: str = "(no rows)") -> None:
    """Display a DataFrame with :func:`table_html`."""
    show_html(table_html(df, caption=caption, empty=empty))


def kv_html(items: Iterable[tuple[str, str]]) -> str:
    """A two-column key/value table; keys are escaped, values are HTML already."""
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in items)
    return f'<table class="vfb-kv">{rows}</table>'


def note(text: str) -> None:
    """Display a short explanatory note (plain text, escaped)."""
    show_html(f'<p class="vfb-note">{html.escape(text)}</p>')


def bokeh_html(fig: Any) -> str:
    """HTML for one Bokeh object, BokehJS inlined once per kernel (:func:`vfiobench.plots.embed.bokeh_html`).

    Raises:
        ReportError: the figure needs a resource only available by URL (a custom extension).
    """
    return embed.bokeh_html(fig)


def show(fig: Any) -> None:
    """Display a Bokeh figure (or layout) with its resources inline; ``None`` shows nothing."""
    if fig is None:
        return
    setup()
    show_html(bokeh_html(fig))


def reset_for_tests() -> None:
    """Forget what was emitted (a fresh kernel starts empty; tests call this between pages)."""
    global _setup_done
    embed.reset()
    _setup_done = False
