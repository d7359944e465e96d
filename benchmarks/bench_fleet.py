"""Fleet exporter benchmarks: what ``vfiobench exporter`` costs QEMU per event, and a scrape's cost.

Measured side by side in one run on the C stand-in (tests/probes/standin.c), against the same
loop unprobed and probed by ``record --histogram`` (a :class:`~vfiobench.probes.tracer.Tracer` in
histogram mode, in this process):

1. **Per event** (µs per call of the stand-in's loop; configurations interleaved over rounds,
   medians): SET_IRQS ioctls (``flood``), ``memory_region_set_enabled`` (``spin``, never the fast
   path) and ``msix_notify`` (``nomask`` without delay). The exporter is the real command,
   ``vfiobench exporter --all-qemu`` in its own process, attaching to each stand-in as it starts
   (a copy of the binary named like QEMU); its rings are large enough here that nothing is lost,
   so every event pays the whole path. Each exporter round also checks the exporter counted every
   call exactly.
2. **Every other ioctl of the machine** (``noise``: ``FIONREAD``): the SET_IRQS tracepoint
   programs run on every ioctl of the host. The exporter attaches them once for the host
   (:mod:`vfiobench.fleet.hostwide`), so their cost must not grow with the number of VMs: measured
   with no exporter, then an exporter with 0, 1 and 10 idle targets, then 0 again (drift check).
3. **Scrape**: the exposition of 1, 10 and 100 targets' series (``generate_latest`` in this
   process, and a GET through the exporter's own HTTP server), with the series count and size.
4. **The exporter itself**, with its default rings: resident memory with 0, 1 and 10 targets, and
   CPU seconds per second with 10 idle targets (``/proc/PID/stat``).

Run: ``flock /tmp/vfiobench-heavy.lock python -m benchmarks fleet`` (``--quick``: fewer calls and
rounds). Needs root, BCC and gcc; prints why and returns 0 otherwise.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from benchmarks.bench_irq_path import _unavailable
from benchmarks.bench_probes import Target

ROOT = Path(__file__).resolve().parent.parent
STANDIN = ROOT / "tests" / "probes" / "standin.c"


class ExporterProcess:
    """``vfiobench exporter --all-qemu`` on the benchmark's QEMU-named stand-in copies."""

    def __init__(self, pattern: str, log: Path, buffer_pages: int) -> None:
        self.log = log
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "vfiobench",
                "exporter",
                "--listen",
                "127.0.0.1:0",
                "--all-qemu",
                "--exe-pattern",
                pattern,
                "--interval",
                "1",
                "--keep-exited",
                "0",
                "--buffer-pages",
                str(buffer_pages),
            ],
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        self.url = (
            "http://" + str(self._wait(lambda: self._grep(r"listening on http://([\d.:]+)/"))) + "/metrics"
        )
        self._wait(lambda: self._grep(r"(attached) set_irqs_ioctl once for the host"))  # the first tick

    def _grep(self, pattern: str) -> str | None:
        m = re.search(pattern, self.log.read_text())
        if m is None and self.proc.poll() is not None:
            raise RuntimeError(f"the exporter exited:\n{self.log.read_text()}")
        return m.group(1) if m else None

    @staticmethod
    def _wait(check: Callable[[], object], timeout: float = 60.0) -> object:
        deadline = time.monotonic() + timeout
        while not (got := check()):
            if time.monotonic() > deadline:
                raise RuntimeError("timed out waiting for the exporter")
            time.sleep(0.05)
        return got

    def metrics(self) -> str:
        with urllib.request.urlopen(self.url, timeout=30) as r:
            return str(r.read().decode())

    def value(self, name: str, pid: int, extra: str = "") -> float | None:
        """The sum of ``name``'s series for ``pid`` (whose labels include ``extra``); None: no series."""
        labels = rf'(?=[^}}]*pid="{pid}")(?=[^}}]*{extra})[^}}]*'  # in any order
        found = re.findall(rf"^{name}\{{{labels}\}} (\S+)$", self.metrics(), re.M)
        return sum(float(v) for v in found) if found else None

    def wait_attached(self, pid: int) -> float:
        """Wait until the exporter has attached to ``pid``; returns the attach time it logged."""
        found = self._wait(lambda: self._grep(rf"pid {pid} \(\S+\): attached .* in ([\d.]+) s"))
        self._wait(lambda: self.value("vfiobench_target_up", pid) == 1)
        return float(str(found))

    def wait_count(self, name: str, pid: int, n: int, extra: str = "") -> None:
        """Wait until the exporter's counter for ``pid`` is ``n``; fail if it is anything else."""
        self._wait(lambda: (self.value(name, pid, extra) or 0) >= n)
        got = self.value(name, pid, extra)
        if got != n:
            raise RuntimeError(f"exporter counted {got} {name} for pid {pid}, the stand-in made {n}")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return float("nan")

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=60)


