"""The probe catalog: what each probe attaches to, its C event struct as a numpy dtype, its table.

Probes (one ``*.bpf.c`` file each under ``vfiobench/probes/bpf/``, event structs in ``events.bpf.h``):

============================  ===========================================  ==========================
probe                         attaches to                                  table columns
============================  ===========================================  ==========================
``set_irqs_ioctl``            tracepoints ``syscalls:sys_{enter,exit}_ioctl``  ts_ns, dur_ns, pid, tid,
                              with cmd ``VFIO_DEVICE_SET_IRQS`` (0x3b6e)   fd, ret, index, start,
                                                                           count, flags, argsz
``set_vector_signal``         kprobe+kretprobe ``vfio_msi_set_vector_signal``  ts_ns, dur_ns, tid,
                                                                           vector, fd, msix, ret
``pba_toggle``                uprobe+uretprobe ``memory_region_set_enabled``  ts_ns, dur_ns, tid, mr,
                              in the QEMU binary                           enabled, is_pba
``transaction_commit``        uprobe+uretprobe                             ts_ns, dur_ns, tid, depth
                              ``memory_region_transaction_commit``
``irq_path``                  several parts (:data:`IRQ_PATH_PARTS`): irq  ts_ns, event, vector,
                              tracepoints, kprobe ``eventfd_signal``,      dur_ns, tid, cpu, arg0,
                              ``kvm:kvm_msi_set_irq``, QEMU uprobes        arg1
``kvm_ioctls``                tracepoints ``syscalls:sys_{enter,exit}_ioctl``  ts_ns, dur_ns, pid, tid,
                              with cmd ``KVM_SET_GSI_ROUTING``,            fd, ret, cmd, arg_ok,
                              ``KVM_IRQFD`` or ``KVM_SIGNAL_MSI``          arg0, arg1, arg2, arg3
============================  ===========================================  ==========================

``kvm_ioctls`` keeps the first four 32-bit words of each ioctl's argument struct (what they are per
``cmd``: :data:`vfiobench.schema.KVM_IOCTL_CMDS`); in histogram mode its three ioctls share one
histogram.

``irq_path`` is one ring of events of several kinds (``event``: :data:`IRQ_PATH_EVENTS`, the table
:mod:`vfiobench.analysis.timeline` reads; ``kvm_signal_msi``, QEMU delivering an MSI through KVM
itself, is not a milestone there). Each part attaches on its own: a part whose target this
machine lacks (kprobes on a kernel without them, QEMU's static ``vfio_msi_interrupt`` in a stripped
binary) is skipped with the reason, which ``run.json`` keeps in the probe's ``target``; the probe
fails only when no part can attach. ``dur_ns`` is -1 for point events.

A run with ``pba_toggle`` also holds ``pba_regions`` (``mr``, ``name``, ``name_offset``, ``is_pba``):
every region seen and how it was named (:mod:`vfiobench.probes.regions`).

Times are ``CLOCK_MONOTONIC`` nanoseconds from ``bpf_ktime_get_ns``. In histogram mode a probe's
table (same name) has the columns ``bucket, count, lo_ns, hi_ns`` instead (see :mod:`.histogram`).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from vfiobench.schema import (
    EVENT_DTYPES,
    EVENT_STRUCTS,
    IRQ_PATH_EVENTS,
    KVM_IOCTL_CMDS,
    TABLE_DTYPES,
)

#: ``VFIO_DEVICE_SET_IRQS`` = ``_IO(';', 100 + 10)``.
VFIO_DEVICE_SET_IRQS = 0x3B6E

ProbeKind = Literal["tracepoint", "kprobe", "uprobe", "composite"]
PartKind = Literal["tracepoint", "kprobe", "uprobe"]

#: vfio-pci names its MSI-X handlers "vfio-msix[N](BDF)" (drivers/vfio/pci/vfio_pci_intrs.c).
DEFAULT_IRQ_NAME_PREFIX = "vfio-msix"


@dataclass(frozen=True)
class ProbePart:
    """One attachable part of a composite probe (``irq_path``).

    Attributes:
        event: the event it records (one of :data:`IRQ_PATH_EVENTS`).
        kind: ``tracepoint``, ``kprobe`` or ``uprobe``.
        targets: tracepoints (``category:event``) attached to ``entry_fn`` then ``return_fn``; or
            the QEMU function; or the kernel function, with alternatives after it (the first the
            running kernel has is probed).
        entry_fn: BPF function at the entry (the first tracepoint).
        return_fn: BPF function at the return (the second tracepoint); ``None``: entry only.
        raw_fns: tracepoint parts: BPF functions attached as raw tracepoints instead, one per target
            (``None``: none), where the kernel has raw tracepoints (``resolve.raw_tracepoints``).
        inlined_in: functions whose inlined copies of ``targets[0]`` also get ``inline_fn``.
        inline_fn: BPF function placed on each inlined copy.
        needs: another part whose events this one relies on (skipped with it).
        also: other events the part records.
    """

    event: str
    kind: PartKind
    targets: tuple[str, ...]
    entry_fn: str
    return_fn: str | None = None
    raw_fns: tuple[str | None, ...] = ()
    inlined_in: tuple[str, ...] = ()
    inline_fn: str | None = None
    needs: str | None = None
    also: tuple[str, ...] = ()

    @property
    def symbol(self) -> str:
        """The probed function (kprobes, uprobes)."""
        return self.targets[0]

    def describe(self) -> str:
        """One line: where the part attaches."""
        if self.kind == "tracepoint":
            return "tracepoint:" + "+".join(self.targets)
        how = f"{self.kind}+{self.kind.replace('probe', 'retprobe')}" if self.return_fn else self.kind
        return f"{how}:{self.symbol}"


#: The parts of ``irq_path``, in path order.
IRQ_PATH_PARTS: tuple[ProbePart, ...] = (
    ProbePart(
        "host_irq",
        "tracepoint",
        ("irq:irq_handler_entry", "irq:irq_handler_exit"),
        "vb_irq_entry",
        "vb_irq_exit",
        raw_fns=("vb_irq_entry_raw", "vb_irq_exit_raw"),
    ),
    # eventfd_signal is an inline wrapper of eventfd_signal_mask since Linux 6.8
    ProbePart(
        "eventfd_signal",
        "kprobe",
        ("eventfd_signal", "eventfd_signal_mask"),
        "vb_eventfd_signal",
        needs="host_irq",
    ),
    ProbePart(
        "kvm_msi",
        "tracepoint",
        ("kvm:kvm_msi_set_irq",),
        "vb_kvm_msi",
        raw_fns=("vb_kvm_msi_raw",),
        also=("kvm_signal_msi",),
    ),
    ProbePart("qemu_irq", "uprobe", ("vfio_msi_interrupt",), "vb_qemu_irq_enter", "vb_qemu_irq_return"),
    ProbePart(
        "msix_set_pending",
        "uprobe",
        ("msix_set_pending",),
        "vb_pending_enter",
        "vb_pending_return",
        inlined_in=("msix_notify",),
        inline_fn="vb_pending_inlined",
    ),
    ProbePart("msix_notify", "uprobe", ("msix_notify",), "vb_notify_enter", "vb_notify_return"),
)


@dataclass(frozen=True)
class ProbeSpec:
    """One probe of the catalog.

    Attributes:
        name: probe and table name.
        probe_id: index into the BPF program's per-CPU ``lost``/``hist`` arrays (``VB_*`` in C).
        kind: ``tracepoint``, ``kprobe`` or ``uprobe``.
        source: the ``*.bpf.c`` file under ``vfiobench/probes/bpf/``.
        symbol: the kernel or QEMU function probed (``None`` for tracepoints).
        entry_fn: BPF function attached at entry (``None`` for ``TRACEPOINT_PROBE``).
        return_fn: BPF function attached at return.
        target: a one-line description stored in ``run.json``.
        parts: the parts of a ``composite`` probe.
    """

    name: str
    probe_id: int
    kind: ProbeKind
    source: str
    symbol: str | None
    entry_fn: str | None
    return_fn: str | None
    target: str
    parts: tuple[ProbePart, ...] = ()

    @property
    def struct(self) -> str:
        """The C event struct (in ``events.bpf.h``) that :attr:`dtype` mirrors."""
        return EVENT_STRUCTS[self.name]

    @property
    def dtype(self) -> np.dtype[Any]:
        """The event record as the kernel writes it."""
        return EVENT_DTYPES[self.name]

    @property
    def table_dtype(self) -> np.dtype[Any]:
        """The table's rows as stored (``is_pba`` and ``irq_path``'s event names added in user space)."""
        return TABLE_DTYPES[self.name]

    @property
    def columns(self) -> tuple[str, ...]:
        """The table's columns, in order."""
        return tuple(self.table_dtype.names or ())

    @property
    def define(self) -> str:
        """The ``-D`` flag that includes this probe in the program."""
        return f"VB_WITH_{self.name.upper()}"

    @property
    def ring(self) -> str:
        """Name of this probe's ring buffer map."""
        return f"{self.name}_events"


