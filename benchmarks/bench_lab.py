"""Lab benchmark: boot time, lab cycles per second, per-operation medians under TCG (printed).

One L1 boot runs, side by side: a short warm-up cell (discarded: the first cell after boot runs
slower), then per accelerator (kvm, tcg) ``mask-every-irq`` probe-free, the same with every probe
attached (per-operation times), and ``no-mask`` probe-free and probed. Printed:

1. the image (cached or built, its build time) and the boot: seconds from the L1 QEMU start to the
   job's first line, and the whole boot;
2. per cell: cycles per second over the measure phase, the median cycle time, the median/p99 of the workload's
   trigger → delivery latency, mask and unmask round trips;
3. ratios of median cycle times (trigger to next trigger) measured in the same boot: masked /
   unmasked per accel (what masking every interrupt costs), and probed / probe-free (what the
   probes cost); medians, because other jobs on a shared 2-core host make means noisy;
4. per-operation medians and counts per cycle from the probed cells, masked and unmasked: SET_IRQS
   ioctl, ``vfio_msi_set_vector_signal``,
   ``memory_region_set_enabled`` on the PBA (includes the tail-jumped commit) and
   ``memory_region_transaction_commit``.

Absolute times are inflated by TCG emulation of L1; compare ratios.

Run: ``flock /tmp/vfiobench-heavy.lock python benchmarks/bench_lab.py [--cycles N] [--quick]``.
Needs root and qemu-system-x86_64 (and debootstrap when the image is not cached); prints why and
returns 0 otherwise.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _ms(values: Any) -> str:
    arr = np.asarray(values, dtype=float)
    arr = arr[arr >= 0]
    if arr.size == 0:
        return "-"
    return f"{np.median(arr) / 1e6:7.3f} / {np.percentile(arr, 99) / 1e6:7.3f}"


def _us(values: Any) -> str:
    arr = np.asarray(values, dtype=float)
    if arr.size == 0:
        return "-"
    return f"{np.median(arr) / 1e3:9.1f} / {np.percentile(arr, 99) / 1e3:9.1f}"


def main(argv: list[str] | None = None) -> int:
    """Run the lab benchmark and print its tables; returns 0 (also when the lab cannot run)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--cycles", type=int, default=501, help="cycles per cell (default 501)")
    p.add_argument("--quick", action="store_true", help="61 cycles per cell")
    args = p.parse_args(argv)
    cycles = 61 if args.quick else args.cycles

    from vfiobench.lab.image import build_image, cached_image
    from vfiobench.lab.runner import plan_cells, run_lab, unavailable_reason
    from vfiobench.store import load_run

    reason = unavailable_reason()
    if reason is not None:
        print(f"bench_lab: skipped: {reason}")
        return 0
    print(f"== lab benchmark: {cycles} cycles per cell, one L1 boot ==")
    t0 = time.monotonic()
    img = cached_image()
    built = img is None
    if img is None:
        img = build_image()
    t = img.info.get("timings_s", {})
    how = (
        f"built now in {time.monotonic() - t0:.0f} s"
        if built
        else f"cached (built in {t.get('total', '?')} s)"
    )
    print(f"image: {img.path.name}, kernel {img.kernel_release}, {how}")

    accels = ["kvm", "tcg"]
    # a warm-up first (the first cell after boot runs slower), then probed right after probe-free
    warm = plan_cells(["kvm"], ["mask-every-irq"], cycles=max(cycles // 5, 11), probes=False)[0]
    warm.name = "warmup"
    cells = [warm]
    for a in accels:
        cells += plan_cells([a], ["mask-every-irq"], cycles=cycles, probes=False)
        cells += plan_cells([a], ["mask-every-irq"], cycles=cycles, probes=True)
        cells += plan_cells([a], ["no-mask"], cycles=cycles, probes=False)
        cells += plan_cells([a], ["no-mask"], cycles=cycles, probes=True)
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        t1 = time.monotonic()
        lab = run_lab(cells, Path(tmp) / "runs", image=img, show=lambda line: None)
        wall = time.monotonic() - t1
        runs = {r.name: load_run(r) for r in lab.runs if r.name != "warmup"}
        print(
            f"boot: job started {lab.boot.job_start_s} s after the L1 QEMU start; "
            f"whole boot {lab.boot.exit_s} s ({len(cells)} cells); wall {wall:.0f} s"
        )
        print()
        head = ("cell", "cycles/s", "cycle ms p50", "latency ms p50 / p99", "mask rtt ms", "unmask rtt ms")
        print(f"{head[0]:34} {head[1]:>9} {head[2]:>12} {head[3]:>21} {head[4]:>19} {head[5]:>19}")
        cycle_ms: dict[str, float] = {}
        for name, run in runs.items():
            ph = run.meta.workload.params["phases"]["measure"]
            secs = (ph["end_ns"] - ph["start_ns"]) / 1e9
            w = run.table("workload")
            rate = len(w) / secs if secs > 0 else float("nan")
            # median time from one trigger to the next: robust to the noise of a shared 2-core host
            cycle_ms[name] = float(np.median(np.diff(w["trigger_ts_ns"].to_numpy()))) / 1e6
            bad = [c.name for c in run.meta.checks if not c.ok]
            flag = "" if not bad else f"  CHECKS FAILED: {bad}"
            print(
                f"{name:34} {rate:9.1f} {cycle_ms[name]:12.3f} {_ms(w['latency_ns']):>21} "
                f"{_ms(w['mask_rtt_ns']):>19} {_ms(w['unmask_rtt_ns']):>19}{flag}"
            )
        print()
        print("ratios of median cycle times (same boot):")
        for a in accels:
            masked = cycle_ms[f"{a}-mask-every-irq-probe-free"]
            unmasked = cycle_ms[f"{a}-no-mask-probe-free"]
            probed = cycle_ms[f"{a}-mask-every-irq"]
            probed_nomask = cycle_ms[f"{a}-no-mask"]
            print(
                f"  {a}: mask-every-irq / no-mask {masked / unmasked:5.2f}x "
                f"({masked:.2f} vs {unmasked:.2f} ms); probed / probe-free: masked {probed / masked:5.2f}x "
                f"({probed:.2f} vs {masked:.2f} ms), no-mask {probed_nomask / unmasked:5.2f}x"
            )
        ops = [
            ("set_irqs_ioctl", "SET_IRQS ioctl", None),
            ("set_vector_signal", "vfio_msi_set_vector_signal", None),
            ("pba_toggle", "memory_region_set_enabled (PBA)", "is_pba"),
            ("transaction_commit", "memory_region_transaction_commit", None),
        ]
        for mode in ("mask-every-irq", "no-mask"):
            print()
            print(f"per operation under TCG, {mode}, probed cells, {cycles} cycles:")
            print(
                f"  {'operation':34} {'kvm µs p50 / p99':>21} {'tcg µs p50 / p99':>21}   per cycle kvm / tcg"
            )
            for table, label, flag in ops:
                cols, counts = [], []
                for a in accels:
                    run = runs[f"{a}-{mode}"]
                    if not run.has_table(table):
                        cols.append("-")
                        counts.append("-")
                        continue
                    df = run.table(table)
                    ph = run.meta.workload.params["phases"]["measure"]
                    df = df[(df["ts_ns"] >= ph["start_ns"]) & (df["ts_ns"] <= ph["end_ns"])]
                    if flag is not None and flag in df:
                        df = df[df[flag]]
                    cols.append(_us(df["dur_ns"]))
                    counts.append(f"{len(df) / cycles:.2f}")
                print(f"  {label:34} {cols[0]:>21} {cols[1]:>21}   {counts[0]} / {counts[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
