"""The QEMU builds and patches a compare page compares: the binary per variant, each patch's text.

For each variant the page lists the binary (path, version, GNU build-id: the table of
:func:`vfiobench.analysis.runinfo.df_builds`) and its patches (:mod:`vfiobench.report.patches`): a
link to the text beside the page when ``patch_links`` is given, and the text in a ``<details>`` block.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from vfiobench.analysis.compare import Comparison
from vfiobench.analysis.runinfo import df_builds
from vfiobench.report.pages.display import show_html, table_html
from vfiobench.report.patches import PatchText, variant_patches
from vfiobench.store import RunSet


def _patch_item(p: PatchText, patch_links: str | None) -> str:
    name = html.escape(p.name)
    if p.text is None:
        return (
            f'<li><code>{name}</code> <span class="vfb-bad">text not found</span> (neither in the build\'s '
            "cache directory on this machine nor among this vfiobench's patches)</li>"
        )
    link = (
        f'<a href="{html.escape(patch_links.rstrip("/") + "/" + p.filename)}">{html.escape(p.filename)}</a>'
        if patch_links
        else f"<code>{html.escape(p.filename)}</code>"
    )
    if p.origin == "build":
        where = "exactly as applied (the build's cache copy)"
    elif p.matches_build:
        where = "this vfiobench's patch; the binary's cache key recomputes from this text (same text built)"
    elif p.matches_build is False:
        where = (
            '<span class="vfb-bad">this vfiobench\'s patch, which DIFFERS from the text the binary was '
            "built from (cache key mismatch)</span>"
        )
    else:
        where = "this vfiobench's patch (could not be checked against the build)"
    return (
        f"<li><code>{name}</code>: {link} — {html.escape(p.subject)}<br>"
        f'<span class="vfb-note">sha256 {p.sha256[:16]}…, {where}</span>'
        f"<details><summary>patch text ({p.lines} lines)</summary>"
        f"<pre>{html.escape(p.text)}</pre></details></li>"
    )


def builds_html(runset: RunSet, patch_links: str | None = None, variants: Sequence[str] = ()) -> str:
    """The builds table and, per variant, its patches: link (when ``patch_links`` is given) and text.

    Args:
        runset: the compared runs.
        patch_links: URL of the folder holding
            :func:`vfiobench.report.patches.write_patch_files`' output, relative to the
            page (``"patches"``), or None to embed the text only.
        variants: the order to list variants in (others follow in first-seen order).
    """
    parts = [table_html(df_builds(runset, variants), caption="QEMU binary per variant (run.json qemu)")]
    found = variant_patches(runset)
    rank = {v: i for i, v in enumerate(variants)}
    for variant in sorted(found, key=lambda v: rank.get(v, len(rank))):
        patches = found[variant]
        if not patches:
            parts.append(f"<p><b>{html.escape(variant)}</b>: no patches (the build's unpatched source).</p>")
            continue
        items = "".join(_patch_item(p, patch_links) for p in patches)
        parts.append(f"<p><b>{html.escape(variant)}</b>: {len(patches)} patch(es)</p><ul>{items}</ul>")
    return "".join(parts)


def show_builds(target: RunSet | Comparison, patch_links: str | None = None) -> None:
    """Display :func:`builds_html` for runs or a comparison (variants then in page order)."""
    if isinstance(target, Comparison):
        show_html(builds_html(target.runs, patch_links, target.variants))
    else:
        show_html(builds_html(target, patch_links))
