"""Ground truth for a lab run: probe counts against QEMU's trace log, the workload and L1's IRQ count.

Three independent witnesses see every measured cycle: the qtest workload's own counters (it did the
masks, unmasks and triggers and saw the deliveries), QEMU's ``-trace`` log of the L2 QEMU
(``vfio_msix_vector_release`` per mask, ``vfio_msix_vector_do_use`` per unmask,
``vfio_msix_pba_enable``/``_disable`` per PBA toggle, ``vfio_msi_interrupt`` per interrupt that
QEMU handles), and L1's ``/proc/interrupts`` (one ``vfio-msix`` interrupt per trigger). The probes
must agree with them, exactly, over the measure phase:

- ``set_irqs_ioctl`` = ``do_use`` + ``release`` under KVM (both switch the vector's eventfd), =
  ``do_use`` under TCG (no KVM route: a mask issues no ioctl);
- ``set_vector_signal`` = ``set_irqs_ioctl`` (each SET_IRQS carries one vector);
- ``pba_toggle`` (PBA region) = ``pba_enable`` + ``pba_disable``;
- the guest saw what it waited for in every mask window: its pending bit in the PBA
  (``mask-every-irq``, ``burst``), or QEMU taking the interrupt (``mask-no-pba``);
- ``irq_path`` (each part that attached): ``host_irq`` = L1's ``vfio-msix`` interrupts,
  ``eventfd_signal`` = ``host_irq`` (vfio_msihandler signals once), ``qemu_irq`` =
  ``vfio_msi_interrupt`` trace events, ``msix_set_pending`` = the interrupts that arrive masked
  (every trigger of ``mask-every-irq``, none of ``no-mask``), ``msix_notify`` = ``qemu_irq`` +
  ``msix_set_pending`` (each interrupt QEMU handles notifies once, and an unmask delivers the
  pending bit through ``msix_notify`` again), and ``kvm_msi`` (KVM irqfd injections) = the
  triggers when KVM delivers them (KVM, KVM route, no masking), else 0 (QEMU delivers: the lab's
  MSI address is RAM, so QEMU's delivery is a plain store, never a KVM injection);
- ``kvm_ioctls`` (when the probe's per-ioctl counts are given): ``KVM_SET_GSI_ROUTING`` =
  ``kvm_irqchip_commit_routes`` trace events (QEMU traces every route commit just before its ioctl),
  checked when the trace log has that event at all (a KVM L2 commits its routes at start-up, so a
  release whose QEMU has the event shows it; :data:`vfiobench.qemu.trace.LAB_TRACE_EVENTS` enables
  it); under TCG no KVM ioctl at all.

Burst windows coalesce triggers at several levels (eventfd counters), so for ``burst`` the checks
that depend on the number of interrupts are bounds, not equalities.

The expectations follow the L2 device's configuration (:class:`DeviceConfig`, read from its command
line): ``x-no-kvm-msix`` removes the KVM route (a mask then issues no ioctl, QEMU handles every
interrupt); ``x-pba-always-on``/``x-pba-disable`` remove every PBA toggle (with always-on the guest
must still see its pending bit; with x-pba-disable every masked interrupt is a
``vfio_msix_pba_skip`` trace event instead); ``x-msix-fd-cache`` skips the SET_IRQS of every
``vfio_msix_fd_cache_hit`` trace event.

``x-msix-mask-auto`` (the auto-detection series, ``vfiobench/qemu/series/``) changes behaviour in
the middle of a run: the first ``x-msix-mask-threshold`` masks of a vector go as in stock QEMU, then
``vfio_msix_mask_auto`` marks the vector and from there on QEMU keeps the PBA enabled and the vector
on its own eventfd. Its checks, given the trace counts after the first detection (``after_auto``):
one detection per vector the workload masks (none without masking); after it no PBA toggle but the
one enable that keeps it on, and every SET_IRQS a mask or unmask would have issued skipped
(``vfio_msix_trigger_kept``); the SET_IRQS probe counts discount the skipped ones. The workload's
checks (every delivery, the pending bit seen in every mask window) stay exactly as strict: the
switch must lose or duplicate no interrupt.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import NamedTuple

from vfiobench.lab.device import DeviceConfig
from vfiobench.lab.workloads import READS_PBA
from vfiobench.store import Check

__all__ = ["AutoTrace", "DeviceConfig", "lab_checks"]

TRACE_RELEASE = "vfio_msix_vector_release"
TRACE_USE = "vfio_msix_vector_do_use"
TRACE_PBA_ON = "vfio_msix_pba_enable"
TRACE_PBA_OFF = "vfio_msix_pba_disable"
TRACE_IRQ = "vfio_msi_interrupt"
TRACE_FD_CACHE_HIT = "vfio_msix_fd_cache_hit"
TRACE_PBA_SKIP = "vfio_msix_pba_skip"
TRACE_COMMIT_ROUTES = "kvm_irqchip_commit_routes"
TRACE_MASK_AUTO = "vfio_msix_mask_auto"
TRACE_TRIGGER_KEPT = "vfio_msix_trigger_kept"
#: The ``kvm_ioctls`` operations (:data:`vfiobench.schema.KVM_IOCTL_CMDS`), ``kvm_ioctls.<op>`` in ``probes``.
KVM_IOCTL_OPS = ("gsi_routing", "irqfd", "signal_msi")
PBA_PROPERTY = {"toggle": "stock", "always-on": "x-pba-always-on", "disabled": "x-pba-disable"}


class AutoTrace(NamedTuple):
    """What the trace log says about ``x-msix-mask-auto`` in one cell.

    Attributes:
        detections: ``vfio_msix_mask_auto`` events in the whole log.
        after: the measure phase's trace counts from the last detection on, when every detected
            vector has switched (empty: none).
        vectors: the vectors the workload uses (each masked one should be detected once).
    """

    detections: int
    after: Mapping[str, int]
    vectors: int


def _eq(name: str, expected: float, observed: float, detail: str) -> Check:
    return Check(name, float(expected), float(observed), expected == observed, detail)


def _within(name: str, low: float, high: float, observed: float, detail: str) -> Check:
    return Check(
        name, float(high), float(observed), low <= observed <= high, f"{detail} (allowed {low:g}..{high:g})"
    )


def lab_checks(
    *,
    workload: str,
    accel: str,
    counters: Mapping[str, int],
    trace: Mapping[str, int],
    irq_delta: int | None,
    probes: Mapping[str, int] | None,
    device: DeviceConfig | None = None,
    traced: Collection[str] | None = None,
    auto: AutoTrace | None = None,
) -> list[Check]:
    """The checks of one lab cell's measure phase.

    Args:
        workload: ``mask-every-irq``, ``no-mask``, ``burst`` or ``mask-no-pba``.
        accel: ``kvm`` or ``tcg``.
        counters: The workload's counters (``triggered``, ``delivered``, ``expected_deliveries``,
            ``masks``, ``unmasks``, ``pba_seen``, and ``qemu_took`` for ``mask-no-pba``).
        trace: QEMU trace-log event counts in the measure phase.
        irq_delta: L1 ``vfio-msix`` interrupts during the measure phase (None if unknown).
        probes: Probe event counts in the measure phase (None for a probe-free run), keyed
            ``set_irqs_ioctl``, ``set_vector_signal``, ``pba_toggle``, ``irq_path.<event>``
            for each ``irq_path`` part that attached, and ``kvm_ioctls.<op>`` for each of
            :data:`KVM_IOCTL_OPS` when ``kvm_ioctls`` was attached.
        device: The L2 device's configuration (default: stock, KVM route iff ``accel == "kvm"``).
        traced: Every event the whole trace log holds (any phase); None: only what ``trace`` shows.
        auto: With ``x-msix-mask-auto``: what the trace log says about it (:class:`AutoTrace`).

    Returns:
        The checks, each with what was expected and what was observed.
    """
    dev = device or DeviceConfig(kvm_route=accel == "kvm")
    c = {k: int(v) for k, v in counters.items()}
    names = (
        TRACE_RELEASE,
        TRACE_USE,
        TRACE_PBA_ON,
        TRACE_PBA_OFF,
        TRACE_IRQ,
        TRACE_FD_CACHE_HIT,
        TRACE_PBA_SKIP,
        TRACE_TRIGGER_KEPT,
    )
    t = {k: int(trace.get(k, 0)) for k in names}
    masked = workload != "no-mask"
    toggles = dev.pba == "toggle" and not dev.mask_auto
    out = [
        _eq(
            "workload: delivered == expected",
            c["expected_deliveries"],
            c["delivered"],
            "interrupts seen by the guest",
        ),
        _eq(
            "trace: vector releases == workload masks",
            c["masks"],
            t[TRACE_RELEASE],
            "vfio_msix_vector_release",
        ),
        _eq("trace: vector uses == workload unmasks", c["unmasks"], t[TRACE_USE], "vfio_msix_vector_do_use"),
    ]
    if workload in READS_PBA and dev.pba != "disabled":
        out.append(_eq("workload: PBA bit seen in every mask window", c["masks"], c["pba_seen"], "PBA polls"))
    elif masked and workload not in READS_PBA:
        out.append(
            _eq(
                "workload: QEMU took every masked interrupt before the unmask",
                c["masks"],
                c.get("qemu_took", 0),
                f"{TRACE_IRQ} lines seen by the guest",
            )
        )
    if masked and toggles:
        out.append(_eq("trace: PBA disables == unmasks", c["unmasks"], t[TRACE_PBA_OFF], TRACE_PBA_OFF))
    elif dev.mask_auto:
        out += _mask_auto_checks(dev, masked, auto or AutoTrace(0, {}, 1))
    elif masked:
        out.append(
            _eq(
                f"trace: no PBA toggles ({PBA_PROPERTY[dev.pba]})",
                0,
                t[TRACE_PBA_ON] + t[TRACE_PBA_OFF],
                "pba_*",
            )
        )
    else:
        out.append(
            _eq("trace: no PBA toggles without masking", 0, t[TRACE_PBA_ON] + t[TRACE_PBA_OFF], "pba_*")
        )
    # interrupts QEMU handled: every one while masked; unmasked only without the KVM irqfd
    if workload == "burst":
        out.append(
            _within("trace: QEMU-handled interrupts", c["masks"], c["triggered"], t[TRACE_IRQ], TRACE_IRQ)
        )
        # a straggler may land after the unmask: handled by QEMU without a PBA enable
        if toggles:
            out.append(_within("trace: PBA enables", c["masks"], t[TRACE_IRQ], t[TRACE_PBA_ON], TRACE_PBA_ON))
    else:
        qemu_sees = c["triggered"] if (masked or not dev.kvm_route) else 0
        route = "KVM route" if dev.kvm_route else "no KVM route"
        out.append(_eq("trace: QEMU-handled interrupts", qemu_sees, t[TRACE_IRQ], f"{TRACE_IRQ} ({route})"))
        if masked and toggles:
            out.append(_eq("trace: PBA enables == triggers", c["triggered"], t[TRACE_PBA_ON], TRACE_PBA_ON))
        elif masked and dev.pba == "disabled":
            out.append(
                _eq(
                    "trace: PBA skips == triggers (x-pba-disable)",
                    c["triggered"],
                    t[TRACE_PBA_SKIP],
                    TRACE_PBA_SKIP,
                )
            )
    if irq_delta is not None:
        if workload == "burst":
            out.append(
                _within("L1: vfio-msix interrupts", c["masks"], c["triggered"], irq_delta, "/proc/interrupts")
            )
        else:
            out.append(
                _eq("L1: vfio-msix interrupts == triggers", c["triggered"], irq_delta, "/proc/interrupts")
            )
    if probes is not None:
        skipped = t[TRACE_FD_CACHE_HIT] + t[TRACE_TRIGGER_KEPT]
        ioctls = t[TRACE_USE] + (t[TRACE_RELEASE] if dev.kvm_route else 0) - skipped
        why = "do_use + release (KVM route)" if dev.kvm_route else "do_use (no KVM route)"
        if dev.fd_cache:
            why += f" - {t[TRACE_FD_CACHE_HIT]} fd-cache hits"
        if dev.mask_auto:
            why += f" - {t[TRACE_TRIGGER_KEPT]} kept triggers"
        out.append(_eq("probe: set_irqs_ioctl == trace", ioctls, probes.get("set_irqs_ioctl", 0), why))
        out.append(_eq("probe: set_vector_signal == trace", ioctls, probes.get("set_vector_signal", 0), why))
        out.append(
            _eq(
                "probe: pba_toggle == trace",
                t[TRACE_PBA_ON] + t[TRACE_PBA_OFF],
                probes.get("pba_toggle", 0),
                "pba_enable + pba_disable",
            )
        )
        kvm_injects = accel == "kvm" and dev.kvm_route and not masked
        out += _irq_path_checks(workload, kvm_injects, masked, c, t[TRACE_IRQ], irq_delta, probes)
        out += _kvm_ioctl_checks(accel, trace, set(traced or ()) | set(trace), probes)
    return out


def _mask_auto_checks(dev: DeviceConfig, masked: bool, auto: AutoTrace) -> list[Check]:
    """The switch of ``x-msix-mask-auto``: each vector detected once, then no toggle and no SET_IRQS."""
    detections, after, vectors = auto
    if not masked:
        return [_eq("trace: no mask detection without masking", 0, detections, TRACE_MASK_AUTO)]
    a = {k: int(after.get(k, 0)) for k in (TRACE_PBA_ON, TRACE_PBA_OFF, TRACE_USE, TRACE_RELEASE)}
    would_set = a[TRACE_USE] + (a[TRACE_RELEASE] if dev.kvm_route else 0)
    # `after` starts at the last detection (every vector switched by then); the enable that keeps
    # the PBA on follows the first one: in that window only when there is one detection and it is
    # in the measure phase (warm-up cycles can move it into the setup phase)
    keep = 1 if int(after.get(TRACE_MASK_AUTO, 0)) > 0 and detections == 1 else 0
    return [
        _eq("trace: each masked vector detected (x-msix-mask-auto)", vectors, detections, TRACE_MASK_AUTO),
        _eq(
            "trace: after detection, only the enable that keeps the PBA on",
            keep,
            a[TRACE_PBA_ON] + a[TRACE_PBA_OFF],
            "pba_enable + pba_disable from the detection on (measure phase)",
        ),
        _eq(
            "trace: after detection, every SET_IRQS kept",
            would_set,
            int(after.get(TRACE_TRIGGER_KEPT, 0)),
            f"{TRACE_TRIGGER_KEPT} == do_use" + (" + release (KVM route)" if dev.kvm_route else ""),
        ),
    ]


def _kvm_ioctl_checks(
    accel: str, trace: Mapping[str, int], traced: Collection[str], probes: Mapping[str, int]
) -> list[Check]:
    """Checks of the ``kvm_ioctls`` probe's per-ioctl counts (``kvm_ioctls.<op>`` keys), if given."""
    if not all(f"kvm_ioctls.{op}" in probes for op in KVM_IOCTL_OPS):
        return []
    n = {op: int(probes[f"kvm_ioctls.{op}"]) for op in KVM_IOCTL_OPS}
    out = []
    if accel == "tcg":
        out.append(
            _eq("probe: no KVM ioctls under TCG", 0, sum(n.values()), "KVM_SET_GSI_ROUTING/IRQFD/SIGNAL_MSI")
        )
    if TRACE_COMMIT_ROUTES in traced:
        out.append(
            _eq(
                "probe: kvm_ioctls gsi_routing == trace",
                int(trace.get(TRACE_COMMIT_ROUTES, 0)),
                n["gsi_routing"],
                f"{TRACE_COMMIT_ROUTES} (one KVM_SET_GSI_ROUTING each)",
            )
        )
    return out


