"""``vfiobench exporter`` (Prometheus metrics of running QEMUs) and ``vfiobench query`` (SQL over runs).

Imports nothing heavy at load time: BCC, prometheus_client and DuckDB load when a command runs.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from vfiobench.errors import VfioBenchError

log = logging.getLogger("vfiobench.fleet")

EXPORTER_EPILOG = """\
examples:
  vfiobench exporter --listen :9477 --all-qemu              every QEMU on the host, new ones as they start
  vfiobench exporter --listen 127.0.0.1:9477 --pid 1234 --pid 5678
  vfiobench exporter --listen :9477 --all-qemu --probe set_irqs_ioctl --probe pba_toggle

Metrics (labels pid, vm = QEMU's -name or the pid, device = the VM's vfio-pci device when it has
one): vfiobench_set_irqs_total, vfiobench_set_vector_signal_total (kernels with kprobes),
vfiobench_set_enabled_total{pba}, vfiobench_msix_notify_total{vfio},
vfiobench_operation_seconds{operation} (histogram), vfiobench_lost_events_total{probe},
vfiobench_masking_guest, vfiobench_probe_info{probe,mode,target},
vfiobench_probe_error{probe,error}, vfiobench_target_up, vfiobench_target_info{devices}.
Scrape config, alerting and recording rules (vfiobench/fleet/alerts.yml, rules.yml), the systemd
unit and the measured overhead: docs/fleet.md. Stops on SIGTERM or Ctrl-C (probes detached).
"""

QUERY_EPILOG = """\
examples:
  vfiobench query "SELECT host, count(*) FROM runs GROUP BY host" /srv/fleet
  vfiobench query --example toggles-per-interrupt /srv/fleet     top VMs by PBA toggles per interrupt
  vfiobench query --example host-medians /srv/fleet --format csv

