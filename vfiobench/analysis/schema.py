"""Names of the run-store tables the analysis reads, and the columns it relies on.

Probe tables hold one row per call (times are ``CLOCK_MONOTONIC`` ns; ``ts_ns`` is the entry time,
``dur_ns`` entry to return)::

    set_irqs_ioctl     ts_ns, dur_ns, pid, tid, fd, ret, index, start, count, flags
    set_vector_signal  ts_ns, dur_ns, tid, vector, fd, msix, ret
    pba_toggle         ts_ns, dur_ns, tid, mr, enabled, is_pba
    transaction_commit ts_ns, dur_ns, tid, depth

A probe recorded in in-kernel histogram mode writes ``bucket``, ``count`` instead (no ``ts_ns``).

The workload table holds one row per interrupt cycle::

    workload  cycle, vector, start_ts_ns (optional), trigger_ts_ns, delivered_ts_ns, latency_ns,
              cycle_ns (optional), mask_rtt_ns, unmask_rtt_ns, delivered (bool)
"""

from __future__ import annotations

SET_IRQS = "set_irqs_ioctl"
SET_VECTOR_SIGNAL = "set_vector_signal"
PBA_TOGGLE = "pba_toggle"
COMMIT = "transaction_commit"
WORKLOAD = "workload"

#: Probe tables in call-nesting order (outer operations first within each thread).
PROBE_TABLES: tuple[str, ...] = (SET_IRQS, SET_VECTOR_SIGNAL, PBA_TOGGLE, COMMIT)

#: Human-readable operation names (plots, verdicts).
OPERATION_LABELS: dict[str, str] = {
    SET_IRQS: "SET_IRQS ioctl",
    SET_VECTOR_SIGNAL: "vfio_msi_set_vector_signal",
    PBA_TOGGLE: "PBA toggle (memory_region_set_enabled)",
    COMMIT: "memory transaction commit",
}

#: run.json ``workload.params`` keys tried, in order, for the delivered-interrupt count when a run
#: has no workload table.
INTERRUPT_COUNT_PARAMS: tuple[str, ...] = ("delivered", "interrupts", "cycles")
