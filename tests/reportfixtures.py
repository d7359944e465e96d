"""Small recorded-looking runs for the report tests (written with RunWriter; not sample data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from vfiobench.store import Check, HostInfo, ProbeStats, QemuInfo, RunMeta, RunWriter, WorkloadInfo


def write_run(
    root: Path,
    run_id: str,
    variant: str,
    *,
    seed: int,
    cycles: int = 200,
    pba_per_cycle: int = 2,
    lost: int = 0,
    source: str = "synthetic",
) -> Path:
    """Write one run with the probe and workload tables the analysis reads; returns its directory."""
    rng = np.random.default_rng(seed)
    meta = RunMeta(
        run_id=run_id,
        variant=variant,
        source=source,  # type: ignore[arg-type]
        host=HostInfo("6.1.0-test", "Test CPU @ 2GHz", "testhost", 2),
        qemu=QemuInfo("/usr/bin/qemu-system-x86_64", "7.2.0", "ab" * 20, ["qemu-system-x86_64", "-S"], []),
        workload=WorkloadInfo("qtest-mask", {"cycles": cycles, "vector": 1}),
        labels={"accel": "kvm", "repetition": 0},
    )
    out = root / run_id
    cycle_ns = 2_000_000
    t0 = 1_000_000_000
    starts = t0 + np.arange(cycles, dtype=np.int64) * cycle_ns
    with RunWriter(out, meta) as w:
        ioctl = pd.DataFrame(
            {
                "ts_ns": starts + 1000,
                "dur_ns": rng.integers(200_000, 400_000, cycles),
                "pid": 1,
                "tid": 1,
                "fd": 5,
                "ret": 0,
                "index": 0,
                "start": 1,
                "count": 1,
                "flags": 0,
            }
        )
        w.append("set_irqs_ioctl", ioctl)
        svs = pd.DataFrame(
            {
                "ts_ns": starts + 2000,
                "dur_ns": rng.integers(100_000, 200_000, cycles),
                "tid": 1,
                "vector": 1,
                "fd": 7,
                "msix": 1,
                "ret": 0,
            }
        )
        w.append("set_vector_signal", svs)
        n_pba = cycles * pba_per_cycle
        pba = pd.DataFrame(
            {
                "ts_ns": np.repeat(starts, pba_per_cycle)
                + 500_000
                + np.tile(np.arange(pba_per_cycle), cycles) * 10_000
                if pba_per_cycle
                else np.array([], dtype=np.int64),
                "dur_ns": rng.integers(1_000_000, 1_500_000, n_pba),
                "tid": 2,
                "mr": 0xDEAD,
                "enabled": np.tile(np.array([1, 0][:pba_per_cycle] or [1]), cycles)[:n_pba],
                "is_pba": True,
            }
        )
        w.append("pba_toggle", pba)
        wl = pd.DataFrame(
            {
                "cycle": np.arange(cycles),
                "vector": 1,
                "trigger_ts_ns": starts,
                "delivered_ts_ns": starts + 1_500_000,
                "latency_ns": rng.integers(1_400_000, 1_600_000, cycles) // (1 + (pba_per_cycle == 0) * 4),
                "mask_rtt_ns": 50_000,
                "unmask_rtt_ns": 60_000,
                "delivered": True,
            }
        )
        w.append("workload", wl)
        w.meta.probes = {
            "set_irqs_ioctl": ProbeStats("syscalls:sys_enter_ioctl", cycles, lost),
            "set_vector_signal": ProbeStats("vfio_msi_set_vector_signal", cycles, 0),
            "pba_toggle": ProbeStats("memory_region_set_enabled", n_pba, 0),
        }
        w.meta.checks = [Check("set_irqs vs trace log", cycles, cycles, True, "qemu -trace vfio_msix*")]
    return out


def write_pair(root: Path) -> Path:
    """Two variants (stock toggling the PBA, pba-always-on not) under ``root``; returns ``root``."""
    write_run(root, "stock-r0", "stock", seed=1)
    write_run(root, "always-on-r0", "pba-always-on", seed=2, pba_per_cycle=0, lost=3)
    return root
