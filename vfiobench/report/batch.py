"""A batch of report pages: plan one page per run and the A/B page, render them, write the index.

One page per run (``notebooks/run.ipynb``), one A/B page over all given runs
(``notebooks/compare.ipynb``, with the text of the QEMU patches its runs were built with copied to
``patches/`` beside it so its links work offline), and an ``index.html`` linking every page with its
variant, status and lost-event count. Beside every ``<page>.html`` the executed ``<page>.ipynb`` is
kept for those who want the code. Pages render one after the other, or ``jobs`` at once in worker
processes (one kernel each).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vfiobench.errors import ReportError, VfioBenchError
from vfiobench.report.execute import COMPARE_NOTEBOOK, RUN_NOTEBOOK, execute, notebook_path
from vfiobench.report.index import write_index
from vfiobench.report.kernel import kernel_for_this_python
from vfiobench.report.page import Page
from vfiobench.report.postprocess import error_box, external_resources, html_output, page_verdicts, to_html
from vfiobench.store import RUN_JSON, RunMeta, find_runs, load_run

#: Folder beside the compare page holding the text of every QEMU patch its runs' binaries carry.
PATCH_DIR = "patches"


@dataclass
class Batch:
    """The pages of one ``vfiobench report`` invocation and the index linking them."""

    out: Path
    pages: list[Page] = field(default_factory=list)
    index: Path | None = None

    @property
    def failed(self) -> list[Page]:
        """Pages whose notebook stopped."""
        return [p for p in self.pages if not p.ok]


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "run"


def render_page(
    notebook: Path,
    page: Page,
    kernel: str,
) -> Page:
    """Execute ``notebook`` with ``page.parameters`` and write ``page.ipynb`` and ``page.html``."""
    import nbformat

    page.html.parent.mkdir(parents=True, exist_ok=True)
    page.ipynb.unlink(missing_ok=True)  # never render a previous batch's notebook
    page.error = execute(notebook, page.ipynb, page.parameters, kernel)
    if page.ipynb.is_file():
        nb = nbformat.read(page.ipynb, as_version=4)  # type: ignore[no-untyped-call]
    else:  # the kernel died or timed out before papermill saved anything
        cell = nbformat.v4.new_code_cell(outputs=[html_output(error_box(page.error or "no output"))])  # type: ignore[no-untyped-call]
        nb = nbformat.v4.new_notebook(cells=[cell])  # type: ignore[no-untyped-call]
    page.verdicts = page_verdicts(nb)
    title = f"vfiobench · {page.name}"
    body = to_html(nb, title)
    if page.kind == "run":
        body = _with_trace(page, body)
    page.html.write_text(body, encoding="utf-8")
    external = external_resources(body)
    if external and page.error is None:
        page.error = f"the page would fetch {len(external)} resources from the network, e.g. {external[0]}"
    return page


def _with_trace(page: Page, body: str) -> str:
    """Write the run's Perfetto trace beside its page and link it at the top of the page.

    Runs without timestamped events (probe-free, histogram mode, unreadable) get no trace.
    """
    from vfiobench.export.perfetto import write_perfetto

    try:
        run = load_run(page.parameters["run_dir"])
    except VfioBenchError:
        return body
    summary = write_perfetto([run], page.html.with_suffix(".pftrace"))
    if not summary.probe_calls:  # nothing the probes timed: no trace worth a link
        summary.path.unlink()
        return body
    page.trace = summary.path
    link = (
        f'<p class="vfb-trace"><a href="{page.trace.name}" download>Download this run as a Perfetto '
        "trace</a> (open it in ui.perfetto.dev: a slice per probe call, a flow per interrupt).</p>"
    )
    head, sep, rest = body.partition("<main>")
    return head + sep + link + rest if sep else body.replace("<body>", "<body>" + link, 1)


def representative_pages(pages: Sequence[Page]) -> tuple[list[Page], list[Page]]:
    """Split run pages into one per (cell, variant, kind), the lowest repetition, and the rest.

    The rest keep their index columns (run id, status, lost events, checks) and are marked
    ``rendered = False``.
    """
    chosen: dict[tuple[str, ...], tuple[int, Page]] = {}
    keys: dict[int, tuple[str, ...]] = {}
    for i, page in enumerate(pages):
        try:
            meta = load_run(page.parameters["run_dir"]).meta
        except VfioBenchError:
            keys[i] = (f"unreadable-{i}",)  # an unreadable run keeps its page: it shows what is wrong
            chosen[keys[i]] = (0, page)
            continue
        labels = meta.labels  # the cell: workload x accel, as the A/B page groups runs
        cell = f"{meta.workload.name}·{labels.get('accel', '')}"
        key = (str(labels.get("experiment", "")), cell, meta.variant, meta.kind)
        rep = int(labels.get("repetition") or 0)
        keys[i] = key
        if key not in chosen or rep < chosen[key][0]:
            chosen[key] = (rep, page)
    keep = {id(p) for _, p in chosen.values()}
    rendered = [p for p in pages if id(p) in keep]
    listed = [p for p in pages if id(p) not in keep]
    for p in listed:
        p.rendered = False
    return rendered, listed


def plan_run_pages(paths: Sequence[str | os.PathLike[str]], out: Path) -> list[Page]:
    """One :class:`Page` per run found in ``paths``.

    A path that is a run directory gives one page; a directory of runs gives one page per run; a
    path that is neither (missing, empty, corrupt) still gives one page, where the notebook shows
    what is wrong.
    """
    dirs: list[Path] = []
    for p in paths:
        path = Path(p)
        found: list[Path] = []
        if path.is_dir() and not (path / RUN_JSON).is_file():
            with contextlib.suppress(VfioBenchError):
                found = find_runs(path)
        dirs.extend(found or [path])
    pages: list[Page] = []
    used: set[str] = set()
    for d in dict.fromkeys(dirs):
        name = _safe_name(d.name)
        stem, i = name, 1
        while name in used or name in ("index", "compare"):
            i += 1
            name = f"{stem}-{i}"
        used.add(name)
        page = Page("run", name, out / f"{name}.html", out / f"{name}.ipynb", {"run_dir": str(d.absolute())})
        _describe(page, d)
        pages.append(page)
    return pages


def _describe(page: Page, run_dir: Path) -> None:
    """Fill a page's index columns from the run's metadata (left empty if the run is unreadable)."""
    try:
        meta = load_run(run_dir).meta
    except VfioBenchError:
        return
    page.run_id, page.variant, page.status, page.source = meta.run_id, meta.variant, meta.status, meta.source
    page.lost_events = meta.lost_events
    page.checks = f"{sum(c.ok for c in meta.checks)}/{len(meta.checks)} ok" if meta.checks else "none"


def plan_compare_page(
    paths: Sequence[str | os.PathLike[str]],
    out: Path,
    *,
    baseline: str,
    variants: Sequence[str] | None,
    group_by: Sequence[str] | None = None,
    include_warmup: bool = False,
) -> Page:
    """The A/B page over every run in ``paths``.

    ``group_by`` (None: the notebook's default, experiment × release × workload × accel) and
    ``include_warmup`` become the notebook's parameters; the index columns count the runs the page
    compares (warm-ups left out unless included).
    """
    params: dict[str, Any] = {
        "runs": [str(Path(p).absolute()) for p in paths],
        "baseline": baseline,
        "variants": list(variants) if variants else None,
        "patch_links": PATCH_DIR,
        "include_warmup": include_warmup,
    }
    if group_by is not None:
        params["group_by"] = list(group_by)
    page = Page("compare", "compare", out / "compare.html", out / "compare.ipynb", params)
    runs: list[RunMeta] = []
    for p in paths:
        with contextlib.suppress(VfioBenchError):
            runs.extend(load_run(d).meta for d in find_runs(p))
    if not include_warmup:
        runs = [m for m in runs if m.labels.get("warmup") is not True]
    if runs:
        found = list(dict.fromkeys(m.variant for m in runs))
        found.sort(key=lambda v: v != baseline)
        page.variant = " vs ".join(found)
        statuses = {m.status for m in runs}
        page.status = statuses.pop() if len(statuses) == 1 else "mixed"
        page.source = ", ".join(sorted({m.source for m in runs}))
        page.lost_events = sum(m.lost_events for m in runs)
        checks = [c for m in runs for c in m.checks]
        page.checks = f"{sum(c.ok for c in checks)}/{len(checks)} ok" if checks else "none"
    return page


def write_compare_patches(paths: Sequence[str | os.PathLike[str]], dest: Path) -> list[Path]:
    """Copy the patch text of every run's QEMU binary into ``dest`` (the compare page links there).

    See :func:`vfiobench.report.patches.write_patch_files`; unreadable runs are skipped (their page
    says why).
    """
    from vfiobench.report.patches import write_patch_files

    metas: list[RunMeta] = []
    for p in paths:
        with contextlib.suppress(VfioBenchError):
            metas.extend(load_run(d).meta for d in find_runs(p))
    return write_patch_files(metas, dest)


def render_batch(
    paths: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    *,
    runs: bool = True,
    compare: bool = False,
    baseline: str = "stock",
    variants: Sequence[str] | None = None,
    group_by: Sequence[str] | None = None,
    include_warmup: bool = False,
    notebooks_dir: Path | None = None,
    on_page: Callable[[Page, int, int], None] | None = None,
    before_page: Callable[[Page, int, int], None] | None = None,
    jobs: int = 1,
    run_pages: str = "all",
) -> Batch:
    """Render per-run pages and/or the A/B page for ``paths`` into ``out``, then ``index.html``.

    Args:
        paths: run directories and/or directories of runs.
        out: output directory (created).
        runs: render one page per run.
        compare: render the A/B page over all runs.
        baseline: the compare page's baseline variant.
        variants: variants the compare page keeps (``None``: all).
        group_by: the compare page's cells (``None``: experiment × release × workload × accel, the
            experiment only when the runs mix experiments; ``[]``: one group).
        include_warmup: keep warm-up runs (``labels.warmup``) on the compare page.
        notebooks_dir: where ``run.ipynb``/``compare.ipynb`` are (default: the repository's).
        on_page: called after each page as ``on_page(page, done, total)`` (progress display).
        before_page: called before each page as ``before_page(page, index, total)`` (when it is
            started, or queued with ``jobs > 1``).
        jobs: pages rendered at once, each in its own process with its own kernel.
        run_pages: ``"all"``, or ``"representative"``: one page per (experiment cell, variant, run
            kind), its first repetition; the other runs are listed on the index (checks, lost events)
            without a page, so a sample of hundreds of runs renders in minutes.

    Returns:
        The batch; pages whose notebook stopped carry ``error`` (their HTML shows it).

    Raises:
        ReportError: nothing to render, or a notebook or kernel is missing.
    """
    out_dir = Path(out)
    if not paths:
        raise ReportError("no run directories given", "pass RUN_DIR..., e.g. vfiobench report data/sample")
    if not runs and not compare:
        raise ReportError("nothing to render: per-run pages are off and --compare is not set")
    planned: list[tuple[Path, Page]] = []
    if compare:
        nb = notebook_path(COMPARE_NOTEBOOK, notebooks_dir)
        page = plan_compare_page(
            paths,
            out_dir,
            baseline=baseline,
            variants=variants,
            group_by=group_by,
            include_warmup=include_warmup,
        )
        planned.append((nb, page))
    listed: list[Page] = []
    if runs:
        nb = notebook_path(RUN_NOTEBOOK, notebooks_dir)
        pages = plan_run_pages(paths, out_dir)
        if run_pages == "representative":
            pages, listed = representative_pages(pages)
        elif run_pages != "all":
            raise ReportError(f"run_pages must be 'all' or 'representative', not {run_pages!r}")
        planned.extend((nb, page) for page in pages)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(
            f"{out_dir}: cannot create the output directory ({e.strerror})", "choose another --out"
        ) from None
    if compare:
        write_compare_patches(paths, out_dir / PATCH_DIR)
    batch = Batch(out_dir)
    rank = {page.html: i for i, (_, page) in enumerate(planned)}
    try:
        with kernel_for_this_python() as kernel:
            if jobs > 1 and len(planned) > 1:
                _render_parallel(planned, kernel, jobs, batch, before_page, on_page)
            else:
                for i, (nb_path, page) in enumerate(planned):
                    if before_page:
                        before_page(page, i, len(planned))
                    batch.pages.append(render_page(nb_path, page, kernel))
                    if on_page:
                        on_page(page, i + 1, len(planned))
    finally:  # Ctrl-C or a crash mid-batch: the index still links the pages already written
        batch.pages.sort(key=lambda p: rank[p.html])
        batch.index = write_index([*batch.pages, *listed], out_dir)
    return batch


def _render_parallel(
    planned: Sequence[tuple[Path, Page]],
    kernel: str,
    jobs: int,
    batch: Batch,
    before_page: Callable[[Page, int, int], None] | None,
    on_page: Callable[[Page, int, int], None] | None,
) -> None:
    """Render pages in ``jobs`` worker processes (spawned: they inherit ``JUPYTER_PATH``, no threads)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    total = len(planned)
    pool = ProcessPoolExecutor(max_workers=min(jobs, total), mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = []
        for i, (nb_path, page) in enumerate(planned):
            if before_page:
                before_page(page, i, total)
            futures.append(pool.submit(render_page, nb_path, page, kernel))
        for done, future in enumerate(as_completed(futures), start=1):
            page = future.result()
            batch.pages.append(page)
            if on_page:
                on_page(page, done, total)
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
