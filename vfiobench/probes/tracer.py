"""The tracer: one context manager owns the BPF object, from resolution to detach.

One cohesive engine (over 500 lines): attach, drain, flush and detach share the BPF object's
lifetime and its failure paths, which must be read as one.

Python API (what ``vfiobench record`` and the lab's job script call)::

    from vfiobench.store import RunMeta, RunWriter
    from vfiobench.probes.tracer import Tracer

    meta = RunMeta(run_id="r1", variant="stock", source="lab")
    with RunWriter("data/runs/r1", meta) as writer:
        with Tracer(pid=qemu_pid, probes=["set_irqs_ioctl", "pba_toggle"], writer=writer) as tracer:
            start_workload()
            while workload_running():
                tracer.poll()              # drain the rings; chunks reach the run store as they come
            # or: tracer.run(duration=10)  # poll until the duration, the target's exit or Ctrl-C/SIGTERM
        # leaving the block detached the probes, drained the rings, stored the lost counts
    print(meta.probes["pba_toggle"].events, meta.probes["pba_toggle"].lost)

What happens, in order:

1. :func:`~vfiobench.probes.resolve.resolve_targets` checks root, tracefs, BCC, the tracepoints,
   kprobes, the binary and its symbols, raising a named error before anything is compiled.
2. Kernel headers for BCC are found or prepared (:mod:`~vfiobench.probes.headers`).
3. The program (:mod:`~vfiobench.probes.program`) is compiled once and each probe attached;
   uprobes sit on the first emulated instruction (:func:`vfiobench.qemu.binary.probe_offset`).
4. :meth:`Tracer.poll` drains every probe's ring buffer with a
   :class:`~vfiobench.probes.ringbuf.RingReader` (batches decoded with numpy), converts the records to
   table rows (``pba_toggle`` gets ``is_pba`` from :mod:`~vfiobench.probes.regions`), and hands chunks
   to a background thread that appends them to the run (``RunWriter.append``) every
   ``flush_seconds`` or ``flush_rows`` rows.
5. :meth:`Tracer.stop` (also on any exception, Ctrl-C included) detaches every probe, drains what is
   left, reads the lost counters (ring-buffer reserve failures, per probe, from a per-CPU map) and
   the in-kernel histograms, writes the last chunks and stores ``events``/``lost`` per probe in
   ``run.json``.

Without a writer the tracer keeps every row in memory (:meth:`Tracer.frames`), which tests and
benchmarks use.
"""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
import types
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Self

import numpy as np

from vfiobench.buckets import DEFAULT_SUB_BUCKET_BITS
from vfiobench.errors import BccError, ProbeError
from vfiobench.probes.catalog import DEFAULT_IRQ_NAME_PREFIX, DEFAULT_PROBES, ProbeSpec, get_probe
from vfiobench.probes.headers import headers_env
from vfiobench.probes.histogram import hist_table, read_hist_map
from vfiobench.probes.program import Program, build_program
from vfiobench.probes.regions import RegionNames
from vfiobench.probes.resolve import Resolution, resolve_targets
from vfiobench.probes.ringbuf import RingReader
from vfiobench.probes.uprobes import attach_uprobe
from vfiobench.qemu.binary import inspect_binary
from vfiobench.schema import IRQ_PATH_EVENTS, PBA_REGIONS
from vfiobench.store import ProbeMode, ProbeStats, QemuInfo, RunWriter, kernel_counts_misses

_IRQ_PATH_NAMES = np.array([*IRQ_PATH_EVENTS, "unknown"])


def to_table(
    spec: ProbeSpec, raw: np.ndarray[Any, Any], regions: RegionNames | None = None
) -> np.ndarray[Any, Any]:
    """Convert raw event records of ``spec`` to table rows (columns: ``spec.columns``)."""
    dtype = spec.table_dtype
    out = np.empty(raw.size, dtype=dtype)
    for name in dtype.names or ():
        if name in ("is_pba", "event"):
            continue
        out[name] = raw[name]
    if spec.name == "irq_path":
        out["event"] = _IRQ_PATH_NAMES[np.minimum(raw["event"], len(IRQ_PATH_EVENTS))]
    if spec.name == "pba_toggle":
        if regions is not None and raw.size:
            regions.resolve(np.unique(raw["mr"]).tolist())
            out["is_pba"] = regions.is_pba(raw["mr"])
        else:
            out["is_pba"] = False
    return out


