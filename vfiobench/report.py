"""Render runs into self-contained HTML reports: papermill executes a notebook, nbconvert renders it.

One page per run (``notebooks/run.ipynb``), one A/B page over all given runs
(``notebooks/compare.ipynb``, with the text of the QEMU patches its runs were built with copied to
``patches/`` beside it so its links work offline), and an ``index.html`` linking every page with its
variant, status and lost-event count. Beside every ``<page>.html`` the executed ``<page>.ipynb`` is
kept for those who want the code.

The HTML is for reviewers: no code cells, BokehJS inlined by :mod:`vfiobench.notebook` (nothing is
fetched from a CDN; nbconvert's require.js/MathJax/mermaid script tags are removed), and when a
notebook stops on a bad parameter the page shows the one-paragraph message, not a traceback.

The kernel: papermill must start a kernel that runs *this* interpreter (the venv vfiobench is
installed in). :func:`kernel_for_this_python` uses the ``vfiobench`` kernelspec when it points at
this interpreter (``make`` registers it in ``.venv``) and otherwise registers a private one for
``sys.executable`` in a temporary directory for the duration of the batch, so a venv never meets
``NoSuchKernel`` and never runs another environment's vfiobench.

Example:
    >>> from vfiobench.report import render_batch
    >>> batch = render_batch(["data/sample"], "reports", compare=True)        # doctest: +SKIP
    >>> [p.html.name for p in batch.pages if not p.ok]                        # doctest: +SKIP
    []
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import html
import json
import logging
import os
import re
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Literal

from vfiobench.errors import ReportError, VfioBenchError
from vfiobench.store import RUN_JSON, RunMeta, find_runs, load_run

#: Where the report notebooks are looked for: the repository's ``notebooks/`` (a source checkout or
#: an editable install), then ``<data>/share/vfiobench/notebooks`` where a wheel installs them (the
#: environment's data directory, or the user's for ``pip install --user``).
NOTEBOOK_DIRS: tuple[Path, ...] = (
    Path(__file__).resolve().parent.parent / "notebooks",
    Path(sysconfig.get_path("data")) / "share" / "vfiobench" / "notebooks",
    Path(sysconfig.get_path("data", f"{os.name}_user")) / "share" / "vfiobench" / "notebooks",
)
RUN_NOTEBOOK = "run.ipynb"
#: Folder beside the compare page holding the text of every QEMU patch its runs' binaries carry.
PATCH_DIR = "patches"
COMPARE_NOTEBOOK = "compare.ipynb"
KERNEL_NAME = "vfiobench"
#: Per-cell execution timeout in seconds.
CELL_TIMEOUT_S = 600

PageKind = Literal["run", "compare"]

#: nbconvert's lab template minus everything it would fetch from the network.
_TEMPLATE_NAME = "vfiobench_report.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{% block extra_css %}<style>body{max-width:1200px;margin:auto}</style>{% endblock extra_css %}
"""

_PAPERMILL_ERROR_TAG = "papermill-error-cell-tag"


@dataclass
class Page:
    """One rendered (or attempted) report page."""

    kind: PageKind
    name: str
    html: Path
    ipynb: Path
    parameters: dict[str, Any]
    error: str | None = None
    run_id: str | None = None
    variant: str | None = None
    status: str | None = None
    source: str | None = None
    lost_events: int | None = None
    checks: str | None = None
    verdicts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the notebook ran to the end."""
        return self.error is None


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


# -------------------------------------------------------------------------------------------- kernel


def _same_interpreter(argv0: str) -> bool:
    """True when a kernelspec's ``argv[0]`` runs this interpreter's environment.

    Paths are compared without resolving symlinks: every venv's ``python`` is a symlink to the
    same base interpreter, and a kernel from another venv must not match.
    """
    if not os.path.isabs(argv0):
        return False
    here = Path(sys.executable).absolute()
    there = Path(argv0)
    if not there.exists():
        return False
    return os.path.normpath(there.parent) == os.path.normpath(here.parent) and there.name.startswith("python")


def find_kernel(name: str | None = None) -> str | None:
    """Return ``name`` (default :data:`KERNEL_NAME`) when that kernelspec runs this interpreter, else None."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = name or KERNEL_NAME
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    return name if spec.argv and _same_interpreter(spec.argv[0]) else None


def write_kernelspec(kernels_dir: Path, name: str, python: str = sys.executable) -> Path:
    """Write a kernelspec ``kernels_dir/name/kernel.json`` that starts ``python -m ipykernel_launcher``."""
    spec_dir = kernels_dir / name
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"vfiobench ({python})",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec, indent=1) + "\n", encoding="utf-8")
    return spec_dir


