"""run.json: the metadata of a run (:class:`RunMeta` and its parts), schema-versioned, read and written.

A reader tolerates keys it does not know at every level (a newer writer's run loads); a wrong shape
or an unknown schema version is a named :class:`~vfiobench.errors.RunStoreError`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

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


def utc_from_epoch(seconds: float) -> str:
    """A Unix time (``time.time()``, e.g. from the lab's L1) as :func:`utc_now` writes it."""
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
