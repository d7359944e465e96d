"""The masking-guest verdict: does this VM's guest mask its passthrough device on every interrupt?

Such a guest costs QEMU two PBA toggles (each a rebuild of the guest's memory map) and one or two
``VFIO_DEVICE_SET_IRQS`` ioctls per interrupt (see ``docs/fleet.md``). The verdict compares those
calls with the interrupts QEMU delivered over a sliding window:

- **interrupts**: ``msix_notify`` calls for the VFIO device (:attr:`Counts.interrupts
  <vfiobench.fleet.probeset.Counts.interrupts>`). That is what the probes can see of delivery:
  QEMU notifies once when the interrupt arrives (masked: it sets the pending bit) and once when
  the unmask delivers it, so a guest masking every interrupt on stock QEMU shows 1 PBA toggle and
  0.5 (no KVM route) or 1 (KVM) SET_IRQS per notification; a guest that never masks shows 0 of
  both (with KVM its interrupts bypass QEMU entirely: no notification, no ioctl, no toggle).
- **masking** (1) when, over the window, PBA toggles + SET_IRQS reach ``min_events`` and PBA
  toggles or SET_IRQS per interrupt reach ``threshold``. With no interrupt in the window, the
  ratios are taken per one interrupt, so a guest that masks and unmasks without QEMU seeing an
  interrupt is flagged once it passes ``min_events``.

A window with too few calls (an idle guest, one mask at driver load) reads 0.

Example:
    >>> from vfiobench.fleet.probeset import Counts
    >>> d = MaskingDetector(window=10.0, threshold=0.25, min_events=10)
    >>> d.update(0.0, Counts())
    0
    >>> d.update(5.0, Counts(set_irqs=40, pba_toggles=40, notify_vfio=40, vfio_identified=True))
    1
    >>> d.update(20.0, Counts(set_irqs=40, pba_toggles=40, notify_vfio=90, vfio_identified=True))
    0
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from vfiobench.fleet.probeset import Counts

DEFAULT_WINDOW = 30.0
DEFAULT_THRESHOLD = 0.25
DEFAULT_MIN_EVENTS = 10


@dataclass(frozen=True)
class _Sample:
    t: float
    toggles: int
    set_irqs: int
    interrupts: int


class MaskingDetector:
    """The sliding-window verdict of one target (see the module docstring).

    Args:
        window: Seconds of history the verdict looks at.
        threshold: PBA toggles or SET_IRQS per interrupt at or above which the guest masks.
        min_events: PBA toggles + SET_IRQS the window needs before it can read 1.
    """

    def __init__(
        self,
        window: float = DEFAULT_WINDOW,
        threshold: float = DEFAULT_THRESHOLD,
        min_events: int = DEFAULT_MIN_EVENTS,
    ) -> None:
        self.window = window
        self.threshold = threshold
        self.min_events = min_events
        self.samples: deque[_Sample] = deque()
        self.value = 0

    def update(self, now: float, counts: Counts) -> int:
        """Add the counts at time ``now`` (seconds, monotonic) and return the verdict (0 or 1)."""
        self.samples.append(_Sample(now, counts.pba_toggles, counts.set_irqs, counts.interrupts))
        while len(self.samples) > 2 and self.samples[1].t <= now - self.window:
            self.samples.popleft()  # keep one sample at or before the window's start
        first, last = self.samples[0], self.samples[-1]
        toggles = last.toggles - first.toggles
        set_irqs = last.set_irqs - first.set_irqs
        interrupts = max(last.interrupts - first.interrupts, 1)
        busy = toggles + set_irqs >= self.min_events
        ratio = max(toggles, set_irqs) / interrupts
        self.value = int(busy and ratio >= self.threshold)
        return self.value
