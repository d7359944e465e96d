"""``vfiobench qemu build``: build (or reuse) a patched QEMU variant and print its path.

Imports nothing heavy; :mod:`vfiobench.qemu.build` is loaded when the command runs.
"""

from __future__ import annotations

import argparse
import sys

EPILOG = """\
examples:
  vfiobench qemu build --list                          the patches, the property each adds, QEMU versions
  vfiobench qemu build                                 Debian's QEMU source, unpatched (same recipe)
  vfiobench qemu build --patch pba-always-on           one property; prints the binary's path
  vfiobench qemu build --patch pba-always-on --patch msix-fd-cache --check
  vfiobench qemu build --release trixie --patch pba-always-on    trixie's QEMU 10.0, in a trixie chroot
  vfiobench qemu build --patch ./my-change.patch       a patch file of your own (cached by content)
  flock /tmp/vfiobench-heavy.lock vfiobench qemu build --patch pba-disable   (lock seen as held)
  vfiobench qemu prune --dry-run                        what other Debian versions left in the cache

The first build fetches `apt-get source qemu` and compiles x86_64-softmmu (~4 min on 2 cores);
a different patch set rebuilds incrementally (seconds); an unchanged one is a cache hit.
--release: bookworm (QEMU 7.2) builds on this machine; trixie (10.0) and trixie-backports build
in a chroot of that release (made once, ~3 min), so the binary runs in that release's lab L1.
trixie-backports builds its own QEMU 11.1 source when the mirror serves it, else the newest source
sid lists that the mirror serves (10.2.2 on the project's mirror): a notice on stderr says which
and why, and build.json and the runs' `qemu_source` label record it.
Cache: ~/.cache/vfiobench/qemu/, other releases in ~/.cache/vfiobench/qemu/<release>/
(VFIOBENCH_CACHE overrides ~/.cache/vfiobench).
"""


def _add_release(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--release",
        metavar="R",
        help="the lab release whose Debian QEMU source to use: bookworm (default), trixie, trixie-backports",
    )


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``qemu`` with its ``build`` and ``prune`` subcommands."""
    qemu = subparsers.add_parser(
        "qemu",
        help="build patched QEMU variants (x-pba-always-on, x-pba-disable, x-msix-fd-cache)",
        description="Patched QEMU variants built from each lab release's Debian QEMU source.",
    )
    sub = qemu.add_subparsers(dest="qemu_command", metavar="SUBCOMMAND", required=True)
    build = sub.add_parser(
        "build",
        help="build (or reuse from the cache) QEMU with the selected patches; prints the binary path",
        description="Build qemu-system-x86_64 from `apt-get source qemu` with the selected patches, "
        "keeping symbols; cached by source version and patch contents. Prints the binary's path.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "--patch",
        action="append",
        default=[],
        metavar="NAME",
        help="a patch to apply: a name from --list or a path to a .patch file (repeatable)",
    )
    _add_release(build)
    build.add_argument("--list", action="store_true", help="list the shipped patches and exit")
    build.add_argument(
        "--check",
        action="store_true",
        help="after building, verify `-device vfio-pci,help` lists each patch's property and run "
        "QEMU's own qtests closest to vfio/MSI-X (ivshmem, device-introspect, i440fx, q35)",
    )
    build.add_argument(
        "--no-lock",
        action="store_true",
        help="do not take /tmp/vfiobench-heavy.lock (not needed under `flock` in a parent: detected)",
    )
    build.add_argument("--json", action="store_true", help="print build.json instead of the path")
    build.set_defaults(func=run_build)
    prune = sub.add_parser(
        "prune",
        help="remove cached source trees, work trees and builds of other Debian QEMU versions",
        description="Remove what the QEMU cache holds for Debian source versions other than the one "
        "`apt-get source qemu` fetches now (or --keep): about 900 MB per version. Every build of the "
        "kept version stays.",
    )
    _add_release(prune)
    prune.add_argument("--keep", metavar="VERSION", help="the source version to keep (default: apt's)")
    prune.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    prune.set_defaults(func=run_prune)


def run_build(args: argparse.Namespace) -> int:
    """Handle ``vfiobench qemu build``."""
    import json

    from vfiobench.errors import QemuError
    from vfiobench.qemu import build as qb
    from vfiobench.qemu.patchset import (
        SERIES_NAME,
        available_patches,
        patch_versions,
        series_patch,
        series_versions,
    )

    if args.list:
        for p in available_patches():
            names = ", ".join(p.properties) or "-"
            majors = "QEMU " + ",".join(patch_versions(p.name))
            print(f"{p.name:<16} {names:<20} {majors:<12} {p.subject}")
        series = series_patch()
        if series is not None:
            majors = "QEMU " + ",".join(series_versions())
            added = ", ".join(series.properties)
            print(f"{SERIES_NAME:<16} {added} {majors}: the auto-detection series (vfiobench/qemu/series/)")
        return 0
    result = qb.build_qemu(args.patch, release=args.release, lock=not args.no_lock, progress=qb.main_progress)
    if result.cached:
        qb.main_progress(
            f"cached build {result.build_dir.name} (patches: {', '.join(result.patches) or 'none'})"
        )
    if result.source_fallback:
        print(f"vfiobench: notice: QEMU source {result.qemu_source}", file=sys.stderr, flush=True)
    if args.check:
        props = qb.device_properties(result.binary, release=result.release)
        for name in result.properties:
            if name not in props:
                raise QemuError(f"{result.binary} does not list vfio-pci property {name}")
            qb.main_progress(f"vfio-pci {name}={props[name]}")
        log = qb.run_qtests(
            args.patch, release=args.release, lock=not args.no_lock, progress=qb.main_progress
        )
        qb.main_progress(f"qtests passed; log {log}")
    if args.json:
        print(json.dumps(result.meta, indent=2))
    else:
        print(result.binary)
    sys.stdout.flush()
    return 0


def run_prune(args: argparse.Namespace) -> int:
    """Handle ``vfiobench qemu prune``."""
    from vfiobench.qemu import build as qb

    site = qb.build_site(args.release)
    root = site.base
    keep = args.keep or site.version()
    removed = qb.prune_cache(keep, root, dry_run=args.dry_run)
    verb = "would remove" if args.dry_run else "removed"
    for path, size in removed:
        print(f"{verb} {path} ({size / 1e6:,.0f} MB)")
    total = sum(size for _, size in removed)
    print(f"{verb} {len(removed)} entries, {total / 1e6:,.0f} MB; kept everything of {keep} in {root}")
    return 0
