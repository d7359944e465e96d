"""The exporter's metrics: a ``prometheus_client`` collector over the targets' latest counts.

Every series carries ``pid``, ``vm`` (QEMU's ``-name``, else the pid) and ``device`` (the host
PCI address of the VM's vfio-pci device when its command line names exactly one, else ``""``).

======================================  =========  ==================================================
metric                                  type       what
======================================  =========  ==================================================
``vfiobench_set_irqs_total``            counter    ``VFIO_DEVICE_SET_IRQS`` ioctls
``vfiobench_set_vector_signal_total``   counter    kernel ``vfio_msi_set_vector_signal`` calls (only
                                                   where the kernel has kprobes)
``vfiobench_set_enabled_total``         counter    ``memory_region_set_enabled`` calls; ``pba``:
                                                   ``true`` on the MSI-X PBA region (a PBA toggle)
``vfiobench_msix_notify_total``         counter    ``msix_notify`` calls (QEMU delivering an MSI-X
                                                   interrupt itself); ``vfio``: ``true`` for the
                                                   passthrough device
``vfiobench_operation_seconds``         histogram  duration per ``operation`` (``set_irqs_ioctl``,
                                                   ``set_vector_signal``, ``pba_toggle``,
                                                   ``set_enabled_other``, ``msix_notify``)
``vfiobench_lost_events_total``         counter    events the kernel dropped, per ``probe`` (the
                                                   host-wide ``set_irqs_ioctl``: empty ``pid``,
                                                   ``vm`` and ``device``)
``vfiobench_masking_guest``             gauge      1 while the guest masks on every interrupt
                                                   (:mod:`vfiobench.fleet.masking`)
``vfiobench_probe_info``                info       each attached ``probe``: ``mode`` and ``target``
``vfiobench_probe_error``               gauge      1 per ``probe`` that did not attach, ``error``:
                                                   the error's class (the log line has the text)
``vfiobench_target_up``                 gauge      1 while the process runs, 0 once it exited (its
                                                   series stay for ``--keep-exited`` seconds)
``vfiobench_target_info``               info       ``devices``: every vfio-pci device on its command
                                                   line
======================================  =========  ==================================================

Histogram buckets are the log-linear buckets of the probes (:mod:`vfiobench.buckets`, ``2**bits``
per power of two, 2 by default) from 1 µs to 4.3 s: each ``le`` is a bucket's inclusive upper
bound, ``(hi - 1)`` ns, so the cumulative counts are exact. ``_sum`` is exported only for the
streamed operations; count-mode probes add one per bucket in the kernel and keep no sum.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from vfiobench.buckets import LogLinearBuckets
from vfiobench.fleet.probeset import OPERATIONS, Counts, ProbeStatus
from vfiobench.fleet.targets import QemuTarget

LABELS = ("pid", "vm", "device")

#: Exported bucket range: upper bounds from 2**10 ns (1.0 µs) to 2**32 ns (4.3 s), then +Inf.
BUCKET_RANGE_NS = (1 << 10, 1 << 32)


@dataclass(frozen=True)
class TargetView:
    """What the collector shows of one target (a consistent snapshot)."""

    target: QemuTarget
    counts: Counts
    status: dict[str, ProbeStatus]
    masking: int
    up: bool


def prometheus_buckets(
    counts: np.ndarray[Any, Any], layout: LogLinearBuckets, lo_ns: int, hi_ns: int
) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs in seconds from dense log-linear bucket counts, +Inf last.

    ``le`` is each bucket's inclusive upper bound (``upper - 1`` ns) for the buckets whose upper
    bound lies in ``[lo_ns, hi_ns]``.

    Example:
        >>> prometheus_buckets(np.array([0, 3, 1, 0, 2]), LogLinearBuckets(1), 2, 4)  # [1,2) [2,3) [3,4)
        [('1e-09', 3.0), ('2e-09', 4.0), ('3e-09', 4.0), ('+Inf', 6.0)]
    """
    idx = np.arange(layout.n_buckets)
    upper = layout.upper(idx)
    keep = idx[(upper >= lo_ns) & (upper <= hi_ns)]
    full = np.zeros(layout.n_buckets, dtype=np.int64)
    full[: min(counts.size, full.size)] = counts[: full.size]
    cum = np.cumsum(full)
    out = [(repr((int(upper[i]) - 1) / 1e9), float(cum[i])) for i in keep]
    out.append(("+Inf", float(cum[-1])))
    return out


