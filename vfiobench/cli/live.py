"""The live view of ``vfiobench record`` on a terminal: a table refreshed every second (rich).

Per probe: events so far, events per second over the last interval, lost events, and the p50/p99
of the calls' durations over the last interval and over the whole run. Where ``irq_path`` records
host interrupts, SET_IRQS ioctls and PBA toggles per host interrupt too (the thread's symptom in two
numbers). Durations go into log-linear histograms (:class:`vfiobench.probes.histogram.DurationCounts`), so
the view's memory stays bounded whatever the run's length, and the drain pays one ``bincount`` per
batch (``python -m benchmarks live`` measures it).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from vfiobench import schema
from vfiobench.probes.histogram import DurationCounts as _Durations


class LiveView:
    """Collects what the tracer drains (:meth:`observe`) and renders it (:meth:`table`)."""

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.started = time.monotonic()
        self.interval_start = self.started
        self.run: dict[str, _Durations] = {n: _Durations() for n in names}
        self.interval: dict[str, _Durations] = {n: _Durations() for n in names}
        self.interval_events: dict[str, int] = dict.fromkeys(names, 0)
        self.rates: dict[str, float] = dict.fromkeys(names, 0.0)
        self.last: dict[str, _Durations] = {n: _Durations() for n in names}
        self.host_irqs = 0
        self.pba_toggles = 0

    def observe(self, name: str, rows: np.ndarray[Any, Any]) -> None:
        """One drained batch of table rows of probe ``name`` (called from ``Tracer.poll``)."""
        self.interval_events[name] = self.interval_events.get(name, 0) + int(rows.size)
        if name == schema.IRQ_PATH:
            self.host_irqs += int(np.count_nonzero(rows["event"] == "host_irq"))
            return
        if name == schema.PBA_TOGGLE and rows.dtype.names and "is_pba" in rows.dtype.names:
            self.pba_toggles += int(np.count_nonzero(rows["is_pba"]))
        if rows.dtype.names and "dur_ns" in rows.dtype.names:
            dur = rows["dur_ns"]
            self.run[name].add(dur)
            self.interval[name].add(dur)

    def tick(self) -> None:
        """Close the current interval: its rates and percentiles become the ones shown."""
        now = time.monotonic()
        span = max(now - self.interval_start, 1e-9)
        self.rates = {n: self.interval_events.get(n, 0) / span for n in self.names}
        self.last = self.interval
        self.interval = {n: _Durations() for n in self.names}
        self.interval_events = dict.fromkeys(self.names, 0)
        self.interval_start = now

    def table(self, tracer: Any) -> Any:
        """A rich renderable: one row per probe, the per-interrupt ratios below."""
        from rich.table import Table

        lost = tracer.read_lost()

        def us(x: float | None) -> str:
            return "–" if x is None else f"{x:,.1f}"

        elapsed = time.monotonic() - self.started
        t = Table(title=f"vfiobench record · {elapsed:,.0f} s", title_justify="left")
        for col in ("probe", "events", "events/s", "lost", "p50 µs", "p99 µs", "p50 µs run", "p99 µs run"):
            t.add_column(col, justify="left" if col == "probe" else "right")
        for n in self.names:
            last, run = self.last[n], self.run[n]
            t.add_row(
                n,
                f"{tracer.counts.get(n, 0):,}",
                f"{self.rates.get(n, 0.0):,.0f}",
                f"{lost.get(n, 0):,}",
                us(last.percentile(0.5)),
                us(last.percentile(0.99)),
                us(run.percentile(0.5)),
                us(run.percentile(0.99)),
            )
        if self.host_irqs:
            per = []
            if schema.SET_IRQS in tracer.counts:
                per.append(f"SET_IRQS {tracer.counts[schema.SET_IRQS] / self.host_irqs:.2f}")
            if schema.PBA_TOGGLE in tracer.counts:
                per.append(f"PBA toggles {self.pba_toggles / self.host_irqs:.2f}")
            t.caption = f"per host interrupt ({self.host_irqs:,}): " + ", ".join(per)
        return t
