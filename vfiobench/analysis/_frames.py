"""Small helpers shared by the analysis modules (grouping keys, column checks)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from vfiobench.errors import AnalysisError

By = str | Sequence[str]


def by_list(by: By | None) -> list[str]:
    """Normalise a ``by`` argument (one column name, a sequence of them, or None) to a list."""
    if by is None:
        return []
    if isinstance(by, str):
        return [by]
    return list(by)


def require_columns(df: pd.DataFrame, columns: Sequence[str], what: str = "table") -> None:
    """Raise :class:`AnalysisError` naming the missing columns and the ones present."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns)) or "none"
        raise AnalysisError(
            f"{what} has no column {', '.join(repr(m) for m in missing)} (columns: {have})",
            "pass the right value=/by= column names",
        )


def group_codes(df: pd.DataFrame, by: list[str]) -> tuple[npt.NDArray[np.int64], pd.DataFrame]:
    """Integer group code per row and the key frame (one row per code, columns ``by``).

    Groups appear in first-seen order. With ``by == []`` every row is group 0 and the key frame has
    one row and no columns.
    """
    if not by:
        return np.zeros(len(df), dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1))
    if len(by) == 1:
        codes, uniques = pd.factorize(df[by[0]], sort=False)
        keys = pd.DataFrame({by[0]: np.asarray(uniques, dtype=object)})
        return np.asarray(codes, dtype=np.int64), keys
    grouped = df.groupby(by, sort=False, dropna=False)
    gcodes = np.asarray(grouped.ngroup().to_numpy(), dtype=np.int64)
    first = np.unique(gcodes, return_index=True)[1]
    keys = df.iloc[first][by].reset_index(drop=True)
    keys = keys.iloc[np.argsort(gcodes[first], kind="stable")].reset_index(drop=True)
    return gcodes, keys


def with_keys(keys: pd.DataFrame, codes: npt.NDArray[np.int64], data: dict[str, Any]) -> pd.DataFrame:
    """Frame whose first columns are the group keys of ``codes`` followed by ``data``'s columns."""
    out = (
        keys.iloc[codes].reset_index(drop=True)
        if len(keys.columns)
        else pd.DataFrame(index=range(len(codes)))
    )
    for name, col in data.items():
        out[name] = col
    return out
