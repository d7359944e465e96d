"""Ground-truth checks of lab runs on hand-computed counts (runs anywhere)."""

from __future__ import annotations

from vfiobench.lab.checks import lab_checks

N = 31
MASK_TRACE = {
    "vfio_msix_vector_release": N,
    "vfio_msix_pba_enable": N,
    "vfio_msi_interrupt": N,
    "vfio_msix_vector_do_use": N,
    "vfio_msix_pba_disable": N,
}
MASK_COUNTERS = {
    "triggered": N,
    "delivered": N,
    "expected_deliveries": N,
    "masks": N,
    "unmasks": N,
    "pba_seen": N,
}
NOMASK_COUNTERS = {
    "triggered": N,
    "delivered": N,
    "expected_deliveries": N,
    "masks": 0,
    "unmasks": 0,
    "pba_seen": 0,
}


def failing(checks: list) -> list[str]:  # type: ignore[type-arg]
    return [c.name for c in checks if not c.ok]


def test_kvm_mask_expects_two_ioctls_per_cycle() -> None:
    good = {"set_irqs_ioctl": 2 * N, "set_vector_signal": 2 * N, "pba_toggle": 2 * N}
    checks = lab_checks(
        workload="mask-every-irq",
        accel="kvm",
        counters=MASK_COUNTERS,
        trace=MASK_TRACE,
        irq_delta=N,
        probes=good,
    )
    assert failing(checks) == []
    assert len(checks) == 11
    one_each = dict(good, set_irqs_ioctl=N, set_vector_signal=N)
    bad = lab_checks(
        workload="mask-every-irq",
        accel="kvm",
        counters=MASK_COUNTERS,
        trace=MASK_TRACE,
        irq_delta=N,
        probes=one_each,
    )
    assert failing(bad) == ["probe: set_irqs_ioctl == trace", "probe: set_vector_signal == trace"]


def test_tcg_mask_expects_one_ioctl_per_unmask() -> None:
    probes = {"set_irqs_ioctl": N, "set_vector_signal": N, "pba_toggle": 2 * N}
    checks = lab_checks(
        workload="mask-every-irq",
        accel="tcg",
        counters=MASK_COUNTERS,
        trace=MASK_TRACE,
        irq_delta=N,
        probes=probes,
    )
    assert failing(checks) == []
    ioctl = next(c for c in checks if c.name == "probe: set_irqs_ioctl == trace")
    assert (ioctl.expected, ioctl.observed) == (N, N)


def test_no_mask_kvm_sees_nothing_in_qemu_and_tcg_sees_every_interrupt() -> None:
    none = {"set_irqs_ioctl": 0, "set_vector_signal": 0, "pba_toggle": 0}
    kvm = lab_checks(
        workload="no-mask", accel="kvm", counters=NOMASK_COUNTERS, trace={}, irq_delta=N, probes=none
    )
    assert failing(kvm) == []
    tcg = lab_checks(
        workload="no-mask",
        accel="tcg",
        counters=NOMASK_COUNTERS,
        trace={"vfio_msi_interrupt": N},
        irq_delta=N,
        probes=none,
    )
    assert failing(tcg) == []
    # the same tcg trace under kvm would mean the irqfd bypass is not in place
    assert failing(
        lab_checks(
            workload="no-mask",
            accel="kvm",
            counters=NOMASK_COUNTERS,
            trace={"vfio_msi_interrupt": N},
            irq_delta=N,
            probes=None,
        )
    ) == ["trace: QEMU-handled interrupts"]


def test_lost_delivery_and_pba_toggle_in_no_mask_fail() -> None:
    counters = dict(NOMASK_COUNTERS, delivered=N - 1)
    checks = lab_checks(
        workload="no-mask",
        accel="tcg",
        counters=counters,
        trace={"vfio_msi_interrupt": N, "vfio_msix_pba_enable": 1},
        irq_delta=N + 1,
        probes=None,
    )
    assert failing(checks) == [
        "workload: delivered == expected",
        "trace: no PBA toggles without masking",
        "L1: vfio-msix interrupts == triggers",
    ]


def test_burst_bounds() -> None:
    windows, burst = 5, 4
    counters = {
        "triggered": windows * burst,
        "delivered": windows,
        "expected_deliveries": windows,
        "masks": windows,
        "unmasks": windows,
        "pba_seen": windows,
    }
    trace = {
        "vfio_msix_vector_release": windows,
        "vfio_msix_vector_do_use": windows,
        "vfio_msi_interrupt": 7,
        "vfio_msix_pba_enable": 7,
        "vfio_msix_pba_disable": windows,
    }
    ok = lab_checks(workload="burst", accel="kvm", counters=counters, trace=trace, irq_delta=7, probes=None)
    assert failing(ok) == []
    too_few = lab_checks(
        workload="burst", accel="kvm", counters=counters, trace=trace, irq_delta=3, probes=None
    )
    assert failing(too_few) == ["L1: vfio-msix interrupts"]
    # one straggler handled after the unmask (no PBA enable for it) is fine; fewer enables than windows is not
    late = lab_checks(
        workload="burst",
        accel="tcg",
        counters=counters,
        trace=dict(trace, vfio_msi_interrupt=8),
        irq_delta=8,
        probes=None,
    )
    assert failing(late) == []
    missing = lab_checks(
        workload="burst",
        accel="tcg",
        counters=counters,
        trace=dict(trace, vfio_msix_pba_enable=4),
        irq_delta=7,
        probes=None,
    )
    assert failing(missing) == ["trace: PBA enables"]
