"""What masking costs: the same QEMU on a guest that masks on every interrupt and on one that never masks.

The A/B tables compare variants (QEMU builds) on one guest; this view compares two guests on one
variant, per lab release and accel, which is the question a maintainer asks of a stack first:
"on QEMU 11.1 / Linux 7.3, what does a masked interrupt cost, and how much of it is the PBA toggle?"

Per (release, accel, variant) present on both workloads:

* counts per interrupt on the masking guest (SET_IRQS, PBA toggles, KVM route commits), pooled over
  its probed runs (calls / delivered interrupts), as the headline table pools them;
* levels over the masking guest's probed runs (:func:`~vfiobench.analysis.inference.run_level`:
  one value per run, geometric mean with a 95 % t-interval, none below 6 runs) of the µs per
  interrupt on the path, in the PBA toggles (inclusive: each toggle with the commit it tail-calls)
  and in the SET_IRQS ioctls (inclusive: with ``vfio_msi_set_vector_signal``);
* end-to-end latency, probe-free runs: each run's median, their geometric mean per guest, and the
  slowdown ``masking ÷ non-masking`` with Welch's 95 % interval and p-value on the log per-run
  medians (:func:`~vfiobench.analysis.inference.compare_runs`; no interval below 6 runs a side).

The two guests ran in the same L1 boots, interleaved, so the slowdown compares like with like; the
µs levels are the probed runs' and carry the probes' overhead (see the A/B page's probe distortion).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench.analysis.ab import Metric, metric_samples, per_run_values
from vfiobench.analysis.compare import Comparison, RunGroup
from vfiobench.analysis.headline import pooled_per_irq
from vfiobench.analysis.inference import compare_runs, run_level
from vfiobench.errors import AnalysisError

MASKING = "mask-every-irq"
NOT_MASKING = "no-mask"

#: Levels of the masking guest's probed runs: output stem and per-run column of df_per_interrupt.
LEVELS: tuple[tuple[str, str], ...] = (
    ("path_us", "path_us_per_irq"),
    ("pba_toggle_us", "pba_toggle_us_per_irq"),
    ("set_irqs_us", "set_irqs_us_per_irq"),
)

#: Columns of :func:`df_masking_cost`.
MASKING_COLUMNS: list[str] = [
    "release", "accel", "variant", "runs_probed", "runs_probe_free", "set_irqs_per_irq",
    "pba_toggles_per_irq", "gsi_routing_per_irq",
    *(f"{stem}{s}" for stem, _ in LEVELS for s in ("", "_low", "_high")),
    "latency_masking_us", "latency_not_masking_us", "slowdown", "slowdown_low", "slowdown_high",
    "p_value", "significant",
]  # fmt: skip


def _latency_samples(group: RunGroup) -> tuple[pd.DataFrame, Metric] | None:
    """The group's latency samples (probe-free runs when it has any), None when it has none."""
    try:
        return metric_samples(group.runs, "latency_ns")
    except AnalysisError:
        return None


def _per_run_us(samples: tuple[pd.DataFrame, Metric] | None, variant: str) -> npt.NDArray[np.float64]:
    """Each run's median latency in µs for ``variant`` (empty without samples)."""
    if samples is None:
        return np.zeros(0)
    return per_run_values(samples[0], variant, samples[1].statistic) / 1e3


def df_masking_cost(cmp: Comparison, masking: str = MASKING, not_masking: str = NOT_MASKING) -> pd.DataFrame:
    """Per (release, accel, variant): what the masking guest costs against the non-masking one.

    Args:
        cmp: a comparison whose groups are split by workload (and release, accel).
        masking: the masking guest's workload.
        not_masking: the non-masking guest's workload.

    Returns:
        The columns of :data:`MASKING_COLUMNS`, one row per (release, accel, variant) run on both
        workloads; levels and intervals NaN where there are too few runs (or no probed runs).
    """
    # a cell's partner: the same grouping values (experiment, release, accel) but the other workload
    groups = {g.key: g for g in cmp.groups}
    per_irq = cmp.per_interrupt()
    rows: list[dict[str, Any]] = []
    for key, group in groups.items():
        cell = group.values
        partner = groups.get(tuple((k, not_masking if k == "workload" else v) for k, v in key))
        if cell.get("workload") != masking or partner is None:
            continue
        release, accel = str(cell.get("release") or ""), str(cell.get("accel") or "")
        latency_masking, latency_not = _latency_samples(group), _latency_samples(partner)
        pi = per_irq[per_irq["group"] == group.label]
        for variant in [v for v in cmp.variants if v in set(pi["variant"])]:  # the baseline first
            mine = pi[pi["variant"] == variant]
            probed = mine[mine["kind"] == "probed"]
            free_masking = _per_run_us(latency_masking, str(variant))
            free_not = _per_run_us(latency_not, str(variant))
            if not free_not.size:
                continue
            row: dict[str, Any] = {
                "release": release,
                "accel": accel,
                "variant": variant,
                "runs_probed": len(probed),
                "runs_probe_free": int(free_masking.size),
                "set_irqs_per_irq": pooled_per_irq(probed, "set_irqs_per_irq"),
                "pba_toggles_per_irq": pooled_per_irq(probed, "pba_toggles_per_irq"),
                "gsi_routing_per_irq": pooled_per_irq(probed, "gsi_routing_per_irq"),
            }
            for stem, col in LEVELS:
                values = probed[col].to_numpy(dtype=np.float64) if col in probed.columns else np.zeros(0)
                values = values[np.isfinite(values)]
                level = run_level(values) if values.size else None
                row[stem] = level.center if level else np.nan
                row[f"{stem}_low"] = level.ci_low if level and level.ci_low is not None else np.nan
                row[f"{stem}_high"] = level.ci_high if level and level.ci_high is not None else np.nan
            row["latency_masking_us"] = run_level(free_masking).center if free_masking.size else np.nan
            row["latency_not_masking_us"] = run_level(free_not).center
            if free_masking.size:
                c = compare_runs(free_masking, free_not, kind="ratio")
                row.update(
                    slowdown=c.estimate,
                    slowdown_low=np.nan if c.ci_low is None else c.ci_low,
                    slowdown_high=np.nan if c.ci_high is None else c.ci_high,
                    p_value=np.nan if c.p_value is None else c.p_value,
                    significant=c.significant,
                )
            rows.append(row)
    return pd.DataFrame(rows, columns=MASKING_COLUMNS)
