"""The run store: one directory per run, ``run.json`` beside one Parquet table per probe or workload.

Layout of a run directory::

    <run_dir>/run.json                 metadata (:class:`RunMeta`), schema-versioned
    <run_dir>/<table>.parquet          one table per probe/workload, columns named with units
    <run_dir>/<table>.parts/*.parquet  chunks of a table still being recorded (see below)
    <run_dir>/*.log, ...               attachments (console log, QEMU trace log)

Writing is atomic. :class:`RunWriter` records into ``.<name>.inprogress`` beside the target and
renames it to ``<name>`` when it closes. Chunks appended while recording land as numbered part
files, each a complete Parquet file the moment it is written, so a writer killed outright leaves
every chunk it had written readable; :func:`load_run` reads an in-progress directory as a
``partial`` run. A writer left by an exception or Ctrl-C compacts what it had, marks the run
``partial`` (or ``failed``) with the error, and still renames it into place.

Many runs load as one long table with ``run_id`` and ``variant`` columns (:class:`RunSet`), and a
directory tree of runs can be queried as one Parquet dataset with DuckDB (:func:`query`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import platform
import re
import shutil
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self, TypeAlias, TypeVar, cast, get_args

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from vfiobench.errors import RunStoreError

SCHEMA_VERSION = 1
RUN_JSON = "run.json"
INPROGRESS_SUFFIX = ".inprogress"

Status = Literal["complete", "partial", "failed"]
Source = Literal["host", "lab", "synthetic"]
Kind = Literal["probed", "probe-free"]
#: How a probe recorded: every event through a ring buffer, or in-kernel histograms.
ProbeMode = Literal["stream", "histogram"]

_D = TypeVar("_D")


def utc_now() -> str:
    """Return the current time as an ISO 8601 UTC string with microseconds (``...Z``)."""
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class HostInfo:
    """Where a run was recorded."""

    kernel_release: str = ""
    cpu_model: str = ""
    hostname: str = ""
    cpus: int = 0

    @classmethod
    def current(cls) -> HostInfo:
        """Describe the machine this process runs on."""
        cpu = ""
        with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        return cls(platform.release(), cpu, platform.node(), os.cpu_count() or 0)


@dataclass
class QemuInfo:
    """The QEMU build a run exercised: enough to rebuild or re-download it."""

    path: str = ""
    version: str = ""
    build_id: str = ""
    cmdline: list[str] = field(default_factory=list)
    patches: list[str] = field(default_factory=list)


@dataclass
class WorkloadInfo:
    """The guest workload a run drove, and its parameters."""

    name: str = ""
    params: dict[str, Any] = field(default_factory=dict)


#: The first Linux release whose ``trace_call_bpf`` counts the kprobe, tracepoint and uprobe
#: program runs it skips (``recursion_misses``); earlier kernels skip them without a trace.
MISSES_COUNTED_FROM = (6, 7)


def kernel_counts_misses(release: str | None = None) -> bool:
    """True when the running kernel (or ``release``) counts skipped tracing-program runs."""
    m = re.match(r"(\d+)\.(\d+)", release or platform.release())
    return m is not None and (int(m[1]), int(m[2])) >= MISSES_COUNTED_FROM


@dataclass
class ProbeStats:
    """One probe of a run: what it attached to, how many events it kept and how many it lost.

    ``lost`` counts events the ring had no room for. ``missed`` counts runs of the probe's BPF
    programs the kernel skipped because another BPF program was active on that CPU (the programs'
    ``recursion_misses``): events that never reached the ring, an upper bound since a skipped run
    may have been filtered out anyway (e.g. another device's IRQ). None where not measured: the
    kernel counts these skips only from Linux 6.7 (loading a run recorded on an older kernel
    gives None whatever run.json holds), and older runs did not record them.
    """

    target: str
    events: int = 0
    lost: int = 0
    mode: ProbeMode = "stream"
    missed: int | None = None


@dataclass
class Check:
    """One ground-truth cross-check (e.g. probe count vs. QEMU trace log count)."""

    name: str
    expected: float
    observed: float
    ok: bool
    detail: str = ""


@dataclass
class RunMeta:
    """Everything needed to trust and reproduce a run; serialised as ``run.json``.

    ``status`` is ``partial`` while recording and after an interruption, ``complete`` after a clean
    close, ``failed`` when the recording raised. ``kind`` says whether probes were attached
    (``probed``: counts and per-operation times) or not (``probe-free``: end-to-end timings without
    probe overhead). ``labels`` holds free-form experiment coordinates (``accel``, ``repetition``,
    ``warmup``, ``experiment``).
    """

    run_id: str
    variant: str
    source: Source
    status: Status = "partial"
    kind: Kind = "probed"
    started_utc: str = field(default_factory=utc_now)
    ended_utc: str | None = None
    host: HostInfo = field(default_factory=HostInfo.current)
    qemu: QemuInfo = field(default_factory=QemuInfo)
    workload: WorkloadInfo = field(default_factory=WorkloadInfo)
    probes: dict[str, ProbeStats] = field(default_factory=dict)
    checks: list[Check] = field(default_factory=list)
    tables: dict[str, int] = field(default_factory=dict)
    labels: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    vfiobench_version: str = field(default_factory=lambda: _package_version())
    schema_version: int = SCHEMA_VERSION

    @property
    def lost_events(self) -> int:
        """Total events lost over all probes."""
        return sum(p.lost for p in self.probes.values())

    @property
    def checks_ok(self) -> bool:
        """True when every ground-truth check passed (vacuously true without checks)."""
        return all(c.ok for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready dictionary written to ``run.json``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = RUN_JSON) -> RunMeta:
        """Validate and build from a parsed ``run.json``.

        Raises:
            RunStoreError: the mapping is not a vfiobench run of a known schema version.
        """
        if not isinstance(data, Mapping) or "schema_version" not in data:
            raise RunStoreError(f"{where}: no schema_version field; not a vfiobench run")
        version = data["schema_version"]
        if version != SCHEMA_VERSION:
            raise RunStoreError(
                f"{where}: schema_version {version!r} is not {SCHEMA_VERSION}",
                "upgrade vfiobench to read runs written by a newer version",
            )
        for key in ("run_id", "variant", "source"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise RunStoreError(f"{where}: field {key!r} is missing or not a non-empty string")
        for key, allowed in (
            ("status", get_args(Status)),
            ("source", get_args(Source)),
            ("kind", get_args(Kind)),
        ):
            if key in data and data[key] not in allowed:
                raise RunStoreError(f"{where}: {key} {data[key]!r} is not one of {', '.join(allowed)}")
        try:
            d = dict(data)
            d["host"] = _known(HostInfo, d.get("host", {}))
            d["qemu"] = _known(QemuInfo, d.get("qemu", {}))
            d["workload"] = _known(WorkloadInfo, d.get("workload", {}))
            d["probes"] = {k: _known(ProbeStats, v) for k, v in d.get("probes", {}).items()}
            if not kernel_counts_misses(d["host"].kernel_release):
                # runs recorded before the recorder knew better stored the kernel's 0 here
                for p in d["probes"].values():
                    p.missed = None
            d["checks"] = [_known(Check, c) for c in d.get("checks", [])]
            return _known(cls, d)
        except (TypeError, AttributeError) as e:
            raise RunStoreError(f"{where}: malformed field ({e})") from None


def _known(cls: type[_D], fields: Mapping[str, Any]) -> _D:
    """``cls(**fields)`` without the keys ``cls`` does not know: run.json from a newer writer loads.

    Raises:
        TypeError: ``fields`` is not a mapping, or lacks a required field.
    """
    if not isinstance(fields, Mapping):
        raise TypeError(f"{cls.__name__} is {type(fields).__name__}, not an object")
    known = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in fields.items() if k in known})


def _package_version() -> str:
    from vfiobench import __version__

    return __version__


def _write_json_atomic(path: Path, data: Mapping[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


TableData: TypeAlias = pd.DataFrame | np.ndarray[Any, Any] | pa.Table


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
        pq.write_table(merged, run_dir / f"{table}.parquet")
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
        meta.ended_utc = dt.datetime.fromtimestamp(last, dt.UTC).isoformat(timespec="milliseconds")
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
        self.meta.ended_utc = utc_now()
        self.flush_meta()
        os.replace(self.tmp, self.out)
        self._closed = True
        return self.out


def _read_meta(run_dir: Path) -> RunMeta:
    path = run_dir / RUN_JSON
    if not run_dir.is_dir():
        raise RunStoreError(f"{run_dir}: no such run directory")
    if not path.is_file():
        raise RunStoreError(f"{path}: missing; {run_dir} is not a vfiobench run directory")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RunStoreError(f"{path}: not valid JSON ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RunStoreError(f"{path}: unreadable ({e})") from None
    return RunMeta.from_dict(data, where=str(path))


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
