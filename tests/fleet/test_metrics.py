"""The collector's exposition, parsed back with prometheus_client's own parser."""

from __future__ import annotations

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vfiobench.buckets import LogLinearBuckets
from vfiobench.fleet.metrics import BUCKET_RANGE_NS, FleetCollector, TargetView, prometheus_buckets
from vfiobench.fleet.probeset import Counts, ProbeStatus
from vfiobench.fleet.targets import QemuTarget

BITS = 1
#: Durations (ns) on bucket bounds and between them: 1023/1024 straddle the first exported bound.
PBA_NS = np.array([1023, 1024, 1500, 1535, 1536, 3000, 999_999, 10**6, 5 * 10**9])
IOCTL_NS = np.array([2000, 2047, 2048, 70_000, 70_000])


def view(pid: int, *, up: bool = True, masking: int = 0, svs_error: str = "") -> TargetView:
    layout = LogLinearBuckets(BITS)
    status = {
        "set_irqs_ioctl": ProbeStatus("set_irqs_ioctl", "count", target="tracepoint:x"),
        "set_vector_signal": ProbeStatus(
            "set_vector_signal", "count", error=svs_error, target="" if svs_error else "kprobe:y"
        ),
        "pba_toggle": ProbeStatus("pba_toggle", "stream", target="uprobe:z"),
        "msix_notify": ProbeStatus("msix_notify", "stream", target="uprobe:w"),
    }
    counts = Counts(
        set_irqs=IOCTL_NS.size,
        set_vector_signal=IOCTL_NS.size,
        pba_toggles=PBA_NS.size,
        other_set_enabled=3,
        notify_vfio=7,
        notify_other=2,
        vfio_identified=True,
        hist={
            "set_irqs_ioctl": layout.counts(IOCTL_NS),
            "set_vector_signal": layout.counts(IOCTL_NS),
            "pba_toggle": layout.counts(PBA_NS),
        },
        hist_sum_ns={"set_irqs_ioctl": None, "set_vector_signal": None, "pba_toggle": int(PBA_NS.sum())},
        lost={"pba_toggle": 4, "set_irqs_ioctl": 0},
    )
    target = QemuTarget(pid, 1, f"vm{pid}", ("0000:65:00.0",))
    return TargetView(target, counts, status, masking, up)


def scrape(views: list[TargetView]) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    """Sample name -> {sorted labels: value}, from the text exposition."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(lambda: views, BITS))
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for s in fam.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def labels(pid: int, **extra: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted({"pid": str(pid), "vm": f"vm{pid}", "device": "0000:65:00.0", **extra}.items()))


def test_counters_and_gauges() -> None:
    m = scrape([view(11, masking=1), view(12, up=False, svs_error="KprobesUnavailableError")])
    assert m["vfiobench_set_irqs_total"] == {labels(11): 5, labels(12): 5}
    assert m["vfiobench_set_vector_signal_total"] == {labels(11): 5}  # 12's probe did not attach
    assert m["vfiobench_probe_error"] == {
        labels(12, probe="set_vector_signal", error="KprobesUnavailableError"): 1
    }
    assert m["vfiobench_set_enabled_total"][labels(11, pba="true")] == PBA_NS.size
    assert m["vfiobench_set_enabled_total"][labels(11, pba="false")] == 3
    assert m["vfiobench_msix_notify_total"][labels(11, vfio="true")] == 7
    assert m["vfiobench_msix_notify_total"][labels(11, vfio="false")] == 2
    assert m["vfiobench_lost_events_total"][labels(11, probe="pba_toggle")] == 4
    assert m["vfiobench_masking_guest"] == {labels(11): 1, labels(12): 0}
    assert m["vfiobench_target_up"] == {labels(11): 1, labels(12): 0}
    assert m["vfiobench_target_info"][labels(11, devices="0000:65:00.0")] == 1
    assert m["vfiobench_probe_info"][labels(11, probe="pba_toggle", mode="stream", target="uprobe:z")] == 1
    assert len(m["vfiobench_probe_info"]) == 4 + 3


def test_histogram_buckets_count_values_at_or_below_each_le_exactly() -> None:
    m = scrape([view(11)])
    for op, durations in (("pba_toggle", PBA_NS), ("set_irqs_ioctl", IOCTL_NS)):
        buckets = {
            dict(k)["le"]: v
            for k, v in m["vfiobench_operation_seconds_bucket"].items()
            if dict(k)["operation"] == op and dict(k)["pid"] == "11"
        }
        bounds = sorted((float(le), n) for le, n in buckets.items())
        assert bounds[-1] == (float("inf"), durations.size)
        for le, n in bounds[:-1]:  # the Prometheus meaning of le, checked on the raw durations
            assert n == np.count_nonzero(durations <= round(le * 1e9)), (op, le)
        lo, hi = BUCKET_RANGE_NS
        assert round(bounds[0][0] * 1e9) == lo - 1 and round(bounds[-2][0] * 1e9) == hi - 1
        assert m["vfiobench_operation_seconds_count"][labels(11, operation=op)] == durations.size
    assert m["vfiobench_operation_seconds_sum"][labels(11, operation="pba_toggle")] == pytest.approx(
        PBA_NS.sum() / 1e9
    )
    assert (
        labels(11, operation="set_irqs_ioctl") not in m["vfiobench_operation_seconds_sum"]
    )  # kernel: no sum


def test_prometheus_buckets_pads_and_clips() -> None:
    layout = LogLinearBuckets(1)
    short = prometheus_buckets(np.array([5]), layout, 1 << 10, 1 << 12)  # one value of 0 ns
    assert [le for le, _ in short] == [repr((h - 1) / 1e9) for h in (1024, 1536, 2048, 3072, 4096)] + ["+Inf"]
    assert {n for _, n in short} == {5.0}
    long = np.zeros(layout.n_buckets + 10, dtype=np.int64)
    long[-1] = 3  # beyond the layout (cannot happen; must not crash): dropped
    assert prometheus_buckets(long, layout, 1 << 10, 1 << 12)[-1] == ("+Inf", 0.0)