def _irq_path_checks(
    workload: str,
    kvm_injects: bool,
    masked: bool,
    counters: Mapping[str, int],
    trace_irqs: int,
    irq_delta: int | None,
    probes: Mapping[str, int],
) -> list[Check]:
    """Checks of the ``irq_path`` parts present in ``probes`` (``irq_path.<event>`` keys)."""

    def have(event: str) -> bool:
        return f"irq_path.{event}" in probes

    def n(event: str) -> int:
        return int(probes[f"irq_path.{event}"])

    out = []
    if have("host_irq") and irq_delta is not None:
        out.append(
            _eq(
                "probe: irq_path host_irq == L1 vfio-msix interrupts",
                irq_delta,
                n("host_irq"),
                "/proc/interrupts",
            )
        )
    if have("host_irq") and have("eventfd_signal"):
        out.append(
            _eq(
                "probe: irq_path eventfd_signal == host_irq",
                n("host_irq"),
                n("eventfd_signal"),
                "one signal per vfio_msihandler",
            )
        )
    if have("qemu_irq"):
        out.append(_eq("probe: irq_path qemu_irq == trace", trace_irqs, n("qemu_irq"), TRACE_IRQ))
    if workload == "burst":
        return out  # coalesced triggers: no exact expectations below
    if have("msix_set_pending"):
        expected = counters["triggered"] if masked else 0
        out.append(
            _eq(
                "probe: irq_path msix_set_pending == masked interrupts",
                expected,
                n("msix_set_pending"),
                "pending bit set while masked",
            )
        )
        if have("qemu_irq") and have("msix_notify"):
            out.append(
                _eq(
                    "probe: irq_path msix_notify == qemu_irq + msix_set_pending",
                    n("qemu_irq") + n("msix_set_pending"),
                    n("msix_notify"),
                    "per interrupt, and per pending bit delivered at unmask",
                )
            )
    if have("kvm_msi"):
        expected = counters["triggered"] if kvm_injects else 0
        out.append(
            _eq(
                "probe: irq_path kvm_msi == KVM irqfd injections",
                expected,
                n("kvm_msi"),
                "kvm_msi_set_irq in vfio-msix handlers",
            )
        )
    return out
