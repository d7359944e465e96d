"""The ``kvm_ioctls`` ground-truth checks: route commits against QEMU's trace log (hand-computed counts)."""

from __future__ import annotations

from typing import Any

from vfiobench.lab.checks import TRACE_COMMIT_ROUTES, lab_checks
from vfiobench.qemu.trace import LAB_TRACE_EVENTS
from vfiobench.store import Check

N = 31
COUNTERS = {"triggered": N, "delivered": N, "expected_deliveries": N, "masks": N, "unmasks": N, "pba_seen": N}
MASK_TRACE = {
    "vfio_msix_vector_release": N,
    "vfio_msix_pba_enable": N,
    "vfio_msi_interrupt": N,
    "vfio_msix_vector_do_use": N,
    "vfio_msix_pba_disable": N,
}
KVM_NAMES = ["probe: kvm_ioctls gsi_routing == trace"]


def kvm_probes(gsi: int, irqfd: int = 0, msi: int = 0, ioctls: int = 2 * N) -> dict[str, int]:
    return {
        "set_irqs_ioctl": ioctls,
        "set_vector_signal": ioctls,
        "pba_toggle": 2 * N,
        "kvm_ioctls.gsi_routing": gsi,
        "kvm_ioctls.irqfd": irqfd,
        "kvm_ioctls.signal_msi": msi,
    }


def checks(trace: dict[str, int], probes: dict[str, int], **kw: Any) -> list[Check]:
    args: dict[str, Any] = {
        "workload": "mask-every-irq",
        "accel": "kvm",
        "counters": COUNTERS,
        "irq_delta": N,
    }
    return lab_checks(**(args | kw), trace=trace, probes=probes)


def kvm_names(out: list[Check]) -> list[str]:
    return [c.name for c in out if "kvm_ioctls" in c.name or "KVM ioctls" in c.name]


def test_the_lab_traces_route_commits() -> None:
    assert TRACE_COMMIT_ROUTES in LAB_TRACE_EVENTS


def test_route_commits_match_the_trace_log_exactly() -> None:
    """kvm, masked: one route commit per unmask, in the trace log and in the probe."""
    trace = MASK_TRACE | {TRACE_COMMIT_ROUTES: N}
    good = checks(trace, kvm_probes(N))
    assert [c.name for c in good if not c.ok] == [] and kvm_names(good) == KVM_NAMES
    c = next(c for c in good if c.name == KVM_NAMES[0])
    assert (c.expected, c.observed) == (N, N)
    bad = checks(trace, kvm_probes(N - 1))
    assert [c.name for c in bad if not c.ok] == KVM_NAMES


def test_no_check_when_the_log_cannot_show_route_commits() -> None:
    """A QEMU without the trace event (or a log without it): nothing to compare against."""
    assert kvm_names(checks(MASK_TRACE, kvm_probes(N))) == []
    # the whole log holds the event (the start-up commit): none in the measure phase is checked as 0
    out = checks(MASK_TRACE, kvm_probes(3), traced={TRACE_COMMIT_ROUTES, "vfio_msix_vector_do_use"})
    assert [c.name for c in out if not c.ok] == KVM_NAMES
    c = next(c for c in out if c.name == KVM_NAMES[0])
    assert (c.expected, c.observed) == (0, 3)


def test_tcg_issues_no_kvm_ioctl() -> None:
    probes = kvm_probes(0, ioctls=N)
    assert [c.name for c in checks(MASK_TRACE, probes, accel="tcg") if not c.ok] == []
    assert "probe: no KVM ioctls under TCG" in kvm_names(checks(MASK_TRACE, probes, accel="tcg"))
    out = checks(MASK_TRACE, kvm_probes(0, msi=1, ioctls=N), accel="tcg")
    assert [c.name for c in out if not c.ok] == ["probe: no KVM ioctls under TCG"]


def test_without_per_ioctl_counts_nothing_is_checked() -> None:
    probes = {k: v for k, v in kvm_probes(N).items() if not k.startswith("kvm_ioctls.")}
    assert kvm_names(checks(MASK_TRACE | {TRACE_COMMIT_ROUTES: N}, probes)) == []
