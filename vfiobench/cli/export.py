"""``vfiobench export perfetto``: runs as a Perfetto trace (ui.perfetto.dev, trace processor).

Imports nothing heavy; :mod:`vfiobench.export.perfetto` is loaded when the command runs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vfiobench.errors import VfioBenchError

EPILOG = """\
examples:
  vfiobench export perfetto data/sample/pba-stock-mask-every-irq-kvm-r0-p --out stock.pftrace
  vfiobench export perfetto data/runs/lab --out lab.pftrace      every run below the directory

Open the file in https://ui.perfetto.dev (or trace_processor): one process per run, a thread track
per QEMU/kernel thread with a slice per probe call, CPU tracks for the host interrupt context, a
track per guest vector with one slice per interrupt, a flow per interrupt through its stages,
counters of events per second, and the run's metadata on an instant event named "run".
"""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``export`` with its ``perfetto`` subcommand."""
    export = subparsers.add_parser(
        "export", help="write runs in other tools' formats (Perfetto traces)", description=__doc__
    )
    sub = export.add_subparsers(dest="export_command", metavar="FORMAT", required=True)
    p = sub.add_parser(
        "perfetto",
        help="write runs as one Perfetto trace (.pftrace)",
        description="Write runs as one Perfetto protobuf trace.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", type=Path, help="run directories, or directories of runs")
    p.add_argument("--out", type=Path, required=True, help="the .pftrace file to write")
    p.set_defaults(func=perfetto)


def perfetto(args: argparse.Namespace) -> int:
    """Write the trace and print what it holds."""
    from vfiobench.export.perfetto import write_perfetto
    from vfiobench.store import load_runs

    runs = load_runs(args.runs)
    if not len(runs):
        raise VfioBenchError(
            f"no runs in {', '.join(map(str, args.runs))}", "name run directories (they hold a run.json)"
        )
    s = write_perfetto(runs, args.out)
    slices = ", ".join(f"{name} {n:,}" for name, n in sorted(s.slices.items()))
    print(
        f"vfiobench export: {len(runs)} runs -> {s.path} ({s.path.stat().st_size:,} bytes): "
        f"slices {slices}; {s.flows:,} interrupt flows; {s.counters:,} counter samples"
    )
    return 0
