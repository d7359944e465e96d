"""``vfiobench lab build|run|shell``: the emulated VFIO lab (a nested VM with a real vfio-pci device).

Imports nothing heavy at load time; the lab modules load when a subcommand runs.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vfiobench.errors import LabError
from vfiobench.lab.releases import DEFAULT_RELEASE, RELEASES
from vfiobench.lab.workloads import WORKLOADS

if TYPE_CHECKING:
    from vfiobench.lab.image import Image, Recipe

EPILOG = """\
examples:
  vfiobench lab build                                       build (or reuse) the L1 image (~2-3 min once)
  vfiobench lab build --release trixie-backports            L1 on Linux 7.3 with QEMU 11.1 (backports)
  vfiobench lab run --accel kvm --workload mask-every-irq --cycles 1000 --out data/runs/kvm-mask
  vfiobench lab run --accel kvm --accel tcg --workload mask-every-irq --workload no-mask \\
      --cycles 1000 --no-probes --out data/runs/lab-baseline   one boot, four runs (one per cell)
  vfiobench lab run --accel kvm --workload burst --burst 8 --vectors 0,1,2,3 --duration 10 --out r/
  vfiobench lab run --qemu build/qemu-system-x86_64 --qemu-arg=-global \\
      --qemu-arg=vfio-pci.x-no-kvm-msix=on --accel kvm --workload mask-every-irq --out r/nokvmmsix
  vfiobench lab shell                                       an interactive L1 (Ctrl-A x to kill)

