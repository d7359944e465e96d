"""Generate the synthetic sample runs in ``data/sample/`` (fixed seed, ``source: synthetic``).

Until the lab records real runs, reports and notebooks are exercised on generated data: the PBA
toggling ``stock`` QEMU against ``pba-always-on``, under the ``mask-every-irq`` workload (an RTOS-like
guest that masks the vector on every interrupt), with KVM irqfd routes (``accel: kvm``: two SET_IRQS
per cycle). Each variant gets ``repetitions`` probed runs and as many probe-free runs, interleaved
A B A B so that drift would cancel, written through the real :class:`~vfiobench.store.RunWriter`.

What one generated cycle looks like (times from ``shared/LAB-NOTES.md`` section 8, kvm mask column;
every duration is drawn from a log-normal with that median and p99):

1. mask: QEMU ``vfio_msix_vector_release`` issues a SET_IRQS ioctl, inside which
   ``vfio_msi_set_vector_signal`` (fd 18) runs (196 µs / 987 µs; ioctl 330 µs / 1467 µs);
2. doorbell (``trigger_ts_ns``): the interrupt fires while masked, ``vfio_msi_interrupt`` enables the
   PBA: ``memory_region_set_enabled`` (1524 µs / 4880 µs), which tail-calls
   ``memory_region_transaction_commit`` (its time included);
3. the client polls the PBA, then unmasks: ``vfio_msix_vector_do_use`` issues the second SET_IRQS
   (fd 19, the KVM irqfd) and the PBA is disabled again (second toggle and commit);
4. the client polls guest RAM until the MSI lands (``delivered_ts_ns``).

QEMU's RCU thread (tid pid+1) later runs 6 cheap commits (~10 µs) per toggle, in bursts every
60-100 ms. ``pba-always-on`` enables the PBA once at setup and never toggles it, so the toggles, their
commits and the RCU bursts disappear. Probe-free runs have no probe tables and take the LAB-NOTES
probe-free cycle times (7.6 ms median for stock, instead of 15 ms with probes).

One probed stock run drops 4 RCU commit events and records them as lost, so the reports' lost-event
display has something to show. Nothing here is a measurement.

Usage::

    python -m vfiobench.sample --out data/sample
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vfiobench.errors import VfioBenchError
from vfiobench.store import Check, HostInfo, ProbeStats, QemuInfo, RunMeta, RunWriter, WorkloadInfo

SEED = 20200612  # the qemu-devel thread's month; any fixed value would do
VARIANTS = ("stock", "pba-always-on")
WORKLOAD = "mask-every-irq"

US = 1_000
MS = 1_000_000

QEMU_PID = 4242
RCU_TID = QEMU_PID + 1
DEVICE_FD = 15
PBA_MR = 0x55D0C0A0B2C0
# VFIO_IRQ_SET_DATA_EVENTFD | VFIO_IRQ_SET_ACTION_TRIGGER; index VFIO_PCI_MSIX_IRQ_INDEX
SET_IRQS_FLAGS = (1 << 2) | (1 << 5)
MSIX_INDEX = 2
SETUP_TID = QEMU_PID


@dataclass(frozen=True)
class Dist:
    """A log-normal duration given by its median and 99th percentile (ns)."""

    median_ns: float
    p99_ns: float

    def draw(self, rng: np.random.Generator, size: int | None = None) -> Any:
        """Draw durations (ns, int64)."""
        sigma = math.log(self.p99_ns / self.median_ns) / 2.326
        return np.rint(rng.lognormal(math.log(self.median_ns), sigma, size)).astype(np.int64)


@dataclass(frozen=True)
class Profile:
    """Durations for one kind of run (with or without probes attached)."""

    set_vector_signal: Dist
    ioctl_extra: Dist  # ioctl time around the nested set_vector_signal
    toggle_own: Dist  # memory_region_set_enabled before it tail-calls the commit
    commit_sync: Dist  # the commit the toggle tail-calls
    commit_rcu: Dist
    stage: Dist  # one qtest round trip / poll loop (5 per cycle)
    hiccup_p: float = 0.02
    hiccup: Dist = field(default_factory=lambda: Dist(6 * MS, 20 * MS))


# Medians / p99 from LAB-NOTES section 8 (kvm mask); the stage time makes the whole cycle land on
# the measured cycle medians (15.0 ms probed, 7.6 ms probe-free for stock).
PROBED = Profile(
    set_vector_signal=Dist(196 * US, 987 * US),
    ioctl_extra=Dist(125 * US, 480 * US),
    toggle_own=Dist(230 * US, 900 * US),
    commit_sync=Dist(1250 * US, 3500 * US),
    commit_rcu=Dist(10.5 * US, 60 * US),
    stage=Dist(2.4 * MS, 4.2 * MS),
)
PROBE_FREE = Profile(
    set_vector_signal=Dist(150 * US, 760 * US),
    ioctl_extra=Dist(90 * US, 350 * US),
    toggle_own=Dist(170 * US, 650 * US),
    commit_sync=Dist(1050 * US, 2800 * US),
    commit_rcu=Dist(8 * US, 45 * US),
    stage=Dist(0.95 * MS, 1.7 * MS),
)


@dataclass
class Recorder:
    """Calls generated for one run, as lists of row dicts per probe table."""

    ioctls: list[dict[str, Any]] = field(default_factory=list)
    signals: list[dict[str, Any]] = field(default_factory=list)
    toggles: list[dict[str, Any]] = field(default_factory=list)
    commits: list[dict[str, Any]] = field(default_factory=list)

    def set_irqs(self, rng: np.random.Generator, p: Profile, t: int, fd: int) -> int:
        """One SET_IRQS ioctl at ``t`` with its nested set_vector_signal; returns its duration."""
        svs = int(p.set_vector_signal.draw(rng))
        extra = int(p.ioctl_extra.draw(rng))
        pre = extra // 3
        dur = svs + extra
        self.ioctls.append(
            {"ts_ns": t, "dur_ns": dur, "pid": QEMU_PID, "tid": QEMU_PID, "fd": DEVICE_FD, "ret": 0}
            | {"index": MSIX_INDEX, "start": 0, "count": 1, "flags": SET_IRQS_FLAGS}
        )
        self.signals.append(
            {"ts_ns": t + pre, "dur_ns": svs, "tid": QEMU_PID, "vector": 0, "fd": fd, "msix": True, "ret": 0}
        )
        return dur

    def toggle(self, rng: np.random.Generator, p: Profile, t: int, enabled: bool) -> int:
        """One PBA ``memory_region_set_enabled`` at ``t`` tail-calling a commit; returns its duration."""
        own = int(p.toggle_own.draw(rng))
        commit = int(p.commit_sync.draw(rng))
        self.toggles.append(
            {
                "ts_ns": t,
                "dur_ns": own + commit,
                "tid": QEMU_PID,
                "mr": PBA_MR,
                "enabled": enabled,
                "is_pba": True,
            }
        )
        self.commits.append({"ts_ns": t + own, "dur_ns": commit, "tid": QEMU_PID, "depth": 0})
        return own + commit


def _cycles(
    rng: np.random.Generator, p: Profile, variant: str, t0: int, n: int, rec: Recorder
) -> tuple[pd.DataFrame, int]:
    """Generate ``n`` mask-every-irq cycles from ``t0``; returns the workload table and the end time."""
    toggles = variant == "stock"
    rows = []
    t = t0
    for cycle in range(n):
        start = t
        stage = p.stage.draw(rng, 5)
        if rng.random() < p.hiccup_p:
            stage[rng.integers(0, 5)] += int(p.hiccup.draw(rng))
        # 1. mask: QEMU releases the vector (KVM route exists: one SET_IRQS, QEMU eventfd fd 18)
        t_mask_io = start + int(stage[0]) // 4
        mask_end = t_mask_io + rec.set_irqs(rng, p, t_mask_io, fd=18)
        mask_rtt = mask_end + int(stage[0]) * 3 // 4 - start
        # 2. doorbell: fires while masked; vfio_msi_interrupt enables the PBA (stock only)
        trigger = start + mask_rtt + int(stage[1])
        pba_ready = trigger + 60 * US
        if toggles:
            pba_ready += rec.toggle(rng, p, trigger + 60 * US, enabled=True)
        # 3. poll the PBA, then unmask: SET_IRQS (KVM irqfd, fd 19), then the PBA is disabled again
        unmask = max(trigger + int(stage[2]), pba_ready + 40 * US)
        t_io = unmask + int(stage[3]) // 4
        done = t_io + rec.set_irqs(rng, p, t_io, fd=19)
        if toggles:
            done += 20 * US
            done += rec.toggle(rng, p, done, enabled=False)
        unmask_rtt = done + int(stage[3]) * 3 // 4 - unmask
        # 4. poll guest RAM until the MSI data word lands; clear it
        delivered = unmask + unmask_rtt + int(stage[4]) // 2
        end = delivered + int(stage[4]) // 2
        rows.append(
            {
                "cycle": cycle,
                "vector": 0,
                "start_ts_ns": start,
                "trigger_ts_ns": trigger,
                "delivered_ts_ns": delivered,
                "latency_ns": delivered - trigger,
                "cycle_ns": end - start,
                "mask_rtt_ns": mask_rtt,
                "unmask_rtt_ns": unmask_rtt,
                "delivered": True,
            }
        )
        t = end
    return pd.DataFrame(rows), t


def _rcu_bursts(rng: np.random.Generator, p: Profile, rec: Recorder, until: int) -> None:
    """QEMU's RCU thread: every 60-100 ms, 6 cheap commits per PBA toggle since its last pass."""
    toggles = sorted(r["ts_ns"] + r["dur_ns"] for r in rec.toggles)
    if not toggles:
        return
    t = toggles[0] + int(rng.integers(60, 100)) * MS
    i = 0
    while i < len(toggles) and t < until + 200 * MS:
        j = int(np.searchsorted(toggles, t, side="right"))
        for _ in range(6 * (j - i)):
            d = int(p.commit_rcu.draw(rng))
            rec.commits.append({"ts_ns": t, "dur_ns": d, "tid": RCU_TID, "depth": 0})
            t += d + int(rng.integers(2, 15)) * US
        i = j
        t += int(rng.integers(60, 100)) * MS