@contextlib.contextmanager
def kernel_for_this_python() -> Iterator[str]:
    """Yield the name of a kernelspec that runs ``sys.executable``, registering one if needed.

    Uses the ``vfiobench`` kernelspec when it runs this interpreter. Otherwise writes a private
    kernelspec into a temporary directory, prepends it to ``JUPYTER_PATH`` while the context is
    open (papermill's kernel manager reads it when it starts each kernel), and removes it after.
    """
    found = find_kernel()
    if found is not None:
        yield found
        return
    tmp = Path(tempfile.mkdtemp(prefix="vfiobench-kernel-"))
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:10]
    name = f"vfiobench-{digest}"
    write_kernelspec(tmp / "kernels", name)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp) + (os.pathsep + old if old else "")
    try:
        yield name
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------------------- execution


def notebook_path(name: str, notebooks_dir: Path | None = None) -> Path:
    """Path of a report notebook.

    Raises:
        ReportError: the notebook is not there (e.g. vfiobench installed without its notebooks/).
    """
    dirs = (notebooks_dir,) if notebooks_dir is not None else NOTEBOOK_DIRS
    for d in dirs:
        if (d / name).is_file():
            return d / name
    where = " or ".join(str(d / name) for d in dirs)
    raise ReportError(f"{where}: report notebook not found", "pass --notebooks DIR pointing at notebooks/")


