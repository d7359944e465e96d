"""Ground-truth checks follow the L2 device's x-* properties (hand-computed counts, runs anywhere)."""

from __future__ import annotations

import pytest

from vfiobench.lab.checks import DeviceConfig, lab_checks

N = 31
COUNTERS = {"triggered": N, "delivered": N, "expected_deliveries": N, "masks": N, "unmasks": N, "pba_seen": N}


def failing(checks: list) -> list[str]:  # type: ignore[type-arg]
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


def test_pba_always_on_expects_no_toggles_but_the_pending_bit_seen() -> None:
    trace = {"vfio_msix_vector_release": N, "vfio_msi_interrupt": N, "vfio_msix_vector_do_use": N}
    dev = DeviceConfig(pba="always-on")
    probes = {"set_irqs_ioctl": 2 * N, "set_vector_signal": 2 * N, "pba_toggle": 0}
    checks = lab_checks(
        workload="mask-every-irq",
        accel="kvm",
        counters=COUNTERS,
        trace=trace,
        irq_delta=N,
        probes=probes,
        device=dev,
    )
    assert failing(checks) == []
    assert "trace: no PBA toggles (x-pba-always-on)" in [c.name for c in checks]
    # the guest must still see its pending bit: a PBA that reads 0 fails
    blind = lab_checks(
        workload="mask-every-irq",
        accel="kvm",
        counters=dict(COUNTERS, pba_seen=0),
        trace=trace,
        irq_delta=N,
        probes=probes,
        device=dev,
    )
    assert failing(blind) == ["workload: PBA bit seen in every mask window"]
    # a stray toggle fails
    toggled = lab_checks(
        workload="mask-every-irq",
        accel="kvm",
        counters=COUNTERS,
        trace=dict(trace, vfio_msix_pba_enable=1),
        irq_delta=N,
        probes=dict(probes, pba_toggle=1),
        device=dev,
    )
    assert failing(toggled) == ["trace: no PBA toggles (x-pba-always-on)"]


def test_fd_cache_hits_are_ioctls_not_issued() -> None:
    trace = {
        "vfio_msix_vector_release": N,
        "vfio_msix_pba_enable": N,
        "vfio_msi_interrupt": N,
        "vfio_msix_vector_do_use": N,
        "vfio_msix_pba_disable": N,
        "vfio_msix_fd_cache_hit": N - 1,
    }
    dev = DeviceConfig(kvm_route=False, fd_cache=True)
    probes = {"set_irqs_ioctl": 1, "set_vector_signal": 1, "pba_toggle": 2 * N}
    checks = lab_checks(
        workload="mask-every-irq",
        accel="tcg",
        counters=COUNTERS,
        trace=trace,
        irq_delta=N,
        probes=probes,
        device=dev,
    )
    assert failing(checks) == []
    # the probes saw every ioctl although the trace says the cache skipped N - 1: a mismatch
    ignored = lab_checks(
        workload="mask-every-irq",
        accel="tcg",
        counters=COUNTERS,
        trace=trace,
        irq_delta=N,
        probes=dict(probes, set_irqs_ioctl=N, set_vector_signal=N),
        device=dev,
    )
    assert failing(ignored) == ["probe: set_irqs_ioctl == trace", "probe: set_vector_signal == trace"]
    assert "fd-cache hits" in next(c.detail for c in ignored if not c.ok)


def test_no_kvm_msix_under_kvm_expects_tcg_like_counts() -> None:
    trace = {
        "vfio_msix_vector_release": N,
        "vfio_msix_pba_enable": N,
        "vfio_msi_interrupt": N,
        "vfio_msix_vector_do_use": N,
        "vfio_msix_pba_disable": N,
    }
    probes = {"set_irqs_ioctl": N, "set_vector_signal": N, "pba_toggle": 2 * N}
    dev = DeviceConfig.from_args("kvm", ["-global", "vfio-pci.x-no-kvm-msix=on"])
    checks = lab_checks(
        workload="mask-every-irq",
        accel="kvm",
        counters=COUNTERS,
        trace=trace,
        irq_delta=N,
        probes=probes,
        device=dev,
    )
    assert failing(checks) == []
    nomask = lab_checks(
        workload="no-mask",
        accel="kvm",
        counters=dict(COUNTERS, masks=0, unmasks=0, pba_seen=0),
        trace={"vfio_msi_interrupt": N},
        irq_delta=N,
        probes=None,
        device=dev,
    )
    assert failing(nomask) == []  # without a KVM route QEMU handles every interrupt
