"""Ground-truth checks follow the L2 device's x-* properties (hand-computed counts, runs anywhere)."""

from __future__ import annotations

from typing import Any

import pytest

from vfiobench.lab.checks import DeviceConfig, lab_checks
from vfiobench.store import Check

N = 31
COUNTERS = {"triggered": N, "delivered": N, "expected_deliveries": N, "masks": N, "unmasks": N, "pba_seen": N}


def failing(checks: list[Check]) -> list[str]:
    return [c.name for c in checks if not c.ok]


@pytest.mark.parametrize(
    ("accel", "args", "expected"),
    [
        ("kvm", [], DeviceConfig(kvm_route=True)),
        ("tcg", [], DeviceConfig(kvm_route=False)),
        ("kvm", ["-global", "vfio-pci.x-no-kvm-msix=on"], DeviceConfig(kvm_route=False)),
        ("kvm", ["-global", "vfio-pci.x-pba-always-on=on"], DeviceConfig(pba="always-on")),
        ("kvm", ["-device", "vfio-pci,host=0000:00:04.0,x-pba-disable=on"], DeviceConfig(pba="disabled")),
        ("tcg", ["-global", "vfio-pci.x-msix-fd-cache=on"], DeviceConfig(kvm_route=False, fd_cache=True)),
        ("kvm", ["-global", "vfio-pci.x-pba-always-on=off"], DeviceConfig()),
        (
            "kvm",
            ["-global", "vfio-pci.x-pba-disable=on", "-global", "vfio-pci.x-pba-always-on=on"],
            DeviceConfig(pba="always-on"),
        ),
    ],
)
def test_device_config_from_args(accel: str, args: list[str], expected: DeviceConfig) -> None:
    assert DeviceConfig.from_args(accel, args) == expected


MASK_TRACE = {
    "vfio_msix_vector_release": N,
    "vfio_msix_pba_enable": N,
    "vfio_msi_interrupt": N,
    "vfio_msix_vector_do_use": N,
    "vfio_msix_pba_disable": N,
}


def masked_cell(
    trace: dict[str, int], probes: dict[str, int] | None, device: DeviceConfig, **kw: Any
) -> list[Check]:
    """lab_checks of a kvm mask-every-irq cell of N cycles; ``kw`` overrides accel, counters..."""
    args: dict[str, Any] = {
        "workload": "mask-every-irq",
        "accel": "kvm",
        "counters": COUNTERS,
        "irq_delta": N,
    }
    return lab_checks(**(args | kw), trace=trace, probes=probes, device=device)


def test_pba_always_on_expects_no_toggles_but_the_pending_bit_seen() -> None:
    trace = {"vfio_msix_vector_release": N, "vfio_msi_interrupt": N, "vfio_msix_vector_do_use": N}
    dev = DeviceConfig(pba="always-on")
    probes = {"set_irqs_ioctl": 2 * N, "set_vector_signal": 2 * N, "pba_toggle": 0}
    checks = masked_cell(trace, probes, dev)
    assert failing(checks) == []
    assert "trace: no PBA toggles (x-pba-always-on)" in [c.name for c in checks]
    # the guest must still see its pending bit: a PBA that reads 0 fails
    blind = masked_cell(trace, probes, dev, counters=dict(COUNTERS, pba_seen=0))
    assert failing(blind) == ["workload: PBA bit seen in every mask window"]
    # a stray toggle fails
    toggled = masked_cell(dict(trace, vfio_msix_pba_enable=1), dict(probes, pba_toggle=1), dev)
    assert failing(toggled) == ["trace: no PBA toggles (x-pba-always-on)"]


def test_fd_cache_hits_are_ioctls_not_issued() -> None:
    trace = dict(MASK_TRACE, vfio_msix_fd_cache_hit=N - 1)
    dev = DeviceConfig(kvm_route=False, fd_cache=True)
    probes = {"set_irqs_ioctl": 1, "set_vector_signal": 1, "pba_toggle": 2 * N}
    assert failing(masked_cell(trace, probes, dev, accel="tcg")) == []
    # the probes saw every ioctl although the trace says the cache skipped N - 1: a mismatch
    ignored = masked_cell(trace, dict(probes, set_irqs_ioctl=N, set_vector_signal=N), dev, accel="tcg")
    assert failing(ignored) == ["probe: set_irqs_ioctl == trace", "probe: set_vector_signal == trace"]
    assert "fd-cache hits" in next(c.detail for c in ignored if not c.ok)


def test_no_kvm_msix_under_kvm_expects_tcg_like_counts() -> None:
    probes = {"set_irqs_ioctl": N, "set_vector_signal": N, "pba_toggle": 2 * N}
    dev = DeviceConfig.from_args("kvm", ["-global", "vfio-pci.x-no-kvm-msix=on"])
    assert failing(masked_cell(MASK_TRACE, probes, dev)) == []
    nomask = masked_cell(
        {"vfio_msi_interrupt": N},
        None,
        dev,
        workload="no-mask",
        counters=dict(COUNTERS, masks=0, unmasks=0, pba_seen=0),
    )
    assert failing(nomask) == []  # without a KVM route QEMU handles every interrupt


