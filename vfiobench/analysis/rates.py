"""Event rates over time (SET_IRQS ioctls/s, PBA toggles/s, ...).

Example:
    >>> import pandas as pd
    >>> df = pd.DataFrame({"run_id": "r", "variant": "stock", "ts_ns": [0, 100_000_000, 1_500_000_000]})
    >>> df_rate_timeline(df, bin_s=1.0)[["t_s", "events", "rate_per_s"]].to_numpy().tolist()
    [[0.0, 2.0, 2.0], [1.0, 1.0, 1.0]]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from vfiobench.analysis import schema
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

    Returns:
        ``[*by, t_s, events, rate_per_s]``: ``t_s`` the bin start in seconds since the origin
        (float64), ``events`` the count in the bin (float64, so empty bins read 0.0), ``rate_per_s``
        = ``events / bin_s``. Every bin from the origin's to the group's last event is present,
        empty ones included.
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
    bin_ns = bin_s * 1e9
    bins = np.floor((t - origin) / bin_ns).astype(np.int64)
    if bins.size and bins.min() < 0:
        raise AnalysisError("an event precedes its time origin t0_ns", "pass an earlier t0_ns")
    parts: list[pd.DataFrame] = []
    for g in range(n_groups):
        b = bins[codes == g]
        if b.size == 0:
            continue
        counts = np.bincount(b).astype(np.float64)
        parts.append(
            with_keys(
                keys,
                np.full(counts.size, g, dtype=np.int64),
                {
                    "t_s": np.arange(counts.size) * float(bin_s),
                    "events": counts,
                    "rate_per_s": counts / bin_s,
                },
            )
        )
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in keys_cols}
            | {c: pd.Series(dtype=np.float64) for c in ("t_s", "events", "rate_per_s")}
        )
    return pd.concat(parts, ignore_index=True)


def run_origins(
    runset: RunSet, tables: Sequence[str] = (*schema.PROBE_TABLES, schema.WORKLOAD)
) -> dict[str, int]:
    """Per run, the earliest timestamp (ns) over the given tables: a shared time origin for plots.

    Uses ``ts_ns`` of probe tables and ``start_ts_ns``/``trigger_ts_ns`` of the workload table. Runs
    with no timestamped table are left out.
    """
    origins: dict[str, int] = {}
    for run in runset:
        firsts: list[int] = []
        for name in tables:
            if not run.has_table(name):
                continue
            df = run.table(name)
            for col in ("ts_ns", "start_ts_ns", "trigger_ts_ns"):
                if col in df.columns and len(df):
                    firsts.append(int(df[col].min()))
                    break
        if firsts:
            origins[run.run_id] = min(firsts)
    return origins


def df_probe_rates(
    runset: RunSet, bin_s: float = 1.0, tables: Sequence[str] = schema.PROBE_TABLES
) -> pd.DataFrame:
    """Rate timelines of every probe table of every run, on one time axis per run.

    ``pba_toggle`` counts only toggles of the MSI-X PBA (rows with ``is_pba``); tables recorded in
    histogram mode (no ``ts_ns``) are skipped.

    Returns:
        ``[run_id, variant, probe, t_s, events, rate_per_s]`` (see :func:`df_rate_timeline`), with
        ``t_s`` counted from the run's earliest event over all its tables.
    """
    origins = run_origins(runset)
    parts: list[pd.DataFrame] = []
    for name in tables:
        df = runset.table(name)
        if "ts_ns" not in df.columns or df.empty:
            continue
        if name == schema.PBA_TOGGLE and "is_pba" in df.columns:
            df = df[df["is_pba"].astype(bool)]
        rates = df_rate_timeline(df, bin_s, by=("run_id", "variant"), t0_ns=origins)
        rates.insert(2, "probe", name)
        parts.append(rates)
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in ("run_id", "variant", "probe")}
            | {c: pd.Series(dtype=np.float64) for c in ("t_s", "events", "rate_per_s")}
        )
    return pd.concat(parts, ignore_index=True)
