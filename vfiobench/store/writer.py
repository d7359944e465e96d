"""Writing a run atomically (:class:`RunWriter`), and recovering the run of a recording that was killed.

A writer records into ``.<name>.inprogress`` beside the target (with ``writer.json`` naming the
process) and renames it into place when it closes; chunks land as numbered Parquet part files, so
a killed writer leaves every chunk it wrote. :func:`recover_interrupted` compacts such a run and
moves it into place as ``partial``.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import shutil
from pathlib import Path
from typing import Any, Self, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vfiobench.errors import RunStoreError
from vfiobench.store.meta import (
    INPROGRESS_SUFFIX,
    RUN_JSON,
    RunMeta,
    Status,
    _read_meta,
    _write_json_atomic,
    utc_from_epoch,
    utc_now,
)

TableData: TypeAlias = pd.DataFrame | np.ndarray[Any, Any] | pa.Table


#: How a run's final tables are written: zstd, no column statistics (runs are read whole, never
#: filtered by row group), and no ``pandas`` schema metadata where the Arrow types alone give the
#: same dtypes back (see :func:`lean_schema`). Together they halve a lab run's Parquet files, which
#: are mostly fixed per-file overhead (a few hundred rows each).
FINAL_WRITE_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 9,
    "write_statistics": False,
}

#: numpy dtypes (``numpy_type`` in pandas' Parquet metadata) that Arrow's own types restore exactly.
_PLAIN_NUMPY = re.compile(r"(u?int(8|16|32|64)|float(16|32|64)|bool|object|str|datetime64\[ns\])$")


def lean_schema(table: pa.Table) -> pa.Table:
    """``table`` without its ``pandas`` metadata when every column reads back with the same dtype.

    Nullable extension dtypes (``Int64``, ``string``...) need that metadata to come back as
    themselves, so a table holding one keeps it; categoricals come back from Arrow's dictionary
    type alone.
    """
    meta = table.schema.metadata or {}
    if b"pandas" not in meta:
        return table
    try:
        cols = json.loads(meta[b"pandas"])["columns"]
    except (ValueError, KeyError, TypeError):
        return table
    if any(
        c.get("pandas_type") != "categorical" and not _PLAIN_NUMPY.match(str(c.get("numpy_type")))
        for c in cols
    ):
        return table
    rest = {k: v for k, v in meta.items() if k != b"pandas"}
    return table.replace_schema_metadata(rest or None)


def to_arrow(data: TableData) -> pa.Table:
    """Convert a DataFrame, numpy structured array or Arrow table to an Arrow table (no index)."""
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, np.ndarray):
        if data.dtype.names is None:
            raise TypeError("a numpy table must be a structured array with named fields")
        return pa.table({name: np.ascontiguousarray(data[name]) for name in data.dtype.names})
    return pa.Table.from_pandas(data, preserve_index=False)


WRITER_JSON = "writer.json"  # in an in-progress directory: which process is writing it

log = logging.getLogger("vfiobench")


def _proc_start(pid: int) -> str | None:
    """The start time of ``pid`` (clock ticks since boot, /proc/PID/stat field 22), None if gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text(encoding="ascii").strip()
    except OSError:
        return ""


def _writer_identity() -> dict[str, Any]:
    pid = os.getpid()
    return {"pid": pid, "start": _proc_start(pid), "boot_id": _boot_id(), "host": platform.node()}


