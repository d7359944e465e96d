"""The data, defined once: table names, column dtypes, operations. numpy only.

Every layer imports this leaf module (with :mod:`vfiobench.buckets` for the histogram bucket
formula) instead of spelling names and columns out: the probes write these tables, the store
stores them, the analysis reads them, the run-set object names them.

Tables of a run (one Parquet file each; times are ``CLOCK_MONOTONIC`` nanoseconds, ``ts_ns`` the
entry time, ``dur_ns`` entry to return)::

    set_irqs_ioctl     ts_ns, dur_ns, pid, tid, fd, ret, index, start, count, flags, argsz
    set_vector_signal  ts_ns, dur_ns, tid, vector, fd, msix, ret
    pba_toggle         ts_ns, dur_ns, tid, mr, enabled, is_pba
    transaction_commit ts_ns, dur_ns, tid, depth
    irq_path           ts_ns, event, vector, dur_ns, tid, cpu, arg0, arg1
    kvm_ioctls         ts_ns, dur_ns, pid, tid, fd, ret, cmd, arg_ok, arg0, arg1, arg2, arg3
    pba_regions        mr, name, name_offset, is_pba      (beside pba_toggle: MemoryRegion names)
    workload           cycle, vector, triggers, trigger_ts_ns, delivered_ts_ns, latency_ns,
                       mask_rtt_ns, unmask_rtt_ns, pba_polls, pba_seen, delivered, unmask_ts_ns

A probe recorded in in-kernel histogram mode writes :data:`HIST_DTYPE` (``bucket, count, lo_ns,
hi_ns``) under its own name instead.

Event records (:data:`EVENT_DTYPES`) mirror the C structs of ``probes/bpf/events.bpf.h`` field by
field (sizes and offsets are checked against the compiled header by
``tests/probes/test_probes_static.py``); table rows (:data:`TABLE_DTYPES`) are what lands in
Parquet.
"""

from __future__ import annotations

from typing import Any

import numpy as np

# ---- table names -----------------------------------------------------------------------------------

SET_IRQS = "set_irqs_ioctl"
SET_VECTOR_SIGNAL = "set_vector_signal"
PBA_TOGGLE = "pba_toggle"
COMMIT = "transaction_commit"
IRQ_PATH = "irq_path"
KVM_IOCTLS = "kvm_ioctls"
PBA_REGIONS = "pba_regions"
WORKLOAD = "workload"

#: Probe tables timed per call, in call-nesting order (outer operations first within each thread).
PROBE_TABLES: tuple[str, ...] = (SET_IRQS, SET_VECTOR_SIGNAL, PBA_TOGGLE, COMMIT, KVM_IOCTLS)

#: ``irq_path`` event names by code (``VB_EV_*`` in ``events.bpf.h``); the timeline's names.
IRQ_PATH_EVENTS: tuple[str, ...] = (
    "host_irq",
    "eventfd_signal",
    "kvm_msi",
    "qemu_irq",
    "msix_set_pending",
    "msix_notify",
    "kvm_signal_msi",
)

#: Human-readable names of the probe tables (plots, verdicts).
TABLE_LABELS: dict[str, str] = {
    SET_IRQS: "SET_IRQS ioctl",
    SET_VECTOR_SIGNAL: "vfio_msi_set_vector_signal",
    PBA_TOGGLE: "PBA toggle (memory_region_set_enabled)",
    COMMIT: "memory transaction commit",
    KVM_IOCTLS: "KVM ioctls (GSI routing, irqfd, MSI)",
}

# ---- KVM ioctls ---------------------------------------------------------------------------------------

#: ``KVM_SET_GSI_ROUTING`` = ``_IOW(KVMIO, 0x6a, struct kvm_irq_routing)`` (``kvm_irqchip_commit_routes``).
KVM_SET_GSI_ROUTING = 0x4008AE6A
#: ``KVM_IRQFD`` = ``_IOW(KVMIO, 0x76, struct kvm_irqfd)`` (an irqfd assigned or, flag 1, deassigned).
KVM_IRQFD = 0x4020AE76
#: ``KVM_SIGNAL_MSI`` = ``_IOW(KVMIO, 0xa5, struct kvm_msi)`` (QEMU injecting an MSI itself).
KVM_SIGNAL_MSI = 0x4020AEA5
#: ``kvm_irqfd.flags`` bit of a deassign.
KVM_IRQFD_FLAG_DEASSIGN = 1

#: The ioctls of the ``kvm_ioctls`` probe: ``cmd`` -> (operation, ioctl name, what ``arg0..arg3`` hold:
#: the first four 32-bit words of the struct passed).
KVM_IOCTL_CMDS: dict[int, tuple[str, str, tuple[str, str, str, str]]] = {
    KVM_SET_GSI_ROUTING: ("gsi_routing", "KVM_SET_GSI_ROUTING", ("nr", "flags", "gsi0", "type0")),
    KVM_IRQFD: ("irqfd", "KVM_IRQFD", ("eventfd", "gsi", "flags", "resamplefd")),
    KVM_SIGNAL_MSI: ("signal_msi", "KVM_SIGNAL_MSI", ("address_lo", "address_hi", "data", "flags")),
}


