"""Flight recorder benchmarks: the ring and triggers' cost per event, and its memory against the bound.

No root needed: synthetic ``set_irqs_ioctl`` rows (the widest table, 52 bytes a row) go through
:class:`vfiobench.probes.flight.FlightRecorder` in batches the size the drain hands over, with
timestamps advancing at a chosen event rate, the way ``record --trigger`` sees them.

1. Cost per event, side by side in one run: the drain's own decode of the same batch (raw ring
   records to table rows, ``to_table``, which every recording pays) as the baseline; the whole-period
   histograms alone; the full recorder (ring, trigger that never fires, histograms, the poll hook).
   Reported as ns/event and as a ratio to the decode.
2. Memory over a long run, each case in a fresh process: millions of events pushed through a
   recorder whose window wants more than its byte bound (the bound must hold), and one whose age
   window is below the bound (the window decides). Reported: the ring's own account
   (``EventRing.nbytes``, checked after every batch), the peak of traced allocations
   (``tracemalloc``, numpy's included) above the start, and the growth of the process's peak RSS,
   each against the bound.

Run: ``python -m benchmarks flight`` (``--quick``: fewer events).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tracemalloc
from typing import Any

import numpy as np

from vfiobench import schema
from vfiobench.probes.catalog import get_probe
from vfiobench.probes.flight import FlightRecorder
from vfiobench.probes.histogram import DurationCounts
from vfiobench.probes.tracer import to_table
from vfiobench.probes.trigger import SECOND, parse_trigger

PROBE = schema.SET_IRQS
BATCH = 4096  # rows per drained batch (a busy ring hands over thousands at a time)


def raw_batch(t0_ns: int, n: int, rate: float, rng: np.random.Generator) -> np.ndarray[Any, Any]:
    """``n`` raw ring records starting at ``t0_ns``, ``rate`` events/s, durations 1-50 µs."""
    raw = np.zeros(n, dtype=schema.EVENT_DTYPES[PROBE])
    raw["ts_ns"] = t0_ns + (np.arange(n) * (SECOND / rate)).astype(np.uint64)
    raw["dur_ns"] = rng.integers(1_000, 50_000, n)
    raw["tid"] = 7
    raw["fd"] = 3
    return raw


def recorder(before_s: float, max_bytes: int) -> FlightRecorder:
    never = parse_trigger(f"{PROBE}.dur > 10s", [PROBE])
    return FlightRecorder([never], before_ns=int(before_s * SECOND), after_ns=SECOND, max_bytes=max_bytes)


def cost(events: int, rate: float) -> list[tuple[str, float]]:
    """ns per event of the decode (baseline), the histograms alone, and the full recorder."""
    spec = get_probe(PROBE)
    rng = np.random.default_rng(1)
    raws = [raw_batch(i * BATCH * int(SECOND / rate), BATCH, rate, rng) for i in range(events // BATCH)]
    tables = [to_table(spec, r) for r in raws]
    n = len(raws) * BATCH
    out = []

    t0 = time.perf_counter_ns()
    for r in raws:
        to_table(spec, r)
    out.append(("decode (to_table), the drain's baseline", (time.perf_counter_ns() - t0) / n))

    counts = DurationCounts()
    t0 = time.perf_counter_ns()
    for rows in tables:
        counts.add(rows["dur_ns"])
    out.append(("whole-period histograms only", (time.perf_counter_ns() - t0) / n))

    rec = recorder(2.0, 64 << 20)
    t0 = time.perf_counter_ns()
    for rows in tables:
        rec.observe(PROBE, rows)
        rec.after_poll(int(rows["ts_ns"][-1]))
    out.append(("flight recorder (ring + trigger + histograms)", (time.perf_counter_ns() - t0) / n))
    return out


def peak_rss() -> int:
    """This process's peak resident set (``VmHWM``; ``ru_maxrss`` would carry the parent's over exec)."""
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def memory(events: int, rate: float, before_s: float, max_bytes: int) -> dict[str, float]:
    """One long run in this process: the ring's account, traced peak and RSS growth."""
    spec = get_probe(PROBE)
    rng = np.random.default_rng(2)
    rec = recorder(before_s, max_bytes)
    template = raw_batch(0, BATCH, rate, rng)
    step = int(BATCH * SECOND / rate)
    rss0 = peak_rss()
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    max_account = 0
    for i in range(events // BATCH):
        raw = template.copy()
        raw["ts_ns"] += np.uint64(i * step)
        rec.observe(PROBE, to_table(spec, raw))
        rec.after_poll(int(raw["ts_ns"][-1]))
        max_account = max(max_account, rec.ring.nbytes)
        assert rec.ring.nbytes <= max_bytes, (rec.ring.nbytes, max_bytes)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss1 = peak_rss()
    return {
        "events": events // BATCH * BATCH,
        "held": rec.ring.events,
        "account": max_account,
        "traced": peak - base,
        "rss": rss1 - rss0,
        "bound": max_bytes,
        "window_bytes": before_s * rate * spec.table_dtype.itemsize,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer events")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # one memory case, in a child process
    args = parser.parse_args(argv)
    rate = 2_000_000.0  # events/s of synthetic time: above the drain's measured 1.6-1.8M/s
    if args.memory_case:
        events, before_s, bound = json.loads(args.memory_case)
        print(json.dumps(memory(events, rate, before_s, bound)))
        return 0
    events = 1_000_000 if args.quick else 4_000_000
    print(f"== flight recorder cost per event ({events:,} {PROBE} rows in batches of {BATCH:,})")
    res = cost(events, rate)
    base = res[0][1]
    print(f"{'path':48} {'ns/event':>9} {'÷ decode':>9} {'events/s per core':>18}")
    for name, ns in res:
        print(f"{name:48} {ns:9.1f} {ns / base:8.2f}x {1e9 / ns:18,.0f}")

    long = 10_000_000 if args.quick else 40_000_000
    cases = [
        ("bound decides: 2 s window wants more than 32 MiB", long, 2.0, 32 << 20),
        ("window decides: 0.5 s window under a 256 MiB bound", long, 0.5, 256 << 20),
    ]
    print(f"\n== flight recorder memory over a long run ({long:,} events at {rate:,.0f} events/s)")
    print(
        f"{'case':52} {'bound MiB':>9} {'window MiB':>10} {'ring MiB':>9} {'traced MiB':>10} "
        f"{'peak RSS +MiB':>13} {'held events':>12}"
    )
    for name, n, before_s, bound in cases:
        child = subprocess.run(
            [
                sys.executable,
                "-m",
                "benchmarks.bench_flight",
                "--memory-case",
                json.dumps([n, before_s, bound]),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        m = json.loads(child.stdout.strip().splitlines()[-1])
        mib = 1 << 20
        print(
            f"{name:52} {m['bound'] / mib:9.0f} {m['window_bytes'] / mib:10.1f} {m['account'] / mib:9.1f} "
            f"{m['traced'] / mib:10.1f} {m['rss'] / mib:13.1f} {int(m['held']):12,}"
        )
    print(
        "ring MiB: the ring's own account at its largest (rows + 256 B per chunk), checked <= bound after "
        "every batch; traced: peak of every allocation (tracemalloc) above the start, the batch being "
        "decoded and the window being cut included"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
