import json

import pandas as pd

from vfiobench.experiment.export import export_runs, main
from vfiobench.store import RunMeta, RunWriter, load_run, load_runs


def _run(root, run_id, *, warmup, status="complete"):
    meta = RunMeta(run_id, "stock", "lab", labels={"warmup": warmup})
    w = RunWriter(root / run_id, meta)
    with w:
        w.append("workload", pd.DataFrame({"latency_ns": [1, 2, 3]}))
        w.attach("console.log", text="boot log\n")
        w.attach("job.log", text="job\n")
        w.attach("cell.json", text="{}\n")
    if status != "complete":
        data = json.loads((root / run_id / "run.json").read_text())
        data["status"] = status
        (root / run_id / "run.json").write_text(json.dumps(data))


def test_export_keeps_measured_complete_runs_without_bulky_attachments(tmp_path):
    src = tmp_path / "exp" / "runs"
    _run(src, "w0", warmup=True)
    _run(src, "r0", warmup=False)
    _run(src, "r1", warmup=False, status="failed")
    out = export_runs(tmp_path / "exp", tmp_path / "sample")
    assert [p.name for p in out] == ["r0"]
    run = load_run(tmp_path / "sample" / "r0")
    assert run.table("workload")["latency_ns"].tolist() == [1, 2, 3]
    assert not any((run.path / a).exists() for a in ("console.log", "job.log", "cell.json"))
    assert run.meta.labels["attachments_dropped"] == ["console.log", "job.log", "cell.json"]
    assert run.meta.labels["exported_from"] == str(src / "r0")
    assert len(load_runs(tmp_path / "sample")) == 1


def test_export_cli_reports_and_includes_warmup_on_request(tmp_path, capsys):
    _run(tmp_path / "exp", "w0", warmup=True)
    assert main([str(tmp_path / "exp"), str(tmp_path / "s"), "--include-warmup"]) == 0
    assert "exported 1 runs" in capsys.readouterr().out
    assert main([str(tmp_path / "nope"), str(tmp_path / "s2")]) == 2
    assert "no such directory" in capsys.readouterr().err


def test_export_copies_the_experiment_metadata_beside_the_runs(tmp_path):
    from vfiobench.analysis.precision import experiment_records

    _run(tmp_path / "exp" / "runs", "r0", warmup=False)
    meta = json.loads((tmp_path / "exp" / "runs" / "r0" / "run.json").read_text())
    meta["labels"]["experiment"] = "pba"
    (tmp_path / "exp" / "runs" / "r0" / "run.json").write_text(json.dumps(meta))
    record = {"name": "pba", "repetitions": {"rule": {"min": 6}, "cells": []}}
    (tmp_path / "exp" / "experiment.json").write_text(json.dumps(record))
    export_runs(tmp_path / "exp", tmp_path / "sample")
    assert json.loads((tmp_path / "sample" / "pba.experiment.json").read_text()) == record
    assert experiment_records(load_runs(tmp_path / "sample")) == {"pba": record}
    assert experiment_records(load_runs(tmp_path / "exp" / "runs")) == {"pba": record}


def test_an_experiment_exported_in_parts_keeps_each_part_and_reads_as_one(tmp_path):
    """Two `vfiobench run` directories of one experiment (another spec each, e.g. one release now and
    one later) exported into one sample: neither record overwrites the other, the pages see both."""
    from vfiobench.analysis.precision import experiment_records

    def part(exp, run_id, digest, cell):
        _run(tmp_path / exp / "runs", run_id, warmup=False)
        meta = json.loads((tmp_path / exp / "runs" / run_id / "run.json").read_text())
        meta["labels"]["experiment"] = "auto"
        (tmp_path / exp / "runs" / run_id / "run.json").write_text(json.dumps(meta))
        record = {
            "name": "auto",
            "path": f"{exp}.toml",
            "digest": digest,
            "runs": [run_id],
            "repetitions": {"rule": {"min": 6}, "cells": [{"cell": cell, "repetitions": 6}]},
        }
        (tmp_path / exp / "experiment.json").write_text(json.dumps(record))
        return record

    first = part("trixie", "t0", "aaaa", "trixie · mask-every-irq · kvm")
    export_runs(tmp_path / "trixie", tmp_path / "sample")
    export_runs(tmp_path / "trixie", tmp_path / "sample")  # the same part again: the same file
    second = part("bookworm", "b0", "bbbb", "bookworm · mask-every-irq · kvm")
    export_runs(tmp_path / "bookworm", tmp_path / "sample")
    assert json.loads((tmp_path / "sample" / "auto.experiment.json").read_text()) == first
    assert json.loads((tmp_path / "sample" / "auto.bbbb.experiment.json").read_text()) == second
    assert sorted(p.name for p in (tmp_path / "sample").glob("*.experiment.json")) == [
        "auto.bbbb.experiment.json",
        "auto.experiment.json",
    ]
    merged = experiment_records(load_runs(tmp_path / "sample"))["auto"]
    assert merged["runs"] == ["t0", "b0"]
    assert [c["cell"] for c in merged["repetitions"]["cells"]] == [
        "trixie · mask-every-irq · kvm",
        "bookworm · mask-every-irq · kvm",
    ]
    assert merged["parts"] == [
        {"path": "trixie.toml", "digest": "aaaa"},
        {"path": "bookworm.toml", "digest": "bbbb"},
    ]