#: Loops measured per event: (what, stand-in mode, record --histogram probe or None, exporter counter).
LOOPS = (
    ("SET_IRQS ioctl", "flood", "set_irqs_ioctl", ("vfiobench_set_irqs_total", "")),
    ("memory_region_set_enabled", "spin", "pba_toggle", ("vfiobench_set_enabled_total", "")),
    ("msix_notify", "nomask", None, ("vfiobench_msix_notify_total", "")),
)


def per_call_us(run: tuple[int, int]) -> float:
    calls, ns = run
    return ns / calls / 1000


def unprobed(binary: Path, mode: str, n: int) -> float:
    s = Target(binary, mode, n)
    us = per_call_us(s.run())
    s.finish()
    return us


def histogram(binary: Path, mode: str, n: int, probe: str) -> float:
    """``record --histogram``: the project's Tracer in histogram mode, counts checked."""
    from vfiobench.probes.tracer import Tracer

    s = Target(binary, mode, n)
    with Tracer(s.pid, probes=[probe], histogram=True, sub_bucket_bits=1) as tracer:
        run = s.run()
    s.finish()
    if tracer.counts[probe] != run[0]:
        raise RuntimeError(f"record --histogram counted {tracer.counts[probe]} {probe}, not {run[0]}")
    return per_call_us(run)


def exported(exp: ExporterProcess, qemu: Path, mode: str, n: int, counter: tuple[str, str]) -> float:
    s = Target(qemu, mode, n)
    exp.wait_attached(s.pid)
    run = s.run()
    exp.wait_count(counter[0], s.pid, run[0], counter[1])
    s.finish()
    return per_call_us(run)


def per_event(start: Callable[[], ExporterProcess], binary: Path, qemu: Path, n: int, rounds: int) -> None:
    """Each round: every loop unprobed and under ``record --histogram`` with no exporter running
    (its host-wide ioctl programs would tax the unprobed loop too), then under a fresh exporter."""
    print(f"\n== per event: µs per call of the stand-in's loop ({n:,} calls, median of {rounds} rounds)")
    print(
        f"{'loop':28} {'unprobed':>9} {'record --histogram':>19} {'exporter':>9} "
        f"{'overhead hist':>14} {'overhead exporter':>18} {'exporter/hist':>14}"
    )
    samples: dict[str, dict[str, list[float]]] = {what: {} for what, *_ in LOOPS}
    for _ in range(rounds):
        for what, mode, probe, _counter in LOOPS:
            samples[what].setdefault("unprobed", []).append(unprobed(binary, mode, n))
            if probe is not None:
                samples[what].setdefault("histogram", []).append(histogram(binary, mode, n, probe))
        exp = start()
        try:
            for what, mode, _probe, counter in LOOPS:
                samples[what].setdefault("exporter", []).append(exported(exp, qemu, mode, n, counter))
        finally:
            exp.close()
    spread: list[str] = []
    for what, *_ in LOOPS:
        us = {name: statistics.median(v) for name, v in samples[what].items()}
        base = us["unprobed"]
        hist = us.get("histogram")
        ex = us["exporter"]
        hist_cell = f"{hist:19.3f}" if hist is not None else f"{'(none: streams)':>19}"
        ho = f"{hist - base:14.3f}" if hist is not None else f"{'':>14}"
        ratio = f"{(ex - base) / (hist - base):13.2f}x" if hist is not None and hist > base else f"{'':>14}"
        print(f"{what:28} {base:9.3f} {hist_cell} {ex:9.3f} {ho} {ex - base:18.3f} {ratio}")
        spread.append(
            f"{what}: " + "; ".join(f"{k} {min(v):.3f}-{max(v):.3f}" for k, v in samples[what].items())
        )
    print("ranges over the rounds (µs/call): " + "\n  ".join(["", *spread]))


def noise_us(binary: Path, n: int, rounds: int) -> float:
    return statistics.median(unprobed(binary, "noise", n) for _ in range(rounds))


def noise(exp: ExporterProcess, binary: Path, qemu: Path, n: int, rounds: int, base: float) -> None:
    print(f"{'targets':>8} {'µs/ioctl':>9} {'+µs per ioctl':>14} {'exporter RSS MiB':>17}")
    idle: list[Target] = []
    for k in (0, 1, 10, 0):
        while len(idle) < k:
            s = Target(qemu, "toggle", 1)
            exp.wait_attached(s.pid)
            idle.append(s)
        while len(idle) > k:
            s = idle.pop()
            s.finish()
            exp._wait(lambda pid=s.pid: exp.value("vfiobench_target_up", pid) is None)  # detached, dropped
        us = noise_us(binary, n, rounds)
        print(f"{k:8} {us:9.4f} {us - base:14.4f} {exp.rss_mib():17.0f}")
        if k == 10:
            c0, t0 = exp.cpu_seconds(), time.monotonic()
            time.sleep(10)
            cpu = (exp.cpu_seconds() - c0) / (time.monotonic() - t0)
            print(f"{'':8} exporter CPU with 10 idle targets: {cpu * 100:.2f} % of one core (10 s)")