def kvm_ioctl_fields(cmd: int) -> tuple[str, tuple[str, str, str, str]]:
    """A ``kvm_ioctls`` row's ioctl name and what its ``arg0..arg3`` hold, from its ``cmd``.

    Example:
        >>> kvm_ioctl_fields(KVM_IRQFD)
        ('KVM_IRQFD', ('eventfd', 'gsi', 'flags', 'resamplefd'))
        >>> kvm_ioctl_fields(0xAE80)
        ('KVM ioctl 0xae80', ('arg0', 'arg1', 'arg2', 'arg3'))
    """
    if cmd in KVM_IOCTL_CMDS:
        _, name, args = KVM_IOCTL_CMDS[cmd]
        return name, args
    return f"KVM ioctl {cmd:#x}", ("arg0", "arg1", "arg2", "arg3")


# ---- event records, as the kernel writes them (C structs in probes/bpf/events.bpf.h) ---------------

#: The fields every ioctl event starts with (``set_irqs_ioctl``, ``kvm_ioctls``), as written and as stored.
_IOCTL_EVENT_HEAD = [
    ("ts_ns", "<u8"),
    ("dur_ns", "<u8"),
    ("pid", "<u4"),
    ("tid", "<u4"),
    ("fd", "<i4"),
    ("ret", "<i4"),
]
_IOCTL_ROW_HEAD = [
    ("ts_ns", "<i8"),
    ("dur_ns", "<i8"),
    ("pid", "<i4"),
    ("tid", "<i4"),
    ("fd", "<i4"),
    ("ret", "<i4"),
]

#: The C struct each probe's ring buffer carries.
EVENT_STRUCTS: dict[str, str] = {
    SET_IRQS: "vb_set_irqs_event",
    SET_VECTOR_SIGNAL: "vb_set_vector_signal_event",
    PBA_TOGGLE: "vb_pba_toggle_event",
    COMMIT: "vb_transaction_commit_event",
    IRQ_PATH: "vb_irq_path_event",
    KVM_IOCTLS: "vb_kvm_ioctl_event",
}

EVENT_DTYPES: dict[str, np.dtype[Any]] = {
    SET_IRQS: np.dtype(
        [
            *_IOCTL_EVENT_HEAD,
            ("argsz", "<u4"),
            ("flags", "<u4"),
            ("index", "<u4"),
            ("start", "<u4"),
            ("count", "<u4"),
            ("hdr_ok", "<u4"),
        ]
    ),
    SET_VECTOR_SIGNAL: np.dtype(
        [
            ("ts_ns", "<u8"),
            ("dur_ns", "<u8"),
            ("tid", "<u4"),
            ("vector", "<i4"),
            ("fd", "<i4"),
            ("ret", "<i4"),
            ("msix", "<u4"),
            ("_pad", "<u4"),
        ]
    ),
    PBA_TOGGLE: np.dtype(
        [("ts_ns", "<u8"), ("dur_ns", "<u8"), ("mr", "<u8"), ("tid", "<u4"), ("enabled", "<u4")]
    ),
    COMMIT: np.dtype([("ts_ns", "<u8"), ("dur_ns", "<u8"), ("tid", "<u4"), ("depth", "<u4")]),
    IRQ_PATH: np.dtype(
        [
            ("ts_ns", "<u8"),
            ("dur_ns", "<i8"),  # u64 in C: (u64)-1 for point events
            ("arg0", "<u8"),
            ("arg1", "<u8"),
            ("tid", "<u4"),
            ("cpu", "<u4"),
            ("vector", "<i4"),
            ("event", "<u4"),
        ]
    ),
    KVM_IOCTLS: np.dtype(
        [
            *_IOCTL_EVENT_HEAD,
            ("cmd", "<u4"),
            ("arg_ok", "<u4"),
            ("arg0", "<u4"),
            ("arg1", "<u4"),
            ("arg2", "<u4"),
            ("arg3", "<u4"),
        ]
    ),
}

# ---- table rows, as stored ---------------------------------------------------------------------------