class FleetCollector(Collector):
    """Renders :class:`TargetView` snapshots as the metric families of the module docstring.

    Args:
        views: Returns the current snapshot of every target (called once per scrape).
        sub_bucket_bits: The probes' histogram precision.
        host_lost: Returns the host-wide probes' lost events, per probe.
    """

    def __init__(
        self,
        views: Callable[[], Sequence[TargetView]],
        sub_bucket_bits: int = 1,
        host_lost: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self.views = views
        self.layout = LogLinearBuckets(sub_bucket_bits)
        self.host_lost = host_lost

    def collect(self) -> Iterator[Metric]:
        """One family per metric, each with a sample per target (and label value)."""
        views = list(self.views())

        def family(kind: type[Any], name: str, doc: str, *extra: str) -> Any:
            return kind(name, doc, labels=[*LABELS, *extra])

        set_irqs = family(CounterMetricFamily, "vfiobench_set_irqs", "VFIO_DEVICE_SET_IRQS ioctls.")
        svs = family(
            CounterMetricFamily,
            "vfiobench_set_vector_signal",
            "Kernel vfio_msi_set_vector_signal calls (where the kernel has kprobes).",
        )
        set_enabled = family(
            CounterMetricFamily,
            "vfiobench_set_enabled",
            "QEMU memory_region_set_enabled calls; pba=true on the MSI-X PBA region (a PBA toggle).",
            "pba",
        )
        notify = family(
            CounterMetricFamily,
            "vfiobench_msix_notify",
            "QEMU msix_notify calls (MSI-X interrupts QEMU delivers itself); vfio=true for the "
            "passthrough device.",
            "vfio",
        )
        hist = family(
            HistogramMetricFamily,
            "vfiobench_operation_seconds",
            "Duration of each probed operation.",
            "operation",
        )
        lost = family(
            CounterMetricFamily, "vfiobench_lost_events", "Probe events dropped in the kernel.", "probe"
        )
        masking = family(
            GaugeMetricFamily,
            "vfiobench_masking_guest",
            "1 while PBA toggles or SET_IRQS per delivered interrupt exceed the threshold.",
        )
        info = family(InfoMetricFamily, "vfiobench_probe", "Each attached probe: mode and where it attached.")
        error = family(
            GaugeMetricFamily,
            "vfiobench_probe_error",
            "1 per probe that did not attach; error: the error's class (the log has its text).",
            "probe",
            "error",
        )
        up = family(GaugeMetricFamily, "vfiobench_target_up", "1 while the QEMU process runs, 0 after.")
        tinfo = family(InfoMetricFamily, "vfiobench_target", "The vfio-pci devices on the QEMU command line.")
        for v in views:
            labels = list(v.target.labels)
            c = v.counts
            on = {p for p, s in v.status.items() if not s.error}
            if "set_irqs_ioctl" in on:
                set_irqs.add_metric(labels, c.set_irqs)
            if "set_vector_signal" in on:
                svs.add_metric(labels, c.set_vector_signal)
            if "pba_toggle" in on:
                set_enabled.add_metric([*labels, "true"], c.pba_toggles)
                set_enabled.add_metric([*labels, "false"], c.other_set_enabled)
            if "msix_notify" in on:
                notify.add_metric([*labels, "true"], c.notify_vfio)
                notify.add_metric([*labels, "false"], c.notify_other)
            for op, probe in OPERATIONS.items():
                if probe in on:
                    self._histogram(hist, [*labels, op], c, op)
            for probe, n in sorted(c.lost.items()):
                lost.add_metric([*labels, probe], n)
            masking.add_metric(labels, v.masking)
            for p, s in v.status.items():
                if s.error:
                    error.add_metric([*labels, p, s.error], 1)
                else:
                    info.add_metric(labels, {"probe": p, "mode": s.mode, "target": s.target})
            up.add_metric(labels, int(v.up))
            tinfo.add_metric(labels, {"devices": " ".join(v.target.devices)})
        for probe, n in sorted((self.host_lost() if self.host_lost else {}).items()):
            lost.add_metric(["", "", "", probe], n)
        yield from (set_irqs, svs, set_enabled, notify, hist, lost, masking, info, error, up, tinfo)

    def _histogram(self, fam: HistogramMetricFamily, labels: list[str], c: Counts, op: str) -> None:
        counts = c.hist.get(op, np.zeros(0, dtype=np.int64))
        buckets = prometheus_buckets(counts, self.layout, *BUCKET_RANGE_NS)
        total = c.hist_sum_ns.get(op)
        fam.add_metric(labels, buckets, None if total is None else total / 1e9)
        if total is None:  # no _sum from the kernel's histograms, but the count is exact
            names = [*LABELS, "operation"]
            fam.add_sample(f"{fam.name}_count", dict(zip(names, labels, strict=True)), buckets[-1][1])
