"""Event rates over time (SET_IRQS ioctls/s, PBA toggles/s, ...).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"run_id": "r", "variant": "stock", "ts_ns": [0, 100_000_000, 1_500_000_000]})
    >>> df_rate_timeline(df, bin_s=1.0)[["t_s", "events", "rate_per_s"]].to_numpy().tolist()
    [[0.0, 2.0, 2.0], [1.0, 1.0, 1.0]]
    >>> end = 1_750_000_000  # observed until 1.75 s: the last bin covers 0.75 s
    >>> df_rate_timeline(df, t_end_ns=end)[["span_s", "rate_per_s"]].to_numpy().tolist()
    [[1.0, 2.0], [0.75, 1.3333333333333333]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench import schema
from vfiobench.analysis._frames import By, by_list, group_codes, require_columns, with_keys
from vfiobench.errors import AnalysisError
from vfiobench.store import RunSet


def df_rate_timeline(
    df: pd.DataFrame,
    bin_s: float = 1.0,
    by: By | None = ("variant", "run_id"),
    *,
    ts: str = "ts_ns",
    t0_ns: int | Mapping[str, int] | None = None,
    t_end_ns: int | Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Events per time bin and per second, per group.

    Args:
        df: one row per event with a timestamp column ``ts`` (ns).
        bin_s: bin width in seconds.
        by: grouping columns (each group gets its own timeline).
        ts: the timestamp column.
        t0_ns: time origin: ``None`` uses each group's first event; an int is one origin for all;
            a mapping ``run_id -> ns`` gives each run its own origin (needs a ``run_id`` column), so
            several tables of one run share one time axis.
        t_end_ns: end of the observation (same forms as ``t0_ns``; ``None``: the group's last
            event). Bins run up to it, so a probe that fell silent shows zeros, and the last bin's
            rate is taken over the part of it that was observed, not the whole bin (a tail
            shorter than half a bin is merged into the bin before it rather than shown as a spike).

    Returns:
        ``[*by, t_s, span_s, events, rate_per_s]``: ``t_s`` the bin start in seconds since the
        origin (float64), ``span_s`` the observed part of the bin (``bin_s`` except a last partial
        or merged bin), ``events`` the count in the bin (float64, so empty bins read 0.0), ``rate_per_s`` =
        ``events / span_s``. Every bin from the origin's to the end's is present, empty ones
        included.
    """
    if not bin_s > 0:
        raise AnalysisError(f"bin_s must be positive, not {bin_s}")
    keys_cols = by_list(by)
    require_columns(df, [*keys_cols, ts], "event table")
    codes, keys = group_codes(df, keys_cols)
    t = df[ts].to_numpy(dtype=np.int64)
    n_groups = len(keys)
    if t0_ns is None:
        origin_g = np.full(n_groups, np.iinfo(np.int64).max, dtype=np.int64)
        np.minimum.at(origin_g, codes, t)
        origin = origin_g[codes] if t.size else t
    elif isinstance(t0_ns, Mapping):
        require_columns(df, ["run_id"], "event table")
        run_ids = df["run_id"].to_numpy()
        missing = sorted(set(run_ids) - set(t0_ns))
        if missing:
            raise AnalysisError(f"t0_ns has no origin for run(s) {', '.join(map(str, missing))}")
        origin = np.array([t0_ns[r] for r in run_ids], dtype=np.int64)
    else:
        origin = np.full(t.size, int(t0_ns), dtype=np.int64)
    ends: npt.NDArray[np.float64] | None = None
    if isinstance(t_end_ns, Mapping):
        require_columns(df, ["run_id"], "event table")
        run_ids = df["run_id"].to_numpy()
        missing = sorted(set(run_ids) - set(t_end_ns))
        if missing:
            raise AnalysisError(f"t_end_ns has no end for run(s) {', '.join(map(str, missing))}")
        ends = np.array([t_end_ns[r] for r in run_ids], dtype=np.float64)
    elif t_end_ns is not None:
        ends = np.full(t.size, float(t_end_ns))
    bin_ns = bin_s * 1e9
    bins = np.floor((t - origin) / bin_ns).astype(np.int64)
    if bins.size and bins.min() < 0:
        raise AnalysisError("an event precedes its time origin t0_ns", "pass an earlier t0_ns")
    parts: list[pd.DataFrame] = []
    for g in range(n_groups):
        rows = np.flatnonzero(codes == g)
        if rows.size == 0:
            continue
        b = bins[rows]
        size = int(b.max()) + 1
        observed_s = np.inf
        if ends is not None:
            observed_s = (ends[rows[0]] - origin[rows[0]]) / 1e9
            size = max(size, int(np.ceil(observed_s / bin_s)))
        counts = np.bincount(b, minlength=size).astype(np.float64)
        t_s = np.arange(size) * float(bin_s)
        span = np.clip(observed_s - t_s, 0.0, float(bin_s))
        span[span <= 0] = bin_s  # events past the given end: count them over a whole bin
        if size > 1 and span[-1] < bin_s / 2:  # a short tail would give a spike: merge it
            counts[-2] += counts[-1]
            span[-2] += span[-1]
            counts, span, t_s = counts[:-1], span[:-1], t_s[:-1]
            size -= 1
        parts.append(
            with_keys(
                keys,
                np.full(size, g, dtype=np.int64),
                {"t_s": t_s, "span_s": span, "events": counts, "rate_per_s": counts / span},
            )
        )
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in keys_cols}
            | {c: pd.Series(dtype=np.float64) for c in ("t_s", "span_s", "events", "rate_per_s")}
        )
    return pd.concat(parts, ignore_index=True)