TABLE_DTYPES: dict[str, np.dtype[Any]] = {
    SET_IRQS: np.dtype(
        [
            *_IOCTL_ROW_HEAD,
            ("index", "<u4"),
            ("start", "<u4"),
            ("count", "<u4"),
            ("flags", "<u4"),
            ("argsz", "<u4"),
        ]
    ),
    SET_VECTOR_SIGNAL: np.dtype(
        [
            ("ts_ns", "<i8"),
            ("dur_ns", "<i8"),
            ("tid", "<i4"),
            ("vector", "<i4"),
            ("fd", "<i4"),
            ("msix", "?"),
            ("ret", "<i4"),
        ]
    ),
    PBA_TOGGLE: np.dtype(
        [
            ("ts_ns", "<i8"),
            ("dur_ns", "<i8"),
            ("tid", "<i4"),
            ("mr", "<u8"),
            ("enabled", "?"),
            ("is_pba", "?"),
        ]
    ),
    COMMIT: np.dtype([("ts_ns", "<i8"), ("dur_ns", "<i8"), ("tid", "<i4"), ("depth", "<i4")]),
    IRQ_PATH: np.dtype(
        [
            ("ts_ns", "<i8"),
            ("event", f"<U{max(len(e) for e in IRQ_PATH_EVENTS)}"),
            ("vector", "<i4"),
            ("dur_ns", "<i8"),
            ("tid", "<i8"),
            ("cpu", "<i4"),
            ("arg0", "<u8"),
            ("arg1", "<u8"),
        ]
    ),
    KVM_IOCTLS: np.dtype(
        [
            *_IOCTL_ROW_HEAD,
            ("cmd", "<u4"),
            ("arg_ok", "?"),
            ("arg0", "<u4"),
            ("arg1", "<u4"),
            ("arg2", "<u4"),
            ("arg3", "<u4"),
        ]
    ),
    PBA_REGIONS: np.dtype([("mr", "<u8"), ("name", object), ("name_offset", "<i8"), ("is_pba", "?")]),
    #: One row per interrupt (burst: per mask window), written by the lab's guest workload.
    WORKLOAD: np.dtype(
        [
            ("cycle", "<i8"),
            ("vector", "<i4"),
            ("triggers", "<i4"),
            ("trigger_ts_ns", "<i8"),
            ("delivered_ts_ns", "<i8"),
            ("latency_ns", "<i8"),
            ("mask_rtt_ns", "<i8"),
            ("unmask_rtt_ns", "<i8"),
            ("pba_polls", "<i4"),
            ("pba_seen", "?"),
            ("delivered", "?"),
            ("unmask_ts_ns", "<i8"),  # when the guest's unmask write went out (-1 when not masked)
        ]
    ),
}

#: A probe's table in histogram mode (non-empty buckets of :class:`vfiobench.buckets.LogLinearBuckets`).
HIST_DTYPE = np.dtype([("bucket", "<i8"), ("count", "<u8"), ("lo_ns", "<i8"), ("hi_ns", "<i8")])

# ---- operations --------------------------------------------------------------------------------------

#: Operations of the per-interrupt accounting, in stacking order, with the table each is read from
#: (``region_toggle``: the ``pba_toggle`` calls on regions other than the PBA; ``gsi_routing``,
#: ``irqfd``, ``signal_msi``: the ``kvm_ioctls`` rows of each ``cmd``, :data:`KVM_IOCTL_CMDS`).
OPERATIONS: tuple[tuple[str, str], ...] = (
    ("set_irqs", SET_IRQS),
    ("set_vector_signal", SET_VECTOR_SIGNAL),
    ("pba_toggle", PBA_TOGGLE),
    ("region_toggle", PBA_TOGGLE),
    ("commit", COMMIT),
    ("gsi_routing", KVM_IOCTLS),
    ("irqfd", KVM_IOCTLS),
    ("signal_msi", KVM_IOCTLS),
)

#: Operations the guest's mask/unmask or a masked interrupt runs directly: the threads that run
#: them serve the interrupt, and only calls on those threads count as its path (the rest, e.g.
#: commits QEMU's RCU thread runs later, are background work, reported apart). The KVM ioctls are
#: issued by the unmask (the route commit), the bypass switch (irqfd) and QEMU's own MSI delivery.
PATH_OPERATIONS: tuple[str, ...] = (
    "set_irqs",
    "set_vector_signal",
    "pba_toggle",
    "gsi_routing",
    "irqfd",
    "signal_msi",
)

#: Count column stem per operation (``<stem>_per_irq``).
OPERATION_COUNT_NAMES: dict[str, str] = {
    "set_irqs": "set_irqs",
    "set_vector_signal": "set_vector_signal",
    "pba_toggle": "pba_toggles",
    "region_toggle": "region_toggles",
    "commit": "commits",
    "gsi_routing": "gsi_routing",
    "irqfd": "irqfd",
    "signal_msi": "signal_msi",
}

#: Display name per operation.
OPERATION_LABELS: dict[str, str] = {
    "set_irqs": "SET_IRQS ioctl",
    "set_vector_signal": "vfio_msi_set_vector_signal",
    "pba_toggle": "PBA toggle",
    "region_toggle": "other region toggles",
    "commit": "memory transaction commit",
    "gsi_routing": "KVM_SET_GSI_ROUTING",
    "irqfd": "KVM_IRQFD",
    "signal_msi": "KVM_SIGNAL_MSI",
}

#: Names the run-set object's ``latency``/``histogram``/``cdf`` accept, and the table each reads.
OPERATION_TABLES: dict[str, str] = {
    "interrupt": WORKLOAD,
    "set_irqs": SET_IRQS,
    SET_IRQS: SET_IRQS,
    SET_VECTOR_SIGNAL: SET_VECTOR_SIGNAL,
    PBA_TOGGLE: PBA_TOGGLE,
    "commit": COMMIT,
    COMMIT: COMMIT,
    KVM_IOCTLS: KVM_IOCTLS,
}

#: run.json ``workload.params`` keys tried, in order, for the delivered-interrupt count when a run
#: has no workload table.
INTERRUPT_COUNT_PARAMS: tuple[str, ...] = ("delivered", "interrupts", "cycles")