PROBES: dict[str, ProbeSpec] = {
    p.name: p
    for p in (
        ProbeSpec(
            "set_irqs_ioctl",
            0,
            "tracepoint",
            "set_irqs_ioctl.bpf.c",
            None,
            "vb_ioctl_enter",
            "vb_ioctl_exit",
            f"tracepoint:syscalls:sys_enter_ioctl+sys_exit_ioctl cmd={VFIO_DEVICE_SET_IRQS:#x}",
        ),
        ProbeSpec(
            "set_vector_signal",
            1,
            "kprobe",
            "set_vector_signal.bpf.c",
            "vfio_msi_set_vector_signal",
            "vb_svs_enter",
            "vb_svs_return",
            "kprobe+kretprobe:vfio_msi_set_vector_signal",
        ),
        ProbeSpec(
            "pba_toggle",
            2,
            "uprobe",
            "pba_toggle.bpf.c",
            "memory_region_set_enabled",
            "vb_pba_enter",
            "vb_pba_return",
            "uprobe+uretprobe:memory_region_set_enabled",
        ),
        ProbeSpec(
            "transaction_commit",
            3,
            "uprobe",
            "transaction_commit.bpf.c",
            "memory_region_transaction_commit",
            "vb_commit_enter",
            "vb_commit_return",
            "uprobe+uretprobe:memory_region_transaction_commit",
        ),
        ProbeSpec(
            "irq_path",
            4,
            "composite",
            "irq_path.bpf.c",
            None,
            None,
            None,
            "; ".join(f"{p.event}={p.describe()}" for p in IRQ_PATH_PARTS),
            IRQ_PATH_PARTS,
        ),
        ProbeSpec(
            "kvm_ioctls",
            5,
            "tracepoint",
            "kvm_ioctls.bpf.c",
            None,
            "vb_kvm_ioctl_enter",
            "vb_kvm_ioctl_exit",
            "tracepoint:syscalls:sys_enter_ioctl+sys_exit_ioctl cmd="
            + ",".join(f"{cmd:#x}" for cmd in KVM_IOCTL_CMDS),
        ),
    )
}

