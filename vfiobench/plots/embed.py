"""The one way Bokeh objects leave vfiobench: BokehJS inlined, nothing fetched from a CDN.

Both forms go through Bokeh's public :func:`bokeh.embed.file_html` with
:data:`bokeh.resources.INLINE`, so a page carries exactly the BokehJS components its figures need:

* :func:`bokeh_html` — an HTML fragment for one figure or layout in a notebook output (``file_html``
  rendered through a fragment template with its documented variables ``bokeh_css``, ``bokeh_js``,
  ``plot_div``, ``plot_script``): the BokehJS code it still needs, emitted once per kernel (later
  figures reuse it), the figure's ``<div>`` and its ``<script>``. The report pages and the
  interactive :func:`show` use it;
* :func:`save_html` — a standalone page with BokehJS inlined (opens offline).

A figure that would need a resource only available by URL (a custom extension) is refused with a
:class:`~vfiobench.errors.ReportError`: a page must open offline.

Example:
    >>> from bokeh.plotting import figure
    >>> page = InlineEmbedder()
    >>> first = page.html(figure(width=100, height=100))
    >>> second = page.html(figure(width=100, height=100))
    >>> "/* BEGIN bokeh.min.js */" in first, "/* BEGIN bokeh.min.js */" in second
    (True, False)
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path
from typing import Any

from vfiobench.errors import ReportError

#: Separates the resources from the plot in :data:`_FRAGMENT`'s output.
_PLOT_MARK = "<!-- vfiobench: plot -->"
#: The fragment ``file_html`` renders for :meth:`InlineEmbedder.html`.
_FRAGMENT = "{{ bokeh_css }}{{ bokeh_js }}" + _PLOT_MARK + "{{ plot_div }}{{ plot_script }}"
#: One resource element of ``bokeh_js``/``bokeh_css``: a script, a style block or a link.
_ELEMENT = re.compile(r"<(script|style)\b[^>]*>.*?</\1>|<link\b[^>]*>", re.DOTALL | re.IGNORECASE)
_EXTERNAL = re.compile(r"""<(?:script|link)\b[^>]*\b(?:src|href)=["']?([^"'\s>]+)""", re.IGNORECASE)


def _file_html(obj: Any, title: str, template: Any = None) -> str:
    from bokeh.embed import file_html
    from bokeh.resources import INLINE

    return str(file_html(obj, INLINE, title, template=template))


def _check_offline(resources: str) -> None:
    urls = _EXTERNAL.findall(resources)
    if urls:
        raise ReportError(f"Bokeh object needs external resources {urls}; the report must open offline")


class InlineEmbedder:
    """Renders Bokeh objects as HTML fragments, emitting each piece of BokehJS code once.

    One instance stands for one page (one kernel): the first figure carries BokehJS itself, the
    next ones only their own ``<div>`` and ``<script>`` (and any BokehJS component not yet sent,
    e.g. the widgets bundle for the first layout with a ``Div``).
    """

    def __init__(self) -> None:
        self._emitted: set[str] = set()

    def reset(self) -> None:
        """Forget what was emitted (a new page starts empty)."""
        self._emitted.clear()

    def html(self, obj: Any) -> str:
        """HTML for one Bokeh object: the BokehJS it still needs (inline, once), its div and script.

        Raises:
            ReportError: the object needs a resource only available by URL.
        """
        return "".join(self.parts(obj))

    def parts(self, obj: Any) -> tuple[str, str]:
        """:meth:`html` in two pieces: the BokehJS still needed, and the object's div and script.

        A display updated in place (the notebook live view) shows the first piece once and
        replaces only the second, so the page keeps BokehJS whatever the last update was.

        Raises:
            ReportError: the object needs a resource only available by URL.
        """
        from jinja2 import Template

        resources, plot = _file_html(obj, "vfiobench", Template(_FRAGMENT)).split(_PLOT_MARK, 1)
        _check_offline(resources)
        kept = []
        for m in _ELEMENT.finditer(resources):
            key = hashlib.sha256(m.group(0).encode()).hexdigest()
            if key not in self._emitted:
                self._emitted.add(key)
                kept.append(m.group(0))
        return "".join(kept), plot


#: The embedder of this process (a kernel renders one page).
_EMBEDDER = InlineEmbedder()


def bokeh_html(obj: Any) -> str:
    """:meth:`InlineEmbedder.html` with this process's embedder (BokehJS once per kernel)."""
    return _EMBEDDER.html(obj)


def bokeh_parts(obj: Any) -> tuple[str, str]:
    """:meth:`InlineEmbedder.parts` with this process's embedder: (BokehJS still needed, the plot)."""
    return _EMBEDDER.parts(obj)


def reset() -> None:
    """Forget the BokehJS this process already emitted (tests call this between pages)."""
    _EMBEDDER.reset()


def show(obj: Any) -> None:
    """Display a Bokeh object in the notebook with :func:`bokeh_html`; ``None`` shows nothing."""
    if obj is None:
        return
    from IPython.display import HTML, display

    display(HTML(bokeh_html(obj)))  # type: ignore[no-untyped-call]


def save_html(obj: Any, path: str | os.PathLike[str], title: str = "vfiobench") -> Path:
    """Write a Bokeh object to a standalone HTML file with BokehJS inlined (opens offline).

    Raises:
        ReportError: the object needs a resource only available by URL.
    """
    page = _file_html(obj, title)
    head = page.split("</head>", 1)[0]
    _check_offline(head)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    return out
