"""Analysis: pure pandas/numpy/scipy over the run store (never imports bcc).

Modules, each with one job; every ``df_*`` function lists the columns it returns:

* :mod:`~vfiobench.buckets`: HDR-style log-linear buckets (integer-only, mirrored in BPF C);
* :mod:`~vfiobench.analysis.latency`: histograms, percentile summaries, CDFs, merging;
* :mod:`~vfiobench.analysis.rates`: events per second over time;
* :mod:`~vfiobench.analysis.nesting`: exclusive time of nested calls;
* :mod:`~vfiobench.analysis.per_interrupt`: counts and cost per delivered interrupt;
* :mod:`~vfiobench.analysis.ab`: A/B ratio, cluster bootstrap CI, Mann–Whitney U, verdict.

Example:
    >>> import vfiobench as vb
    >>> from vfiobench.analysis import df_ab, df_per_interrupt
    >>> runs = vb.load_runs("data/sample")                       # doctest: +SKIP
    >>> df_per_interrupt(runs)[["variant", "total_us_per_irq"]]  # doctest: +SKIP
    >>> df_ab(runs, "us_per_irq", baseline="stock").verdict[0]   # doctest: +SKIP
"""

from vfiobench.analysis.ab import ABResult, ab_compare, df_ab, df_repetitions, metric_samples
from vfiobench.analysis.latency import (
    df_cdf,
    df_histogram,
    df_histograms,
    df_latency_summary,
    histogram_from_table,
    histogram_percentiles,
    merge_histograms,
)
from vfiobench.analysis.per_interrupt import (
    df_cost_breakdown,
    df_per_cycle,
    df_per_interrupt,
    interrupt_count,
)
from vfiobench.analysis.rates import df_probe_rates, df_rate_timeline
from vfiobench.buckets import LogLinearBuckets

__all__ = [
    "ABResult",
    "LogLinearBuckets",
    "ab_compare",
    "df_ab",
    "df_cdf",
    "df_cost_breakdown",
    "df_histogram",
    "df_histograms",
    "df_latency_summary",
    "df_per_cycle",
    "df_per_interrupt",
    "df_probe_rates",
    "df_rate_timeline",
    "df_repetitions",
    "histogram_from_table",
    "histogram_percentiles",
    "interrupt_count",
    "merge_histograms",
    "metric_samples",
]
