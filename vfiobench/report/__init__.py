"""Render runs into self-contained HTML reports: papermill executes a notebook, nbconvert renders it.

The modules, each with one job:

* :mod:`~vfiobench.report.batch` — plan the pages (one per run, the A/B page), render them (in
  worker processes with ``jobs > 1``) and write the index;
* :mod:`~vfiobench.report.kernel` — the Jupyter kernel: always this interpreter (the ``vfiobench``
  kernelspec when it runs it, else a private one for the batch);
* :mod:`~vfiobench.report.execute` — where the notebooks are, and papermill execution with a
  one-line reason when a notebook stops;
* :mod:`~vfiobench.report.postprocess` — the reviewer's HTML: no code cells, a one-paragraph
  message instead of a traceback, nothing fetched from the network;
* :mod:`~vfiobench.report.index` — ``index.html`` from ``templates/index.html.j2``;
* :mod:`~vfiobench.report.patches` — the text of the QEMU patches a compare page's builds carry;
* :mod:`~vfiobench.report.jupyter` — JupyterLab on the notebooks (``make notebook``);
* :mod:`~vfiobench.report.pages` — what the notebooks call: display only (tables, message boxes,
  figures), over the frames of :mod:`vfiobench.analysis` and the figures of
  :mod:`vfiobench.plots`.

The HTML is for reviewers: no code cells, BokehJS inlined (:mod:`vfiobench.plots.embed`; nothing
is fetched from a CDN; nbconvert's require.js/MathJax/mermaid script tags are removed), and when a
notebook stops on a bad parameter the page shows the one-paragraph message, not a traceback.

Example:
    >>> from vfiobench.report import render_batch
    >>> batch = render_batch(["data/sample"], "reports", compare=True)        # doctest: +SKIP
    >>> [p.html.name for p in batch.pages if not p.ok]                        # doctest: +SKIP
    []
"""

from vfiobench.report.batch import (
    PATCH_DIR,
    Batch,
    plan_compare_page,
    plan_run_pages,
    render_batch,
    render_page,
    write_compare_patches,
)
from vfiobench.report.execute import COMPARE_NOTEBOOK, NOTEBOOK_DIRS, RUN_NOTEBOOK, execute, notebook_path
from vfiobench.report.index import index_html, write_index
from vfiobench.report.kernel import KERNEL_NAME, find_kernel, kernel_for_this_python, write_kernelspec
from vfiobench.report.page import Page
from vfiobench.report.postprocess import external_resources, reviewer_notebook, to_html

__all__ = [
    "COMPARE_NOTEBOOK",
    "KERNEL_NAME",
    "NOTEBOOK_DIRS",
    "PATCH_DIR",
    "RUN_NOTEBOOK",
    "Batch",
    "Page",
    "execute",
    "external_resources",
    "find_kernel",
    "index_html",
    "kernel_for_this_python",
    "notebook_path",
    "plan_compare_page",
    "plan_run_pages",
    "render_batch",
    "render_page",
    "reviewer_notebook",
    "to_html",
    "write_compare_patches",
    "write_index",
    "write_kernelspec",
]
