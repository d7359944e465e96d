"""Analysis: pure pandas/numpy/scipy over the run store (never imports bcc).

Modules, each with one job; every ``df_*`` function lists the columns it returns:

* :mod:`~vfiobench.buckets`: HDR-style log-linear buckets (integer-only, mirrored in BPF C);
* :mod:`~vfiobench.analysis.latency`: histograms, percentile summaries, CDFs, merging;
* :mod:`~vfiobench.analysis.rates`: events per second over time;
* :mod:`~vfiobench.analysis.nesting`: exclusive time of nested calls;
* :mod:`~vfiobench.analysis.per_interrupt`: counts and cost per delivered interrupt;
* :mod:`~vfiobench.analysis.inference`: inference over runs (Welch on per-run values, MIN_RUNS);
* :mod:`~vfiobench.analysis.ab`: A/B metrics, the comparison of each variant with the baseline, verdicts;
* :mod:`~vfiobench.analysis.compare`: runs grouped into comparable sets (workload × accel, never
  pooled; warm-ups set aside), the A/B tables per group;
* :mod:`~vfiobench.analysis.headline`: a comparison's answer per (group, variant), per-interrupt
  costs pooled over runs;
* :mod:`~vfiobench.analysis.overhead`: probe overhead (probed vs probe-free latency), lost events;
* :mod:`~vfiobench.analysis.calls`: every probed call, latency per operation, delivered interrupts;
* :mod:`~vfiobench.analysis.runinfo`: runs, builds, lost events and ground-truth checks as tables.

Example:
    >>> import vfiobench as vb
    >>> from vfiobench.analysis import df_ab, df_per_interrupt
    >>> runs = vb.load_runs("data/sample")                       # doctest: +SKIP
    >>> df_per_interrupt(runs)[["variant", "total_us_per_irq"]]  # doctest: +SKIP
    >>> df_ab(runs, "us_per_irq", baseline="stock").verdict[0]   # doctest: +SKIP
"""

from vfiobench.analysis.ab import ABResult, ab_compare, df_ab, df_repetitions, metric_samples
from vfiobench.analysis.calls import df_calls, df_delivered, df_operation_latency
from vfiobench.analysis.compare import (
    Comparison,
    RunGroup,
    df_group_repetitions,
    df_groups,
    df_verdicts,
    make_comparison,
    split_groups,
)
from vfiobench.analysis.headline import df_group_per_interrupt, df_headline
from vfiobench.analysis.latency import (
    df_cdf,
    df_histogram,
    df_histograms,
    df_latency_summary,
    histogram_from_table,
    histogram_percentiles,
    merge_histograms,
)
from vfiobench.analysis.overhead import df_group_overhead, df_probe_overhead
from vfiobench.analysis.per_interrupt import (
    df_cost_breakdown,
    df_per_cycle,
    df_per_interrupt,
    interrupt_count,
)
from vfiobench.analysis.rates import df_probe_rates, df_rate_timeline
from vfiobench.analysis.runinfo import (
    df_builds,
    df_checks,
    df_failed_checks,
    df_group_checks,
    df_lost_events,
    df_runs,
)
from vfiobench.buckets import LogLinearBuckets

__all__ = [
    "ABResult",
    "Comparison",
    "LogLinearBuckets",
    "RunGroup",
    "ab_compare",
    "df_ab",
    "df_builds",
    "df_calls",
    "df_cdf",
    "df_checks",
    "df_cost_breakdown",
    "df_delivered",
    "df_failed_checks",
    "df_group_checks",
    "df_group_overhead",
    "df_group_per_interrupt",
    "df_group_repetitions",
    "df_groups",
    "df_headline",
    "df_histogram",
    "df_histograms",
    "df_latency_summary",
    "df_lost_events",
    "df_operation_latency",
    "df_per_cycle",
    "df_per_interrupt",
    "df_probe_overhead",
    "df_probe_rates",
    "df_rate_timeline",
    "df_repetitions",
    "df_runs",
    "df_verdicts",
    "histogram_from_table",
    "histogram_percentiles",
    "interrupt_count",
    "make_comparison",
    "merge_histograms",
    "metric_samples",
    "split_groups",
]
