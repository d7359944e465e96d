"""A small experiment spec and a recording backend double for the experiment tests.

The backend writes real runs through RunWriter: what is under test is the scheduler (order,
batching, resume, no duplicates), not a measurement.
"""

from pathlib import Path

from vfiobench.store import RunMeta, RunWriter

SPEC = """
[experiment]
name = "t"
repetitions = 2
warmup = 1
cycles = 7
accels = ["tcg"]

[[variants]]
name = "A"
[[variants]]
name = "B"
patches = ["pba-always-on"]
device_props = { "x-pba-always-on" = "on" }
[[variants]]
name = "C"

[[workloads]]
name = "mask-every-irq"
"""


class RecordingBackend:
    def __init__(self, fail_after: int | None = None):
        self.executed: list[str] = []
        self.batches: list[list[str]] = []
        self.fail_after = fail_after

    def batch_key(self, run):
        return (run.repetition, run.warmup)

    def execute(self, runs, runs_dir: Path, done):
        self.batches.append([r.run_id for r in runs])
        for run in runs:
            if self.fail_after is not None and len(self.executed) == self.fail_after:
                # a run interrupted mid-recording: RunWriter leaves it partial, then Ctrl-C propagates
                with RunWriter(runs_dir / run.run_id, RunMeta(run.run_id, run.variant.name, "synthetic")):
                    raise KeyboardInterrupt
            meta = RunMeta(run.run_id, run.variant.name, "synthetic", kind=run.kind, labels=run.labels("t"))
            with RunWriter(runs_dir / run.run_id, meta):
                pass
            self.executed.append(run.run_id)
            done(run, runs_dir / run.run_id)
