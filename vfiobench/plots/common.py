"""What every figure shares: size, palette, stable colours per label, column checks, the legend."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
from bokeh.palettes import Category10_10
from bokeh.plotting import figure

from vfiobench.errors import AnalysisError

PALETTE: tuple[str, ...] = tuple(Category10_10)
WIDTH = 760
HEIGHT = 380


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise :class:`AnalysisError` when ``df`` lacks any of ``columns`` (naming those it has)."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        have = ", ".join(map(str, df.columns))
        raise AnalysisError(f"{what}: frame has no column {', '.join(map(repr, missing))} (columns: {have})")


def by_columns(df: pd.DataFrame, by: str | Sequence[str] | None) -> list[str]:
    """The grouping columns of ``by`` (one name, several, or None) that ``df`` has."""
    cols = [] if by is None else [by] if isinstance(by, str) else list(by)
    return [c for c in cols if c in df.columns]


def row_labels(df: pd.DataFrame, by: list[str]) -> pd.Series:
    """One display label per row: the ``by`` values joined with `` · `` ("all" without grouping)."""
    if not by:
        return pd.Series(["all"] * len(df), index=df.index, dtype=object)
    return df[by].astype(str).agg(" · ".join, axis=1)


def color_map(labels: Sequence[str], colors: Mapping[str, str] | None = None) -> dict[str, str]:
    """Colour per label: ``colors`` where given, else the palette in first-seen order."""
    out: dict[str, str] = {}
    for i, label in enumerate(dict.fromkeys(labels)):
        out[label] = (colors or {}).get(label, PALETTE[i % len(PALETTE)])
    return out


def legend_outside(p: figure) -> None:
    """Clickable legend (hides a group); moved right of the plot when it has many entries."""
    if not p.legend:
        return
    p.legend.click_policy = "hide"
    p.legend.location = "top_right"
    if len(p.legend[0].items) > 4:
        p.legend.label_text_font_size = "8pt"
        p.add_layout(p.legend[0], "right")
