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


#: An adaptive spec: two cells (kvm, tcg), a baseline and two variants, on ``latency_ns``.
ADAPTIVE_SPEC = """
[experiment]
name = "ad"
repetitions = { min = 6, max = 12, target = 0.10, metric = "latency_ns" }
warmup = 1
cycles = 7
accels = ["kvm", "tcg"]

[[variants]]
name = "A"
[[variants]]
name = "B"
[[variants]]
name = "C"

[[workloads]]
name = "mask-every-irq"
"""


def alternating(base: float, s: float):
    """Per-run values ``base·exp(±s)``, + on even repetitions, - on odd ones.

    For ``n`` (even) runs against a constant baseline, Welch on the logs has ``se = s/sqrt(n-1)``
    and ``df = n - 1``, so the ratio's relative half-width is ``exp(t(0.975, n-1)·s/sqrt(n-1)) - 1``
    (odd ``n``: ``se = s·sqrt((n+1)/n)/sqrt(n)``).
    """
    import math

    return lambda rep: base * math.exp(s if rep % 2 == 0 else -s)


class ValueBackend:
    """Writes each run's workload table with one known per-run latency (three equal samples).

    ``values[(variant, accel)]`` maps a repetition to the run's value; warm-ups get 1 ms. With
    ``fail_on`` set, that run raises RuntimeError mid-recording (left partial), once.
    """

    def __init__(self, values, fail_on: str | None = None):
        self.values = values
        self.fail_on = fail_on
        self.executed: list[str] = []
        self.batches: list[list[str]] = []

    def batch_key(self, run):
        return (run.warmup, run.repetition)

    def execute(self, runs, runs_dir: Path, done):
        import pandas as pd

        from vfiobench.store import WorkloadInfo

        self.batches.append([r.run_id for r in runs])
        for run in runs:
            meta = RunMeta(
                run.run_id,
                run.variant.name,
                "synthetic",
                kind=run.kind,
                workload=WorkloadInfo(run.workload.name, dict(run.workload.params)),
                labels=run.labels("ad"),
            )
            value = 1e6 if run.warmup else self.values[(run.variant.name, run.accel)](run.repetition)
            with RunWriter(runs_dir / run.run_id, meta) as w:
                w.append(
                    "workload", pd.DataFrame({"latency_ns": [round(value)] * 3, "delivered": [True] * 3})
                )
                if run.run_id == self.fail_on:
                    self.fail_on = None
                    raise RuntimeError("backend died mid-round")
            self.executed.append(run.run_id)
            done(run, runs_dir / run.run_id)