PROBE_TARGETS = {
    "set_irqs_ioctl": "syscalls:sys_enter_ioctl/sys_exit_ioctl cmd=0x3b6e",
    "set_vector_signal": "kprobe:vfio_msi_set_vector_signal",
    "pba_toggle": "uprobe:/usr/bin/qemu-system-x86_64:memory_region_set_enabled",
    "transaction_commit": "uprobe:/usr/bin/qemu-system-x86_64:memory_region_transaction_commit",
}
DTYPES = {
    "set_irqs_ioctl": {
        c: "int64" for c in ("ts_ns", "dur_ns", "pid", "tid", "fd", "ret", "index", "start", "count")
    }
    | {"flags": "uint32"},
    "set_vector_signal": {
        "ts_ns": "int64",
        "dur_ns": "int64",
        "tid": "int64",
        "vector": "int32",
        "fd": "int32",
    }
    | {"msix": "bool", "ret": "int32"},
    "pba_toggle": {"ts_ns": "int64", "dur_ns": "int64", "tid": "int64", "mr": "uint64", "enabled": "bool"}
    | {"is_pba": "bool"},
    "transaction_commit": {"ts_ns": "int64", "dur_ns": "int64", "tid": "int64", "depth": "int32"},
}


def _table(rows: list[dict[str, Any]], name: str) -> pd.DataFrame:
    dtypes = DTYPES[name]
    df = pd.DataFrame(rows, columns=list(dtypes)).astype(dtypes)
    return df.sort_values("ts_ns", kind="stable").reset_index(drop=True)


