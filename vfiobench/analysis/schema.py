"""Transitional: the table names now live in :mod:`vfiobench.schema` (import from there)."""

from vfiobench.schema import (
    COMMIT,
    INTERRUPT_COUNT_PARAMS,
    PBA_TOGGLE,
    PROBE_TABLES,
    SET_IRQS,
    SET_VECTOR_SIGNAL,
    WORKLOAD,
)
from vfiobench.schema import TABLE_LABELS as OPERATION_LABELS

__all__ = [
    "COMMIT",
    "INTERRUPT_COUNT_PARAMS",
    "OPERATION_LABELS",
    "PBA_TOGGLE",
    "PROBE_TABLES",
    "SET_IRQS",
    "SET_VECTOR_SIGNAL",
    "WORKLOAD",
]
