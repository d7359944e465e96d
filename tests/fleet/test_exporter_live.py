"""The exporter's probes on the stand-in (real BPF): exact odd counts, processes that come and go,
a target that cannot be probed beside one that can."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest
from fleet_helpers import copy_as, wait_for
from probe_helpers import StandIn
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from vfiobench.fleet.exporter import Exporter, ExporterConfig
from vfiobench.fleet.metrics import FleetCollector

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

N = 23  # interrupts or calls: odd, so a doubled or halved count cannot pass
OTHER = 7


def test_masking_guest_counts_are_exact(standin_bin: Path, spawn: type[StandIn]) -> None:
    """Per interrupt 2 SET_IRQS, 2 PBA toggles and 2 notifications of the PBA's device; the other
    device's notifications are told apart by the PCIDevice pointer the PBA region holds."""
    s = spawn(standin_bin, "mask", N, 0, OTHER, extra=["-device", "vfio-pci,host=65:00.0"])
    exp = Exporter(ExporterConfig(pids=(s.pid,)))
    exp.tick()
    probes = exp.entries[s.pid].probes
    try:
        attached = {p for p, st in probes.status.items() if not st.error}
        assert {"set_irqs_ioctl", "pba_toggle", "msix_notify"} <= attached, probes.status
        s.go()
        assert s.wait_done() == N
        wait_for("the counts", lambda: exp.tick() or probes.counts.notify_other == OTHER)
        s.finish()  # its last SET_IRQS reach it through the host-wide stream before its probes stop
        wait_for("the exit", lambda: exp.tick() or not exp.views()[0].up)
    finally:
        exp.close()
    c = probes.counts
    assert (c.set_irqs, c.pba_toggles, c.other_set_enabled) == (2 * N, 2 * N, 0)
    assert (c.notify_vfio, c.notify_other, c.vfio_identified) == (2 * N, OTHER, True)
    assert c.interrupts == 2 * N
    assert {op: int(h.sum()) for op, h in c.hist.items() if h.sum()} == {
        "set_irqs_ioctl": 2 * N,
        "pba_toggle": 2 * N,
        "msix_notify": 2 * N + OTHER,
    }
    assert c.hist_sum_ns["set_irqs_ioctl"] is not None and c.hist_sum_ns["set_irqs_ioctl"] > 0
    assert all(v == 0 for v in c.lost.values()) and exp.host_lost() == {"set_irqs_ioctl": 0}, c.lost
    assert probes.poll() is c  # stopped: no more polling


def scrape(exporter: Exporter) -> dict[tuple[str, str], dict[str, float]]:
    """(sample name, pid) -> {the other labels, joined: value} from the exporter's exposition."""
    registry = CollectorRegistry()
    registry.register(FleetCollector(exporter.views, exporter.config.sub_bucket_bits, exporter.host_lost))
    out: dict[tuple[str, str], dict[str, float]] = {}
    for fam in text_string_to_metric_families(generate_latest(registry).decode()):
        for smp in fam.samples:
            labels = sorted(smp.labels.items())
            rest = ",".join(f"{k}={v}" for k, v in labels if k not in ("pid", "vm", "device"))
            out.setdefault((smp.name, smp.labels.get("pid", "")), {})[rest] = smp.value
    return out


def test_all_qemu_follows_a_process_that_starts_later_and_one_that_exits(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    name = f"qemu-system-vfbtest-{uuid.uuid4().hex[:8]}"
    qemu = copy_as(standin_bin, name, tmp_path)
    config = ExporterConfig(all_qemu=True, exe_pattern=name, discover_every=0.0, keep_exited=3.0)
    exp = Exporter(config)
    exp.tick()
    assert exp.views() == []
    first = spawn(qemu, "toggle", N, 0, OTHER, extra=["-name", "guest=first"])
    exp.tick()
    assert [v.target.vm for v in exp.views()] == ["first"]
    decoy = spawn(standin_bin, "toggle", N, 0, OTHER)  # not matched by the pattern: not probed
    first.go()
    first.wait_done()
    second = spawn(qemu, "both", N, 0, 0, extra=["-name", "guest=second"])  # starts after the exporter
    exp.tick()
    assert sorted(v.target.vm for v in exp.views()) == ["first", "second"]
    assert decoy.pid not in exp.entries
    second.go()
    second.wait_done()
    first.finish()  # exits; its final values stay

    def counted() -> bool:  # the kernel's totals are read at most twice a second: wait for them
        exp.tick()
        c = {v.target.vm: v.counts for v in exp.views()}
        return c["first"].pba_toggles == c["second"].pba_toggles == c["second"].set_irqs == N

    wait_for("both counts", counted)
    m = scrape(exp)
    p1, p2 = str(first.pid), str(second.pid)
    assert m[("vfiobench_target_up", p1)] == {"": 0} and m[("vfiobench_target_up", p2)] == {"": 1}
    assert m[("vfiobench_set_enabled_total", p1)] == {"pba=true": N, "pba=false": OTHER}
    assert m[("vfiobench_set_enabled_total", p2)] == {"pba=true": N, "pba=false": 0}
    assert m[("vfiobench_set_irqs_total", p1)] == {"": 0}
    assert m[("vfiobench_set_irqs_total", p2)] == {"": N}
    exited = exp.entries[first.pid].exited_at
    assert exited is not None
    time.sleep(max(0.0, exited + config.keep_exited - time.monotonic()))
    exp.tick()
    assert [v.target.vm for v in exp.views()] == ["second"]  # dropped after keep_exited
    exp.close()


def test_a_target_that_cannot_be_probed_does_not_stop_the_others(
    standin_bin: Path, spawn: type[StandIn], caplog: pytest.LogCaptureFixture
) -> None:
    """`sleep` has no memory_region_set_enabled nor msix_notify: those probes fail for it, with a
    log line and an error series, while its SET_IRQS tracepoint and every probe of the stand-in work."""
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        s = spawn(standin_bin, "both", N, 0, OTHER)
        exp = Exporter(ExporterConfig(pids=(sleeper.pid, s.pid, 2**22 + 1)))  # the last: no such process
        exp.tick()
        s.go()
        s.wait_done()
        probes = exp.entries[s.pid].probes
        wait_for("the stand-in's counts", lambda: exp.tick() or probes.counts.set_irqs == N)
        m = scrape(exp)
        exp.close()
    finally:
        sleeper.kill()
        sleeper.wait()
    bad, good = str(sleeper.pid), str(s.pid)
    assert m[("vfiobench_probe_error", bad)] == {
        "error=MissingSymbolError,probe=pba_toggle": 1,
        "error=MissingSymbolError,probe=msix_notify": 1,
        **{k: v for k, v in m[("vfiobench_probe_error", good)].items()},  # set_vector_signal: kernel-wide
    }
    assert m[("vfiobench_set_irqs_total", bad)] == {"": 0}
    assert ("vfiobench_set_enabled_total", bad) not in m
    assert m[("vfiobench_set_enabled_total", good)] == {"pba=true": N, "pba=false": OTHER}
    assert m[("vfiobench_set_irqs_total", good)] == {"": N}
    errors = {k for k in m[("vfiobench_probe_error", good)]}
    assert errors <= {"error=KprobesUnavailableError,probe=set_vector_signal"}
    logged = caplog.text
    assert f"pid {sleeper.pid} ({sleeper.pid}): pba_toggle not attached" in logged
    assert f"pid {2**22 + 1}: no such process" in logged