def write_run(
    out: Path,
    *,
    run_id: str,
    variant: str,
    probed: bool,
    repetition: int,
    cycles: int,
    t0: int,
    rng: np.random.Generator,
    lose_commits: int = 0,
) -> int:
    """Generate and write one run; returns the monotonic time (ns) at which it ended."""
    p = PROBED if probed else PROBE_FREE
    rec = Recorder()
    # setup: QEMU enables MSI-X and the guest unmasks vector 0 once (before the first cycle)
    t = t0
    t += rec.set_irqs(rng, p, t, fd=19) + 2 * MS
    if variant == "pba-always-on":
        t += rec.toggle(rng, p, t, enabled=True) + 2 * MS  # enabled once, never toggled again
    workload, end = _cycles(rng, p, variant, t + 5 * MS, cycles, rec)
    _rcu_bursts(rng, p, rec, end)
    lost = 0
    if lose_commits and len(rec.commits) > lose_commits:
        rcu = [i for i, r in enumerate(rec.commits) if r["tid"] == RCU_TID]
        drop = set(rng.choice(rcu, size=lose_commits, replace=False).tolist())
        rec.commits = [r for i, r in enumerate(rec.commits) if i not in drop]
        lost = lose_commits
    patches = ["x-pba-always-on.patch"] if variant == "pba-always-on" else []
    cmdline = ["qemu-system-x86_64", "-accel", "kvm", "-S", "-qtest", "unix:/run/vfb/qtest.sock"]
    cmdline += ["-machine", "q35", "-m", "128M", "-device", "vfio-pci,host=0000:00:04.0"]
    if variant == "pba-always-on":
        cmdline[-1] += ",x-pba-always-on=on"
    meta = RunMeta(
        run_id=run_id,
        variant=variant,
        source="synthetic",
        kind="probed" if probed else "probe-free",
        host=HostInfo(
            kernel_release="6.12.0-synthetic", cpu_model="synthetic", hostname="vfiobench.sample", cpus=0
        ),
        qemu=QemuInfo(
            path="/usr/bin/qemu-system-x86_64",
            version="7.2.0 (synthetic)",
            build_id="0" * 40,
            cmdline=cmdline,
            patches=patches,
        ),
        workload=WorkloadInfo(
            WORKLOAD, {"cycles": cycles, "delivered": cycles, "vector": 0, "accel": "kvm", "mask": True}
        ),
        labels={"accel": "kvm", "repetition": repetition, "experiment": "sample", "seed": SEED},
    )
    with RunWriter(out / run_id, meta, overwrite=True) as w:
        w.append("workload", workload)
        if probed:
            tables = {
                "set_irqs_ioctl": rec.ioctls,
                "set_vector_signal": rec.signals,
                "pba_toggle": rec.toggles,
                "transaction_commit": rec.commits,
            }
            for name, rows in tables.items():
                n = w.append(name, _table(rows, name))
                w.meta.probes[name] = ProbeStats(
                    PROBE_TARGETS[name],
                    events=n,
                    lost=lost if name == "transaction_commit" else 0,
                    missed=lost // 2 if name == "transaction_commit" else 0,
                )
            per_cycle = 2 if variant == "stock" else 0
            in_window = sum(1 for r in rec.toggles if r["ts_ns"] >= workload["start_ts_ns"].iloc[0])
            w.meta.checks = [
                Check(
                    "SET_IRQS ioctls vs the workload's mask+unmask count",
                    expected=2 * cycles + 1,
                    observed=len(rec.ioctls),
                    ok=len(rec.ioctls) == 2 * cycles + 1,
                    detail="2 per cycle + 1 setup unmask (synthetic)",
                ),
                Check(
                    "PBA toggles in the workload window vs expected per cycle",
                    expected=per_cycle * cycles,
                    observed=in_window,
                    ok=in_window == per_cycle * cycles,
                    detail=f"{per_cycle} per cycle for {variant} (synthetic)",
                ),
            ]
    return end