def test_pba_disable_with_a_guest_that_never_reads_the_pba() -> None:
    """``mask-no-pba`` + x-pba-disable: no toggles, one PBA skip and one QEMU take per mask window."""
    trace = {
        "vfio_msix_vector_release": N,
        "vfio_msi_interrupt": N,
        "vfio_msix_pba_skip": N,
        "vfio_msix_vector_do_use": N,
    }
    counters = dict(COUNTERS, pba_seen=0, qemu_took=N)
    dev = DeviceConfig(pba="disabled")
    probes = {"set_irqs_ioctl": 2 * N, "set_vector_signal": 2 * N, "pba_toggle": 0}
    checks = masked_cell(trace, probes, dev, workload="mask-no-pba", counters=counters)
    assert failing(checks) == []
    names = [c.name for c in checks]
    assert "workload: PBA bit seen in every mask window" not in names  # the guest read no PBA
    assert "trace: PBA skips == triggers (x-pba-disable)" in names
    # a window the guest unmasked before QEMU took the interrupt fails
    early = masked_cell(trace, probes, dev, workload="mask-no-pba", counters=dict(counters, qemu_took=N - 1))
    assert failing(early) == ["workload: QEMU took every masked interrupt before the unmask"]
    # the same guest on a stock device: two toggles per window, and no skips expected
    stock = masked_cell(
        MASK_TRACE, dict(probes, pba_toggle=2 * N), DeviceConfig(), workload="mask-no-pba", counters=counters
    )
    assert failing(stock) == []
    # a build whose property did nothing (toggles, no skips) fails
    ignored = masked_cell(
        MASK_TRACE, dict(probes, pba_toggle=2 * N), dev, workload="mask-no-pba", counters=counters
    )
    assert failing(ignored) == [
        "trace: no PBA toggles (x-pba-disable)",
        "trace: PBA skips == triggers (x-pba-disable)",
    ]  # the probes agree with the trace: the build, not the probes, is wrong


def _auto_cell(
    detect_after: int, *, kept: int | None = None, toggles_after: int = 1, accel: str = "kvm"
) -> list[Check]:
    """An x-msix-mask-auto mask-every-irq cell of N cycles, the detection at the mask of cycle k.

    Before it (k cycles) everything is stock; from it on (N - k cycles) each mask and unmask keeps
    the trigger (under TCG only the unmask would set it) and only the enable that keeps the PBA on
    is traced.
    """
    from vfiobench.lab.checks import AutoTrace

    kvm = accel == "kvm"
    k, rest = detect_after, N - detect_after
    would_set = rest * (2 if kvm else 1)
    kept = would_set if kept is None else kept
    trace = {
        "vfio_msix_vector_release": N,
        "vfio_msix_vector_do_use": N,
        "vfio_msi_interrupt": N,
        "vfio_msix_pba_enable": k + toggles_after,
        "vfio_msix_pba_disable": k,
        "vfio_msix_trigger_kept": kept,
    }
    after = {
        "vfio_msix_mask_auto": 1,
        "vfio_msix_vector_release": rest,
        "vfio_msix_vector_do_use": rest,
        "vfio_msix_pba_enable": toggles_after,
        "vfio_msix_trigger_kept": kept,
    }
    set_irqs = N * (2 if kvm else 1) - kept
    probes = {"set_irqs_ioctl": set_irqs, "set_vector_signal": set_irqs, "pba_toggle": 2 * k + toggles_after}
    device = DeviceConfig.from_args(accel, ["-global", "vfio-pci.x-msix-mask-auto=on"])
    assert device.mask_auto
    return masked_cell(trace, probes, device, accel=accel, auto=AutoTrace(1, after, 1))


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_mask_auto_switch_passes_when_everything_after_detection_is_kept(accel: str) -> None:
    checks = _auto_cell(17, accel=accel)
    assert failing(checks) == []
    names = {c.name for c in checks}
    assert "trace: each masked vector detected (x-msix-mask-auto)" in names
    assert "trace: PBA disables == unmasks" not in names  # stock's expectation no longer holds


def test_mask_auto_checks_catch_a_toggle_or_an_ioctl_after_detection() -> None:
    assert failing(_auto_cell(17, toggles_after=3)) == [
        "trace: after detection, only the enable that keeps the PBA on"
    ]
    assert "trace: after detection, every SET_IRQS kept" in failing(_auto_cell(17, kept=2 * (N - 17) - 1))
    from vfiobench.lab.checks import AutoTrace

    no_mask = lab_checks(
        workload="no-mask",
        accel="kvm",
        counters=COUNTERS | {"masks": 0, "unmasks": 0, "pba_seen": 0},
        trace={},
        irq_delta=N,
        probes=None,
        device=DeviceConfig(mask_auto=True),
        auto=AutoTrace(1, {}, 1),
    )
    assert failing(no_mask) == ["trace: no mask detection without masking"]


def test_mask_auto_detected_during_warmup_leaves_no_toggle_in_the_measure_phase() -> None:
    """Warm-up cycles (setup phase) past the threshold: the measure phase is all kept, no toggle."""
    from vfiobench.lab.checks import AutoTrace

    after = {"vfio_msix_vector_release": N, "vfio_msix_vector_do_use": N, "vfio_msix_trigger_kept": 2 * N}
    trace = after | {"vfio_msi_interrupt": N}
    probes = {"set_irqs_ioctl": 0, "set_vector_signal": 0, "pba_toggle": 0}
    device = DeviceConfig(mask_auto=True)
    assert failing(masked_cell(trace, probes, device, auto=AutoTrace(1, after, 1))) == []
    toggled = after | {"vfio_msix_pba_enable": 1}
    bad = masked_cell(trace | toggled, probes | {"pba_toggle": 1}, device, auto=AutoTrace(1, toggled, 1))
    assert failing(bad) == ["trace: after detection, only the enable that keeps the PBA on"]