def run_bounds(
    runset: RunSet, tables: Sequence[str] = (*schema.PROBE_TABLES, schema.WORKLOAD)
) -> tuple[dict[str, int], dict[str, int]]:
    """Per run, the earliest and latest timestamps (ns) over the given tables: one time axis per run.

    Starts: ``ts_ns`` of probe tables, ``start_ts_ns``/``trigger_ts_ns`` of the workload table.
    Ends: ``ts_ns + dur_ns`` of probe tables, the workload's latest ``delivered_ts_ns``,
    ``start_ts_ns + cycle_ns`` or ``trigger_ts_ns``. Runs with no timestamped table are left out.

    Returns:
        ``(origins, ends)``, each ``{run_id: ns}``.
    """
    origins: dict[str, int] = {}
    ends: dict[str, int] = {}
    for run in runset:
        firsts: list[int] = []
        lasts: list[int] = []
        for name in tables:
            if not run.has_table(name):
                continue
            df = run.table(name)
            if df.empty:
                continue
            start = next((c for c in ("ts_ns", "start_ts_ns", "trigger_ts_ns") if c in df.columns), None)
            if start is None:
                continue
            t = df[start].to_numpy(dtype=np.float64)
            firsts.append(int(np.nanmin(t)))
            lasts.append(int(np.nanmax(t)))
            if "dur_ns" in df.columns:
                lasts.append(int(np.nanmax(t + df["dur_ns"].to_numpy(dtype=np.float64))))
            if "cycle_ns" in df.columns:
                lasts.append(int(np.nanmax(t + df["cycle_ns"].to_numpy(dtype=np.float64))))
            if "delivered_ts_ns" in df.columns:
                lasts.append(int(np.nanmax(df["delivered_ts_ns"].to_numpy(dtype=np.float64))))
        if firsts:
            origins[run.run_id] = min(firsts)
            ends[run.run_id] = max(lasts)
    return origins, ends


def run_origins(
    runset: RunSet, tables: Sequence[str] = (*schema.PROBE_TABLES, schema.WORKLOAD)
) -> dict[str, int]:
    """Per run, the earliest timestamp (ns) over the given tables (see :func:`run_bounds`)."""
    return run_bounds(runset, tables)[0]


def df_probe_rates(
    runset: RunSet, bin_s: float = 1.0, tables: Sequence[str] = schema.PROBE_TABLES
) -> pd.DataFrame:
    """Rate timelines of every probe table of every run, on one time axis per run.

    ``pba_toggle`` counts only toggles of the MSI-X PBA (rows with ``is_pba``); tables recorded in
    histogram mode (no ``ts_ns``) are skipped.

    Returns:
        ``[run_id, variant, probe, t_s, span_s, events, rate_per_s]`` (see
        :func:`df_rate_timeline`), ``t_s`` counted from the run's earliest event over all its tables
        and bins running to its latest (:func:`run_bounds`), so every probe of a run covers the same
        span and a probe that fell silent shows zeros.
    """
    origins, ends = run_bounds(runset)
    parts: list[pd.DataFrame] = []
    for name in tables:
        df = runset.table(name)
        if "ts_ns" not in df.columns or df.empty:
            continue
        if name == schema.PBA_TOGGLE and "is_pba" in df.columns:
            df = df[df["is_pba"].astype(bool)]
        rates = df_rate_timeline(df, bin_s, by=("run_id", "variant"), t0_ns=origins, t_end_ns=ends)
        rates.insert(2, "probe", name)
        parts.append(rates)
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("run_id", "variant", "probe")}
            | {c: pd.Series(dtype=np.float64) for c in ("t_s", "span_s", "events", "rate_per_s")}
        )
    return pd.concat(parts, ignore_index=True)
