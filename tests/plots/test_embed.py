"""vfiobench.plots.embed: the one embedding path (BokehJS inline, once per page; standalone pages)."""

from __future__ import annotations

import doctest
from pathlib import Path

from bokeh.layouts import column
from bokeh.models import Div
from bokeh.plotting import figure

from vfiobench.plots import embed
from vfiobench.report.postprocess import external_resources


def _fig() -> figure:
    f = figure(width=200, height=100)
    f.line([1, 2], [1, 2])
    return f


def test_docstring_example() -> None:
    result = doctest.testmod(embed)
    assert result.attempted > 0 and result.failed == 0


def test_each_bokehjs_component_is_sent_once_per_page() -> None:
    page = embed.InlineEmbedder()
    first, second = page.html(_fig()), page.html(column(Div(text="x"), _fig()))
    assert first.count("/* BEGIN bokeh.min.js */") == 1 and "bokeh-widgets" not in first
    assert "/* BEGIN bokeh.min.js */" not in second  # already on the page
    assert second.count("/* BEGIN bokeh-widgets.min.js */") == 1  # the Div needs the widgets bundle
    assert "data-root-id" in first and "data-root-id" in second
    assert "Bokeh.embed.embed_items" in first and "Bokeh.embed.embed_items" in second
    page.reset()
    assert "/* BEGIN bokeh.min.js */" in page.html(_fig())


def test_save_html_writes_a_page_that_needs_no_network(tmp_path: Path) -> None:
    out = embed.save_html(_fig(), tmp_path / "sub" / "fig.html", "my title")
    text = out.read_text()
    assert "<title>my title</title>" in text and "/* BEGIN bokeh.min.js */" in text
    assert external_resources(text) == []  # nothing fetched: BokehJS is in the page
