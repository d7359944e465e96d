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

from vfiobench.store.meta import (
    INPROGRESS_SUFFIX,
    MISSES_COUNTED_FROM,
    RUN_JSON,
    SCHEMA_VERSION,
    Check,
    HostInfo,
    Kind,
    ProbeMode,
    ProbeStats,
    QemuInfo,
    RunMeta,
    Source,
    Status,
    WorkloadInfo,
    kernel_counts_misses,
    utc_from_epoch,
    utc_now,
)
from vfiobench.store.query import query
from vfiobench.store.runs import Run, RunSet, find_runs, load_run, load_runs
from vfiobench.store.writer import (
    RunWriter,
    TableData,
    inprogress_dir,
    recover_interrupted,
    to_arrow,
    writer_alive,
)

__all__ = [
    "INPROGRESS_SUFFIX",
    "MISSES_COUNTED_FROM",
    "RUN_JSON",
    "SCHEMA_VERSION",
    "Check",
    "HostInfo",
    "Kind",
    "ProbeMode",
    "ProbeStats",
    "QemuInfo",
    "Run",
    "RunMeta",
    "RunSet",
    "RunWriter",
    "Source",
    "Status",
    "TableData",
    "WorkloadInfo",
    "find_runs",
    "inprogress_dir",
    "kernel_counts_misses",
    "load_run",
    "load_runs",
    "query",
    "recover_interrupted",
    "to_arrow",
    "utc_from_epoch",
    "utc_now",
    "writer_alive",
]