def execute(notebook: Path, out_ipynb: Path, parameters: dict[str, Any], kernel: str) -> str | None:
    """Execute ``notebook`` with papermill into ``out_ipynb``.

    Returns:
        ``None`` when every cell ran, else the one-line message of the exception that stopped the
        notebook (the executed notebook is written either way).

    Raises:
        ReportError: the kernel could not be started.
    """
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    pm_logger = logging.getLogger("papermill")
    level = pm_logger.level
    pm_logger.setLevel(logging.ERROR)  # "Black is not installed", "Executing notebook with kernel"...
    try:
        pm.execute_notebook(
            str(notebook),
            str(out_ipynb),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            cwd=str(notebook.parent),
            execution_timeout=CELL_TIMEOUT_S,
            request_save_on_cell_execute=False,
            # the kernel process's own log (ipykernel >= 7 warns about TCP to localhost on every start,
            # and logs the shutdown interrupt as an error); notebook errors come through the protocol
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except pm.PapermillExecutionError as e:
        message = str(e.evalue) if _is_expected(e.ename) else f"{e.ename}: {e.evalue}"
        return " ".join(message.split())  # one line, whatever the exception's text
    except (CellTimeoutError, DeadKernelError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {first}" if first else type(e).__name__
    except NoSuchKernel as e:
        raise ReportError(f"no Jupyter kernel {kernel!r} ({e})", "run `make report` to register it") from None
    finally:
        pm_logger.setLevel(level)
    return None


def _is_expected(ename: str) -> bool:
    """True for the names of :class:`VfioBenchError` and its subclasses (their message stands alone)."""
    names: set[str] = set()
    todo: list[type[BaseException]] = [VfioBenchError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return ename in names


# ---------------------------------------------------------------------------------------------- HTML


def reviewer_notebook(nb: Any) -> Any:
    """Copy of an executed notebook prepared for reviewers (the HTML page).

    - papermill's red "An Exception was encountered" marker cells are dropped;
    - the cell that raised keeps its outputs; its traceback is replaced by a one-paragraph message
      box, or dropped when the notebook already showed one (:func:`vfiobench.notebook.stop`);
    - cells after the one that raised (never executed) are dropped.
    """
    from vfiobench.notebook import ERROR_OUTPUT_MARKER

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
            new_outputs.append(_html_output(_error_box(message)))
        cell["outputs"] = new_outputs
        kept.append(cell)
        break
    nb.cells = kept
    return nb


def _error_box(message: str) -> str:
    return (
        '<div class="vfb-error" style="background:#fdecea;border:2px solid #d93025;padding:.8em 1em">'
        f"<b>This report stopped.</b><br>{html.escape(message)}</div>"
    )


def _html_output(markup: str) -> Any:
    import nbformat

    return nbformat.v4.new_output("display_data", data={"text/html": markup})  # type: ignore[no-untyped-call]


def to_html(nb: Any, title: str) -> str:
    """Render an executed notebook as a reviewer page: no code, no prompts, nothing fetched."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(  # type: ignore[no-untyped-call]
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
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


def _verdicts(nb: Any) -> list[str]:
    """The A/B verdict lines a notebook displayed (output metadata ``VERDICTS_MARKER``)."""
    from vfiobench.notebook import VERDICTS_MARKER

    lines: list[str] = []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.get("cell_type") == "code" else []:
            lines.extend(str(v) for v in out.get("metadata", {}).get(VERDICTS_MARKER, []))
    return lines


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
        cell = nbformat.v4.new_code_cell(outputs=[_html_output(_error_box(page.error or "no output"))])  # type: ignore[no-untyped-call]
        nb = nbformat.v4.new_notebook(cells=[cell])  # type: ignore[no-untyped-call]
    page.verdicts = _verdicts(nb)
    title = f"vfiobench · {page.name}"
    body = to_html(nb, title)
    page.html.write_text(body, encoding="utf-8")
    external = external_resources(body)
    if external and page.error is None:
        page.error = f"the page would fetch {len(external)} resources from the network, e.g. {external[0]}"
    return page


# --------------------------------------------------------------------------------------------- batch


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

    ``group_by`` (None: the notebook's default, workload × accel) and ``include_warmup`` become the
    notebook's parameters; the index columns count the runs the page compares (warm-ups left out
    unless included).
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

    See :func:`vfiobench.notebook.builds.write_patch_files`; unreadable runs are skipped (their page
    says why).
    """
    from vfiobench.notebook.builds import write_patch_files

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
) -> Batch:
    """Render per-run pages and/or the A/B page for ``paths`` into ``out``, then ``index.html``.

    Args:
        paths: run directories and/or directories of runs.
        out: output directory (created).
        runs: render one page per run.
        compare: render the A/B page over all runs.
        baseline: the compare page's baseline variant.
        variants: variants the compare page keeps (``None``: all).
        group_by: the compare page's cells (``None``: workload × accel; ``[]``: one group).
        include_warmup: keep warm-up runs (``labels.warmup``) on the compare page.
        notebooks_dir: where ``run.ipynb``/``compare.ipynb`` are (default: the repository's).
        on_page: called after each page as ``on_page(page, done, total)`` (progress display).
        before_page: called before each page as ``before_page(page, index, total)`` (when it is
            started, or queued with ``jobs > 1``).
        jobs: pages rendered at once, each in its own process with its own kernel.

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
    if runs:
        nb = notebook_path(RUN_NOTEBOOK, notebooks_dir)
        planned.extend((nb, page) for page in plan_run_pages(paths, out_dir))
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
        batch.index = write_index(batch.pages, out_dir)
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


# --------------------------------------------------------------------------------------------- index

_INDEX_CSS = """
body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}
table{border-collapse:collapse}th,td{border:1px solid #ccc;padding:.25em .7em;text-align:left}
th{background:#f3f3f3}.bad{color:#b3261e;font-weight:600}.good{color:#1e7e34}
.banner{background:#fff3cd;border:2px solid #e0a800;padding:.6em 1em;font-weight:600;border-radius:4px}
"""


def index_html(pages: Sequence[Page]) -> str:
    """The ``index.html`` of a batch: one row per page with variant, status, lost events, checks."""
    rows = []
    for p in pages:
        link = f'<a href="{html.escape(p.html.name)}">{html.escape(p.name)}</a>'
        nb = f'<a href="{html.escape(p.ipynb.name)}">ipynb</a>'
        lost = "" if p.lost_events is None else f"{p.lost_events:,}"
        lost_cls = ' class="bad"' if p.lost_events else ""
        report = (
            '<span class="good">ok</span>'
            if p.ok
            else f'<span class="bad">stopped: {html.escape(p.error or "")}</span>'
        )
        cells = [
            link,
            p.kind,
            html.escape(p.variant or "?"),
            html.escape(p.status or "unreadable"),
            html.escape(p.source or "?"),
            f"<span{lost_cls}>{lost}</span>",
            html.escape(p.checks or "?"),
            report,
            nb,
        ]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "page",
            "kind",
            "variant",
            "status",
            "source",
            "lost events",
            "checks",
            "report",
            "notebook",
        )
    )
    synthetic = any(p.source and "synthetic" in p.source for p in pages)
    banner = (
        '<p class="banner">SYNTHETIC DATA: some runs were generated by vfiobench.sample, not recorded; '
        "no number in these reports is a measurement.</p>"
        if synthetic
        else ""
    )
    verdicts = "".join(
        f'<li><a href="{html.escape(p.html.name)}">{html.escape(p.name)}</a>: {html.escape(v)}</li>'
        for p in pages
        for v in p.verdicts
    )
    if verdicts:
        banner += f"<h2>Verdicts</h2><ul>{verdicts}</ul>"
    failed = sum(not p.ok for p in pages)
    summary = f"{len(pages)} pages" + (f', <span class="bad">{failed} stopped</span>' if failed else "")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>vfiobench reports</title>'
        f"<style>{_INDEX_CSS}</style></head><body><h1>vfiobench reports</h1>{banner}<p>{summary}</p>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></body></html>\n"
    )


def write_index(pages: Sequence[Page], out: Path) -> Path:
    """Write ``out/index.html`` linking every page."""
    path = out / "index.html"
    path.write_text(index_html(pages), encoding="utf-8")
    return path
