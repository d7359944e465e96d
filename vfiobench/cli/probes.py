"""``vfiobench record`` and ``vfiobench doctor``: attach the probes to a QEMU process; check the machine.

Imports nothing heavy at load time (BCC loads when a command runs).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from vfiobench.errors import ProbeError, VfioBenchError

if TYPE_CHECKING:
    from vfiobench.probes.flight import CaptureWriter, FlightRecorder
    from vfiobench.probes.tracer import Tracer
    from vfiobench.store import RunMeta, RunWriter

RECORD_EPILOG = """\
examples:
  vfiobench record --pid $(pgrep -f qemu-system) --out data/runs/r1           default probes until Ctrl-C
  vfiobench record --pid 1234 --probe pba_toggle --duration 10 --out data/runs/r2 --variant stock
  vfiobench record --pid 1234 --histogram --duration 60 --out data/runs/r3    in-kernel histograms only
  vfiobench record --pid 1234 --print-bpf                                     show the program, load nothing
  vfiobench record --pid 1234 --trigger 'pba_toggle.dur > 5ms' --out data/runs/slow
        flight recorder: keep the last 2 s in memory; save the window around the first PBA toggle
        slower than 5 ms (2 s before it, 1 s after) as data/runs/slow/trigger-1, then stop;
        data/runs/slow/whole has the whole period's duration histograms

probes: set_irqs_ioctl (VFIO_DEVICE_SET_IRQS ioctls), set_vector_signal (kernel
vfio_msi_set_vector_signal; needs kprobes), pba_toggle (QEMU memory_region_set_enabled, PBA calls
marked), transaction_commit (QEMU memory_region_transaction_commit), irq_path (one interrupt's
path: host vfio-msix IRQs, eventfd_signal, KVM MSI injection, QEMU vfio_msi_interrupt, msix_notify,
msix_set_pending; parts this machine lacks are skipped and named), kvm_ioctls (QEMU's
KVM_SET_GSI_ROUTING, KVM_IRQFD and KVM_SIGNAL_MSI ioctls). Default: set_irqs_ioctl,
pba_toggle, transaction_commit. Recording stops at --duration, when the process exits, or on
Ctrl-C. Without --duration, Ctrl-C is the normal end and the run is complete; a recording cut
short (Ctrl-C before --duration, SIGTERM) is kept as a loadable partial run.

Flight recorder (--trigger EXPR): EXPR is PROBE.FIELD OP VALUE, clauses joined with 'and' (one
probe per trigger; repeat --trigger for alternatives). FIELD is a column of the probe's table (dur
and ts stand for dur_ns and ts_ns); OP is one of > >= < <= == !=; VALUE takes a unit on times (ns,
us, ms, s), true/false on flags. E.g. 'set_irqs_ioctl.dur > 200us', 'pba_toggle.dur > 1ms and
pba_toggle.is_pba == true', 'set_irqs_ioctl.ret != 0'. Events stream as usual but only a window
stays in memory: at least --window seconds, never more than --ring-bytes (rows plus 256 bytes per
stored chunk) nor --ring-events; past a bound the oldest go first, and a window that lost rows to
it is saved as a partial run that says so. --max-triggers K saves up to K windows, re-arming after
each (0: no limit; the recording then ends at --duration, exit or Ctrl-C). The whole period is
summarised in OUT/whole as duration histograms (what --histogram writes; with --trigger the events
stream and --histogram adds nothing).

Uprobes are registered as bpftrace and perf register theirs (reference-counter offset 0), so they
share a function with those tools; if another tracer holds a uprobe there in a way that cannot be
shared, record and doctor name it and stop.
"""

DOCTOR_EPILOG = """\
examples:
  vfiobench doctor                                 check this machine for the default probes
  vfiobench doctor --qemu ./build/qemu-system-x86_64 --probe set_vector_signal
  vfiobench doctor --pid 1234                      also attach and detach exactly what record would
  vfiobench doctor --prepare-headers               also merge Debian's kernel headers for BCC
