"""``irq_path`` probe cost: per interrupt in QEMU's functions, and per host IRQ in the kernel.

Measured side by side in one run:

1. QEMU side, on the irqpath stand-in (tests/probes/irqpath_standin.c, QEMU 7.2's shape): N
   interrupts through ``vfio_msi_interrupt`` -> ``msix_notify`` (half of them masked, so the
   ``msix_set_pending`` copy inlined in ``msix_notify`` runs too), unprobed and with ``irq_path``
   attached, rounds interleaved; µs per interrupt, the overhead, and its ratio to the unprobed
   loop. Every event is checked recorded (recorded + lost == expected).
2. Kernel side: the host-IRQ programs run on *every* hard IRQ of the machine (the name filter is
   in BPF). With ``kernel.bpf_stats_enabled`` on for the measurement, the kernel's own
   ``run_time_ns``/``run_cnt`` per program while disk writes raise virtio interrupts: ns per
   entry+exit run for foreign handlers (default prefix ``vfio-msix``: rejected by name) and for
   matched handlers (prefix ``virtio``: window, pairing, one ring event).

Run: ``flock /tmp/vfiobench-heavy.lock python -m benchmarks irq_path`` (``--quick`` for fewer
interrupts). Needs root, BCC and gcc; prints why and returns 0 otherwise.
"""

from __future__ import annotations

import argparse
import mmap
import os
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_probes import Target as ProbesTarget

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "probes" / "irqpath_standin.c"
STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "needs root"
    if shutil.which("gcc") is None:
        return "gcc is missing"
    try:
        import bcc  # noqa: F401
    except ImportError:
        return "BCC is not importable"
    return None


class Target(ProbesTarget):
    """The irqpath stand-in in its ``qemu`` mode (the stand-in protocol is bench_probes.Target's)."""

    def __init__(self, binary: Path, n: int) -> None:
        super().__init__(binary, "qemu", n)


def run_plain(binary: Path, n: int) -> float:
    t = Target(binary, n)
    calls, ns = t.run()
    t.finish()
    return ns / calls / 1000


def run_probed(binary: Path, n: int) -> float:
    from vfiobench.probes.tracer import Tracer

    t = Target(binary, n)
    with Tracer(t.pid, probes=["irq_path"], run_version=False) as tracer:
        result: list[tuple[int, int]] = []
        th = threading.Thread(target=lambda: result.append(t.run()))
        th.start()
        while th.is_alive():
            if tracer.poll() < 1024:
                time.sleep(0.01)
        th.join()
    t.finish()
    calls, ns = result[0]
    expected = 2 * calls + (calls + 1) // 2  # qemu_irq + msix_notify per interrupt, pending when masked
    got, lost = tracer.counts["irq_path"], tracer.lost["irq_path"]
    if got + lost != expected:
        raise RuntimeError(f"irq_path: {got} + {lost} lost != {expected} expected events")
    return ns / calls / 1000


def qemu_side(binary: Path, n: int, rounds: int) -> None:
    plain: list[float] = []
    probed: list[float] = []
    for _ in range(rounds):
        plain.append(run_plain(binary, n))
        probed.append(run_probed(binary, n))
    base, with_probe = statistics.median(plain), statistics.median(probed)
    # per interrupt: 2 uprobe+uretprobe pairs and, on every other one, the inlined-copy uprobe
    hits = 4.5
    print(f"{'configuration':34} {'µs/interrupt':>13} {'overhead µs':>12} {'µs/probe hit':>13}")
    print(f"{'unprobed':34} {base:13.3f}")
    print(f"{'irq_path':34} {with_probe:13.3f} {with_probe - base:12.3f} {(with_probe - base) / hits:13.3f}")


def _disk_io(where: Path, writes: int) -> None:
    with mmap.mmap(-1, mmap.PAGESIZE * 16) as buf:
        fd = os.open(where / "io", os.O_CREAT | os.O_WRONLY | os.O_DIRECT, 0o600)
        try:
            for _ in range(writes):
                os.pwrite(fd, buf, 0)
                os.fsync(fd)
        finally:
            os.close(fd)


def _prog_stats(tracer: Any) -> dict[str, tuple[int, int]]:
    out = {}
    for name in (b"vb_irq_entry", b"vb_irq_exit"):
        fn = tracer._bpf.funcs[name]
        info = dict(
            line.split(":", 1)
            for line in Path(f"/proc/self/fdinfo/{fn.fd}").read_text().splitlines()
            if ":" in line
        )
        out[name.decode()] = (int(info.get("run_time_ns", "0")), int(info.get("run_cnt", "0")))
    return out


def kernel_side(tmp: Path, writes: int) -> None:
    from vfiobench.probes.tracer import Tracer

    if not STATS.exists():
        print("kernel side: skipped (no kernel.bpf_stats_enabled)")
        return
    old = STATS.read_text().strip()
    STATS.write_text("1\n")
    try:
        print(f"{'handlers':28} {'program':14} {'runs':>8} {'ns/run':>8} {'events':>7}")
        for label, prefix in (
            ("foreign (prefix vfio-msix)", "vfio-msix"),
            ("matched (prefix virtio)", "virtio"),
        ):
            with Tracer(
                os.getpid(), probes=["irq_path"], irq_name_prefix=prefix, run_version=False
            ) as tracer:
                _disk_io(tmp, writes)
                time.sleep(0.2)
                stats = _prog_stats(tracer)
            events = tracer.counts["irq_path"]
            for prog, (ns, cnt) in stats.items():
                per = f"{ns / cnt:8.0f}" if cnt else "       -"
                print(f"{label:28} {prog:14} {cnt:8} {per} {events:7}")
    finally:
        STATS.write_text(old + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer interrupts and rounds")
    args = parser.parse_args(argv)
    why = _unavailable()
    if why:
        print(f"bench_irq_path: skipped ({why})")
        return 0
    n = 20_000 if args.quick else 100_000
    rounds = 1 if args.quick else 3
    with tempfile.TemporaryDirectory(prefix="vfiobench-bench-", dir="/var/tmp") as tmp:
        tmpdir = Path(tmp)
        binary = tmpdir / "irqpath"
        subprocess.run(
            ["gcc", "-O2", "-g", "-rdynamic", "-fno-omit-frame-pointer", "-o", str(binary), str(STANDIN)],
            check=True,
        )
        print(f"== QEMU side: per interrupt on the irqpath stand-in ({n:,} interrupts, median of {rounds})")
        qemu_side(binary, n, rounds)
        print(
            "== kernel side: host-IRQ programs per run (kernel bpf_stats, virtio interrupts from disk writes)"
        )
        kernel_side(tmpdir, 64)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
