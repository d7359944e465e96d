"""Latency distributions: log-linear histograms, percentile summaries, CDFs.

Everything works on raw samples (a column such as ``dur_ns`` or ``latency_ns``) and on tables that
are already bucketed (an in-kernel histogram-mode probe writes columns ``bucket`` and ``count`` with
the indices of :class:`~vfiobench.buckets.LogLinearBuckets`). Histograms are plain
DataFrames, so histograms of several runs merge by summing counts per bucket.

Percentile conventions:

* from raw samples: linear interpolation between order statistics (numpy's and pandas' default
  ``method="linear"``), so ``p50`` of ``[1, 2, 3, 4]`` is 2.5;
* from a histogram: HDR convention, the highest value equivalent to the bucket holding the sample of
  rank ``ceil(q * n)`` (``hi_ns - 1``), within ``2**-sub_bucket_bits`` of the true value.

Example:
    >>> import numpy as np
    >>> h = df_histogram(np.array([1_500_000, 2_000_000, 2_000_100]))
    >>> h[["lo_ns", "hi_ns", "count"]].to_numpy().tolist()
    [[1490944, 1507328, 1], [1998848, 2015232, 2]]
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench.analysis._frames import By, by_list, group_codes, require_columns, with_keys
from vfiobench.buckets import LogLinearBuckets
from vfiobench.errors import AnalysisError

DEFAULT_BUCKETS = LogLinearBuckets()

#: The percentiles of :func:`df_latency_summary`, and their column names.
SUMMARY_QUANTILES: tuple[tuple[float, str], ...] = (
    (0.50, "p50_ns"),
    (0.90, "p90_ns"),
    (0.99, "p99_ns"),
    (0.999, "p999_ns"),
)
SUMMARY_COLUMNS: tuple[str, ...] = ("count", "mean_ns", *(n for _, n in SUMMARY_QUANTILES), "max_ns")
HIST_COLUMNS: tuple[str, ...] = ("bucket", "lo_ns", "hi_ns", "count")


def table_mode(df: pd.DataFrame, value: str) -> str:
    """How a latency table holds its samples: ``"raw"``, ``"bucketed"`` or ``"mixed"``.

    ``mixed`` is what :meth:`~vfiobench.store.RunSet.table` returns for a probe recorded streamed in
    some runs and in histogram mode in others: rows with ``value`` and rows with ``bucket``/``count``.
    Such a table is analysed as a histogram (raw rows bucketed, one count each), never by dropping
    the rows of one kind.
    """
    if not is_bucketed(df):
        return "raw"
    if value not in df.columns or df[value].isna().all():
        return "bucketed"
    if df["bucket"].isna().all():
        return "raw"
    return "mixed"


def is_bucketed(df: pd.DataFrame) -> bool:
    """True when ``df`` is a bucketed table (columns ``bucket`` and ``count``), not raw samples."""
    return "bucket" in df.columns and "count" in df.columns


def _hist_frame(
    keys: pd.DataFrame,
    codes: npt.NDArray[np.int64],
    idx: npt.NDArray[np.int64],
    counts: npt.NDArray[np.int64],
    b: LogLinearBuckets,
) -> pd.DataFrame:
    out = with_keys(
        keys,
        codes,
        {"bucket": idx, "lo_ns": b.lower(idx), "hi_ns": b.upper(idx), "count": counts.astype(np.int64)},
    )
    out.attrs["sub_bucket_bits"] = b.sub_bucket_bits
    return out


def df_histogram(
    values_ns: npt.ArrayLike | pd.Series, buckets: LogLinearBuckets | None = None
) -> pd.DataFrame:
    """Log-linear histogram of raw samples.

    Args:
        values_ns: samples in nanoseconds (NaN counts as 0; drop them first if they mean "missing").
        buckets: the bucket layout (default ``LogLinearBuckets()``, 64 sub-buckets per octave).

    Returns:
        One row per non-empty bucket, ascending: ``bucket`` (index), ``lo_ns`` (inclusive),
        ``hi_ns`` (exclusive), ``count``. ``attrs["sub_bucket_bits"]`` records the layout.
    """
    b = buckets or DEFAULT_BUCKETS
    dense = b.counts(np.asarray(values_ns).ravel())
    idx = np.flatnonzero(dense).astype(np.int64)
    return _hist_frame(
        pd.DataFrame(index=pd.RangeIndex(1)), np.zeros(idx.size, dtype=np.int64), idx, dense[idx], b
    )


def df_histograms(
    df: pd.DataFrame,
    value: str = "dur_ns",
    by: By | None = ("variant",),
    buckets: LogLinearBuckets | None = None,
) -> pd.DataFrame:
    """Log-linear histograms of ``df[value]`` per group (one pass: a single ``np.bincount``).

    A bucketed table (``bucket``, ``count``) is re-aggregated per group instead; its layout is taken
    from its ``lo_ns`` column when it has one (see :func:`infer_layout`), so in-kernel histograms
    recorded with another ``--sub-bucket-bits`` decode correctly. A mixed table (see
    :func:`table_mode`) combines both kinds of rows in one histogram.

    Returns:
        Columns ``[*by, bucket, lo_ns, hi_ns, count]``, one row per non-empty bucket per group,
        groups in first-seen order, buckets ascending.
    """
    mode = table_mode(df, value)
    hist_rows = df[df["bucket"].notna()] if mode == "mixed" else df
    b = buckets or (infer_layout(hist_rows) if mode != "raw" else None) or DEFAULT_BUCKETS
    keys_cols = by_list(by)
    require_columns(df, keys_cols, "latency table")
    codes, keys = group_codes(df, keys_cols)
    weights: npt.NDArray[np.float64] | None
    if mode == "bucketed":
        idx = df["bucket"].to_numpy(dtype=np.int64)
        weights = df["count"].to_numpy(dtype=np.float64)
    elif mode == "mixed":
        has_bucket = df["bucket"].notna().to_numpy()
        raw_idx = b.index(df[value].fillna(0).to_numpy())
        idx = np.where(has_bucket, df["bucket"].fillna(0).to_numpy(dtype=np.int64), raw_idx)
        weights = np.where(has_bucket, df["count"].fillna(0).to_numpy(dtype=np.float64), 1.0)
    else:
        require_columns(df, [value], "latency table")
        idx = b.index(df[value].to_numpy())
        weights = None
    n_groups = max(len(keys), 1)
    if idx.size and int(idx.max()) >= b.n_buckets:
        raise AnalysisError(f"bucket index {int(idx.max())} is outside this {b.n_buckets}-bucket layout")
    flat = codes * b.n_buckets + idx
    dense = np.bincount(flat, weights=weights, minlength=n_groups * b.n_buckets)
    nz = np.flatnonzero(dense)
    return _hist_frame(keys, nz // b.n_buckets, nz % b.n_buckets, np.rint(dense[nz]).astype(np.int64), b)


def infer_layout(table: pd.DataFrame) -> LogLinearBuckets | None:
    """The bucket layout of a bucketed table from its ``bucket`` and ``lo_ns`` columns.

    Returns:
        The :class:`LogLinearBuckets` whose ``lower(bucket)`` equals ``lo_ns`` on every row (the
        smallest such ``sub_bucket_bits``), or None without a ``lo_ns`` column or rows.

    Raises:
        AnalysisError: no layout reproduces the table's bounds.
    """
    if "lo_ns" not in table.columns or "bucket" not in table.columns or table.empty:
        return None
    idx = table["bucket"].to_numpy(dtype=np.int64)
    lo = table["lo_ns"].to_numpy(dtype=np.int64)
    if attrs_bits := table.attrs.get("sub_bucket_bits"):
        candidates = [int(attrs_bits), *range(1, 17)]
    else:
        candidates = list(range(1, 17))
    for bits in candidates:
        layout = LogLinearBuckets(bits)
        if int(idx.max()) < layout.n_buckets and np.array_equal(layout.lower(idx), lo):
            return layout
    raise AnalysisError("bucketed table: no log-linear layout matches its bucket/lo_ns columns")


def histogram_from_table(table: pd.DataFrame, buckets: LogLinearBuckets | None = None) -> pd.DataFrame:
    """Turn an in-kernel histogram table (``bucket``, ``count``, maybe several chunks) into a histogram.

    Other columns (``run_id``, ``variant``...) are kept as grouping keys.

    Returns:
        ``[*other columns, bucket, lo_ns, hi_ns, count]`` with counts summed per key and bucket.
    """
    require_columns(table, ["bucket", "count"], "histogram table")
    others = [c for c in table.columns if c not in ("bucket", "count", "lo_ns", "hi_ns")]
    return df_histograms(table, value="__none__", by=others, buckets=buckets)


def merge_histograms(hists: Iterable[pd.DataFrame], by: By | None = None) -> pd.DataFrame:
    """Sum histograms (of the same bucket layout) bucket by bucket, optionally per ``by`` group.

    Args:
        hists: frames from :func:`df_histogram` / :func:`df_histograms` / in-kernel tables.
        by: key columns to keep apart (default: none, everything merges into one histogram).

    Returns:
        ``[*by, bucket, lo_ns, hi_ns, count]``, buckets ascending within each group.

    Raises:
        AnalysisError: the histograms were made with different ``sub_bucket_bits``.
    """
    frames = list(hists)
    bits: set[int] = set()
    for f in frames:
        layout = (
            infer_layout(f)
            if "sub_bucket_bits" not in f.attrs
            else LogLinearBuckets(f.attrs["sub_bucket_bits"])
        )
        if layout is not None:
            bits.add(layout.sub_bucket_bits)
    if len(bits) > 1:
        raise AnalysisError(f"cannot merge histograms of different layouts (sub_bucket_bits {sorted(bits)})")
    b = LogLinearBuckets(bits.pop()) if bits else DEFAULT_BUCKETS
    keys = by_list(by)
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in keys} | _empty_hist_cols())
    cat = pd.concat([f[[*keys, "bucket", "count"]] for f in frames], ignore_index=True)
    merged = df_histograms(cat, value="__none__", by=keys, buckets=b)
    if keys:
        merged = merged.sort_values([*keys, "bucket"], kind="stable").reset_index(drop=True)
        merged.attrs["sub_bucket_bits"] = b.sub_bucket_bits
    return merged


def _empty_hist_cols() -> dict[str, pd.Series]:
    return {c: pd.Series(dtype=np.int64) for c in HIST_COLUMNS}


def histogram_percentiles(
    hist: pd.DataFrame, q: Sequence[float] = (0.5, 0.9, 0.99, 0.999)
) -> npt.NDArray[np.float64]:
    """Percentiles from one histogram (HDR convention: ``hi_ns - 1`` of the bucket of rank ``ceil(q n)``).

    Args:
        hist: one histogram (``lo_ns``/``hi_ns``/``count``, buckets ascending, or ``bucket``/``count``).
        q: quantiles in ``[0, 1]``.

    Returns:
        float64 array of values in ns, NaN for an empty histogram.
    """
    counts, hi = _hist_arrays(hist)
    total = counts.sum()
    qs = np.asarray(q, dtype=np.float64)
    if total == 0:
        return np.full(qs.shape, np.nan)
    cum = np.cumsum(counts)
    ranks = np.maximum(np.ceil(qs * total), 1)
    pos = np.searchsorted(cum, ranks, side="left")
    return np.asarray(hi[np.minimum(pos, hi.size - 1)] - 1, dtype=np.float64)


def _hist_arrays(hist: pd.DataFrame) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    if "hi_ns" not in hist.columns:
        hist = histogram_from_table(hist[["bucket", "count"]])
    order = np.argsort(hist["hi_ns"].to_numpy(), kind="stable")
    return hist["count"].to_numpy(dtype=np.int64)[order], hist["hi_ns"].to_numpy(dtype=np.int64)[order]


def _summary_from_hist(hist: pd.DataFrame) -> dict[str, float]:
    counts, hi = _hist_arrays(hist)
    lo = hist["lo_ns"].to_numpy(dtype=np.int64)[np.argsort(hist["hi_ns"].to_numpy(), kind="stable")]
    n = int(counts.sum())
    out: dict[str, float] = {"count": n}
    if n == 0:
        return out | {c: np.nan for c in SUMMARY_COLUMNS[1:]}
    mid = (lo + (hi - 1)) / 2.0
    out["mean_ns"] = float((mid * counts).sum() / n)
    pct = histogram_percentiles(hist, [q for q, _ in SUMMARY_QUANTILES])
    out |= {name: float(v) for (_, name), v in zip(SUMMARY_QUANTILES, pct, strict=True)}
    out["max_ns"] = float(hi[np.flatnonzero(counts)[-1]] - 1)
    return out


def df_latency_summary(df: pd.DataFrame, value: str = "dur_ns", by: By | None = ("variant",)) -> pd.DataFrame:
    """Count, mean, p50/p90/p99/p99.9 and max of a latency column per group.

    Works on raw samples (exact; linear interpolation between order statistics) and on bucketed
    tables (``bucket``, ``count`` columns, e.g. in-kernel histogram mode: HDR convention, mean from
    bucket midpoints, max = top of the highest non-empty bucket). A table mixing streamed and
    histogram-mode runs is summarised from one histogram of all its rows (:func:`table_mode`).

    Args:
        df: a table with ``value`` (raw) or ``bucket``/``count`` (bucketed) and the ``by`` columns.
        value: the latency column, in ns.
        by: grouping columns (``None`` or ``()`` for one overall row).

    Returns:
        ``[*by, count, mean_ns, p50_ns, p90_ns, p99_ns, p999_ns, max_ns]``, one row per group in
        first-seen order; ``count`` is int64, the rest float64 ns.
    """
    keys_cols = by_list(by)
    require_columns(df, keys_cols, "latency table")
    codes, keys = group_codes(df, keys_cols)
    rows: list[dict[str, float]] = []
    if table_mode(df, value) != "raw":
        hists = df_histograms(df, value=value, by=keys_cols)
        hcodes, _ = group_codes(hists, keys_cols)
        for g in range(len(keys)):
            rows.append(_summary_from_hist(hists[hcodes == g]))
    else:
        require_columns(df, [value], "latency table")
        vals = df[value].to_numpy(dtype=np.float64)
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(keys) + 1))
        sorted_vals = vals[order]
        qs = [q for q, _ in SUMMARY_QUANTILES]
        for g in range(len(keys)):
            v = sorted_vals[bounds[g] : bounds[g + 1]]
            v = v[~np.isnan(v)]
            if v.size == 0:
                rows.append({"count": 0} | {c: np.nan for c in SUMMARY_COLUMNS[1:]})
                continue
            pct = np.quantile(v, qs)
            rows.append(
                {"count": int(v.size), "mean_ns": float(v.mean())}
                | {name: float(p) for (_, name), p in zip(SUMMARY_QUANTILES, pct, strict=True)}
                | {"max_ns": float(v.max())}
            )
    out = keys.reset_index(drop=True).copy() if keys_cols else pd.DataFrame(index=range(len(rows)))
    stats = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS), index=out.index)
    out = pd.concat(
        [out, stats.astype({"count": np.int64}).astype({c: np.float64 for c in SUMMARY_COLUMNS[1:]})], axis=1
    )
    return out


def df_cdf(
    df: pd.DataFrame, value: str = "dur_ns", by: By | None = ("variant",), max_points: int = 1000
) -> pd.DataFrame:
    """Empirical CDF of ``value`` per group, thinned to at most ``max_points`` points per group.

    Raw samples: ``cdf`` at each (kept) sorted sample is the fraction of samples ``<=`` it; when a
    group has more than ``max_points`` samples, the points are the order statistics at evenly spaced
    ranks (first and last always kept). Bucketed tables: one point per non-empty bucket at its
    highest equivalent value ``hi_ns - 1`` (the fraction of samples ``<=`` it, exact).

    Returns:
        ``[*by, value_ns, cdf]``; ``value_ns`` float64 ns ascending per group, ``cdf`` in ``(0, 1]``.
    """
    keys_cols = by_list(by)
    require_columns(df, keys_cols, "latency table")
    parts: list[pd.DataFrame] = []
    if table_mode(df, value) != "raw":
        hists = df_histograms(df, value=value, by=keys_cols)
        codes, keys = group_codes(hists, keys_cols)
        for g in range(len(keys)):
            h = hists[codes == g]
            cum = np.cumsum(h["count"].to_numpy(dtype=np.float64))
            parts.append(_cdf_part(keys, g, h["hi_ns"].to_numpy(dtype=np.float64) - 1, cum / cum[-1]))
    else:
        require_columns(df, [value], "latency table")
        codes, keys = group_codes(df, keys_cols)
        vals = df[value].to_numpy(dtype=np.float64)
        for g in range(len(keys)):
            v = np.sort(vals[codes == g])
            v = v[~np.isnan(v)]
            n = v.size
            if n == 0:
                continue
            ranks = (
                np.arange(n)
                if n <= max_points
                else np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))
            )
            # the fraction <= v[r] counts ties: take the last index of each value's run
            last = np.searchsorted(v, v[ranks], side="right")
            x, keep = np.unique(v[ranks], return_index=True)
            parts.append(_cdf_part(keys, g, x, last[keep] / n))
    if not parts:
        return pd.DataFrame(
            {c: pd.Series(dtype=object) for c in keys_cols}
            | {"value_ns": pd.Series(dtype=np.float64), "cdf": pd.Series(dtype=np.float64)}
        )
    return pd.concat(parts, ignore_index=True)


def _cdf_part(
    keys: pd.DataFrame, g: int, x: npt.NDArray[np.float64], cdf: npt.NDArray[np.float64]
) -> pd.DataFrame:
    return with_keys(
        keys,
        np.full(x.size, g, dtype=np.int64),
        {"value_ns": x.astype(np.float64), "cdf": cdf.astype(np.float64)},
    )
