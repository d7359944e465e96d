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
- :mod:`~vfiobench.notebook.display` holds the output primitives: HTML, tables, message boxes, and
  Bokeh figures with BokehJS **inlined** into the page (no CDN), so the HTML opens offline.

Example (in a notebook)::

    from vfiobench import notebook as nbk
    run = nbk.open_run(run_dir)
    nbk.header(run)
    nbk.show_metadata(run)
"""

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
    "ERROR_OUTPUT_MARKER",
    "PAGE_CSS",
    "PER_INTERRUPT_COLUMNS",
    "SYNTHETIC_BANNER",
    "VERDICTS_MARKER",
    "as_runset",
    "bokeh_html",
    "checks_html",
    "df_calls",
    "df_checks",
    "df_lost_events",
    "df_operation_latency",
    "df_per_interrupt_view",
    "df_probe_overhead",
    "df_runs",
    "df_verdicts",
    "error_html",
    "fmt_number",
    "header",
    "in_us",
    "is_synthetic",
    "kv_html",
    "lost_events_html",
    "metadata_items",
    "note",
    "open_run",
    "open_runs",
    "reset_for_tests",
    "setup",
    "show",
    "show_checks",
    "show_cost_breakdown",
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
    "status_badge",
    "stop",
    "table_html",
    "trust_summary_html",
]
