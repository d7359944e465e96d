from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from vfiobench.store import ProbeStats, RunMeta, RunWriter

MakeRun = Callable[..., Path]


@pytest.fixture
def make_run(tmp_path: Path) -> MakeRun:
    """Write a run with the given tables through the real RunWriter; returns its directory."""

    def make(
        run_id: str,
        variant: str,
        tables: Mapping[str, pd.DataFrame],
        *,
        kind: str = "probed",
        params: Mapping[str, Any] | None = None,
        labels: Mapping[str, Any] | None = None,
        lost: int = 0,
    ) -> Path:
        meta = RunMeta(run_id=run_id, variant=variant, source="synthetic", kind=kind)  # type: ignore[arg-type]
        meta.workload.name = "test"
        meta.workload.params = dict(params or {})
        meta.labels = dict(labels or {})
        with RunWriter(tmp_path / "runs" / run_id, meta) as w:
            for name, df in tables.items():
                n = w.append(name, df)
                if name != "workload":
                    w.meta.probes[name] = ProbeStats(name, n, lost)
        return tmp_path / "runs" / run_id

    return make
