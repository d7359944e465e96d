"""Run every ``benchmarks/bench_*.py`` module's ``main()`` (or those named on the command line).

Usage::

    python -m benchmarks                 # all of them, in name order
    python -m benchmarks analysis        # only bench_analysis.py
    python -m benchmarks --list          # what exists

A module's ``main`` is called without arguments, or with ``[]`` if it takes an ``argv`` (so it sees
its defaults, not this runner's arguments). A benchmark that raises or returns non-zero is reported
and the others still run; the exit status is non-zero if any failed. Benchmarks time things
against a baseline measured side by side; they never pass or fail on a threshold.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import time
import traceback
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent


def discover() -> list[str]:
    """Names (without the ``bench_`` prefix) of every benchmark module, sorted."""
    return sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules([str(HERE)])
        if m.name.startswith("bench_")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description="run vfiobench benchmarks")
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: all); e.g. analysis")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        print("\n".join(available))
        return 0
    unknown = [n for n in args.names if n.removeprefix("bench_") not in available]
    if unknown:
        print(
            f"benchmarks: no benchmark {', '.join(unknown)} (have: {', '.join(available)})", file=sys.stderr
        )
        return 2
    selected = [n.removeprefix("bench_") for n in args.names] or available
    failed: list[str] = []
    for name in selected:
        print(f"=== bench_{name} ===", flush=True)
        t0 = time.perf_counter()
        try:
            module = importlib.import_module(f"benchmarks.bench_{name}")
            # a main(argv=None) that parses arguments must not see this runner's own arguments
            takes_argv = bool(inspect.signature(module.main).parameters)
            rc = module.main([]) if takes_argv else module.main()
            if isinstance(rc, int) and rc != 0:
                failed.append(name)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            return 130
        except Exception:  # a broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
        status = " (FAILED)" if name in failed else ""
        print(f"=== bench_{name}: {time.perf_counter() - t0:.1f} s{status} ===\n", flush=True)
    if failed:
        print(f"benchmarks failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
