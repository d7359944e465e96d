"""Trigger expressions of the flight recorder (``vfiobench record --trigger``), and its size/time options.

Trigger syntax (one ``--trigger``; several are alternatives, any one fires)::

    PROBE.FIELD OP VALUE [and PROBE.FIELD OP VALUE ...]     (every clause on the same probe)

``PROBE`` is a probe name or an unambiguous prefix (``set_irqs`` for ``set_irqs_ioctl``); ``FIELD``
a column of its table, ``dur`` and ``ts`` standing for ``dur_ns`` and ``ts_ns``; ``OP`` one of
``> >= < <= == !=``; ``VALUE`` a number, with a unit (``ns``, ``us``/``µs``, ``ms``, ``s``) on
``*_ns`` fields, ``true``/``false`` on flags, a word on ``irq_path.event``. Examples:
``pba_toggle.dur > 5ms``, ``set_irqs_ioctl.dur >= 200us and set_irqs_ioctl.ret != 0``,
``pba_toggle.dur > 1ms and pba_toggle.is_pba == true``.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfiobench import schema
from vfiobench.errors import VfioBenchError

SECOND = 1_000_000_000
_UNITS_NS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": SECOND}
_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
               "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}  # fmt: skip
_OPS: dict[str, Callable[[Any, Any], Any]] = {
    ">=": operator.ge,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    "<": operator.lt,
}
_CLAUSE = re.compile(r"\s*([A-Za-z_]\w*)\.([A-Za-z_]\w*)\s*(>=|<=|==|!=|>|<)\s*(\S+(?:\s+[A-Za-zµ]+)?)\s*$")
_QUANTITY = re.compile(r"([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)\s*([a-zµ]*)", re.IGNORECASE)


def parse_duration(text: str, what: str = "duration") -> int:
    """``"2s"``, ``"500ms"``, ``"200us"``, ``"1.5"`` (seconds) → nanoseconds.

    Raises:
        VfioBenchError: not a non-negative number with one of the units ns, us, µs, ms, s.
    """
    m = _QUANTITY.fullmatch(text.strip())
    unit = m.group(2).lower() if m else ""
    if m is None or (unit and unit not in _UNITS_NS):
        raise VfioBenchError(
            f"{what} {text!r} is not a duration", "write a number with a unit: 2s, 500ms, 200us, 800ns"
        )
    value = float(m.group(1)) * _UNITS_NS[unit or "s"]
    if value < 0 or not math.isfinite(value):
        raise VfioBenchError(f"{what} {text!r} must not be negative")
    return round(value)


def parse_size(text: str, what: str = "size") -> int:
    """``"128M"``, ``"1G"``, ``"65536"`` → bytes (K, M, G are powers of 1024).

    Raises:
        VfioBenchError: not a positive number with an optional K, M or G suffix.
    """
    m = _QUANTITY.fullmatch(text.strip())
    unit = m.group(2).lower() if m else ""
    if m is None or unit not in _SIZE_UNITS or float(m.group(1)) <= 0:
        raise VfioBenchError(f"{what} {text!r} is not a size", "write a positive number of bytes: 64M, 1G")
    return round(float(m.group(1)) * _SIZE_UNITS[unit])


# ---- triggers ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Clause:
    """One comparison ``column OP value`` on a probe's table rows."""

    column: str
    op: str
    value: Any

    def mask(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Which rows satisfy the clause."""
        return np.asarray(_OPS[self.op](rows[self.column], self.value), dtype=bool)


@dataclass(frozen=True)
class Trigger:
    """A parsed ``--trigger`` expression: clauses, all on one probe, all of which must hold."""

    text: str
    probe: str
    clauses: tuple[Clause, ...]

    def mask(self, rows: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        """Which of the probe's rows match every clause."""
        out = np.ones(rows.size, dtype=bool)
        for clause in self.clauses:
            out &= clause.mask(rows)
        return out


def _probe_named(name: str, recorded: Sequence[str]) -> str:
    if name in schema.TABLE_DTYPES and name in recorded:
        return name
    matches = [p for p in recorded if p.startswith(name)]
    if len(matches) == 1:
        return matches[0]
    known = ", ".join(recorded)
    if not matches:
        hint = (
            f"record it with --probe {name}"
            if name in schema.TABLE_DTYPES
            else f"name one of the recorded probes: {known}"
        )
        raise VfioBenchError(f"trigger probe {name!r} is not among the recorded probes ({known})", hint)
    raise VfioBenchError(f"trigger probe {name!r} is ambiguous: {', '.join(matches)}", "write it out")


def _column_named(probe: str, name: str, dtype: np.dtype[Any]) -> str:
    columns = dtype.names or ()
    for candidate in (name, f"{name}_ns"):
        if candidate in columns:
            return candidate
    raise VfioBenchError(
        f"trigger field {probe}.{name}: {probe} has no such column",
        f"use one of {', '.join(c.removesuffix('_ns') for c in columns)}",
    )


def _value_for(probe: str, column: str, kind: str, raw: str) -> Any:
    where = f"{probe}.{column}"
    if kind == "U":
        word = raw.strip("'\"")
        if column == "event" and word not in schema.IRQ_PATH_EVENTS:
            raise VfioBenchError(
                f"trigger value {raw!r} for {where} is not an event",
                f"use one of {', '.join(schema.IRQ_PATH_EVENTS)}",
            )
        return word
    if kind == "b":
        if raw.lower() in ("true", "1"):
            return True
        if raw.lower() in ("false", "0"):
            return False
        raise VfioBenchError(f"trigger value {raw!r} for {where} is not a flag", "write true or false")
    if column.endswith("_ns"):
        return parse_duration(
            raw if re.search(r"[a-zµ]$", raw, re.IGNORECASE) else f"{raw}ns", f"{where} value"
        )
    try:
        return int(raw, 0)
    except ValueError:
        try:
            return float(raw)
        except ValueError:
            raise VfioBenchError(f"trigger value {raw!r} for {where} is not a number") from None


def parse_trigger(text: str, recorded: Sequence[str]) -> Trigger:
    """Parse a ``--trigger`` expression (syntax in the module docstring) against the recorded probes.

    Args:
        text: e.g. ``"pba_toggle.dur > 5ms"``.
        recorded: the probes being recorded.

    Raises:
        VfioBenchError: the expression is malformed, names a probe not recorded, a column its table
            lacks, or a value of the wrong kind; the message says which part.
    """
    clauses: list[Clause] = []
    probe = ""
    for part in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        m = _CLAUSE.match(part)
        if m is None:
            raise VfioBenchError(
                f"trigger {text!r}: cannot read {part.strip()!r}",
                "write PROBE.FIELD OP VALUE, e.g. 'pba_toggle.dur > 5ms' (OP: > >= < <= == !=; "
                "join clauses with 'and')",
            )
        name = _probe_named(m.group(1), recorded)
        if probe and name != probe:
            raise VfioBenchError(
                f"trigger {text!r} names both {probe} and {name}",
                "one trigger matches one probe's events; give another --trigger for the other probe",
            )
        probe = name
        dtype = schema.TABLE_DTYPES[probe]
        column = _column_named(probe, m.group(2), dtype)
        kind = dtype[column].kind
        clauses.append(Clause(column, m.group(3), _value_for(probe, column, kind, m.group(4))))
    return Trigger(text.strip(), probe, tuple(clauses))


def describe_triggers(triggers: Iterable[Trigger]) -> str:
    """The triggers as one line (``a | b``)."""
    return " | ".join(t.text for t in triggers)