"""


def register(subparsers: Any) -> None:
    """Add the ``record`` and ``doctor`` subcommands."""
    r = subparsers.add_parser(
        "record",
        help="attach eBPF probes to a QEMU process and record a run",
        description="Attach eBPF probes to a running QEMU (or any process) and record their events "
        "into a run directory (run.json + one Parquet table per probe).",
        epilog=RECORD_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    r.add_argument("--pid", type=int, required=True, help="the QEMU process to trace")
    r.add_argument("--qemu", type=Path, help="QEMU binary for the uprobes (default: /proc/PID/exe)")
    r.add_argument("--probe", action="append", metavar="NAME", help="a probe to attach (repeatable)")
    r.add_argument("--duration", type=float, help="seconds to record (default: until Ctrl-C or exit)")
    r.add_argument("--histogram", action="store_true", help="count durations in kernel histograms only")
    r.add_argument(
        "--buffer-pages", type=int, default=2048, help="ring buffer pages per probe (default: %(default)s)"
    )
    r.add_argument("--sub-bucket-bits", type=int, default=6, help="histogram precision (default: 6)")
    r.add_argument("--out", type=Path, help="run directory to create")
    r.add_argument("--variant", default="unlabelled", help="variant label of the run (default: %(default)s)")
    r.add_argument("--run-id", help="run id (default: the name of --out)")
    r.add_argument("--print-bpf", action="store_true", help="print the BPF program and flags, then exit")
    r.add_argument("--quiet", "-q", action="store_true", help="no live counts")
    f = r.add_argument_group("flight recorder (see below)")
    f.add_argument(
        "--trigger",
        action="append",
        metavar="EXPR",
        help="save the window around the first event matching EXPR, e.g. 'pba_toggle.dur > 5ms' (repeatable)",
    )
    f.add_argument("--window", default="2s", help="time kept before the event (default: %(default)s)")
    f.add_argument("--after", default="1s", help="time saved after the event's end (default: %(default)s)")
    f.add_argument(
        "--max-triggers",
        type=int,
        default=1,
        metavar="K",
        help="windows to save, then stop (0: no limit; default 1)",
    )
    f.add_argument("--ring-bytes", default="128M", help="memory bound of the window (default: %(default)s)")
    f.add_argument("--ring-events", type=int, metavar="N", help="event bound of the window (default: none)")
    r.set_defaults(func=record)

    d = subparsers.add_parser(
        "doctor",
        help="check every prerequisite of the probes and print the fix for each failure",
        description="Check root, tracefs, BCC, kernel headers, tracepoints, kprobes and the QEMU "
        "binary's symbols; exit non-zero when something the chosen probes need is missing.",
        epilog=DOCTOR_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    d.add_argument("--pid", type=int, help="a QEMU process: attach and detach what record would attach to it")
    d.add_argument(
        "--qemu",
        type=Path,
        help="QEMU binary to check (default: /proc/PID/exe, else qemu-system-x86_64 on PATH)",
    )
    d.add_argument("--probe", action="append", metavar="NAME", help="probes that must work (default set)")
    d.add_argument("--prepare-headers", action="store_true", help="merge Debian kernel headers for BCC")
    d.add_argument("--no-compile", action="store_true", help="skip the trial compile of the probes")
    d.set_defaults(func=doctor)


# ---- record -------------------------------------------------------------------------------------


class _LiveLine:
    """One line of per-probe counts: rewritten in place on a terminal, printed every 5 s otherwise."""

    def __init__(self, stream: TextIO, quiet: bool) -> None:
        self.stream = stream
        self.quiet = quiet
        self.tty = stream.isatty()
        self.last_plain = 0.0
        self.started = time.monotonic()
        self.width = 0

    def text(self, tracer: Any) -> str:
        lost = tracer.read_lost()
        parts = [
            f"{name} {count:,}" + (f" (lost {lost[name]:,})" if lost[name] else "")
            for name, count in tracer.counts.items()
        ]
        return f"{time.monotonic() - self.started:7.1f}s  " + "  ".join(parts)

    def __call__(self, tracer: Any) -> None:
        if self.quiet:
            return
        if self.tty:
            line = self.text(tracer)
            self.stream.write("\r" + line.ljust(self.width))
            self.width = len(line)
            self.stream.flush()
        elif time.monotonic() - self.last_plain >= 5.0:
            self.last_plain = time.monotonic()
            print(self.text(tracer), file=self.stream, flush=True)

    def end(self) -> None:
        if self.tty and not self.quiet and self.width:
            self.stream.write("\n")
            self.stream.flush()
            self.width = 0


class _LiveTable:
    """The live view on a terminal (:mod:`vfiobench.cli.live`), refreshed every second."""

    def __init__(self, tracer: Tracer, names: list[str]) -> None:
        from rich.console import Console
        from rich.live import Live

        from vfiobench.cli.live import LiveView

        self.view = LiveView(names)
        tracer.observers.append(self.view.observe)
        self.console = Console(stderr=True)
        self.live = Live(console=self.console, auto_refresh=False, transient=False)
        self.next = time.monotonic() + 1.0
        self.live.start()

    def __call__(self, tracer: Any) -> None:
        if time.monotonic() >= self.next:
            self.next = time.monotonic() + 1.0
            self.view.tick()
            self.live.update(self.view.table(tracer), refresh=True)

    def end(self) -> None:
        if self.live.is_started:
            self.live.stop()


def record(args: argparse.Namespace) -> int:
    """Record a run; returns 0 (Ctrl-C/SIGTERM propagate as KeyboardInterrupt after saving)."""
    from vfiobench.probes.program import build_program
    from vfiobench.probes.tracer import Tracer, probe_names

    names = probe_names(args.probe)
    if args.print_bpf:
        from vfiobench.probes.catalog import get_probe

        program = build_program(
            [get_probe(n) for n in names],
            pid=args.pid,
            ringbuf_pages=args.buffer_pages,
            histogram=args.histogram and not args.trigger,  # the flight recorder streams
            sub_bucket_bits=args.sub_bucket_bits,
        )
        print(program.describe())
        return 0
    if args.out is None:
        raise VfioBenchError("record needs --out RUN_DIR", "name the run directory to create")
    if args.buffer_pages < 1:
        raise VfioBenchError(f"--buffer-pages {args.buffer_pages} must be at least 1")
    if args.duration is not None and args.duration <= 0:
        raise VfioBenchError(f"--duration {args.duration} must be positive")

    from vfiobench.store import RunMeta, RunWriter

    run_id = args.run_id or args.out.name
    flight = _Flight.from_args(args, names, run_id) if args.trigger else None
    meta = RunMeta(run_id=f"{run_id}-whole" if flight else run_id, variant=args.variant, source="host")
    tracer = Tracer(
        args.pid,
        args.qemu,
        names,
        histogram=args.histogram and flight is None,
        buffer_pages=args.buffer_pages,
        sub_bucket_bits=args.sub_bucket_bits,
        store_rows=flight is None,
    )
    tracer.resolve()  # named errors before the run directory exists
    tty = sys.stderr.isatty() and not args.quiet
    live: _LiveLine | _LiveTable = _LiveTable(tracer, names) if tty else _LiveLine(sys.stderr, args.quiet)
    run_dir = args.out / "whole" if flight else args.out
    try:
        why = _record_into(RunWriter(run_dir, meta), tracer, args, live, flight)
    except ProbeError:
        live.end()  # the terminal back to normal before the error line
        if not tracer.started_ns:  # nothing attached, nothing recorded: leave no failed run behind
            shutil.rmtree(args.out, ignore_errors=True)
        raise
    except BaseException:
        live.end()
        raise
    for name in names:
        stats = meta.probes[name]
        print(f"{name:20} {stats.events:>12,} events  {stats.lost:>10,} lost  ({stats.target})")
    for part, reason in tracer.skipped_parts().items():
        print(f"{part.split('.')[0]}: skipped {part.split('.', 1)[1]}: {reason}")
    if flight is not None:
        flight.report(args.out)
    print(f"vfiobench record: stopped ({why}); run {meta.status} in {run_dir}")
    return 0


def _record_into(
    run: RunWriter,
    tracer: Tracer,
    args: argparse.Namespace,
    live: _LiveLine | _LiveTable,
    flight: _Flight | None = None,
) -> str:
    """Attach, record until the stop condition, detach; returns why it stopped."""
    names = list(tracer.counts)
    with run as writer:
        tracer.writer = writer
        if flight is not None:
            flight.attach(tracer, writer.meta, args.out)
        try:
            with tracer:
                what = f"; flight recorder armed: {flight.describe()}" if flight else ""
                print(
                    f"vfiobench record: attached {', '.join(names)} to pid {args.pid}; recording to "
                    f"{args.out}{what} (Ctrl-C to stop)",
                    file=sys.stderr,
                    flush=True,
                )
                return str(
                    tracer.run(
                        args.duration,
                        on_tick=live,
                        ctrl_c_stops=args.duration is None,
                        after_poll=flight.recorder.after_poll if flight else None,
                    )
                )
        finally:
            live.end()
            if flight is not None:
                flight.close(writer)


class _Flight:
    """``record --trigger``: the recorder on the tracer's stream, its windows' writer, the summary.

    The recording's own run (``OUT/whole``) gets the whole period's duration histograms (histogram-
    mode tables); each saved window is a run ``OUT/trigger-<k>`` (:class:`CaptureWriter`).
    """

    def __init__(self, recorder: FlightRecorder, run_id: str) -> None:
        self.recorder = recorder
        self.run_id = run_id
        self.captures: CaptureWriter | None = None
        self.written: list[Path] = []

    @classmethod
    def from_args(cls, args: argparse.Namespace, names: list[str], run_id: str) -> _Flight:
        """Parse and check every flight-recorder option (one-line errors before anything runs)."""
        from vfiobench.probes.flight import FlightRecorder
        from vfiobench.probes.trigger import parse_duration, parse_size, parse_trigger

        triggers = [parse_trigger(t, names) for t in args.trigger]
        if args.max_triggers < 0:
            raise VfioBenchError(f"--max-triggers {args.max_triggers} must be 0 (no limit) or more")
        if args.ring_events is not None and args.ring_events < 1:
            raise VfioBenchError(f"--ring-events {args.ring_events} must be at least 1")
        if args.out is not None and args.out.exists():
            raise VfioBenchError(f"{args.out}: already exists", "choose another --out or remove it")
        recorder = FlightRecorder(
            triggers,
            before_ns=parse_duration(args.window, "--window"),
            after_ns=parse_duration(args.after, "--after"),
            max_bytes=parse_size(args.ring_bytes, "--ring-bytes"),
            max_events=args.ring_events,
            max_triggers=args.max_triggers,
            sub_bucket_bits=args.sub_bucket_bits,
        )
        return cls(recorder, run_id)

    def describe(self) -> str:
        """The triggers and the window, for the start line."""
        from vfiobench.probes.trigger import describe_triggers

        r = self.recorder
        return (
            f"{describe_triggers(r.triggers)} (window {r.before_ns / 1e9:g} s before, "
            f"{r.after_ns / 1e9:g} s after; ring bound {r.ring.max_bytes / 2**20:g} MiB)"
        )

    def attach(self, tracer: Tracer, meta: RunMeta, out: Path) -> None:
        """Observe the tracer's batches; windows are written into ``out`` with ``meta`` as their base."""
        from vfiobench.probes.flight import CaptureWriter

        r = self.recorder
        self.captures = CaptureWriter(out, meta, r.before_ns, r.after_ns, run_id=self.run_id)
        r.save = self.captures
        r.lost = tracer.read_lost
        tracer.observers.append(r.observe)

    def close(self, writer: RunWriter) -> None:
        """Save a window still open, wait for the windows, add the whole period's histograms."""
        r = self.recorder
        try:
            r.finish()
        finally:
            if self.captures is not None:
                self.written = self.captures.close()
        meta = writer.meta
        for name, table in r.summary_tables().items():
            writer.append(name, table)
            if name in meta.probes:
                meta.probes[name].mode = "histogram"
        meta.labels.update(
            {
                "trigger": [t.text for t in r.triggers],
                "window_before_ns": r.before_ns,
                "window_after_ns": r.after_ns,
                "ring_bytes": r.ring.max_bytes,
                "ring_events": r.ring.max_events,
                "trigger_runs": [f"{self.run_id}-trigger-{c.index}" for c in r.saved],
            }
        )

    def report(self, out: Path) -> None:
        """One line per saved window."""
        for c, path in zip(self.recorder.saved, self.written, strict=False):
            dur = c.event.get("dur_ns", 0) / 1e6
            state = "" if c.complete else f" (incomplete: {c.note})"
            print(
                f"trigger {c.index}: {c.trigger.text} matched a {c.probe} call of {dur:.3f} ms "
                f"({c.matches} match{'es' * (c.matches != 1)} in the window); {c.events_before} {c.probe} "
                f"events before it, {c.events_after} after, saved in {path}{state}"
            )
        if not self.recorder.saved:
            print(f"no event matched {' | '.join(t.text for t in self.recorder.triggers)}")
        print(f"whole period: duration histograms in {out / 'whole'}")


