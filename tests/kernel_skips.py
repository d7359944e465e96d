"""The one check failure a lab run may show for a reason outside vfiobench, and nothing else.

Linux before 6.7 (the lab's L1 runs 6.1) skips an interrupt-context BPF program that fires while
another BPF program (here a QEMU uprobe program) runs on the same CPU, and does not count the skip
(docs/metrics.md, ``missed``). ``irq_path`` then sees one host interrupt fewer than L1's
``/proc/interrupts``. It happens in a few runs out of hundreds, more often on a loaded machine.
Tests allow exactly that (these checks, one event short, on such a kernel) and nothing else.
"""

from __future__ import annotations

from collections.abc import Iterable

from vfiobench.store import Check, kernel_counts_misses

UNCOUNTED_SKIP_CHECKS = frozenset(
    {
        "probe: irq_path host_irq == L1 vfio-msix interrupts",
        "probe: irq_path eventfd_signal == host_irq",
        # the skipped IRQ's KVM injection runs in the same handler, so it is skipped with it
        "probe: irq_path kvm_msi == KVM irqfd injections",
    }
)


def unexplained_failures(checks: Iterable[Check], kernel_release: str) -> list[tuple[str, object, object]]:
    """Failed checks other than one uncounted kernel skip: ``(name, expected, observed)``."""
    out = []
    for c in checks:
        if c.ok:
            continue
        skip = c.name in UNCOUNTED_SKIP_CHECKS and not kernel_counts_misses(kernel_release)
        counts = isinstance(c.expected, int | float) and isinstance(c.observed, int | float)
        if skip and counts and c.expected - c.observed == 1:  # type: ignore[operator]
            continue
        out.append((c.name, c.expected, c.observed))
    return out
