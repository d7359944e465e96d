"""The L2 vfio-pci device's configuration as far as delivery and the ground-truth checks care.

Read from the L2 command line (``-global vfio-pci.KEY=on`` or ``-device vfio-pci,...,KEY=on``).
Imports nothing heavy: the L1 job (Debian's python3, no pandas) uses it to pick how a delivery is
seen, the host side to know which counts to expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

#: How the device handles the MSI-X Pending Bit Array region.
PbaMode = Literal["toggle", "always-on", "disabled"]


@dataclass(frozen=True)
class DeviceConfig:
    """What the L2 vfio-pci device was told to do, as far as the checks care."""

    kvm_route: bool = True
    pba: PbaMode = "toggle"
    fd_cache: bool = False
    mask_auto: bool = False

    @classmethod
    def from_args(cls, accel: str, qemu_args: Sequence[str]) -> DeviceConfig:
        """Read the ``x-*`` properties from ``-global vfio-pci.KEY=on`` or ``-device vfio-pci,KEY=on``."""
        on: set[str] = set()
        for arg in qemu_args:
            for item in arg.replace("vfio-pci.", ",").split(","):
                key, _, value = item.partition("=")
                if value in ("on", "true", "yes"):
                    on.add(key)
        pba: PbaMode = "toggle"
        if "x-pba-always-on" in on:  # the build enables the PBA once even when x-pba-disable is on too
            pba = "always-on"
        elif "x-pba-disable" in on:
            pba = "disabled"
        return cls(
            kvm_route=accel == "kvm" and "x-no-kvm-msix" not in on,
            pba=pba,
            fd_cache="x-msix-fd-cache" in on,
            mask_auto="x-msix-mask-auto" in on,
        )
