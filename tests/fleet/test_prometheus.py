"""End to end: ``vfiobench exporter`` on the stand-in, scraped every second by a real Prometheus
(Debian's package, on loopback with a temporary config and data directory), asked in PromQL."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from fleet_helpers import ExporterProcess, PrometheusServer, wait_for
from probe_helpers import StandIn

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.prometheus, pytest.mark.usefixtures("bpf_ready")]

Exporter = Callable[..., ExporterProcess]
Prometheus = Callable[[Sequence[str]], PrometheusServer]

N = 23  # odd: a doubled or halved count cannot pass
OTHER = 7


def test_promql_returns_the_standins_exact_counts(
    standin_bin: Path, spawn: type[StandIn], exporter: Exporter, prometheus: Prometheus
) -> None:
    s = spawn(
        standin_bin,
        "both",
        N,
        0,
        OTHER,
        extra=["-name", "guest=vm-odd,debug-threads=on", "-device", "vfio-pci,host=65:00.0,id=hostdev0"],
    )
    exp = exporter(["--pid", str(s.pid), "--interval", "0.2"])
    exp.wait_log(f"pid {s.pid} (vm-odd, 0000:65:00.0): attached set_irqs_ioctl, pba_toggle, msix_notify")
    prom = prometheus([exp.address])
    sel = f'pid="{s.pid}",vm="vm-odd",device="0000:65:00.0"'
    assert prom.wait_value(f"vfiobench_target_up{{{sel}}}", 1) == 1  # scraped before anything happened
    s.go()
    assert s.wait_done() == N
    for query, n in (  # each counter reaches its count (polls and scrapes lag) and stays there
        (f"vfiobench_set_irqs_total{{{sel}}}", N),
        (f'vfiobench_set_enabled_total{{{sel},pba="false"}}', OTHER),
        (f'vfiobench_set_enabled_total{{{sel},pba="true"}}', N),
        (f'vfiobench_operation_seconds_count{{{sel},operation="set_irqs_ioctl"}}', N),
        (f'vfiobench_operation_seconds_bucket{{{sel},operation="pba_toggle",le="+Inf"}}', N),
    ):
        assert prom.wait_value(query, n) == n, query
    assert prom.value(f"sum(vfiobench_msix_notify_total{{{sel}}})") == 0  # "both" notifies nothing
    assert prom.value(f"sum(vfiobench_lost_events_total{{{sel}}})") == 0
    probes = {m["probe"]: m["target"] for m, _ in prom.query(f"vfiobench_probe_info{{{sel}}}")}
    assert set(probes) == {"set_irqs_ioctl", "pba_toggle", "msix_notify"}
    assert "memory_region_set_enabled" in probes["pba_toggle"] and "0x3b6e" in probes["set_irqs_ioctl"]
    # the shipped recording rules run in this server too
    assert (prom.wait_value('vm:vfiobench_set_irqs:rate1m{vm="vm-odd"}', 0.01) or 0) >= 0.01
    assert exp.close() == 0  # SIGTERM: probes detached, clean exit
    assert "probes detached" in exp.text()


def test_the_masking_gauge_flags_the_guest_that_masks_and_not_the_other(
    standin_bin: Path, spawn: type[StandIn], exporter: Exporter, prometheus: Prometheus
) -> None:
    """Both guests get N interrupts from QEMU (plus OTHER notifications of an emulated device); one
    masks on each (2 SET_IRQS, 2 PBA toggles, 2 notifications per interrupt), the other never."""
    masker = spawn(standin_bin, "mask", N, 20_000, OTHER, extra=["-name", "masker"])
    calm = spawn(standin_bin, "nomask", N, 20_000, OTHER, extra=["-name", "calm"])
    exp = exporter(["--pid", str(masker.pid), str(calm.pid), "--interval", "0.2", "--masking-window", "3"])
    for pid, vm in ((masker.pid, "masker"), (calm.pid, "calm")):
        exp.wait_log(f"pid {pid} ({vm}): attached")
    prom = prometheus([exp.address])
    assert prom.wait_value('count(vfiobench_masking_guest{vm=~"masker|calm"})', 2) == 2
    masker.go()
    calm.go()
    masker.wait_done()
    calm.wait_done()
    m, c = 'vm="masker"', 'vm="calm"'
    for query, n in (  # each counter reaches its count (polls and scrapes lag) and stays there
        (f'vfiobench_msix_notify_total{{{m},vfio="false"}}', OTHER),
        (f'vfiobench_msix_notify_total{{{c},vfio="false"}}', N + OTHER),
        (f'vfiobench_msix_notify_total{{{m},vfio="true"}}', 2 * N),
        (f"vfiobench_set_irqs_total{{{m}}}", 2 * N),
        (f'vfiobench_set_enabled_total{{{m},pba="true"}}', 2 * N),
    ):
        assert prom.wait_value(query, n) == n, query
    assert prom.value(f'vfiobench_msix_notify_total{{{c},vfio="true"}}') == 0  # no PBA: never identified
    assert prom.value(f"vfiobench_set_irqs_total{{{c}}}") == 0
    assert prom.value(f'vfiobench_set_enabled_total{{{c},pba="true"}}') == 0
    assert prom.wait_value(f"max_over_time(vfiobench_masking_guest{{{m}}}[5m])", 1) == 1
    assert prom.value(f"max_over_time(vfiobench_masking_guest{{{c}}}[5m])") == 0  # (None: no series)
    # and back to 0 once the masking is older than the window
    wait_for("the masker's gauge back to 0", lambda: prom.value(f"vfiobench_masking_guest{{{m}}}") == 0)


def test_without_root_every_probe_reports_its_error_and_the_exporter_keeps_serving(
    standin_bin: Path, spawn: type[StandIn], exporter: Exporter
) -> None:
    """The exporter runs in a user namespace of its own: uid 65534 and no capability, as any user."""
    unprivileged = ["unshare", "--user"]
    if subprocess.run([*unprivileged, "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --user does not work here (user namespaces disabled)")
    s = spawn(standin_bin, "toggle", N, 0, 0)
    exp = exporter(["--pid", str(s.pid), "--interval", "0.2"], prefix=unprivileged)
    exp.wait_log("set_irqs_ioctl not attached (host-wide): loading eBPF programs needs root")
    text = wait_for("the error series", lambda: (t := exp.metrics()).count("PrivilegeError") == 4 and t)
    for probe in ("set_irqs_ioctl", "set_vector_signal", "pba_toggle", "msix_notify"):
        assert f'probe="{probe}"' in str(text)
    assert f'vfiobench_probe_error{{device="",error="PrivilegeError",pid="{s.pid}",probe="pba_toggle"' in str(
        text
    )
    assert "vfiobench_set_irqs_total{" not in str(text)
    assert exp.close() == 0
