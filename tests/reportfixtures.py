"""Runs for the report tests: the project's own synthetic sample (vfiobench.sample), made small."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vfiobench.sample import generate

#: Run ids ``generate`` writes with repetitions=2 (r2-stock-probed records 4 lost commit events).
STOCK = "r1-stock-probed"
STOCK_LOSSY = "r2-stock-probed"
ALWAYS_ON_FREE = "r1-pba-always-on-probe-free"

#: Runs of the checked-in data/sample (the real lab runs of `vfiobench run pba`).
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "sample"
SAMPLE_STOCK = "pba-stock-mask-every-irq-kvm-r0-p"
SAMPLE_ALWAYS_ON_FREE = "pba-pba-always-on-mask-every-irq-kvm-r0-f"


def sample_runs(root: Path, cycles: int = 30) -> Path:
    """Write 8 small synthetic runs (2 variants x probed/probe-free x 2 repetitions) under ``root``."""
    generate(root, cycles=cycles, repetitions=2)
    return root


def edit_meta(run_dir: Path, **fields: Any) -> None:
    """Change fields of a run's run.json (dict values are merged into nested objects)."""
    path = run_dir / "run.json"
    meta = json.loads(path.read_text())
    for key, value in fields.items():
        if isinstance(value, dict):
            meta[key].update(value)
        else:
            meta[key] = value
    path.write_text(json.dumps(meta))
