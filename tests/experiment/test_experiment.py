"""Spec validation, interleaving and resume of the experiment runner.

The backend here is a recording double that writes real runs through RunWriter: what is under test is
the scheduler (order, batching, resume, no duplicates), not a measurement.
"""

import json
from pathlib import Path

import pytest

from vfiobench.errors import ExperimentError
from vfiobench.experiment import load_spec, make_plan, parse_spec, run_experiment
from vfiobench.experiment.runner import run_statuses
from vfiobench.store import RunMeta, RunWriter, load_run, load_runs

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


def test_plan_interleaves_variants_within_each_repetition():
    spec = parse_spec(SPEC)
    plan = make_plan(spec)
    assert len(plan) == (1 + 2) * 3 * 1 * 1 * 2
    order = [(r.warmup, r.repetition, r.variant.name, r.kind) for r in plan]
    assert order[:6] == [
        (True, 0, "A", "probed"),
        (True, 0, "A", "probe-free"),
        (True, 0, "B", "probed"),
        (True, 0, "B", "probe-free"),
        (True, 0, "C", "probed"),
        (True, 0, "C", "probe-free"),
    ]
    assert [r.variant.name for r in plan if not r.warmup and r.kind == "probed"] == list("ABCABC")
    assert len({r.run_id for r in plan}) == len(plan)
    assert plan[2].variant.device_suffix == ",x-pba-always-on=on"
    assert plan[2].variant.qemu == "build"


def test_interrupted_experiment_resumes_without_duplicates(tmp_path):
    spec = parse_spec(SPEC)
    first = RecordingBackend(fail_after=7)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(spec, tmp_path, first, progress=False)
    assert len(first.executed) == 7
    statuses = run_statuses(make_plan(spec), tmp_path / "runs")
    assert list(statuses.values()).count("complete") == 7
    assert list(statuses.values()).count("partial") == 1

    second = RecordingBackend()
    state = run_experiment(spec, tmp_path, second, progress=False)
    assert not state.todo
    assert set(first.executed).isdisjoint(second.executed)
    assert sorted(first.executed + second.executed) == sorted(r.run_id for r in make_plan(spec))
    # the interrupted attempt is kept aside, not lost
    assert len(list((tmp_path / "runs" / ".retry").iterdir())) == 1
    runs = load_runs(tmp_path / "runs")
    assert len(runs) == len(make_plan(spec))
    assert len(runs.filter(warmup=False)) == 12

    third = RecordingBackend()
    run_experiment(spec, tmp_path, third, progress=False)
    assert third.executed == []


def test_batches_follow_backend_key(tmp_path):
    backend = RecordingBackend()
    run_experiment(parse_spec(SPEC), tmp_path, backend, progress=False)
    assert [len(b) for b in backend.batches] == [6, 6, 6]


def test_changed_spec_is_refused(tmp_path):
    run_experiment(parse_spec(SPEC), tmp_path, RecordingBackend(), progress=False)
    with pytest.raises(ExperimentError, match="different spec"):
        run_experiment(parse_spec(SPEC.replace("cycles = 7", "cycles = 9")), tmp_path, RecordingBackend())


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        (('[[variants]]\nname = "A"', '[[variants]]\nname = "a b"'), "bad name 'a b'"),
        (("repetitions = 2", "repetitions = 0"), "repetitions must be an integer >= 1"),
        (('accels = ["tcg"]', 'accels = ["hvf"]'), "accel 'hvf'"),
        (('name = "mask-every-irq"', 'name = "fio"'), "lab workload 'fio'"),
        (('[[variants]]\nname = "C"', '[[variants]]\nname = "A"'), "duplicate variant names"),
        (("[experiment]", "[experiment\n"), "not valid TOML"),
        (('name = "C"', 'name = "C"\nqemu_path = "x"'), "unknown key"),
    ],
)
def test_bad_specs_name_the_problem(patch, message):
    with pytest.raises(ExperimentError, match=message) as info:
        parse_spec(SPEC.replace(*patch), "my.toml")
    assert str(info.value).startswith("my.toml")


def test_shipped_pba_spec():
    spec = load_spec("pba")
    assert spec.baseline == "stock"
    names = [v.name for v in spec.variants]
    assert names == ["stock", "pba-always-on", "fd-cache", "pba-always-on+fd-cache", "no-kvm-msix"]
    assert {w.name for w in spec.workloads} == {"mask-every-irq", "no-mask"}
    assert spec.accels == ("kvm", "tcg")
    with pytest.raises(ExperimentError, match="no such spec file"):
        load_spec("nonexistent")


def test_shipped_pba_disable_spec_runs_its_guest_on_every_variant():
    spec = load_spec("pba-disable")
    assert spec.baseline == "stock"
    assert [(v.name, v.patches, v.device_props) for v in spec.variants] == [
        ("stock", (), ()),
        ("pba-disable", ("pba-disable",), (("x-pba-disable", "on"),)),
        ("pba-always-on", ("pba-always-on",), (("x-pba-always-on", "on"),)),
    ]
    assert [w.name for w in spec.workloads] == ["mask-no-pba"]  # x-pba-disable's guest reads no PBA
    # interleaved A B C A B C, each cell probed and probe-free, warm-up first
    plan = make_plan(spec)
    assert len(plan) == (3 + 1) * 3 * 2 * 2
    assert [r.variant.name for r in plan[:12:4]] == ["stock", "pba-disable", "pba-always-on"]
    assert {r.workload.param("cycles") for r in plan} == {101}


def test_manifest_records_spec(tmp_path):
    spec = parse_spec(SPEC, "t.toml")
    run_experiment(spec, tmp_path, RecordingBackend(), progress=False)
    manifest = json.loads((tmp_path / "experiment.json").read_text())
    assert manifest["digest"] == spec.digest
    assert manifest["spec"] == SPEC
    assert load_run(tmp_path / "runs" / manifest["runs"][0]).meta.labels["warmup"] is True
