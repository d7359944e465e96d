"""The ``vfiobench`` command: ``doctor · record · run · report · lab · qemu · export · exporter · query``.

Each subcommand lives in a small module of this package exposing ``register(subparsers)``; those modules
import nothing heavy at load time (no bcc, no papermill) so ``vfiobench --help`` stays fast.
Expected failures (:class:`~vfiobench.errors.VfioBenchError`) print one line and exit non-zero;
Ctrl-C exits 130 after the command has saved what it had.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vfiobench import __version__
from vfiobench.errors import VfioBenchError

#: Modules that register subcommands, in ``--help`` order.
COMMAND_MODULES: tuple[str, ...] = (
    "vfiobench.cli.report",
    "vfiobench.cli.lab",
    "vfiobench.cli.probes",
    "vfiobench.cli.qemu",
    "vfiobench.cli.experiment",
    "vfiobench.cli.export",
    "vfiobench.cli.fleet",
)

EPILOG = """\
examples:
  vfiobench report data/sample --out reports/            one HTML report per run + index.html
  vfiobench report data/sample --compare --out reports/  the A/B report across variants
"""


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="vfiobench",
        description="Measure the VFIO MSI-X interrupt path: eBPF probes, run store, A/B reports.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"vfiobench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


class _StderrLines(logging.Handler):
    """Log records as ``vfiobench: <message>`` on whatever ``sys.stderr`` is at the time."""

    def emit(self, record: logging.LogRecord) -> None:
        print(f"vfiobench: {record.getMessage()}", file=sys.stderr)


def _log_to_stderr() -> None:
    """Show the package's log lines (e.g. a recovered interrupted run) on stderr, once."""
    log = logging.getLogger("vfiobench")
    if not any(isinstance(h, _StderrLines) for h in log.handlers):
        log.addHandler(_StderrLines())
        log.setLevel(logging.INFO)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit status (tests call this directly)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    _log_to_stderr()
    try:
        return int(args.func(args) or 0)
    except VfioBenchError as e:
        print(f"vfiobench: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("vfiobench: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