def fake_views(k: int) -> list[object]:
    """``k`` targets' views with every probe attached and every histogram bucket in range filled."""
    from vfiobench.buckets import LogLinearBuckets
    from vfiobench.fleet.metrics import TargetView
    from vfiobench.fleet.probeset import OPERATIONS, PROBES, Counts, ProbeStatus
    from vfiobench.fleet.targets import QemuTarget

    nb = LogLinearBuckets(1).n_buckets
    rng = np.random.default_rng(1)
    views: list[object] = []
    for i in range(k):
        hist = {op: rng.integers(0, 1000, nb) for op in OPERATIONS}
        sums: dict[str, int | None] = {op: int(rng.integers(1, 10**9)) for op in OPERATIONS}
        counts = Counts(
            set_irqs=i,
            pba_toggles=i,
            notify_vfio=i,
            vfio_identified=True,
            hist=hist,
            hist_sum_ns=sums,
            lost=dict.fromkeys(PROBES, 0),
        )
        status = {
            p: ProbeStatus(p, PROBES[p][1], target=f"uprobe:/usr/bin/qemu-system-x86_64:{p}+0x4")
            for p in PROBES
        }
        target = QemuTarget(100_000 + i, 1, f"vm-{i:03d}", (f"0000:{i % 256:02x}:00.0",))
        views.append(TargetView(target, counts, status, 0, True))
    return views


def scrape(rounds: int) -> None:
    from prometheus_client import CollectorRegistry, generate_latest, start_http_server

    from vfiobench.fleet.metrics import FleetCollector

    print(f"\n== scrape: the exposition of k targets' series (median of {rounds * 4} renders)")
    print(
        f"{'targets':>8} {'series':>8} {'KiB':>8} {'ms render':>10} {'ms HTTP GET':>12} {'ms per target':>14}"
    )
    for k in (1, 10, 100):
        views = fake_views(k)
        registry = CollectorRegistry()
        registry.register(FleetCollector(lambda v=views: v, 1))  # type: ignore[misc]
        times = []
        for _ in range(rounds * 4):
            t0 = time.perf_counter()
            text = generate_latest(registry)
            times.append(time.perf_counter() - t0)
        series = sum(1 for line in text.decode().splitlines() if line and not line.startswith("#"))
        server, _thread = start_http_server(0, "127.0.0.1", registry)
        url = f"http://127.0.0.1:{server.server_port}/metrics"
        gets = []
        for _ in range(rounds * 4):
            t0 = time.perf_counter()
            with urllib.request.urlopen(url, timeout=30) as r:
                r.read()
            gets.append(time.perf_counter() - t0)
        server.shutdown()
        server.server_close()
        render, get = statistics.median(times) * 1e3, statistics.median(gets) * 1e3
        print(f"{k:8} {series:8,} {len(text) / 1024:8.0f} {render:10.2f} {get:12.2f} {render / k:14.3f}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and rounds")
    args = parser.parse_args(argv)
    reason = _unavailable()
    if reason:
        print(f"bench_fleet: skipped ({reason})")
        return 0
    n = 50_000 if args.quick else 300_000
    rounds = 2 if args.quick else 5
    with tempfile.TemporaryDirectory(prefix="vfiobench-bench-fleet-") as tmp:
        d = Path(tmp)
        binary = d / "standin"
        subprocess.run(["gcc", "-O2", "-fno-omit-frame-pointer", "-o", str(binary), str(STANDIN)], check=True)
        name = f"qemu-system-vfbbench-{uuid.uuid4().hex[:8]}"
        qemu = d / name
        shutil.copy2(binary, qemu)
        # rings large enough for a whole loop: every event pays the whole path, none is lost
        pages = (n * 48 // 4096) * 2
        per_event(lambda: ExporterProcess(name, d / "exporter.log", pages), binary, qemu, n, rounds)
        print(f"\n== every other ioctl (FIONREAD, {n * 4:,} calls, median of {rounds} rounds), idle targets")
        base = noise_us(binary, n * 4, rounds)
        print(f"{'none':>8} {base:9.4f} {'(no exporter)':>14}")
        exp = ExporterProcess(name, d / "exporter-default.log", buffer_pages=128)  # as deployed
        try:
            noise(exp, binary, qemu, n * 4, rounds, base)
            log = (d / "exporter-default.log").read_text()
            attach = [float(x) for x in re.findall(r"attached .* in ([\d.]+) s", log)]
            print(f"\nattach per target (resolve, compile, attach): median {statistics.median(attach):.2f} s")
        finally:
            exp.close()
    scrape(rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