# ---- doctor -------------------------------------------------------------------------------------


@dataclass
class Finding:
    """One line of the doctor's table."""

    ok: bool
    name: str
    detail: str
    fix: str = ""
    needed: bool = True


def _check(name: str, fn: Any, *, needed: bool = True) -> Finding:
    try:
        detail = fn()
        return Finding(True, name, detail or "ok", needed=needed)
    except VfioBenchError as e:
        return Finding(False, name, e.message, e.hint or "", needed)


def doctor_findings(
    qemu: Path | None,
    probes: list[str],
    *,
    prepare: bool = False,
    compile_probes: bool = True,
    pid: int | None = None,
) -> list[Finding]:
    """Every check of ``vfiobench doctor``, in order; see :class:`Finding`.

    The last check compiles the probes and attaches them through the same :class:`Tracer` code as
    ``record`` (to ``pid`` when given, else to this process, which registers the same uprobes on the
    binary without tracing anything), then detaches: a doctor that passes means a record that attaches.
    """
    from vfiobench.probes import headers, resolve
    from vfiobench.probes.catalog import get_probe

    specs = [get_probe(p) for p in probes]
    kinds = {s.kind for s in specs}
    out: list[Finding] = []

    def root() -> str:
        resolve.require_root()
        return "running as root"

    out.append(_check("root", root))
    out.append(_check("tracefs", lambda: f"mounted at {resolve.tracefs()}"))

    def bcc() -> str:
        resolve.require_bcc()
        import bcc as bcc_mod

        return f"bcc {getattr(bcc_mod, '__version__', '?')} from {Path(bcc_mod.__file__ or '').parent}"

    out.append(_check("BCC", bcc))

    def hdrs() -> str:
        status = headers.prepare_headers() if prepare else headers.headers_status()
        if status.source == "none":
            headers.prepare_headers()  # raises with the fix
        if status.source == "mergeable":
            return f"{status.detail}: BCC will merge them on first use (or run --prepare-headers)"
        return status.detail

    out.append(_check("kernel headers", hdrs))

    def tracepoints() -> str:
        resolve.require_ioctl_tracepoints()
        return "syscalls:sys_{enter,exit}_ioctl with the expected layout"

    out.append(_check("syscall tracepoints", tracepoints, needed="tracepoint" in kinds))

    def kprobes() -> str:
        resolve.require_kprobes("vfio_msi_set_vector_signal")
        return "kprobe_events present; vfio_msi_set_vector_signal in /proc/kallsyms"

    out.append(_check("kprobes", kprobes, needed="kprobe" in kinds))

    qemu_path = qemu or _default_qemu(pid)

    def binary() -> str:
        from vfiobench.errors import MissingBinaryError
        from vfiobench.qemu.binary import inspect_binary

        if qemu_path is None:
            raise MissingBinaryError(
                "no qemu-system-x86_64 on PATH", "pass --qemu PATH or install qemu-system-x86"
            )
        info = inspect_binary(qemu_path, run_version="qemu" in qemu_path.name)
        return f"{info.path}: {info.version or 'version unknown'}, build-id {info.build_id or 'none'}"

    out.append(_check("QEMU binary", binary, needed="uprobe" in kinds))
    if qemu_path is not None and out[-1].ok:
        from vfiobench.qemu.binary import ElfFile

        elf = ElfFile(qemu_path)
        for spec in specs:
            if spec.kind != "uprobe":
                continue
            assert spec.symbol is not None
            sym = spec.symbol

            def symbol(sym: str = sym) -> str:
                t = resolve.resolve_uprobe(elf, sym)
                how = "single-stepped (slow, ~20 µs/hit)" if t.single_stepped else "emulated"
                table = elf.require_symbol(sym).table
                return f"{sym} at {t.address:#x} ({table}), probe at +{t.offset:#x}: {how}"

            out.append(_check(f"symbol {spec.name}", symbol))
    for spec in specs:
        if spec.kind != "composite":
            continue
        try:
            parts = resolve.resolve_parts(spec, None, qemu_path)
        except VfioBenchError as e:
            out.append(Finding(False, spec.name, e.message, e.hint or ""))
            continue
        for t in parts:
            where = t.describe().split("=", 1)[1]
            fix = "" if t.skipped is None else "the part is left out; the rest of the probe records"
            out.append(Finding(t.skipped is None, f"{spec.name} {t.part.event}", where, fix, needed=False))
    if compile_probes and all(f.ok for f in out if f.needed):

        def trial() -> str:
            from vfiobench.probes.tracer import Tracer

            tracer = Tracer(pid or os.getpid(), qemu_path, probes)
            t0 = time.monotonic()
            with tracer:
                attached = len(tracer.attached_events())
            whom = f"pid {pid}" if pid else "this process (use --pid for a QEMU process)"
            return (
                f"{', '.join(tracer.program.files)} compiled, {attached} attach points attached to "
                f"{whom} and detached, in {time.monotonic() - t0:.2f} s"
            )

        out.append(_check("compile and attach", trial))
    return out


