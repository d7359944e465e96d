"""The ``index.html`` of a batch, rendered from ``templates/index.html.j2`` (package data).

One row per page (variant, status, source, lost events, checks, whether it ran to the end), the
A/B verdict lines the pages displayed, and a banner when any run is synthetic.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vfiobench.report.page import Page

INDEX_TEMPLATE = "index.html.j2"


def _row(p: Page) -> dict[str, Any]:
    return {
        "name": p.name,
        "href": p.html.name,
        "ipynb": p.ipynb.name,
        "kind": p.kind,
        "variant": p.variant or "?",
        "status": p.status or "unreadable",
        "source": p.source or "?",
        "lost": "" if p.lost_events is None else f"{p.lost_events:,}",
        "lost_bad": bool(p.lost_events),
        "checks": p.checks or "?",
        "ok": p.ok,
        "error": p.error or "",
        "trace": p.trace.name if p.trace is not None else "",
        "rendered": p.rendered,
    }


#: A cover letter written beside the pages (``report --cover-letter OUT/...``) is linked from the index.
COVER_LETTER_GLOB = "cover-letter*.patch"


def index_html(pages: Sequence[Page], cover_letters: Sequence[str] = ()) -> str:
    """The ``index.html`` of a batch: one row per page with variant, status, lost events, checks.

    ``cover_letters``: file names (beside the index) of series cover letters to link first.
    """
    from jinja2 import Environment, PackageLoader

    env = Environment(
        loader=PackageLoader("vfiobench.report", "templates"), autoescape=True, keep_trailing_newline=True
    )
    rows = [_row(p) for p in pages]
    return env.get_template(INDEX_TEMPLATE).render(
        pages=rows,
        synthetic=any(p.source and "synthetic" in p.source for p in pages),
        verdicts=[(row, v) for row, p in zip(rows, pages, strict=True) for v in p.verdicts],
        failed=sum(not p.ok for p in pages if p.rendered),
        unrendered=sum(not p.rendered for p in pages),
        cover_letters=list(cover_letters),
    )


def write_index(pages: Sequence[Page], out: Path) -> Path:
    """Write ``out/index.html`` linking every page."""
    path = out / "index.html"
    letters = sorted(p.name for p in out.glob(COVER_LETTER_GLOB))
    path.write_text(index_html(pages, letters), encoding="utf-8")
    return path