class _ChunkWriter:
    """Appends chunks to a :class:`RunWriter` from one background thread.

    Parquet writes are slow and the rings must keep draining meanwhile; every call on the writer
    happens on that one thread.
    """

    def __init__(self, writer: RunWriter) -> None:
        self.writer = writer
        self.queue: queue.Queue[tuple[str, Any] | None] = queue.Queue()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._loop, name="vfiobench-writer", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is None:
                return
            if self.error is not None:
                continue
            table, data = item
            try:
                if table == "":
                    data()  # a callable: e.g. flush_meta
                else:
                    self.writer.append(table, data)
            except BaseException as e:
                self.error = e

    def append(self, table: str, data: np.ndarray[Any, Any]) -> None:
        self.queue.put((table, data))

    def call(self, fn: Callable[[], object]) -> None:
        self.queue.put(("", fn))

    def close(self) -> None:
        self.queue.put(None)
        self.thread.join()
        if self.error is not None:
            raise self.error


def _b(name: str | None) -> bytes:
    """A BCC name argument as bytes (BCC warns with a DeprecationWarning on str)."""
    assert name is not None, "probe spec without a function/symbol name"
    return name.encode()


def _proc_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a]


class _StopSignals:
    """Within the block, SIGINT and SIGTERM are noted instead of interrupting (main thread only).

    The poll loop checks :attr:`signum` between batches, so a signal never lands in the middle of a
    batch: a ring whose consumer position was not yet advanced, or decoded rows not yet queued for
    writing, would otherwise be lost (or leave numpy views pinning the ring's mapping).
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def _note(self, signum: int, frame: types.FrameType | None) -> None:
        self.signum = signum

    def __enter__(self) -> _StopSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._note)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old.clear()

    def raise_if_signalled(self) -> None:
        """Raise :class:`KeyboardInterrupt` naming the signal, if one arrived."""
        if self.signum is not None:
            raise KeyboardInterrupt(f"signal {signal.Signals(self.signum).name}")


class Tracer:
    """Attach probes to a QEMU process (or any process), stream their events, detach on exit.

    Not thread-safe: :meth:`poll` and :meth:`stop` may run on different threads, but never at the
    same time (e.g. a drain thread and the main thread sharing a lock).

    Args:
        pid: the target process (its threads are traced; ``None``: every process, uprobes then
            need ``qemu``).
        qemu: the binary to place uprobes in (default: ``/proc/PID/exe``).
        probes: probe names from :data:`~vfiobench.probes.catalog.PROBES`.
        writer: the run to append tables to (``None``: keep rows in memory, see :meth:`frames`).
        histogram: count durations in in-kernel log-linear histograms instead of streaming events.
        buffer_pages: ring buffer size per probe, in pages (rounded up to a power of two).
        sub_bucket_bits: histogram precision (``2**bits`` sub-buckets per power of two).
        flush_seconds: append buffered rows to the run at least this often.
        flush_rows: ... or as soon as this many rows are buffered.
        run_version: run ``BINARY -version`` for the run's metadata (default: when the binary's
            name contains "qemu").
        irq_name_prefix: ``irq_path`` records host IRQ handlers whose name starts with this.
        pid_map: filter on a map of traced processes instead of ``pid`` (``-DVB_PID_MAP``; used by
            :class:`vfiobench.probes.session.TracerSession`, which fills the map).
        store_rows: keep the drained rows (in the run, or in memory without a writer); False:
            they only reach the :attr:`observers` (the flight recorder keeps its own bounded window).

    Raises:
        ProbeError: no probes, an unknown one, or ``irq_path`` in histogram mode.
    """

    def __init__(
        self,
        pid: int | None,
        qemu: str | os.PathLike[str] | None = None,
        probes: Sequence[str] = DEFAULT_PROBES,
        writer: RunWriter | None = None,
        *,
        histogram: bool = False,
        buffer_pages: int = 2048,
        sub_bucket_bits: int = DEFAULT_SUB_BUCKET_BITS,
        flush_seconds: float = 2.0,
        flush_rows: int = 500_000,
        run_version: bool | None = None,
        irq_name_prefix: str = DEFAULT_IRQ_NAME_PREFIX,
        pid_map: bool = False,
        store_rows: bool = True,
    ) -> None:
        if not probes:
            raise ProbeError("no probes selected", "name at least one with --probe")
        if histogram and "irq_path" in probes:
            raise ProbeError(
                "irq_path records events of several kinds and has no histogram mode",
                "record it without --histogram, or leave it out",
            )
        self.pid = pid
        self.qemu = qemu
        self.specs = [get_probe(p) for p in dict.fromkeys(probes)]
        self.writer = writer
        self.histogram = histogram
        self.buffer_pages = buffer_pages
        self.sub_bucket_bits = sub_bucket_bits
        self.flush_seconds = flush_seconds
        self.flush_rows = flush_rows
        self.run_version = run_version
        self.store_rows = store_rows
        self.program: Program = build_program(
            self.specs,
            pid=pid or 0,
            pid_map=pid_map,
            ringbuf_pages=buffer_pages,
            histogram=histogram,
            sub_bucket_bits=sub_bucket_bits,
            irq_name_prefix=irq_name_prefix,
        )
        self.resolution: Resolution | None = None
        self.counts: dict[str, int] = {s.name: 0 for s in self.specs}
        self.lost: dict[str, int] = {s.name: 0 for s in self.specs}
        self.misses: dict[str, int | None] = {s.name: None for s in self.specs}  # None: not measured
        self.targets: dict[str, str] = {s.name: s.target for s in self.specs}
        self.regions = RegionNames(pid) if pid else None
        self._bpf: Any = None
        self._readers: dict[str, RingReader] = {}
        self._pending: dict[str, list[np.ndarray[Any, Any]]] = {s.name: [] for s in self.specs}
        self._pending_rows = 0
        self._last_flush = time.monotonic()
        self._last_total = 0.0
        self._memory: dict[str, list[np.ndarray[Any, Any]]] = {s.name: [] for s in self.specs}
        self._chunks: _ChunkWriter | None = None
        self._attached: list[tuple[str, dict[str, Any]]] = []
        self._stopped = False
        self.started_ns = 0
        #: Called with ``(probe name, rows)`` for every batch :meth:`poll` drains (e.g. a live view).
        self.observers: list[Callable[[str, np.ndarray[Any, Any]], None]] = []

    # ---- set-up ---------------------------------------------------------------------------------

    def resolve(self) -> Resolution:
        """Run every prerequisite check and resolve targets (nothing is attached)."""
        self.resolution = resolve_targets(self.specs, self.pid, self.qemu)
        return self.resolution

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self._cleanup()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        self.stop()

    def start(self) -> None:
        """Resolve, compile, attach and open the ring readers (:meth:`__enter__` calls it)."""
        res = self.resolve()
        self._compile()
        self._attach(res, self.pid if self.pid else -1)
        self._open_readers()
        self.started_ns = time.monotonic_ns()
        if self.writer is not None:
            self._record_meta(res)
            self._chunks = _ChunkWriter(self.writer)
            self._chunks.call(self.writer.flush_meta)

    def _compile(self) -> None:
        """Compile and load the program (BCC)."""
        os.environ.update(headers_env())
        from bcc import BPF

        try:
            # bytes throughout: BCC warns (DeprecationWarning) on every str argument
            self._bpf = BPF(text=self.program.text.encode(), cflags=list(self.program.cflags))
        except Exception as e:
            raise BccError(
                f"BCC could not compile the probes: {e}", "see the compiler output above"
            ) from None

    def _open_readers(self) -> None:
        if not self.histogram:
            for spec in self.specs:
                self._readers[spec.name] = RingReader(self._bpf[spec.ring.encode()].map_fd, spec.dtype)

    def _attach(self, res: Resolution, upid: int, *, kernel: bool = True) -> None:
        """Attach every probe's parts resolved in ``res``; uprobes filtered to ``upid`` (-1: any).

        Args:
            res: Where the uprobes go (one binary).
            upid: The process the uprobes fire in (-1: every process running the binary).
            kernel: Attach the tracepoints and kprobes too (a session attaches them once, and the
                uprobes once per binary).
        """
        b = self._bpf
        for spec in self.specs:
            try:
                if spec.kind == "tracepoint" and kernel:
                    for tp, fn in (
                        ("syscalls:sys_enter_ioctl", spec.entry_fn),
                        ("syscalls:sys_exit_ioctl", spec.return_fn),
                    ):
                        b.attach_tracepoint(tp=tp.encode(), fn_name=_b(fn))
                        self._attached.append(("tracepoint", {"tp": tp.encode()}))
                elif spec.kind == "kprobe" and kernel:
                    event = _b(spec.symbol)
                    b.attach_kprobe(event=event, fn_name=_b(spec.entry_fn))
                    self._attached.append(("kprobe", {"event": event}))
                    b.attach_kretprobe(event=event, fn_name=_b(spec.return_fn))
                    self._attached.append(("kretprobe", {"event": event}))
                elif spec.kind == "composite":
                    self._attach_parts(spec, res, upid, kernel=kernel)
                elif spec.kind == "uprobe":
                    t = res.uprobes[spec.name]
                    addr = t.address + t.offset
                    self._attach_uprobe(spec.entry_fn, t.binary, addr, upid, ret=False)
                    self._attach_uprobe(spec.return_fn, t.binary, addr, upid, ret=True)
                    self.targets[spec.name] = f"uprobe+uretprobe:{t.binary}:{t.symbol}+{t.offset:#x}" + (
                        " (single-stepped)" if t.single_stepped else ""
                    )
            except ProbeError as e:
                e.message = f"could not attach probe {spec.name} ({spec.target}): {e.message}"
                raise
            except Exception as e:
                raise ProbeError(f"could not attach probe {spec.name} ({spec.target}): {e}") from None

    def _attach_parts(self, spec: ProbeSpec, res: Resolution, upid: int, *, kernel: bool = True) -> None:
        """Attach every part of a composite probe that resolved; its target lists the skipped ones."""
        b = self._bpf
        for t in res.parts[spec.name]:
            part = t.part
            if t.skipped is not None or (part.kind != "uprobe" and not kernel):
                continue
            try:
                if part.kind == "tracepoint" and t.raw:
                    for tp, fn in zip(part.targets, part.raw_fns, strict=False):
                        if fn is None:
                            continue
                        name = tp.split(":", 1)[1].encode()
                        b.attach_raw_tracepoint(tp=name, fn_name=_b(fn))
                        self._attached.append(("raw_tracepoint", {"tp": name}))
                elif part.kind == "tracepoint":
                    for tp, fn in zip(part.targets, (part.entry_fn, part.return_fn), strict=False):
                        if fn is None:
                            continue
                        b.attach_tracepoint(tp=tp.encode(), fn_name=_b(fn))
                        self._attached.append(("tracepoint", {"tp": tp.encode()}))
                elif part.kind == "kprobe":
                    assert t.kernel_symbol is not None
                    event = _b(t.kernel_symbol)
                    b.attach_kprobe(event=event, fn_name=_b(part.entry_fn))
                    self._attached.append(("kprobe", {"event": event}))
                else:
                    u = t.uprobe
                    assert u is not None
                    addr = u.address + u.offset
                    self._attach_uprobe(part.entry_fn, u.binary, addr, upid, ret=False)
                    if part.return_fn is not None:
                        self._attach_uprobe(part.return_fn, u.binary, addr, upid, ret=True)
                    for _caller, _offset, iaddr in t.inlined:
                        self._attach_uprobe(part.inline_fn, u.binary, iaddr, upid, ret=False)
            except ProbeError as e:
                e.message = f"could not attach {spec.name} part {part.event} ({t.describe()}): {e.message}"
                raise
            except Exception as e:
                raise ProbeError(
                    f"could not attach {spec.name} part {part.event} ({t.describe()}): {e}"
                ) from None
        self.targets[spec.name] = "; ".join(t.describe() for t in res.parts[spec.name])

    def _attach_uprobe(self, fn: str | None, binary: Path, addr: int, upid: int, *, ret: bool) -> None:
        """One uprobe or uretprobe, registered so it coexists with bpftrace's and perf's (:mod:`.uprobes`)."""
        ev_name = attach_uprobe(self._bpf, _b(fn), str(binary).encode(), addr, upid, ret=ret)
        self._attached.append(("uprobe_event", {"ev_name": ev_name}))

    def attached_events(self) -> list[str]:
        """What is attached now: one entry per tracepoint, kprobe, uprobe and uretprobe."""
        return [
            (v.decode() if isinstance(v, bytes) else str(v))
            for _kind, args in self._attached
            for v in args.values()
        ]

    def skipped_parts(self) -> dict[str, str]:
        """Parts of composite probes not attached, ``{"probe.event": reason}`` (after :meth:`resolve`)."""
        if self.resolution is None:
            return {}
        return {
            f"{name}.{t.part.event}": t.skipped
            for name, targets in self.resolution.parts.items()
            for t in targets
            if t.skipped is not None
        }

    def _record_meta(self, res: Resolution) -> None:
        assert self.writer is not None
        meta = self.writer.meta
        meta.kind = "probed"
        if res.binary is not None or self.pid:
            binary = res.binary
            if binary is None and self.pid:
                try:
                    binary = Path(os.readlink(f"/proc/{self.pid}/exe"))
                except OSError:
                    binary = None
            run_version = self.run_version if self.run_version is not None else "qemu" in str(binary)
            info = inspect_binary(binary, run_version=run_version) if binary else None
            meta.qemu = QemuInfo(
                path=info.path if info else "",
                version=info.version if info else "",
                build_id=info.build_id if info else "",
                cmdline=_cmdline(self.pid) if self.pid else [],
                patches=meta.qemu.patches,
            )
        self._update_probe_stats()

    def _update_probe_stats(self) -> None:
        if self.writer is None:
            return
        mode: ProbeMode = "histogram" if self.histogram else "stream"
        for spec in self.specs:
            self.writer.meta.probes[spec.name] = ProbeStats(
                self.targets[spec.name],
                self.counts[spec.name],
                self.lost[spec.name],
                mode,
                missed=self.misses[spec.name],
            )

    # ---- recording ------------------------------------------------------------------------------

    def poll(self) -> int:
        """Drain every ring once; returns the number of events decoded (0 in histogram mode).

        In histogram mode it refreshes :attr:`counts` from the kernel's running totals instead
        (at most twice a second).
        """
        n = 0
        if self.histogram and self._bpf is not None and time.monotonic() - self._last_total >= 0.5:
            self._last_total = time.monotonic()
            totals = self._bpf[b"hist_total"]
            for spec in self.specs:
                self.counts[spec.name] = sum(int(x) for x in totals[totals.Key(spec.probe_id)])
        for spec in self.specs:
            reader = self._readers.get(spec.name)
            if reader is None:
                continue
            raw = reader.read()
            if raw.size:
                rows = to_table(spec, raw, self.regions)
                self.counts[spec.name] += rows.size
                n += rows.size
                for observe in self.observers:
                    observe(spec.name, rows)
                if self.store_rows and self.writer is None:
                    self._memory[spec.name].append(rows)
                elif self.store_rows:
                    self._pending[spec.name].append(rows)
                    self._pending_rows += rows.size
        if self._chunks is not None and (
            self._pending_rows >= self.flush_rows or time.monotonic() - self._last_flush >= self.flush_seconds
        ):
            self._flush()
        return n

    def read_lost(self) -> dict[str, int]:
        """Current lost-event counts per probe (ring-buffer reserve failures), from the kernel."""
        if self._bpf is None:
            return dict(self.lost)
        table = self._bpf[b"lost"]
        for spec in self.specs:
            self.lost[spec.name] = sum(int(x) for x in table[table.Key(spec.probe_id)])
        return dict(self.lost)

    def read_misses(self) -> dict[str, int | None]:
        """Runs of each probe's BPF programs the kernel skipped, per probe (``recursion_misses``).

        The kernel runs one kprobe/tracepoint/uprobe program per CPU at a time: an event that
        fires while another such BPF program (any tool's) is running on that CPU, e.g. a hard IRQ
        arriving then, does not run its program. Such events never reach the ring, so
        :meth:`read_lost` cannot count them; this is an upper bound of them (for ``irq_path`` it
        includes skipped runs on other drivers' interrupts). The kernel counts these skips only
        from Linux 6.7 (:data:`vfiobench.store.MISSES_COUNTED_FROM`); before that the programs'
        counters stay 0 whatever was skipped, so they are not read and every probe keeps None
        ("not measured").
        """
        if not kernel_counts_misses():
            return dict(self.misses)
        out: dict[str, int | None] = {}
        funcs = getattr(self._bpf, "funcs", {}) if self._bpf is not None else {}
        for spec in self.specs:
            names = {spec.entry_fn, spec.return_fn}
            for part in spec.parts:
                names |= {part.entry_fn, part.return_fn, part.inline_fn, *part.raw_fns}
            total = 0
            for name in names - {None}:
                fn = funcs.get(_b(name))
                if fn is None:
                    continue
                try:
                    with open(f"/proc/self/fdinfo/{fn.fd}", encoding="ascii") as f:
                        for line in f:
                            if line.startswith("recursion_misses:"):
                                total += int(line.split()[1])
                except OSError:
                    pass
            out[spec.name] = total
        self.misses.update(out)
        return out

    def read_histograms(self) -> dict[str, np.ndarray[Any, Any]]:
        """Dense per-bucket counts per probe (histogram mode)."""
        table = self._bpf[b"hist"]
        return {s.name: read_hist_map(table, s.probe_id, self.sub_bucket_bits) for s in self.specs}

    def _flush(self) -> None:
        assert self._chunks is not None and self.writer is not None
        for name, chunks in self._pending.items():
            if chunks:
                data = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
                self._chunks.append(name, data)
                chunks.clear()
        self._pending_rows = 0
        self._last_flush = time.monotonic()
        self.read_lost()
        self._update_probe_stats()
        self._chunks.call(self.writer.flush_meta)

    def target_alive(self) -> bool:
        """False once the target process has exited (always True without a pid)."""
        return self.pid is None or _proc_alive(self.pid)

    def run(
        self,
        duration: float | None = None,
        *,
        interval: float = 0.01,
        stop_on_exit: bool = True,
        on_tick: Callable[[Tracer], None] | None = None,
        tick_seconds: float = 0.5,
        ctrl_c_stops: bool = False,
        after_poll: Callable[[int], str | None] | None = None,
    ) -> str:
        """Poll until ``duration`` elapses, the target exits, or Ctrl-C/SIGTERM.

        Ctrl-C and SIGTERM are held off until the current batch is decoded and queued, then raised as
        :class:`KeyboardInterrupt` (main thread), which propagates after the caller's ``with``
        blocks have detached and saved everything: the run is cut short (partial).

        Args:
            duration: Seconds to record (None: until the target exits or a signal).
            interval: Seconds to sleep between polls when the rings are nearly empty.
            stop_on_exit: Return once the target process has exited.
            on_tick: Called with the tracer every ``tick_seconds`` (the live counts line).
            tick_seconds: How often ``on_tick`` runs.
            ctrl_c_stops: Ctrl-C (SIGINT) is the way this recording is meant to end (no
                ``duration``): it returns ``"Ctrl-C"`` instead of raising, so the run is complete.
                SIGTERM still raises.
            after_poll: Called after every poll with the ``CLOCK_MONOTONIC`` time (ns) at which
                that poll began (every event that ended before then has been drained); a string
                returned ends the recording, and is returned as the reason (the flight recorder).

        Returns:
            Why it stopped: ``"duration"``, ``"target exited"``, ``"Ctrl-C"``, or what
            ``after_poll`` returned.
        """
        deadline = None if duration is None else time.monotonic() + duration
        next_tick = time.monotonic()
        with _StopSignals() as signals:
            while True:
                if ctrl_c_stops and signals.signum == signal.SIGINT:
                    return "Ctrl-C"  # leaving the with block drains what is left, as at the duration
                signals.raise_if_signalled()
                began_ns = time.monotonic_ns()
                got = self.poll()
                if after_poll is not None and (why := after_poll(began_ns)) is not None:
                    return why
                now = time.monotonic()
                if on_tick is not None and now >= next_tick:
                    on_tick(self)
                    next_tick = now + tick_seconds
                if deadline is not None and now >= deadline:
                    return "duration"
                if stop_on_exit and not self.target_alive():
                    return "target exited"
                if got < 1024:
                    time.sleep(interval)

    # ---- tear-down ------------------------------------------------------------------------------

    def _detach(self) -> None:
        b = self._bpf
        for kind, args in reversed(self._attached):
            try:
                if kind == "tracepoint":
                    b.detach_tracepoint(tp=args["tp"])
                elif kind == "raw_tracepoint":
                    b.detach_raw_tracepoint(tp=args["tp"])
                elif kind == "kprobe":
                    b.detach_kprobe(event=args["event"])
                elif kind == "kretprobe":
                    b.detach_kretprobe(event=args["event"])
                else:
                    b.detach_uprobe_event(args["ev_name"])
            except Exception:
                pass
        self._attached.clear()

    def stop(self) -> None:
        """Detach, drain, store counts, lost events and histograms; idempotent.

        Runs on every exit of the ``with`` block; a second Ctrl-C while it runs is deferred until
        it finishes, so the run is always left complete or partial, never torn.
        """
        if self._stopped:
            return
        self._stopped = True
        old = None
        if threading.current_thread() is threading.main_thread():
            old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            if self._bpf is None:
                return
            self.read_misses()
            self._detach()
            while self.poll():
                pass
            self.read_lost()
            if self.histogram:
                hists = self.read_histograms()
                for name, counts in hists.items():
                    self.counts[name] = int(counts.sum())
                    table = hist_table(counts, self.sub_bucket_bits)
                    if self.writer is None:
                        self._memory[name].append(table)
                    else:
                        self._pending[name].append(table)
            if self._chunks is not None and self.writer is not None:
                for spec in self.specs:  # a probe that saw nothing still leaves its (empty) table
                    if not self.histogram and self.store_rows and self.counts[spec.name] == 0:
                        self._pending[spec.name].append(np.empty(0, dtype=spec.table_dtype))
                self._flush()
                if self.regions is not None and "pba_toggle" in self.counts and not self.histogram:
                    self._chunks.append(PBA_REGIONS, self.regions.table())
                self._chunks.call(self.writer.flush_meta)
        finally:
            self._cleanup()
            if old is not None:
                signal.signal(signal.SIGINT, old)

    def _cleanup(self) -> None:
        for reader in self._readers.values():
            reader.close()
        self._readers.clear()
        if self._bpf is not None:
            self._bpf.cleanup()
            self._bpf = None
        if self._chunks is not None:
            chunks, self._chunks = self._chunks, None
            chunks.close()

    # ---- results without a writer ---------------------------------------------------------------

    def frames(self) -> dict[str, np.ndarray[Any, Any]]:
        """Rows recorded per probe when no writer was given (structured arrays)."""
        out = {}
        for name, chunks in self._memory.items():
            if chunks:
                out[name] = np.concatenate(chunks)
            else:
                spec = get_probe(name)
                out[name] = np.empty(0, dtype=spec.table_dtype)
        return out


def probe_names(values: Iterable[str] | None) -> list[str]:
    """The probes to attach: ``values`` (validated) or the defaults."""
    names = list(values) if values else list(DEFAULT_PROBES)
    for n in names:
        get_probe(n)
    return names
