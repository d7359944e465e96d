"""Copy an experiment's measured runs into a compact set (e.g. ``data/sample/`` kept in git).

Warm-up runs are left out (they are excluded from every analysis anyway), and the bulky attachments
that every run of one lab boot shares or that a table already holds are dropped: the L1 console log
and the job log (the same boot for up to 40 runs), QEMU's text trace log (its events are the
``qemu_trace`` table) and the lab's raw cell record ``cell.json`` (run.json was made from it:
status, counters, phases, timings, the L2 command line and the probes' statistics are there, the
stall windows are the ``stalls`` table). run.json records what was dropped and where the full
experiment lives, so nothing is silently lost: the complete runs stay in the experiment directory.
The experiment's own metadata (``experiment.json``: the spec, the repetitions rule and where each
cell stopped) is copied beside the runs as ``<name>.experiment.json``, where the A/B page finds it.
An experiment recorded in parts (the same name, another spec: e.g. one release now, another later,
each its own ``vfiobench run`` directory) keeps each part's record: a part whose spec digest differs
from the record already there goes to ``<name>.<digest>.experiment.json``, and the pages read the
parts together (:func:`vfiobench.analysis.precision.experiment_records`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from vfiobench.errors import VfioBenchError
from vfiobench.store import RUN_JSON, load_runs

DROPPED = ("console.log", "job.log", "qemu-trace.log", "cell.json")


def _digest(path: Path) -> str | None:
    """The spec digest an exported experiment record holds (None: no such file or not a record)."""
    from vfiobench.analysis.precision import read_record

    data = read_record(path)
    return None if data is None else str(data.get("digest"))


def export_runs(
    src: Path, dest: Path, *, include_warmup: bool = False, drop: Sequence[str] = DROPPED
) -> list[Path]:
    """Copy the complete runs under ``src`` into ``dest/<run_id>``; returns the new run directories."""
    runs = [r for r in load_runs(src) if r.meta.status == "complete"]
    if not include_warmup:
        runs = [r for r in runs if not r.meta.labels.get("warmup", False)]
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for run in runs:
        target = dest / run.run_id
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(run.path, target, ignore=shutil.ignore_patterns(*drop))
        meta = json.loads((target / RUN_JSON).read_text(encoding="utf-8"))
        meta.setdefault("labels", {})["exported_from"] = str(run.path)
        meta["labels"]["attachments_dropped"] = [d for d in drop if (run.path / d).exists()]
        (target / RUN_JSON).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        out.append(target)
    manifest = Path(src) / "experiment.json"
    if manifest.is_file():
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise VfioBenchError(f"{manifest}: not valid JSON ({e})") from None
        name = str(data.get("name", "experiment"))
        target = dest / f"{name}.experiment.json"
        if _digest(target) not in (None, data.get("digest")):  # another part of the experiment
            target = dest / f"{name}.{data.get('digest')}.experiment.json"
        target.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vfiobench.experiment.export EXPERIMENT_DIR DEST``."""
    p = argparse.ArgumentParser(prog="python -m vfiobench.experiment.export", description=__doc__)
    p.add_argument("src", type=Path, help="an experiment directory (or any directory of runs)")
    p.add_argument("dest", type=Path, help="where the compact copies go, e.g. data/sample")
    p.add_argument("--include-warmup", action="store_true", help="keep warm-up runs too")
    args = p.parse_args(argv)
    try:
        runs = export_runs(args.src, args.dest, include_warmup=args.include_warmup)
    except VfioBenchError as e:
        print(f"export: error: {e}", file=sys.stderr)
        return 2
    size = sum(f.stat().st_size for r in runs for f in r.iterdir())
    print(f"exported {len(runs)} runs into {args.dest} ({size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