#: Probes attached when none are named: everything this kind of machine can usually run.
DEFAULT_PROBES: tuple[str, ...] = ("set_irqs_ioctl", "pba_toggle", "transaction_commit")


def attached_parts(target: str) -> list[str] | None:
    """The parts a composite probe's ``target`` line (as ``run.json`` stores it) says fully attached.

    A part that was skipped, or attached without some of its sites (``msix_set_pending`` when the
    copies inlined in ``msix_notify`` could not be searched or none was found), is left out.

    Returns:
        The parts' event names; ``None`` when ``target`` is not a composite probe's.

    Example:
        >>> attached_parts("host_irq=tracepoint:irq:x+irq:y; eventfd_signal=skipped (no kprobes)")
        ['host_irq']
    """
    out, named = [], False
    for segment in target.split("; "):
        event, sep, where = segment.partition("=")
        if not sep or event not in IRQ_PATH_EVENTS:
            continue
        named = True
        partial = "not searched" in where or "no copy inlined" in where
        if not where.startswith("skipped (") and not partial:
            out += [event, *next((p.also for p in IRQ_PATH_PARTS if p.event == event), ())]
    return out if named else None


MAIN_SOURCE = "vfiobench.bpf.c"
HEADERS = ("vfiobench.bpf.h", "events.bpf.h", "buckets.bpf.h", "irq_name.bpf.h")


def bpf_dir() -> Path:
    """The directory holding the ``*.bpf.c`` sources (a real directory: BCC reads files)."""
    return Path(str(resources.files("vfiobench.probes") / "bpf"))


def get_probe(name: str) -> ProbeSpec:
    """The catalog entry ``name``.

    Raises:
        ProbeError: unknown probe (the message lists the known ones).
    """
    from vfiobench.errors import ProbeError

    try:
        return PROBES[name]
    except KeyError:
        raise ProbeError(f"unknown probe {name!r}", f"choose from {', '.join(PROBES)}") from None
