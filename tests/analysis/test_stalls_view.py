"""The A/B comparison with and without interrupts that overlapped an L1 stall."""

from __future__ import annotations

import numpy as np
import pandas as pd

from vfiobench.analysis.compare import make_comparison
from vfiobench.store import load_runs

REPS = 6


def workload(latency_us: float, stalled_fraction: float, rng: np.random.Generator) -> pd.DataFrame:
    n = 101
    stalled = np.arange(n) < int(stalled_fraction * n)
    latency = rng.normal(latency_us, latency_us * 0.02, n) * 1000
    latency[stalled] += 40_000_000  # 40 ms: L1 did not run
    return pd.DataFrame(
        {"cycle": np.arange(n), "vector": 0, "latency_ns": latency, "delivered": True, "stalled": stalled}
    )


def test_stalled_interrupts_can_be_left_out_of_the_end_to_end_comparison(make_run) -> None:
    rng = np.random.default_rng(3)
    root = None
    for rep in range(REPS):
        for variant, lat, frac in (
            ("stock", 1000.0, 0.0),
            ("fix", 500.0, 0.6),
        ):  # most fix interrupts stalled
            labels = {"repetition": rep, "stalled_interrupts": int(frac * 101)}
            root = make_run(f"{variant}-{rep}", variant, {"workload": workload(lat, frac, rng)},
                            kind="probe-free", labels=labels)  # fmt: skip
    cmp = make_comparison(load_runs(root.parent), baseline="stock", group_by=[])
    assert cmp.has_stalls
    view = cmp.ab_without_stalls().iloc[0]
    # with the stalled interrupts the medians say fix is 20x slower; without them, 2x faster
    assert view["ratio_all"] < 0.1 and view["significant_all"]
    assert abs(view["ratio"] - 2.0) < 0.1 and view["significant"] and view["enough_runs"]


def test_without_stall_flags_there_is_nothing_to_show(make_run) -> None:
    rng = np.random.default_rng(4)
    root = None
    for rep in range(REPS):
        for variant, lat in (("stock", 1000.0), ("fix", 500.0)):
            w = workload(lat, 0.0, rng).drop(columns=["stalled"])
            root = make_run(f"{variant}-{rep}", variant, {"workload": w}, kind="probe-free")
    cmp = make_comparison(load_runs(root.parent), baseline="stock", group_by=[])
    assert not cmp.has_stalls and cmp.ab_without_stalls().empty
