"""The lab's use of the ``irq_path`` probe: per-event counts, which parts count, their checks.

Runs anywhere (hand-computed counts)."""

from __future__ import annotations

import numpy as np
import pytest

from vfiobench.lab.checks import lab_checks
from vfiobench.lab.results import probe_counts_in
from vfiobench.probes.catalog import attached_parts
from vfiobench.schema import TABLE_DTYPES

N = 31
TRACE = {
    "vfio_msix_vector_release": N,
    "vfio_msix_pba_enable": N,
    "vfio_msi_interrupt": N,
    "vfio_msix_vector_do_use": N,
    "vfio_msix_pba_disable": N,
}
COUNTERS = {"triggered": N, "delivered": N, "expected_deliveries": N, "masks": N, "unmasks": N, "pba_seen": N}
BASE = {"set_irqs_ioctl": 2 * N, "set_vector_signal": 2 * N, "pba_toggle": 2 * N}
# stock QEMU, KVM, every interrupt masked: one hard IRQ and eventfd signal each, QEMU handles each
# (vfio_msi_interrupt -> msix_notify -> pending), the unmask delivers through msix_notify again
# (a store to the lab's RAM MSI address: no KVM injection)
IRQ_PATH = {
    "irq_path.host_irq": N,
    "irq_path.eventfd_signal": N,
    "irq_path.qemu_irq": N,
    "irq_path.msix_set_pending": N,
    "irq_path.msix_notify": 2 * N,
    "irq_path.kvm_msi": 0,
}


def _checks(probes: dict[str, int], accel: str = "kvm", irq_delta: int | None = N) -> dict[str, bool]:
    checks = lab_checks(
        workload="mask-every-irq",
        accel=accel,
        counters=COUNTERS,
        trace=TRACE,
        irq_delta=irq_delta,
        probes={**BASE, **probes},
    )
    return {c.name: c.ok for c in checks if "irq_path" in c.name}


def test_consistent_counts_pass_every_irq_path_check() -> None:
    got = _checks(IRQ_PATH)
    assert len(got) == 6 and all(got.values()), got


@pytest.mark.parametrize(
    ("event", "check"),
    [
        ("host_irq", "probe: irq_path host_irq == L1 vfio-msix interrupts"),
        ("eventfd_signal", "probe: irq_path eventfd_signal == host_irq"),
        ("qemu_irq", "probe: irq_path qemu_irq == trace"),
        ("msix_set_pending", "probe: irq_path msix_set_pending == masked interrupts"),
        ("msix_notify", "probe: irq_path msix_notify == qemu_irq + msix_set_pending"),
        ("kvm_msi", "probe: irq_path kvm_msi == KVM irqfd injections"),
    ],
)
def test_one_wrong_count_fails_its_check(event: str, check: str) -> None:
    got = _checks({**IRQ_PATH, f"irq_path.{event}": IRQ_PATH[f"irq_path.{event}"] + 1})
    assert not got[check]


def test_only_the_parts_present_are_checked() -> None:
    got = _checks({"irq_path.host_irq": N, "irq_path.msix_notify": 7})  # e.g. Debian's QEMU, no kprobes
    assert list(got) == ["probe: irq_path host_irq == L1 vfio-msix interrupts"]
    assert _checks({}) == {}
    assert _checks(IRQ_PATH, accel="tcg")["probe: irq_path kvm_msi == KVM irqfd injections"]


def test_kvm_no_mask_expects_one_irqfd_injection_per_trigger() -> None:
    probes = {**BASE, "set_irqs_ioctl": 0, "set_vector_signal": 0, "pba_toggle": 0, "irq_path.kvm_msi": N}
    for accel, expected_ok in (("kvm", True), ("tcg", False)):
        checks = lab_checks(
            workload="no-mask",
            accel=accel,
            counters={**COUNTERS, "masks": 0, "unmasks": 0, "pba_seen": 0},
            trace={},
            irq_delta=N,
            probes=probes,
        )
        got = {c.name: c.ok for c in checks}
        assert got["probe: irq_path kvm_msi == KVM irqfd injections"] is expected_ok


def test_attached_parts_leave_out_skipped_and_partial_ones() -> None:
    debian = (
        "host_irq=tracepoint:irq:irq_handler_entry+irq:irq_handler_exit; "
        "eventfd_signal=kprobe:eventfd_signal; kvm_msi=tracepoint:kvm:kvm_msi_set_irq; "
        "qemu_irq=skipped (/usr/bin/qemu-system-x86_64: no symbol 'vfio_msi_interrupt' in .symtab or "
        ".dynsym, which the project's QEMU build keeps (vfiobench qemu build)); "
        "msix_set_pending=uprobe+uretprobe:msix_set_pending+0x0 "
        "(copies inlined in msix_notify not searched: x); "
        "msix_notify=uprobe+uretprobe:msix_notify+0x0"
    )
    assert attached_parts(debian) == [
        "host_irq",
        "eventfd_signal",
        "kvm_msi",
        "kvm_signal_msi",
        "msix_notify",
    ]
    project = debian.replace(
        debian.split("; ")[3], "qemu_irq=uprobe+uretprobe:vfio_msi_interrupt+0x0"
    ).replace("(copies inlined in msix_notify not searched: x)", "and inlined copies at msix_notify+0x60")
    assert attached_parts(project) == list(
        (
            "host_irq",
            "eventfd_signal",
            "kvm_msi",
            "kvm_signal_msi",
            "qemu_irq",
            "msix_set_pending",
            "msix_notify",
        )
    )
    assert attached_parts("tracepoint:syscalls:sys_enter_ioctl+sys_exit_ioctl cmd=0x3b6e") is None


def test_probe_counts_per_event_inside_the_measure_window() -> None:
    t = np.zeros(6, dtype=TABLE_DTYPES["irq_path"])
    t["ts_ns"] = [5, 10, 11, 12, 20, 30]
    t["event"] = ["host_irq", "host_irq", "qemu_irq", "msix_notify", "msix_notify", "host_irq"]
    counts = probe_counts_in({"irq_path": t}, 10, 20)
    assert counts == {
        "irq_path": 4,
        "irq_path.host_irq": 1,
        "irq_path.qemu_irq": 1,
        "irq_path.msix_notify": 2,
    }


def test_kvm_ioctls_counted_per_ioctl_inside_the_measure_window() -> None:
    from vfiobench import schema

    t = np.zeros(7, dtype=TABLE_DTYPES["kvm_ioctls"])
    t["ts_ns"] = [5, 10, 11, 12, 13, 20, 30]
    t["cmd"] = [
        schema.KVM_SET_GSI_ROUTING,
        schema.KVM_SET_GSI_ROUTING,
        schema.KVM_IRQFD,
        schema.KVM_SET_GSI_ROUTING,
        0xAE01,  # not one of the three: counted in the table's total only
        schema.KVM_SET_GSI_ROUTING,
        schema.KVM_SIGNAL_MSI,
    ]
    counts = probe_counts_in({"kvm_ioctls": t}, 10, 20)
    assert counts == {
        "kvm_ioctls": 5,
        "kvm_ioctls.gsi_routing": 3,
        "kvm_ioctls.irqfd": 1,
        "kvm_ioctls.signal_msi": 0,
    }