def writer_alive(inprogress: Path) -> int | None:
    """The pid still writing ``inprogress``, or None when its writer is gone (or unknown)."""
    try:
        who = json.loads((inprogress / WRITER_JSON).read_text(encoding="utf-8"))
        pid = int(who["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if who.get("boot_id") != _boot_id() or who.get("host") != platform.node():
        return None  # written before a reboot (or elsewhere): that process is not running here
    return pid if _proc_start(pid) == who.get("start") else None


def _compact_parts(run_dir: Path) -> dict[str, int]:
    """Merge every ``<table>.parts/`` into ``<table>.parquet``; returns rows per merged table."""
    rows: dict[str, int] = {}
    for parts_dir in sorted(run_dir.glob("*.parts")):
        table = parts_dir.name.removesuffix(".parts")
        tables = [pq.read_table(f) for f in sorted(parts_dir.glob("part-*.parquet"))]
        merged = pa.concat_tables(tables, promote_options="default") if tables else pa.table({})
        pq.write_table(lean_schema(merged), run_dir / f"{table}.parquet", **FINAL_WRITE_OPTIONS)
        shutil.rmtree(parts_dir)
        rows[table] = merged.num_rows
    return rows


def inprogress_dir(out: str | os.PathLike[str]) -> Path:
    """Where a recording into ``out`` writes until it closes: ``.<name>.inprogress`` beside it."""
    out = Path(out)
    return out.with_name(f".{out.name}{INPROGRESS_SUFFIX}")


def recover_interrupted(out: str | os.PathLike[str]) -> Path | None:
    """Move the run of a recording into ``out`` that was killed (writer gone) into place, as partial.

    Its chunks are compacted, ``run.json`` says it was interrupted and when its last chunk landed,
    and the directory is renamed to ``out``; a log line (logger ``vfiobench``) says where it is.

    Returns:
        ``out`` when a run was recovered; None when there is nothing to recover (no in-progress
        directory, ``out`` exists, or its writer is still running).
    """
    out = Path(out)
    tmp = inprogress_dir(out)
    if out.exists() or not tmp.is_dir() or writer_alive(tmp) is not None:
        return None
    try:
        who = json.loads((tmp / WRITER_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        who = {}
    meta = _read_meta(tmp)
    last = max((p.stat().st_mtime for p in tmp.rglob("*") if p.is_file()), default=None)
    for table, n in _compact_parts(tmp).items():
        meta.tables[table] = n
    meta.status = "partial"
    if last is not None and meta.ended_utc is None:
        meta.ended_utc = utc_from_epoch(last)
    meta.error = meta.error or (
        f"interrupted: the recording process (pid {who.get('pid', '?')}) ended without closing the run; "
        "recovered by vfiobench"
    )
    _write_json_atomic(tmp / RUN_JSON, meta.to_dict())
    (tmp / WRITER_JSON).unlink(missing_ok=True)
    os.replace(tmp, out)
    log.warning(
        "%s: the recording into it was interrupted (pid %s is gone); its partial run is recovered there",
        out,
        who.get("pid", "?"),
    )
    return out


class RunWriter:
    """Record one run atomically; a context manager.

    Example:
        >>> meta = RunMeta(run_id="r1", variant="stock", source="synthetic")   # doctest: +SKIP
        >>> with RunWriter("data/runs/r1", meta) as w:                          # doctest: +SKIP
        ...     w.append("pba_toggle", chunk)   # as often as chunks arrive
        ...     w.meta.probes["pba_toggle"] = ProbeStats("memory_region_set_enabled", 37, 0)

    On a clean exit the run is ``complete``; on an exception (Ctrl-C included) it is ``partial``
    (``failed`` for anything but an interruption) with the error recorded, and the exception
    propagates. Either way the run is renamed into place and loads.
    """

    def __init__(self, out: str | os.PathLike[str], meta: RunMeta, *, overwrite: bool = False) -> None:
        self.out = Path(out)
        self.meta = meta
        self.overwrite = overwrite
        self.tmp = self.out.with_name(f".{self.out.name}{INPROGRESS_SUFFIX}")
        self._parts: dict[str, int] = {}
        self._closed = False

    @property
    def path(self) -> Path:
        """The in-progress directory (attachments go here while recording)."""
        return self.tmp

    def __enter__(self) -> Self:
        if self.tmp.exists():
            pid = writer_alive(self.tmp)
            if pid is not None:
                raise RunStoreError(
                    f"{self.out}: pid {pid} is recording into it now", "choose another --out or stop it"
                )
            if recover_interrupted(self.out) is not None and not self.overwrite:
                raise RunStoreError(
                    f"{self.out}: already exists (the partial run of an interrupted recording, recovered "
                    "there just now)",
                    "choose another --out, or load it: it kept what was recorded",
                )
        if self.out.exists():
            if not self.overwrite:
                raise RunStoreError(f"{self.out}: already exists", "choose another --out or remove it")
            shutil.rmtree(self.out)
        if self.tmp.exists():  # an interrupted recording's leftovers, kept only when nothing else is
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        _write_json_atomic(self.tmp / WRITER_JSON, _writer_identity())
        self.meta.status = "partial"
        self.flush_meta()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if self._closed:
            return
        if exc is None:
            self.close("complete")
        else:
            interrupted = isinstance(exc, KeyboardInterrupt | SystemExit)
            self.meta.error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            self.close("partial" if interrupted else "failed")

    def flush_meta(self) -> None:
        """Write the current metadata to ``run.json`` in the in-progress directory (atomically)."""
        self.meta.tables = {t: self.meta.tables.get(t, 0) for t in self._parts} | {
            t: n for t, n in self.meta.tables.items() if t not in self._parts
        }
        _write_json_atomic(self.tmp / RUN_JSON, self.meta.to_dict())

    def append(self, table: str, data: TableData) -> int:
        """Append a chunk of rows to ``table``; returns the number of rows written.

        Each chunk becomes one complete Parquet file immediately (crash-safe). Empty chunks still
        register the table, so a probe that saw nothing leaves an empty table with its schema.
        """
        arrow = to_arrow(data)
        n = self._parts.get(table, 0)
        parts = self.tmp / f"{table}.parts"
        parts.mkdir(exist_ok=True)
        pq.write_table(arrow, parts / f"part-{n:06d}.parquet")
        self._parts[table] = n + 1
        self.meta.tables[table] = self.meta.tables.get(table, 0) + arrow.num_rows
        return int(arrow.num_rows)

    def write_table(self, table: str, data: TableData) -> int:
        """Write a whole table at once (same as one :meth:`append`)."""
        return self.append(table, data)

    def attach(self, name: str, src: str | os.PathLike[str] | None = None, text: str | None = None) -> Path:
        """Copy a file (or write ``text``) into the run as an attachment, e.g. a console log."""
        dest = self.tmp / name
        if text is not None:
            dest.write_text(text, encoding="utf-8")
        elif src is not None:
            shutil.copyfile(src, dest)
        else:
            raise ValueError("attach needs src or text")
        return dest

    def close(self, status: Status = "complete") -> Path:
        """Compact chunks, write the final ``run.json`` and move the run into place."""
        if self._closed:
            return self.out
        _compact_parts(self.tmp)
        (self.tmp / WRITER_JSON).unlink(missing_ok=True)
        self.meta.status = status
        if self.meta.ended_utc is None:  # a recording exported later (the lab) brings its own
            self.meta.ended_utc = utc_now()
        self.flush_meta()
        os.replace(self.tmp, self.out)
        self._closed = True
        return self.out