Layout: DIR/host=<hostname>/date=<YYYY-MM-DD>/<run>/ (any KEY=VALUE directory becomes a column).
Views: runs (one row per run: run_id, run_dir, host, date, variant, kind, ..., vm, device) and one
view per table (pba_toggle, set_irqs_ioctl, set_vector_signal, transaction_commit, workload, ...),
each with run_id, run_dir, host and date. Join tables to runs on run_dir. See docs/fleet.md.
"""


def register(subparsers: Any) -> None:
    """Add the ``exporter`` and ``query`` subcommands."""
    from vfiobench.fleet.targets import DEFAULT_EXE_PATTERN

    e = subparsers.add_parser(
        "exporter",
        help="serve Prometheus metrics of the probes on running QEMU processes",
        description="Attach the probes in count mode (streaming where a label needs each call) to QEMU "
        "processes and serve their counters, duration histograms and a masking-guest gauge over HTTP.",
        epilog=EXPORTER_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    e.add_argument("--listen", required=True, metavar="HOST:PORT", help="address to serve /metrics on")
    which = e.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--pid", type=int, nargs="+", action="extend", metavar="PID", help="QEMU processes to probe"
    )
    which.add_argument(
        "--all-qemu", action="store_true", help="every QEMU process, followed as they come and go"
    )
    e.add_argument(
        "--exe-pattern",
        default=DEFAULT_EXE_PATTERN,
        metavar="REGEX",
        help="executable names --all-qemu takes for QEMU (full match; default: %(default)s)",
    )
    e.add_argument(
        "--probe", action="append", metavar="NAME", help="a probe to attach (repeatable; default all)"
    )
    e.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default: %(default)s)")
    e.add_argument(
        "--keep-exited",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long an exited process's final values stay (default: %(default)s)",
    )
    e.add_argument(
        "--masking-window", type=float, default=30.0, metavar="SECONDS", help="the masking verdict's window"
    )
    e.add_argument(
        "--masking-threshold",
        type=float,
        default=0.25,
        metavar="RATIO",
        help="PBA toggles or SET_IRQS per interrupt that make a masking guest (default: %(default)s)",
    )
    e.add_argument(
        "--masking-min-events",
        type=int,
        default=10,
        metavar="N",
        help="PBA toggles + SET_IRQS a window needs before the verdict can be 1 (default: %(default)s)",
    )
    e.add_argument(
        "--buffer-pages", type=int, default=128, help="ring-buffer pages per streamed probe and process"
    )
    e.add_argument("--sub-bucket-bits", type=int, default=1, help="histogram buckets per power of two: 2**N")
    e.add_argument(
        "--print-unit",
        action="store_true",
        help="print the systemd unit that runs this command (this vfiobench, these options) and exit",
    )
    e.set_defaults(func=exporter)

    q = subparsers.add_parser(
        "query",
        help="run DuckDB SQL over a tree of runs (hive-partitioned by host and date)",
        description="Run SQL over every run below DIR as one dataset (DuckDB, reading the Parquet files).",
        epilog=QUERY_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    q.add_argument("sql", nargs="?", help="the SQL (omit with --example)")
    q.add_argument("dir", type=Path, help="a run directory or a tree of runs")
    q.add_argument(
        "--example", metavar="NAME", help="run a shipped query: toggles-per-interrupt, host-medians"
    )
    q.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    q.set_defaults(func=query)


def exporter(args: argparse.Namespace) -> int:
    """Serve the metrics until SIGTERM or Ctrl-C; returns 0 after detaching every probe."""
    from vfiobench.fleet.exporter import Exporter, ExporterConfig, parse_listen
    from vfiobench.fleet.probeset import PROBES

    host, port = parse_listen(args.listen)
    for name in args.probe or ():
        if name not in PROBES:
            raise VfioBenchError(f"unknown probe {name!r}", f"choose from {', '.join(PROBES)}")
    for opt in ("interval", "masking_window", "buffer_pages"):
        if getattr(args, opt) <= 0:
            raise VfioBenchError(f"--{opt.replace('_', '-')} {getattr(args, opt)} must be positive")
    if args.keep_exited < 0 or args.masking_threshold <= 0 or not 1 <= args.sub_bucket_bits <= 16:
        raise VfioBenchError(
            "--keep-exited must be >= 0, --masking-threshold > 0 and --sub-bucket-bits in 1..16"
        )
    config = ExporterConfig(
        pids=tuple(args.pid or ()),
        all_qemu=args.all_qemu,
        exe_pattern=args.exe_pattern,
        interval=args.interval,
        keep_exited=args.keep_exited,
        window=args.masking_window,
        threshold=args.masking_threshold,
        min_events=args.masking_min_events,
        probes=tuple(args.probe or PROBES),
        sub_bucket_bits=args.sub_bucket_bits,
        buffer_pages=args.buffer_pages,
    )
    if args.print_unit:
        print(systemd_unit(_command_line(args)), end="")
        return 0
    exp = Exporter(config)
    server = _serve(exp, host, port, args.listen)
    stop = threading.Event()
    old = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        exp.run(stop)
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
        server.shutdown()
        server.server_close()
    log.info("exporter stopped; probes detached")
    return 0


def _command_line(args: argparse.Namespace) -> list[str]:
    """The ``vfiobench exporter`` arguments that reproduce ``args`` (every option spelled out)."""
    out = ["exporter", "--listen", args.listen]
    out += (
        ["--all-qemu", "--exe-pattern", args.exe_pattern] if args.all_qemu else ["--pid", *map(str, args.pid)]
    )
    for name in args.probe or ():
        out += ["--probe", name]
    for opt in (
        "interval",
        "keep_exited",
        "masking_window",
        "masking_threshold",
        "masking_min_events",
        "buffer_pages",
        "sub_bucket_bits",
    ):
        out += [f"--{opt.replace('_', '-')}", f"{getattr(args, opt):g}"]
    return out


def systemd_unit(argv: list[str]) -> str:
    """The shipped unit (``vfiobench/fleet/vfiobench-exporter.service``) running ``vfiobench ARGV``.

    ExecStart runs it with this Python (``python -m vfiobench``), so a virtualenv install works as
    a system one.
    """
    import shlex
    from importlib import resources

    text = (resources.files("vfiobench.fleet") / "vfiobench-exporter.service").read_text(encoding="utf-8")
    # systemd expands % specifiers and $ variables in ExecStart: doubled, they stay literal
    command = shlex.join([sys.executable, "-m", "vfiobench", *argv]).replace("%", "%%").replace("$", "$$")
    lines = [f"ExecStart={command}" if ln.startswith("ExecStart=") else ln for ln in text.splitlines()]
    return "\n".join(lines) + "\n"


def _serve(exp: Any, host: str, port: int, listen: str) -> Any:
    """Start the HTTP server (its own thread) with the fleet collector and the process metrics."""
    from prometheus_client import CollectorRegistry, ProcessCollector, start_http_server

    from vfiobench.fleet.metrics import FleetCollector

    registry = CollectorRegistry()
    registry.register(FleetCollector(exp.views, exp.config.sub_bucket_bits, exp.host_lost))
    ProcessCollector(registry=registry)
    try:
        server, _thread = start_http_server(port, host, registry)
    except OSError as e:
        raise VfioBenchError(
            f"cannot listen on {listen}: {e.strerror or e}", "choose another port, or stop what holds it"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    log.info(f"exporter listening on http://{shown}:{server.server_port}/metrics")
    return server


def query(args: argparse.Namespace) -> int:
    """Print the result of the SQL (or of a shipped example)."""
    from vfiobench.fleet.query import EXAMPLES, fleet_query

    if args.example is not None:
        if args.example not in EXAMPLES:
            raise VfioBenchError(f"unknown example {args.example!r}", f"choose from {', '.join(EXAMPLES)}")
        if args.sql is not None:
            raise VfioBenchError("give either SQL or --example, not both")
        sql = EXAMPLES[args.example]
    elif args.sql is None:
        raise VfioBenchError("no SQL given", 'vfiobench query "SELECT ..." DIR, or --example NAME DIR')
    else:
        sql = args.sql
    if not args.dir.exists():
        raise VfioBenchError(f"{args.dir}: no such directory", "name a tree of run directories")
    df = fleet_query(args.dir, sql)
    if args.format == "csv":
        df.to_csv(sys.stdout, index=False)
    elif args.format == "json":
        print(df.to_json(orient="records", date_format="iso"))
    else:
        print(df.to_string(index=False) if len(df.columns) else "(no columns)")
    return 0
