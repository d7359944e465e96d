"""Final tables are written lean (zstd, no statistics, no redundant pandas metadata), read back the same."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from vfiobench.store import RunMeta, RunWriter, load_run


def test_lean_tables_read_back_with_the_same_dtypes_and_values(tmp_path: Path) -> None:
    plain = pd.DataFrame(
        {
            "ts_ns": np.arange(301, dtype=np.int64) * 1000,
            "tid": np.full(301, 7, dtype=np.uint32),
            "ok": np.arange(301) % 2 == 0,
            "event": pd.Categorical(np.where(np.arange(301) % 3 == 0, "host_irq", "msix_notify")),
            "x": np.linspace(0, 1, 301),
        }
    )
    nullable = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64")})
    with RunWriter(tmp_path / "run", RunMeta(run_id="lean", variant="v", source="synthetic")) as w:
        w.append("plain", plain.iloc[:150])
        w.append("plain", plain.iloc[150:])
        w.append("nullable", nullable)
    run = load_run(tmp_path / "run")
    got = run.table("plain").drop(columns=["run_id", "variant"], errors="ignore")
    pd.testing.assert_frame_equal(got, plain)
    back = run.table("nullable")
    assert str(back["n"].dtype) == "Int64" and back["n"].isna().tolist() == [False, True, False]
    f = pq.ParquetFile(tmp_path / "run" / "plain.parquet")
    assert b"pandas" not in (f.schema_arrow.metadata or {})  # the Arrow types alone restore the dtypes
    assert f.metadata.row_group(0).column(0).compression == "ZSTD"
    assert not f.metadata.row_group(0).column(0).is_stats_set
    assert b"pandas" in (pq.ParquetFile(tmp_path / "run" / "nullable.parquet").schema_arrow.metadata or {})
