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

5. per-cell fixed overhead (the cell's share of the boot beyond its measured cycles: binary
   facts, L2 start, probes, set-up phase, tear-down, writing its files) with the probes compiled
   once per boot (the tracer session) against the old one-shot tracer compiled per cell
   (``probe_mode = "per-cell"`` cells in the same boot), and the L2 start split into qtest connect
   and machine ready;
6. probe distortion per cell: probed ÷ probe-free median cycle time;
7. the wall time of a 10-repetition ``vfiobench run pba`` (5 variants × 2 workloads × 2 accels,
   probed and probe-free, plus one warm-up repetition: 11 boots of 40 cells) extrapolated from this
   boot: boot and host-export times, the session start scaled to pba's 4 binaries, and per cell
   type its measured total.

Absolute times are inflated by TCG emulation of L1; compare ratios.

Run: ``flock /tmp/vfiobench-heavy.lock python benchmarks/bench_lab.py [--cycles N] [--quick]``.
Needs root and qemu-system-x86_64 (and debootstrap when the image is not cached); prints why and
returns 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
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


def _overheads(order: list[str], recs: dict[str, dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Per cell: its total time in the boot (start to the next cell's start), cycles, the rest."""
    out: dict[str, dict[str, float]] = {}
    for i, name in enumerate(order):
        rec = recs[name]
        if i + 1 < len(order) and "started_epoch_s" in recs[order[i + 1]]:
            total = recs[order[i + 1]]["started_epoch_s"] - rec["started_epoch_s"]
        else:
            total = float(rec.get("wall_s", 0.0))
        ph = rec.get("phases", {}).get("measure")
        cycles = (ph["end_ns"] - ph["start_ns"]) / 1e9 if ph else 0.0
        out[name] = {"total": total, "cycles": cycles, "overhead": total - cycles}
    return out


PBA_VARIANTS = 5  # stock, pba-always-on, fd-cache, pba-always-on+fd-cache, no-kvm-msix
PBA_BINARIES = 4  # no-kvm-msix runs the stock build
PBA_REPETITIONS = 10
PBA_WARMUP = 1


def _extrapolate_pba(
    lab: Any,
    overhead: dict[str, dict[str, float]],
    recs: dict[str, dict[str, Any]],
    wall: float,
    n_cells: int,
    session: dict[str, Any],
) -> None:
    """Print the extrapolated wall time of ``vfiobench run pba`` with 10 repetitions."""
    kinds = [
        f"{a}-{wl}{suffix}"
        for a in ("kvm", "tcg")
        for wl in ("mask-every-irq", "no-mask")
        for suffix in ("", "-probe-free")
    ]
    cells_s = PBA_VARIANTS * sum(overhead[k]["total"] for k in kinds)
    boot_fixed = float(lab.boot.exit_s) - sum(o["total"] for o in overhead.values())
    resolve = session.get("resolve_s") or [0.0]
    session_s = float(session.get("start_s") or 0.0) + (PBA_BINARIES - len(resolve)) * max(resolve)
    export_per_run = max(wall - float(lab.boot.exit_s), 0.0) / n_cells
    per_boot = boot_fixed + session_s + cells_s + export_per_run * PBA_VARIANTS * len(kinds)
    boots = PBA_REPETITIONS + PBA_WARMUP
    print()
    print(
        f"extrapolated `vfiobench run pba`, {PBA_REPETITIONS} repetitions + {PBA_WARMUP} warm-up "
        f"({boots} boots of {PBA_VARIANTS * len(kinds)} cells):"
    )
    print(
        f"  per boot: boot, bind and power-off {boot_fixed:.0f} s + probe session {session_s:.0f} s "
        f"({PBA_BINARIES} binaries) + cells {cells_s:.0f} s + host export {export_per_run:.2f} s/run "
        f"= {per_boot:.0f} s"
    )
    old_cells = (
        cells_s
        + PBA_VARIANTS
        * sum(
            overhead[f"{a}-mask-every-irq-per-cell"]["total"] - overhead[f"{a}-mask-every-irq"]["total"]
            for a in ("kvm", "tcg")
        )
        * 2
    )  # both probed workloads paid the per-cell compile
    print(
        f"  total: {boots * per_boot / 60:.1f} min with the session "
        f"(per-cell compile: ~{boots * (per_boot - cells_s + old_cells) / 60:.1f} min)"
    )


def main(argv: list[str] | None = None) -> int:
    """Run the lab benchmark and print its tables; returns 0 (also when the lab cannot run)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    p.add_argument("--cycles", type=int, default=101, help="cycles per cell (default 101, as pba)")
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
    for a in accels:  # the old way, side by side: a one-shot tracer compiled for the cell
        old = plan_cells([a], ["mask-every-irq"], cycles=cycles, probes=True)[0]
        old.probe_mode = "per-cell"
        old.name = f"{a}-mask-every-irq-per-cell"
        cells.append(old)
    with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
        t1 = time.monotonic()
        lab = run_lab(cells, Path(tmp) / "runs", image=img, show=lambda line: None)
        wall = time.monotonic() - t1
        runs = {r.name: load_run(r) for r in lab.runs if r.name != "warmup"}
        recs = {r.name: json.loads((r / "cell.json").read_text()) for r in lab.runs}
        print(
            f"boot: job started {lab.boot.job_start_s} s after the L1 QEMU start; "
            f"whole boot {lab.boot.exit_s} s ({len(cells)} cells); wall {wall:.0f} s"
        )
        session = lab.job_result.get("probe_session") or {}
        print(f"probe session (once per boot): {session}")
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
            failed = "" if not bad else f"  CHECKS FAILED: {bad}"
            print(
                f"{name:34} {rate:9.1f} {cycle_ms[name]:12.3f} {_ms(w['latency_ns']):>21} "
                f"{_ms(w['mask_rtt_ns']):>19} {_ms(w['unmask_rtt_ns']):>19}{failed}"
            )
        overhead = _overheads([c.id for c in cells], recs)
        print()
        print("per-cell fixed overhead (s): the cell's time in the boot beyond its measured cycles")
        print(
            f"  {'cell':34} {'mode':>9} {'total':>7} {'cycles':>7} {'overhead':>9} {'L2 start':>9} "
            f"{'connect':>8} {'probes':>7}"
        )
        for name, o in overhead.items():
            if name == "warmup":
                continue
            rec = recs[name]
            mode = rec.get("probe_mode", "-") if rec.get("probes") else "free"
            print(
                f"  {name:34} {mode:>9} {o['total']:7.2f} {o['cycles']:7.2f} {o['overhead']:9.2f} "
                f"{rec.get('l2_start_s', 0):9.2f} {rec.get('l2_connect_s', 0):8.2f} "
                f"{rec.get('probes_attach_s') or 0:7.2f}"
            )
        for a in accels:
            after, before = overhead[f"{a}-mask-every-irq"], overhead[f"{a}-mask-every-irq-per-cell"]
            free = overhead[f"{a}-mask-every-irq-probe-free"]
            print(
                f"  {a} mask-every-irq probed: per-cell compile {before['overhead']:.2f} s -> session "
                f"{after['overhead']:.2f} s ({before['overhead'] / after['overhead']:.1f}x less); "
                f"probe-free {free['overhead']:.2f} s"
            )
        print()
        print("probe distortion per cell (probed ÷ probe-free median cycle, same boot):")
        for a in accels:
            for wl in ("mask-every-irq", "no-mask"):
                probed, free_ms = cycle_ms[f"{a}-{wl}"], cycle_ms[f"{a}-{wl}-probe-free"]
                print(f"  {a} {wl:15} {probed / free_ms:5.2f}x ({probed:.2f} vs {free_ms:.2f} ms)")
        _extrapolate_pba(lab, overhead, recs, wall, len(cells), session)
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
        for wl_name in ("mask-every-irq", "no-mask"):
            print()
            print(f"per operation under TCG, {wl_name}, probed cells, {cycles} cycles:")
            print(
                f"  {'operation':34} {'kvm µs p50 / p99':>21} {'tcg µs p50 / p99':>21}   per cycle kvm / tcg"
            )
            for table, label, flag in ops:
                cols, counts = [], []
                for a in accels:
                    run = runs[f"{a}-{wl_name}"]
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