def _default_qemu(pid: int | None) -> Path | None:
    """The binary ``record`` would probe: ``/proc/PID/exe``, else qemu-system-x86_64 on PATH."""
    if pid is not None:
        try:
            return Path(os.readlink(f"/proc/{pid}/exe"))
        except OSError:
            raise VfioBenchError(f"no process {pid}", "pass the pid of a running QEMU") from None
    return Path(p) if (p := shutil.which("qemu-system-x86_64")) else None


def doctor(args: argparse.Namespace) -> int:
    """Print the findings; exit 1 if something the chosen probes need is missing."""
    from vfiobench.probes.tracer import probe_names

    probes = probe_names(args.probe)
    findings = doctor_findings(
        args.qemu, probes, prepare=args.prepare_headers, compile_probes=not args.no_compile, pid=args.pid
    )
    width = max(len(f.name) for f in findings)
    for f in findings:
        mark = "✓" if f.ok else ("✗" if f.needed else "-")
        print(f"{mark} {f.name:<{width}}  {f.detail}")
        if not f.ok:
            print(
                f"  {'':<{width}}  fix: {f.fix}" + ("" if f.needed else " (not needed for the chosen probes)")
            )
    failed = [f for f in findings if not f.ok and f.needed]
    print(
        f"probes checked: {', '.join(probes)}; "
        + ("all needed checks pass" if not failed else f"{len(failed)} needed check(s) failed")
    )
    return 1 if failed else 0