Every L1 boot keeps its console log (attached to each run as console.log). One boot runs every
accel x workload cell given; with several cells --out holds one run per cell, named
<accel>-<workload>[-probe-free].
"""


def register(subparsers: Any) -> None:
    """Add the ``lab`` subcommand group."""
    p = subparsers.add_parser(
        "lab",
        help="the emulated VFIO lab: build the image, run workloads in a nested VM, or open a shell",
        description="The emulated VFIO lab: L1 (TCG) with an ivshmem-doorbell device bound to vfio-pci, "
        "L2 QEMU driven over qtest.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="lab_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="build (or reuse) the cached L1 image")
    _add_release(b)
    b.add_argument("--force", action="store_true", help="rebuild even when cached")
    b.add_argument("--keep-root", action="store_true", help="keep the unpacked root tree for inspection")
    b.set_defaults(func=cmd_build)

    r = sub.add_parser(
        "run",
        help="boot L1 and record workload cells into runs",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_release(r)
    r.add_argument(
        "--accel", action="append", choices=("kvm", "tcg"), help="L2 accelerator (repeatable; default kvm)"
    )
    r.add_argument(
        "--workload",
        action="append",
        choices=WORKLOADS,
        help="workload (repeatable; default mask-every-irq)",
    )
    n = r.add_mutually_exclusive_group()
    n.add_argument("--cycles", type=int, default=None, help="cycles per cell (default 100)")
    n.add_argument("--duration", type=float, default=None, help="seconds per cell instead of a cycle count")
    r.add_argument(
        "--vectors", default="0", help="MSI-X vectors used, comma-separated (default 0; device has 4)"
    )
    r.add_argument("--burst", type=int, default=4, help="triggers per mask window for 'burst' (default 4)")
    r.add_argument(
        "--warmup-cycles",
        type=int,
        default=0,
        help="cycles run before the measure phase, not measured (e.g. past x-msix-mask-auto's threshold)",
    )
    r.add_argument("--qemu", default=None, help="host path of the L2 QEMU binary (default: L1's Debian QEMU)")
    r.add_argument("--qemu-arg", action="append", default=[], help="extra L2 QEMU argument (repeatable)")
    r.add_argument("--variant", default="stock", help="variant label of the runs (default stock)")
    r.add_argument("--no-probes", action="store_true", help="probe-free runs (end-to-end timings)")
    r.add_argument("--both", action="store_true", help="each cell twice: probed and probe-free")
    r.add_argument("--timeout", type=float, default=None, help="kill L1 after this many seconds")
    r.add_argument("--keep-share", action="store_true", help="keep the 9p share directory (debugging)")
    r.add_argument("--overwrite", action="store_true", help="replace existing run directories")
    r.add_argument("--out", "-o", required=True, type=Path, help="run directory (several cells: parent dir)")
    r.set_defaults(func=cmd_run)

    s = sub.add_parser("shell", help="boot L1 with an interactive shell on this terminal")
    _add_release(s)
    s.set_defaults(func=cmd_shell)


def _add_release(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--release",
        choices=tuple(RELEASES),
        default=DEFAULT_RELEASE,
        help=f"Debian release of L1: its kernel, QEMU and BCC (default {DEFAULT_RELEASE})",
    )


def _sigterm_as_exit() -> None:
    """SIGTERM unwinds like Ctrl-C, so every child process is ended and partial runs are kept."""

    def handler(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def build_with_console(
    recipe: Recipe | None = None, *, force: bool = False, keep_root: bool = False
) -> Image:
    """Build (or reuse) the L1 image, showing the steps, elapsed time and latest log line on stderr.

    :func:`vfiobench.lab.image.build_image` with a rich progress display.
    """
    from rich.console import Console
    from rich.progress import Progress as RichProgress
    from rich.progress import SpinnerColumn, TextColumn, TimeElapsedColumn

    from vfiobench.lab.image import Recipe, build_image, cache_root, cached_image

    recipe = recipe or Recipe.default()
    console = Console(stderr=True, soft_wrap=True)
    if not force and (img := cached_image(recipe)) is not None:
        console.print(f"lab image: cached at {img.path} (kernel {img.kernel_release})")
        return img
    console.print(
        f"lab image: building {recipe.release} (recipe {recipe.digest()}) into {cache_root()} (about 3 min)"
    )
    with RichProgress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[step]:<16}"),
        TimeElapsedColumn(),
        TextColumn("{task.fields[line]}", style="dim"),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task("build", step="", line="", total=None)
        last_step = [""]

        def progress(step: str, line: str) -> None:
            if step != last_step[0]:
                if last_step[0]:
                    bar.console.print(f"  done: {last_step[0]}")
                last_step[0] = step
            bar.update(task, step=step, line=line[:70])

        img = build_image(recipe, force=force, keep_root=keep_root, progress=progress)
        bar.update(task, step="done", line=str(img.path))
    t = img.info.get("timings_s", {})
    console.print(f"lab image: built in {t.get('total', '?')} s at {img.path} (kernel {img.kernel_release})")
    return img


def cmd_build(args: argparse.Namespace) -> int:
    """``vfiobench lab build``."""
    from vfiobench.lab.image import Recipe

    _sigterm_as_exit()
    build_with_console(Recipe.default(args.release), force=args.force, keep_root=args.keep_root)
    return 0


def _parse_vectors(text: str) -> list[int]:
    try:
        vectors = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise LabError(
            f"--vectors {text!r} is not a comma-separated list of integers", "e.g. --vectors 0,1"
        ) from None
    if not vectors:
        raise LabError("--vectors is empty", "e.g. --vectors 0")
    return vectors


def cmd_run(args: argparse.Namespace) -> int:
    """``vfiobench lab run``: one boot, one run per cell; exits 1 when a check fails."""
    from vfiobench.lab.image import Recipe
    from vfiobench.lab.runner import plan_cells, run_lab
    from vfiobench.lab.vm import VmConfig
    from vfiobench.store import load_run

    _sigterm_as_exit()
    cycles = args.cycles if args.cycles is not None or args.duration is not None else 100
    kinds = [True, False] if args.both else [not args.no_probes]
    cells = []
    for probes in kinds:
        cells += plan_cells(
            args.accel or ["kvm"],
            args.workload or ["mask-every-irq"],
            cycles=cycles,
            duration_s=args.duration,
            vectors=_parse_vectors(args.vectors),
            burst=args.burst,
            warmup_cycles=args.warmup_cycles,
            probes=probes,
            qemu=args.qemu,
            qemu_args=args.qemu_arg,
            variant=args.variant,
        )
    image = build_with_console(Recipe.default(args.release))
    cfg = None
    if args.timeout is not None:
        cfg = VmConfig(timeout_s=args.timeout)
    lab = run_lab(
        cells, args.out, image=image, vm_config=cfg, keep_share=args.keep_share, overwrite=args.overwrite
    )
    failed = 0
    for path in lab.runs:
        run = load_run(path)
        bad = [c for c in run.meta.checks if not c.ok]
        failed += bool(bad) or run.meta.status != "complete"
        summary = ""
        if run.has_table("workload"):
            w = run.table("workload")
            lat = w.loc[w["delivered"], "latency_ns"]
            summary = f", {len(w)} interrupts, latency p50 {lat.median() / 1e6:.2f} ms" if len(lat) else ""
        ok = len(run.meta.checks) - len(bad)
        print(f"{path}: {run.meta.status} ({run.meta.kind}){summary}, {ok}/{len(run.meta.checks)} checks ok")
        for c in bad:
            print(f"  CHECK FAILED {c.name}: expected {c.expected:g}, observed {c.observed:g} ({c.detail})")
    if args.keep_share:
        print(f"share kept at {lab.share}")
    return 1 if failed else 0


def cmd_shell(args: argparse.Namespace) -> int:
    """``vfiobench lab shell``: L1 with a shell on this terminal; the console is logged."""
    import shutil
    import tempfile

    from vfiobench.lab.image import Recipe
    from vfiobench.lab.runner import prepare_share
    from vfiobench.lab.vm import L1VM, VmConfig

    if not sys.stdin.isatty():
        raise LabError("vfiobench lab shell needs a terminal", "run it from an interactive shell")
    image = build_with_console(Recipe.default(args.release))
    share = Path(tempfile.mkdtemp(prefix="vfiobench-shell-"))
    try:
        prepare_share(share, [], 4, interactive=True)
        log = share / "console.log"
        print(f"lab shell: booting L1 (about 20 s); console log {log}; Ctrl-A x kills the VM")
        with L1VM(image, share, log, VmConfig(timeout_s=24 * 3600), interactive=True) as vm:
            vm.wait()
        kept = Path(tempfile.gettempdir()) / "vfiobench-shell-console.log"
        shutil.copyfile(log, kept)
        print(f"lab shell: L1 powered off; console log kept at {kept}")
    finally:
        shutil.rmtree(share, ignore_errors=True)
    return 0
