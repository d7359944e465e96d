"""The same variant on each stack: one metric per variant, workload, accel and lab release.

The A/B tables compare variants within one cell (one release); this view lays the releases side by
side instead, so "does the PBA toggle still cost on QEMU 11.1 / Linux 7.3?" reads off one row.
Each entry is a level over runs (:func:`~vfiobench.analysis.inference.run_level`: one value per
run, the run's mean µs per interrupt or its median latency; the geometric mean of those with a
95 % t-interval on the log scale, none below 6 runs). Levels of different releases are not tested
against each other here: they ran in different L1 images, so their difference mixes the kernel,
QEMU and the image; the within-release A/B verdicts are the tests.
"""

from __future__ import annotations

import pandas as pd

from vfiobench.analysis.ab import metric_samples, per_run_values
from vfiobench.analysis.compare import Comparison
from vfiobench.analysis.inference import run_level
from vfiobench.errors import AnalysisError

#: Columns of :func:`df_cross_release`.
CROSS_RELEASE_COLUMNS: list[str] = [
    "workload", "accel", "variant", "release", "metric", "quantity", "runs", "center", "ci_low",
    "ci_high",
]  # fmt: skip


def releases_of(cmp: Comparison) -> list[str]:
    """The lab releases of the compared runs, in plan order ([] when no run records one)."""
    return list(dict.fromkeys(str(g.values["release"]) for g in cmp.groups if g.values.get("release")))


def df_cross_release(cmp: Comparison, metric: str = "us_per_irq") -> pd.DataFrame:
    """Per (workload, accel, variant) and release: the metric's level over runs, with its interval.

    Returns:
        The columns of :data:`CROSS_RELEASE_COLUMNS`, one row per group and variant that has samples
        (``ci_low``/``ci_high`` None with fewer than 6 runs); empty when the groups are not split by
        release.
    """
    rows: list[dict[str, object]] = []
    for group in cmp.groups:
        values = group.values
        if not values.get("release"):
            continue
        try:
            samples, m = metric_samples(group.runs, metric)
        except AnalysisError:
            continue  # e.g. no probed runs in this cell: nothing to show for this metric
        for variant in dict.fromkeys(samples["variant"]):
            level = run_level(per_run_values(samples, str(variant), m.statistic))
            rows.append(
                {
                    "workload": values.get("workload"),
                    "accel": values.get("accel"),
                    "variant": variant,
                    "release": values["release"],
                    "metric": metric,
                    "quantity": m.quantity,
                    "runs": level.runs,
                    "center": level.center,
                    "ci_low": level.ci_low,
                    "ci_high": level.ci_high,
                }
            )
    return pd.DataFrame(rows, columns=CROSS_RELEASE_COLUMNS)
