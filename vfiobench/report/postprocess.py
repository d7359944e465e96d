"""From an executed notebook to the reviewer's HTML page: no code, no traceback wall, nothing fetched.

:func:`reviewer_notebook` keeps what a reviewer reads (a stopped notebook shows its one-paragraph
message, not papermill's markers and a traceback); :func:`to_html` renders it with nbconvert's lab
template minus its require.js/MathJax/mermaid script tags (``templates/reviewer.html.j2``);
:func:`external_resources` lists what a page would still fetch, so a batch can refuse it;
:func:`page_verdicts` collects the A/B verdict lines the page displayed, for the index.
"""

from __future__ import annotations

import copy
import html
import re
from html.parser import HTMLParser
from importlib import resources
from typing import Any

from vfiobench.report.markers import ERROR_OUTPUT_MARKER, VERDICTS_MARKER

#: The nbconvert template of the reviewer's page (package data).
REVIEWER_TEMPLATE = "reviewer.html.j2"

_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"


def template_text(name: str) -> str:
    """The text of a template shipped in ``vfiobench/report/templates/``."""
    return (resources.files("vfiobench.report") / "templates" / name).read_text(encoding="utf-8")


def reviewer_notebook(nb: Any) -> Any:
    """Copy of an executed notebook prepared for reviewers (the HTML page).

    - papermill's red "An Exception was encountered" marker cells are dropped;
    - the cell that raised keeps its outputs; its traceback is replaced by a one-paragraph message
      box, or dropped when the notebook already showed one (:func:`vfiobench.report.pages.stop`);
    - cells after the one that raised (never executed) are dropped.
    """
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if _PAPERMILL_ERROR_TAG not in c.get("metadata", {}).get("tags", [])]
    kept = []
    for cell in cells:
        outputs = cell.get("outputs", []) if cell.get("cell_type") == "code" else []
        errors = [o for o in outputs if o.get("output_type") == "error"]
        if not errors:
            kept.append(cell)
            continue
        shown = any(o.get("metadata", {}).get(ERROR_OUTPUT_MARKER) for o in outputs)
        new_outputs = [o for o in outputs if o.get("output_type") != "error"]
        if not shown:
            e = errors[0]
            message = f"{e.get('ename', 'Error')}: {e.get('evalue', '')}"
            new_outputs.append(html_output(error_box(message)))
        cell["outputs"] = new_outputs
        kept.append(cell)
        break
    nb.cells = kept
    return nb


def error_box(message: str) -> str:
    """The page's "This report stopped." box for a message (styled inline: it may precede the CSS)."""
    return (
        '<div class="vfb-error" style="background:#fdecea;border:2px solid #d93025;padding:.8em 1em">'
        f"<b>This report stopped.</b><br>{html.escape(message)}</div>"
    )


def html_output(markup: str) -> Any:
    """A ``display_data`` notebook output holding ``markup``."""
    import nbformat

    return nbformat.v4.new_output("display_data", data={"text/html": markup})  # type: ignore[no-untyped-call]


def to_html(nb: Any, title: str) -> str:
    """Render an executed notebook as a reviewer page: no code, no prompts, nothing fetched."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        template_name="lab",
        extra_loaders=[DictLoader({REVIEWER_TEMPLATE: template_text(REVIEWER_TEMPLATE)})],
        template_file=REVIEWER_TEMPLATE,
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    body, _ = exporter.from_notebook_node(reviewer_notebook(nb), resources={"metadata": {"name": title}})
    return str(body)


_URL_ATTRS = frozenset({"src", "href", "srcset", "data", "poster", "action", "formaction", "background"})
_CSS_URL = re.compile(r"""(?:url\(\s*["']?|@import\s+["'])\s*((?:https?:)?//[^"')\s]+)""", re.IGNORECASE)


class _ResourceFinder(HTMLParser):
    """Collects URLs a browser would fetch from tag attributes and ``<style>`` blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.urls: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if value is None:
                continue
            if name in _URL_ATTRS and tag != "a":  # a link the reader may follow is not a fetch
                for part in value.split(","):
                    url = part.strip().split(" ")[0]
                    if re.match(r"(?:https?:)?//", url, re.IGNORECASE):
                        self.urls.append(url)
            elif name == "style":
                self.urls.extend(_CSS_URL.findall(value))

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.urls.extend(_CSS_URL.findall(data))


def external_resources(page: str) -> list[str]:
    """URLs an HTML page would fetch from the network when opened (tags and CSS, not script text).

    Links (``<a href>``) are not fetches and are not listed; ``data:`` URLs are inline.
    """
    finder = _ResourceFinder()
    finder.feed(page)
    finder.close()
    return finder.urls


def page_verdicts(nb: Any) -> list[str]:
    """The A/B verdict lines a notebook displayed (output metadata :data:`VERDICTS_MARKER`)."""
    lines: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            lines.extend(str(v) for v in out.get("metadata", {}).get(VERDICTS_MARKER, []))
    return lines
