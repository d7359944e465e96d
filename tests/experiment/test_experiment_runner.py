"""Resume, batching and the manifest of the experiment runner, through a recording backend."""

import json

import pytest
from experiment_doubles import SPEC, RecordingBackend

from vfiobench.errors import ExperimentError
from vfiobench.experiment import make_plan, parse_spec, run_experiment
from vfiobench.experiment.runner import run_statuses
from vfiobench.store import load_run, load_runs


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


def test_manifest_records_spec(tmp_path):
    spec = parse_spec(SPEC, "t.toml")
    run_experiment(spec, tmp_path, RecordingBackend(), progress=False)
    manifest = json.loads((tmp_path / "experiment.json").read_text())
    assert manifest["digest"] == spec.digest
    assert manifest["spec"] == SPEC
    assert load_run(tmp_path / "runs" / manifest["runs"][0]).meta.labels["warmup"] is True
