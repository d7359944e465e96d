"""Reading runs: one run directory (:class:`Run`), many as one long table (:class:`RunSet`)."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vfiobench.errors import RunStoreError
from vfiobench.store.meta import INPROGRESS_SUFFIX, RUN_JSON, RunMeta, _read_meta
from vfiobench.store.writer import inprogress_dir, recover_interrupted


@dataclass
class Run:
    """One recorded run: its metadata and lazily loaded tables."""

    path: Path
    meta: RunMeta

    @property
    def run_id(self) -> str:
        """The run's identifier."""
        return self.meta.run_id

    @property
    def variant(self) -> str:
        """The variant label (QEMU build + properties) the run exercised."""
        return self.meta.variant

    def table_names(self) -> list[str]:
        """Names of the tables this run holds (complete files and in-progress chunks)."""
        names = {p.name.removesuffix(".parquet") for p in self.path.glob("*.parquet")}
        names |= {p.name.removesuffix(".parts") for p in self.path.glob("*.parts") if p.is_dir()}
        return sorted(names)

    def has_table(self, name: str) -> bool:
        """True when the run holds table ``name``."""
        return name in self.table_names()

    def table(self, name: str, columns: list[str] | None = None) -> pd.DataFrame:
        """Load one table as a DataFrame.

        Raises:
            RunStoreError: no such table, or the Parquet file is unreadable.
        """
        single = self.path / f"{name}.parquet"
        parts = self.path / f"{name}.parts"
        files = [single] if single.is_file() else sorted(parts.glob("part-*.parquet"))
        if not files:
            have = ", ".join(self.table_names()) or "none"
            raise RunStoreError(f"{self.path}: no table {name!r} (tables: {have})")
        frames = []
        for f in files:
            try:
                frames.append(pq.read_table(f, columns=columns))
            except (pa.ArrowException, OSError) as e:
                raise RunStoreError(f"{f}: not a readable Parquet file ({e})") from None
        return cast(pd.DataFrame, pa.concat_tables(frames, promote_options="default").to_pandas())

    def attachment(self, name: str) -> Path:
        """Path of an attachment (log file) of the run; raises if absent."""
        path = self.path / name
        if not path.is_file():
            raise RunStoreError(f"{path}: no such attachment")
        return path


def load_run(path: str | os.PathLike[str]) -> Run:
    """Load one run directory (or an in-progress one left by a killed writer, as ``partial``).

    Raises:
        RunStoreError: the directory is missing, foreign or corrupt; the message names the file.
    """
    run_dir = Path(path)
    if not run_dir.exists():
        recover_interrupted(run_dir)  # a killed recording's run moves into place (and says so)
        inprogress = inprogress_dir(run_dir)
        if not run_dir.exists() and inprogress.is_dir():
            run_dir = inprogress  # still being recorded: read what is there so far
    meta = _read_meta(run_dir)
    if run_dir.name.endswith(INPROGRESS_SUFFIX):
        meta.status = "partial"
    return Run(run_dir, meta)


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """All run directories at or below ``root`` (directories holding a ``run.json``), sorted."""
    base = Path(root)
    if (base / RUN_JSON).is_file():
        return [base]
    if not base.is_dir():
        raise RunStoreError(f"{base}: no such directory")
    found = (p.parent for p in base.rglob(RUN_JSON))
    # hidden directories hold in-progress runs and runs set aside for a retry: not part of the set
    return sorted(d for d in found if not any(part.startswith(".") for part in d.relative_to(base).parts))


class RunSet:
    """Several runs, compared as one long table (``run_id`` and ``variant`` columns added)."""

    def __init__(self, runs: Iterable[Run]) -> None:
        self.runs = list(runs)

    def __len__(self) -> int:
        return len(self.runs)

    def __iter__(self) -> Iterator[Run]:
        return iter(self.runs)

    def __getitem__(self, run_id: str) -> Run:
        for run in self.runs:
            if run.run_id == run_id:
                return run
        raise RunStoreError(f"no run {run_id!r} in this set ({len(self.runs)} runs)")

    @property
    def variants(self) -> list[str]:
        """Variant labels present, in first-seen order."""
        return list(dict.fromkeys(r.variant for r in self.runs))

    def filter(self, **labels: Any) -> RunSet:
        """Keep runs whose metadata matches every ``key=value``.

        Keys: ``variant``, ``kind``, ``status``, ``source``, ``workload`` or any label (``accel``...).
        """

        def value(run: Run, key: str) -> Any:
            if key == "workload":
                return run.meta.workload.name
            if hasattr(run.meta, key):
                return getattr(run.meta, key)
            return run.meta.labels.get(key)

        return RunSet(r for r in self.runs if all(value(r, k) == v for k, v in labels.items()))

    def meta_frame(self) -> pd.DataFrame:
        """One row per run.

        Columns: ``run_id``, ``variant``, ``status``, ``source``, ``kind``, ``workload``,
        ``started_utc``, ``ended_utc``, ``lost_events``, ``checks_ok``, ``qemu_version``,
        ``qemu_build_id``, plus one column per label key.

        Example:
            >>> runs.meta_frame()[["run_id", "variant", "status"]]          # doctest: +SKIP
        """
        rows = []
        for r in self.runs:
            m = r.meta
            rows.append(
                {
                    "run_id": m.run_id,
                    "variant": m.variant,
                    "status": m.status,
                    "source": m.source,
                    "kind": m.kind,
                    "workload": m.workload.name,
                    "started_utc": m.started_utc,
                    "ended_utc": m.ended_utc,
                    "lost_events": m.lost_events,
                    "checks_ok": m.checks_ok,
                    "qemu_version": m.qemu.version,
                    "qemu_build_id": m.qemu.build_id,
                    **m.labels,
                }
            )
        return pd.DataFrame(rows)

    def table(self, name: str, *, missing_ok: bool = True) -> pd.DataFrame:
        """Concatenate table ``name`` of every run, with ``run_id`` and ``variant`` columns first.

        Runs without the table are skipped when ``missing_ok`` (a probe-free run has no probe tables).

        Example:
            >>> runs.table("pba_toggle").groupby("variant")["dur_ns"].median()   # doctest: +SKIP
        """
        frames = []
        for r in self.runs:
            if not r.has_table(name):
                if missing_ok:
                    continue
                r.table(name)  # raises with the run's path and its table list
            df = r.table(name)
            df.insert(0, "variant", r.variant)
            df.insert(0, "run_id", r.run_id)
            frames.append(df)
        if not frames:
            return pd.DataFrame({"run_id": pd.Series(dtype=str), "variant": pd.Series(dtype=str)})
        return pd.concat(frames, ignore_index=True)


def load_runs(paths: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> RunSet:
    """Load runs from run directories and/or directories containing runs (searched recursively)."""
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    runs: list[Run] = []
    seen: set[Path] = set()
    for item in items:
        for run_dir in find_runs(item):
            if run_dir.resolve() not in seen:
                seen.add(run_dir.resolve())
                runs.append(load_run(run_dir))
    return RunSet(runs)
