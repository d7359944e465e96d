"""Small helpers the report notebooks call, so the notebooks stay thin.

The notebooks in ``notebooks/`` hold one ``parameters`` cell and a handful of one-line calls into
this package (imported as ``nbk``) and into :mod:`vfiobench.analysis` / :mod:`vfiobench.plots`:

- :mod:`~vfiobench.notebook.params` validates notebook parameters and opens the runs
  (:func:`open_run`, :func:`open_runs`); a bad parameter shows a one-paragraph message in the page
  and raises a :class:`~vfiobench.errors.VfioBenchError` that stops the notebook (papermill then
  fails and ``vfiobench report`` prints the same message on one line);
- :mod:`~vfiobench.notebook.runinfo` renders what every page shows about its runs: the title, the
  "synthetic data" banner, status, run metadata, lost-event counts and ground-truth checks;
- :mod:`~vfiobench.notebook.sections` renders the analysis sections (latency, per-interrupt cost,
  A/B verdicts, run-to-run spread, probe overhead, rates) from :mod:`vfiobench.analysis` frames and
  :mod:`vfiobench.plots` figures;
- :mod:`~vfiobench.notebook.cells` groups a compare page's runs into cells (workload × accel by
  default; never pooled across cells) and sets warm-up runs aside; :mod:`~vfiobench.notebook.headline`
  renders the answer per cell (headline table, verdicts, failed checks),
  :mod:`~vfiobench.notebook.cellsections` the per-cell sections, and :mod:`~vfiobench.notebook.builds`
  the QEMU builds and the text of their patches;
- :mod:`~vfiobench.notebook.display` holds the output primitives: HTML, tables, message boxes, and
  Bokeh figures with BokehJS **inlined** into the page (no CDN), so the HTML opens offline.

Example (in a notebook)::

    from vfiobench import notebook as nbk
    run = nbk.open_run(run_dir)
    nbk.header(run)
    nbk.show_metadata(run)
"""

from vfiobench.notebook.builds import (
    PatchText,
    builds_html,
    df_builds,
    patch_texts,
    show_builds,
    variant_patches,
    write_patch_files,
)
from vfiobench.notebook.cells import (
    DEFAULT_GROUP_BY,
    Cell,
    Comparison,
    cell_value,
    cells_html,
    compare_cells,
    df_cells,
    is_warmup,
    show_cells,
    split_cells,
)
from vfiobench.notebook.cellsections import (
    df_cell_checks,
    df_cell_overhead,
    df_cell_per_interrupt,
    show_cell_checks,
    show_cell_latency,
    show_cell_overhead,
    show_cell_per_interrupt,
    show_cell_rates,
    show_cell_repetitions,
)
from vfiobench.notebook.display import (
    ERROR_OUTPUT_MARKER,
    PAGE_CSS,
    VERDICTS_MARKER,
    bokeh_html,
    error_html,
    fmt_number,
    kv_html,
    note,
    reset_for_tests,
    setup,
    show,
    show_html,
    show_table,
    stop,
    table_html,
)
from vfiobench.notebook.headline import (
    df_headline,
    df_headline_view,
    failed_checks_html,
    headline_html,
    show_cell_verdicts,
    show_failed_checks,
    show_headline,
)
from vfiobench.notebook.params import open_run, open_runs
from vfiobench.notebook.runinfo import (
    SYNTHETIC_BANNER,
    checks_html,
    df_checks,
    df_lost_events,
    df_runs,
    header,
    is_synthetic,
    lost_events_html,
    metadata_items,
    show_checks,
    show_lost_events,
    show_metadata,
    show_runs,
    status_badge,
    trust_summary_html,
)
from vfiobench.notebook.sections import (
    PER_INTERRUPT_COLUMNS,
    as_runset,
    df_calls,
    df_operation_latency,
    df_per_interrupt_view,
    df_probe_overhead,
    df_verdicts,
    in_us,
    show_cost_breakdown,
    show_interrupt_latency_plots,
    show_latency,
    show_operation_cdfs,
    show_operation_plots,
    show_per_interrupt,
    show_probe_overhead,
    show_rates,
    show_repetitions,
    show_verdicts,
)

__all__ = [
    "DEFAULT_GROUP_BY",
    "ERROR_OUTPUT_MARKER",
    "PAGE_CSS",
    "PER_INTERRUPT_COLUMNS",
    "SYNTHETIC_BANNER",
    "VERDICTS_MARKER",
    "Cell",
    "Comparison",
    "PatchText",
    "as_runset",
    "bokeh_html",
    "builds_html",
    "cell_value",
    "cells_html",
    "checks_html",
    "compare_cells",
    "df_builds",
    "df_calls",
    "df_cell_checks",
    "df_cell_overhead",
    "df_cell_per_interrupt",
    "df_cells",
    "df_checks",
    "df_headline",
    "df_headline_view",
    "df_lost_events",
    "df_operation_latency",
    "df_per_interrupt_view",
    "df_probe_overhead",
    "df_runs",
    "df_verdicts",
    "error_html",
    "failed_checks_html",
    "fmt_number",
    "header",
    "headline_html",
    "in_us",
    "is_synthetic",
    "is_warmup",
    "kv_html",
    "lost_events_html",
    "metadata_items",
    "note",
    "open_run",
    "open_runs",
    "patch_texts",
    "reset_for_tests",
    "setup",
    "show",
    "show_builds",
    "show_cell_checks",
    "show_cell_latency",
    "show_cell_overhead",
    "show_cell_per_interrupt",
    "show_cell_rates",
    "show_cell_repetitions",
    "show_cell_verdicts",
    "show_cells",
    "show_checks",
    "show_cost_breakdown",
    "show_failed_checks",
    "show_headline",
    "show_html",
    "show_interrupt_latency_plots",
    "show_latency",
    "show_lost_events",
    "show_metadata",
    "show_operation_cdfs",
    "show_operation_plots",
    "show_per_interrupt",
    "show_probe_overhead",
    "show_rates",
    "show_repetitions",
    "show_runs",
    "show_table",
    "show_verdicts",
    "split_cells",
    "status_badge",
    "stop",
    "table_html",
    "trust_summary_html",
    "variant_patches",
    "write_patch_files",
]