def generate(
    out: str | Path, *, cycles: int = 300, repetitions: int = 6, seed: int = SEED, lost_commits: int = 4
) -> list[Path]:
    """Write the sample run set under ``out``; returns the run directories, in recording order.

    Runs are named ``r<rep>-<variant>-<kind>``; recording order is interleaved per repetition
    (stock probed, always-on probed, stock probe-free, always-on probe-free, next repetition).
    """
    if cycles < 1 or repetitions < 1:
        raise VfioBenchError(f"cycles and repetitions must be >= 1 (got {cycles}, {repetitions})")
    base = Path(out)
    base.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = 1_000 * 1_000 * MS  # CLOCK_MONOTONIC: 1000 s after boot
    paths = []
    for rep in range(1, repetitions + 1):
        for probed in (True, False):
            for variant in VARIANTS:
                kind = "probed" if probed else "probe-free"
                run_id = f"r{rep}-{variant}-{kind}"
                lose = lost_commits if (rep == 2 and probed and variant == "stock") else 0
                t = write_run(
                    base,
                    run_id=run_id,
                    variant=variant,
                    probed=probed,
                    repetition=rep,
                    cycles=cycles,
                    t0=t,
                    rng=rng,
                    lose_commits=lose,
                )
                t += 2_000 * MS
                paths.append(base / run_id)
    return paths


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vfiobench.sample --out data/sample``: write the synthetic sample runs."""
    parser = argparse.ArgumentParser(prog="python -m vfiobench.sample", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/sample", help="directory to write the runs into")
    parser.add_argument("--cycles", type=int, default=300, help="interrupt cycles per run (default 300)")
    parser.add_argument(
        "--repetitions",
        type=int,
        default=6,
        help="repetitions per variant and kind (6: enough for an interval)",
    )
    parser.add_argument("--seed", type=int, default=SEED, help=f"RNG seed (default {SEED})")
    args = parser.parse_args(argv)
    try:
        paths = generate(args.out, cycles=args.cycles, repetitions=args.repetitions, seed=args.seed)
    except VfioBenchError as e:
        print(f"vfiobench.sample: {e}", file=sys.stderr)
        return e.exit_code
    print(f"wrote {len(paths)} synthetic runs to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
