"""DuckDB over a tree of runs: one Parquet dataset, queried with SQL (:func:`query`)."""

from __future__ import annotations

import os

import pandas as pd

from vfiobench.store.runs import load_runs


def query(root: str | os.PathLike[str], sql: str) -> pd.DataFrame:
    """Run DuckDB SQL over every run below ``root`` as one dataset.

    Views: ``runs`` (one row per run, the columns of :meth:`RunSet.meta_frame`) and one view per
    table name (``pba_toggle``, ``workload``, ...) over all runs' Parquet files with a ``run_id``
    column, read straight from disk so fleets of runs need no new format.

    Example:
        >>> query("data/sample", "SELECT variant, count(*) FROM pba_toggle JOIN runs USING (run_id) "
        ...       "GROUP BY variant")                                                # doctest: +SKIP
    """
    import duckdb

    runset = load_runs(root)
    con = duckdb.connect()
    try:
        con.register("runs", runset.meta_frame())
        by_table: dict[str, list[tuple[str, str]]] = {}
        for r in runset:
            for f in r.path.glob("*.parquet"):
                by_table.setdefault(f.stem, []).append((str(f), r.run_id))
        for name, files in by_table.items():
            union = " UNION ALL BY NAME ".join(
                f"SELECT {_sql_str(run_id)} AS run_id, * FROM read_parquet({_sql_str(path)})"
                for path, run_id in files
            )
            con.execute(f'CREATE VIEW "{name}" AS {union}')
        return con.execute(sql).df()
    finally:
        con.close()


def _sql_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
