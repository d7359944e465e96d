"""What the report notebooks call (imported as ``nbk``): display only, so the notebooks stay thin.

Every number on a page comes from :mod:`vfiobench.analysis` and every figure from
:mod:`vfiobench.plots`; the modules here turn them into page output, named for what they show:

- :mod:`~vfiobench.report.pages.params` validates notebook parameters and opens the runs
  (:func:`open_run`, :func:`open_runs`, :func:`open_comparison`; relative paths are read from the
  working directory, else from the repository, :func:`resolve_path`); a bad parameter shows a
  one-paragraph message in the page and raises a :class:`~vfiobench.errors.VfioBenchError` that
  stops the notebook (papermill then fails and ``vfiobench report`` prints the same message on
  one line);
- :mod:`~vfiobench.report.pages.runinfo` shows what every page shows about its runs: the title, the
  "synthetic data" banner, status, run metadata, lost-event counts and ground-truth checks;
- :mod:`~vfiobench.report.pages.sections` shows the analysis sections of a run or a run set
  (latency, per-interrupt cost, A/B verdicts, run-to-run spread, probe overhead, rates);
- :mod:`~vfiobench.report.pages.headline` shows a comparison's answer (headline table, verdicts per
  group, failed checks), :mod:`~vfiobench.report.pages.groups` its sections group by group (the
  page calls a group of comparable runs a *cell*: workload × accel by default), and
  :mod:`~vfiobench.report.pages.builds` the QEMU builds and the text of their patches, and
  :mod:`~vfiobench.report.pages.precision` the repetitions rule and how precise each cell's
  intervals are;
- :mod:`~vfiobench.report.pages.display` holds the output primitives: HTML, tables, message boxes,
  and Bokeh figures with BokehJS **inlined** into the page (no CDN), so the HTML opens offline.

Example (in a notebook)::

    from vfiobench.report import pages as nbk
    run = nbk.open_run(run_dir)
    nbk.header(run)
    nbk.show_metadata(run)
"""

from vfiobench.report.markers import ERROR_OUTPUT_MARKER, VERDICTS_MARKER
from vfiobench.report.pages.builds import builds_html, show_builds
from vfiobench.report.pages.display import (
    PAGE_CSS,
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
from vfiobench.report.pages.groups import (
    GROUP_LABEL,
    GROUP_PER_IRQ_COLUMNS,
    compared_groups_html,
    show_compared_groups,
    show_group_checks,
    show_group_latency,
    show_group_overhead,
    show_group_per_interrupt,
    show_group_rates,
    show_group_repetitions,
)
from vfiobench.report.pages.headline import (
    HEADLINE_COLUMNS,
    failed_checks_html,
    fmt_ratio,
    headline_html,
    headline_view,
    show_failed_checks,
    show_group_verdicts,
    show_headline,
    verdict_lines,
)
from vfiobench.report.pages.params import open_comparison, open_run, open_runs, repository_root, resolve_path
from vfiobench.report.pages.precision import (
    show_stopping,
    stopping_html,
    stopping_view,
)
from vfiobench.report.pages.releases import (
    cross_release_html,
    cross_release_view,
    masking_cost_html,
    masking_cost_view,
    show_cross_release,
    show_masking_cost,
)
from vfiobench.report.pages.runinfo import (
    SYNTHETIC_BANNER,
    checks_html,
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
from vfiobench.report.pages.sections import (
    PER_INTERRUPT_COLUMNS,
    per_interrupt_view,
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
from vfiobench.report.pages.stalls import show_stall_sensitivity, stall_sensitivity_html

__all__ = [
    "ERROR_OUTPUT_MARKER",
    "GROUP_LABEL",
    "GROUP_PER_IRQ_COLUMNS",
    "HEADLINE_COLUMNS",
    "PAGE_CSS",
    "PER_INTERRUPT_COLUMNS",
    "SYNTHETIC_BANNER",
    "VERDICTS_MARKER",
    "bokeh_html",
    "builds_html",
    "checks_html",
    "compared_groups_html",
    "cross_release_html",
    "cross_release_view",
    "error_html",
    "failed_checks_html",
    "fmt_number",
    "fmt_ratio",
    "header",
    "headline_html",
    "headline_view",
    "is_synthetic",
    "kv_html",
    "lost_events_html",
    "masking_cost_html",
    "masking_cost_view",
    "metadata_items",
    "note",
    "open_comparison",
    "open_run",
    "open_runs",
    "per_interrupt_view",
    "repository_root",
    "reset_for_tests",
    "resolve_path",
    "setup",
    "show",
    "show_builds",
    "show_checks",
    "show_compared_groups",
    "show_cost_breakdown",
    "show_cross_release",
    "show_failed_checks",
    "show_group_checks",
    "show_group_latency",
    "show_group_overhead",
    "show_group_per_interrupt",
    "show_group_rates",
    "show_group_repetitions",
    "show_group_verdicts",
    "show_headline",
    "show_html",
    "show_interrupt_latency_plots",
    "show_latency",
    "show_lost_events",
    "show_masking_cost",
    "show_metadata",
    "show_operation_cdfs",
    "show_operation_plots",
    "show_per_interrupt",
    "show_probe_overhead",
    "show_rates",
    "show_repetitions",
    "show_runs",
    "show_stall_sensitivity",
    "show_stopping",
    "show_table",
    "show_verdicts",
    "stall_sensitivity_html",
    "status_badge",
    "stop",
    "stopping_html",
    "stopping_view",
    "table_html",
    "trust_summary_html",
    "verdict_lines",
]
