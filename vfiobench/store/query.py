"""DuckDB over a tree of runs: one Parquet dataset, queried with SQL (:func:`query`, :func:`connect`).

Any tree of run directories works; a tree collected from many hosts is **hive-partitioned**:
directories named ``KEY=VALUE`` between the root and the run directories, the fleet layout being
``<root>/host=<hostname>/date=<YYYY-MM-DD>/<run>/`` (see ``docs/fleet.md``). Each ``KEY=VALUE``
becomes a text column (``host``, ``date``) of every view, so nothing assumes one host and the
same tree reads unchanged in Spark or Trino.

Views:

- ``runs``: one row per run, the columns of :meth:`RunSet.meta_frame
  <vfiobench.store.RunSet.meta_frame>`, ``run_dir`` (the run's path relative to the root: unique
  even where two hosts used the same ``run_id``), the partition columns, and any extra columns a
  caller adds (``run_columns``);
- one view per table name (``pba_toggle``, ``workload``, ...) over every run's Parquet file, read
  straight from disk by one ``read_parquet`` (columns of different runs' files are united by name),
  with ``run_id``, ``run_dir`` and the partition columns first.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from vfiobench.errors import RunStoreError
from vfiobench.store.runs import Run, load_runs

if TYPE_CHECKING:
    import duckdb


def partitions(root: str | os.PathLike[str], run_dir: str | os.PathLike[str]) -> dict[str, str]:
    """The ``KEY=VALUE`` directories between ``root`` and ``run_dir``, as a dict.

    Example:
        >>> partitions("fleet", "fleet/host=h1/date=2026-12-07/r1")
        {'host': 'h1', 'date': '2026-12-07'}
    """
    rel = Path(run_dir).relative_to(root)
    return dict(p.split("=", 1) for p in rel.parts if "=" in p and not p.startswith("="))


def connect(
    root: str | os.PathLike[str], run_columns: Callable[[Run], dict[str, Any]] | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the views of the module docstring over every run below ``root``.

    Args:
        root: A run directory or a directory tree of runs.
        run_columns: Extra ``runs`` columns computed from each run.

    Raises:
        RunStoreError: no run below ``root``.
    """
    import duckdb

    runset = load_runs(root)
    if not len(runset):
        raise RunStoreError(f"{root}: no runs below it (no run.json found)")
    base = Path(root)
    meta = runset.meta_frame()
    parts = [partitions(base, r.path) for r in runset]
    keys = list(dict.fromkeys(k for p in parts for k in p))
    extra = [run_columns(r) for r in runset] if run_columns else []
    front = pd.DataFrame(
        {
            "run_dir": [r.path.relative_to(base).as_posix() for r in runset],
            **{k: [p.get(k) for p in parts] for k in keys},
        }
    )
    runs = pd.concat([meta[["run_id"]], front, meta.drop(columns="run_id"), pd.DataFrame(extra)], axis=1)
    files = pd.DataFrame(
        [
            {"filename": str(f), "table": f.stem, **row}
            for r, row in zip(runset, runs[["run_id", "run_dir", *keys]].to_dict("records"), strict=True)
            for f in sorted(r.path.glob("*.parquet"))
        ],
        columns=["filename", "table", "run_id", "run_dir", *keys],
    )
    con = duckdb.connect()
    con.register("runs", runs)
    con.register("_run_files", files)
    cols = ", ".join(f'f."{c}"' for c in ["run_id", "run_dir", *keys])
    for name, group in files.groupby("table", sort=True):
        paths = ", ".join(_sql_str(p) for p in group["filename"])
        con.execute(
            f'CREATE VIEW "{name}" AS SELECT {cols}, p.* EXCLUDE (filename) FROM read_parquet([{paths}], '
            "union_by_name = true, filename = true, hive_partitioning = false) AS p "
            "JOIN _run_files AS f USING (filename)"
        )
    return con


def query(
    root: str | os.PathLike[str], sql: str, run_columns: Callable[[Run], dict[str, Any]] | None = None
) -> pd.DataFrame:
    """Run DuckDB SQL over every run below ``root`` as one dataset (views: see the module docstring).

    Example:
        >>> query("data/sample", "SELECT variant, count(*) FROM pba_toggle JOIN runs USING (run_id) "
        ...       "GROUP BY variant")                                                # doctest: +SKIP
    """
    con = connect(root, run_columns)
    try:
        return con.execute(sql).df()
    finally:
        con.close()


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
