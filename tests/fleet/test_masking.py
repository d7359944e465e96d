"""The masking-guest verdict over a sliding window, on hand-computed counts."""

from __future__ import annotations

from vfiobench.fleet.masking import MaskingDetector
from vfiobench.fleet.probeset import Counts


def counts(toggles: int = 0, set_irqs: int = 0, vfio: int = 0, other: int = 0, known: bool = True) -> Counts:
    return Counts(
        set_irqs=set_irqs, pba_toggles=toggles, notify_vfio=vfio, notify_other=other, vfio_identified=known
    )


def test_masking_guest_on_stock_qemu_kvm_and_tcg() -> None:
    """Per interrupt: 2 toggles, 2 notifications, and 2 (KVM) or 1 (TCG) SET_IRQS: masking."""
    for set_irqs_per_irq in (2, 1):
        d = MaskingDetector(window=10, threshold=0.25, min_events=10)
        assert d.update(0, counts()) == 0
        n = 50  # interrupts in 5 s
        assert d.update(5, counts(2 * n, set_irqs_per_irq * n, 2 * n)) == 1


def test_a_guest_that_does_not_mask_reads_0() -> None:
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(5, counts(vfio=1000, other=300)) == 0


def test_the_verdict_follows_the_window() -> None:
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(5, counts(40, 40, 40)) == 1
    assert d.update(12, counts(40, 40, 40)) == 1  # the window [2, 12] still holds the burst (5)
    assert d.update(16, counts(40, 40, 40)) == 0  # [6, 16]: nothing happened since 5
    assert d.update(20, counts(42, 42, 42)) == 0  # 4 calls: below min_events
    assert d.update(30, counts(80, 80, 80)) == 1


def test_threshold_and_min_events_are_inclusive() -> None:
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(1, counts(10, 0, 40)) == 1  # 10 toggles (= min_events), 0.25 per interrupt
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(1, counts(9, 0, 40)) == 0  # 9 < min_events
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(1, counts(0, 10, 41)) == 0  # 10/41 < 0.25


def test_denominator_is_the_vfio_device_once_known_else_every_notification() -> None:
    # a busy emulated device (other) does not dilute the VFIO device's ratio once it is known
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(5, counts(20, 20, 20, other=10_000)) == 1
    # until the VFIO device is known (no PBA toggle yet), every notification counts
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts(known=False))
    assert d.update(5, counts(0, 20, 0, other=10_000, known=False)) == 0
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts(known=False))
    assert d.update(5, counts(0, 20, 0, other=40, known=False)) == 1


def test_masking_without_interrupts_is_flagged_past_min_events() -> None:
    d = MaskingDetector(window=10, threshold=0.25, min_events=10)
    d.update(0, counts())
    assert d.update(1, counts(0, 9, 0)) == 0
    assert d.update(2, counts(0, 10, 0)) == 1
