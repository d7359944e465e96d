import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest

from vfiobench.errors import RunStoreError
from vfiobench.store import (
    Check,
    ProbeStats,
    RunMeta,
    RunWriter,
    load_run,
    load_runs,
    query,
)


def meta(run_id: str = "r1", variant: str = "stock") -> RunMeta:
    return RunMeta(run_id=run_id, variant=variant, source="synthetic")


def test_round_trip_chunks_and_metadata(tmp_path):
    out = tmp_path / "r1"
    dtype = np.dtype([("ts_ns", "<u8"), ("dur_ns", "<u8"), ("enabled", "u1")])
    with RunWriter(out, meta()) as w:
        w.append("pba_toggle", np.array([(1, 10, 1), (2, 20, 0)], dtype=dtype))
        w.append("pba_toggle", np.array([(3, 30, 1)], dtype=dtype))
        w.append("set_irqs_ioctl", pd.DataFrame({"ts_ns": [5], "dur_ns": [7]}))
        w.meta.probes["pba_toggle"] = ProbeStats("memory_region_set_enabled", events=3, lost=2)
        w.meta.checks.append(Check("pba_vs_trace", expected=3, observed=3, ok=True))
    run = load_run(out)
    assert run.meta.status == "complete"
    assert run.meta.ended_utc is not None
    assert run.meta.tables == {"pba_toggle": 3, "set_irqs_ioctl": 1}
    assert run.meta.lost_events == 2 and run.meta.checks_ok
    df = run.table("pba_toggle")
    assert df["ts_ns"].tolist() == [1, 2, 3]
    assert df["dur_ns"].tolist() == [10, 20, 30]
    assert not list(out.glob("*.parts"))  # compacted into one file per table
    assert (out / "pba_toggle.parquet").is_file()
    assert not (tmp_path / ".r1.inprogress").exists()


def test_exception_leaves_loadable_partial_run(tmp_path):
    out = tmp_path / "r1"
    with pytest.raises(KeyboardInterrupt), RunWriter(out, meta()) as w:
        w.append("pba_toggle", pd.DataFrame({"ts_ns": [1, 2]}))
        raise KeyboardInterrupt
    run = load_run(out)
    assert run.meta.status == "partial"
    assert run.meta.error == "KeyboardInterrupt"
    assert len(run.table("pba_toggle")) == 2


def test_other_error_marks_failed(tmp_path):
    out = tmp_path / "r1"
    with pytest.raises(RuntimeError), RunWriter(out, meta()):
        raise RuntimeError("qemu died")
    assert load_run(out).meta.status == "failed"
    assert load_run(out).meta.error == "RuntimeError: qemu died"


def test_killed_writer_leaves_loadable_partial(tmp_path):
    """A writer killed outright (SIGKILL: no cleanup at all) keeps every chunk it wrote."""
    out = tmp_path / "r1"
    script = textwrap.dedent(
        f"""
        import os, sys, pandas as pd
        from vfiobench.store import RunWriter, RunMeta
        w = RunWriter({str(out)!r}, RunMeta(run_id="r1", variant="stock", source="synthetic")).__enter__()
        for i in range(5):
            w.append("workload", pd.DataFrame({{"ts_ns": [i]}}))
        w.flush_meta()
        print("written", flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"written"
        os.kill(proc.pid, signal.SIGKILL)
    assert not out.exists()
    run = load_run(out)  # finds the in-progress directory
    assert run.meta.status == "partial"
    assert run.table("workload")["ts_ns"].tolist() == [0, 1, 2, 3, 4]


def test_refuses_to_overwrite(tmp_path):
    with RunWriter(tmp_path / "r1", meta()):
        pass
    with pytest.raises(RunStoreError, match="already exists"), RunWriter(tmp_path / "r1", meta()):
        pass


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"hello": 1}', "not a vfiobench run"),
        ('{"schema_version": 99, "run_id": "x", "variant": "v", "source": "lab"}', "schema_version 99"),
        ('{"schema_version": 1, "run_id": "x", "source": "lab"}', "'variant' is missing"),
        ('{"schema_version": 1, "run_id": "x", "variant": "v", "source": "mars"}', "source 'mars'"),
        (  # an unknown key is a newer writer's and loads (below); a wrong shape does not
            '{"schema_version": 1, "run_id": "x", "variant": "v", "source": "lab", "host": ["cpu", 1]}',
            "malformed field",
        ),
        (
            '{"schema_version": 1, "run_id": "x", "variant": "v", "source": "lab", "probes": {"p": {}}}',
            "malformed field",  # a probe without its target
        ),
    ],
)
def test_corrupt_run_json_names_file_and_problem(tmp_path, content, message):
    (tmp_path / "run.json").write_text(content)
    with pytest.raises(RunStoreError, match=message) as info:
        load_run(tmp_path)
    assert str(tmp_path / "run.json") in str(info.value)
    assert "\n" not in str(info.value)


def test_foreign_directory_and_corrupt_parquet(tmp_path):
    with pytest.raises(RunStoreError, match="not a vfiobench run directory"):
        load_run(tmp_path)
    with RunWriter(tmp_path / "r1", meta()) as w:
        w.append("pba_toggle", pd.DataFrame({"ts_ns": [1]}))
    (tmp_path / "r1" / "pba_toggle.parquet").write_bytes(b"garbage")
    with pytest.raises(RunStoreError, match=r"pba_toggle\.parquet: not a readable Parquet file"):
        load_run(tmp_path / "r1").table("pba_toggle")
    with pytest.raises(RunStoreError, match=r"no table 'nope' \(tables: pba_toggle\)"):
        load_run(tmp_path / "r1").table("nope")


def _two_variants(root):
    for i, variant in enumerate(["stock", "pba-always-on", "stock"]):
        m = meta(f"r{i}", variant)
        m.labels = {"accel": "kvm", "repetition": i}
        with RunWriter(root / f"r{i}", m) as w:
            w.append(
                "pba_toggle",
                pd.DataFrame({"ts_ns": np.arange(i + 1), "dur_ns": np.full(i + 1, 10 * (i + 1))}),
            )


def test_runset_long_table_and_filter(tmp_path):
    _two_variants(tmp_path)
    runs = load_runs(tmp_path)
    assert runs.variants == ["stock", "pba-always-on"]
    df = runs.table("pba_toggle")
    assert list(df.columns[:2]) == ["run_id", "variant"]
    assert df.groupby("run_id").size().to_dict() == {"r0": 1, "r1": 2, "r2": 3}
    assert len(runs.filter(variant="stock")) == 2
    assert len(runs.filter(repetition=1)) == 1
    assert runs.table("absent").empty


def test_duckdb_query_over_a_directory_of_runs(tmp_path):
    _two_variants(tmp_path)
    df = query(
        tmp_path,
        "SELECT variant, count(*) AS n, sum(dur_ns) AS total FROM pba_toggle JOIN runs USING (run_id) "
        "GROUP BY variant ORDER BY variant",
    )
    assert df.to_dict("records") == [
        {"variant": "pba-always-on", "n": 2, "total": 40},
        {"variant": "stock", "n": 4, "total": 10 + 90},
    ]


def test_run_json_is_plain_json(tmp_path):
    with RunWriter(tmp_path / "r1", meta()):
        pass
    data = json.loads((tmp_path / "r1" / "run.json").read_text())
    for key in (
        "schema_version",
        "run_id",
        "variant",
        "status",
        "source",
        "started_utc",
        "ended_utc",
        "host",
        "qemu",
        "workload",
        "probes",
    ):
        assert key in data
    assert data["host"]["kernel_release"] == os.uname().release


def test_a_newer_writers_unknown_keys_load_at_every_level(tmp_path):
    """run.json from a newer vfiobench (more fields anywhere) still loads; what is known is kept."""
    out = tmp_path / "r1"
    with RunWriter(out, meta()) as w:
        w.meta.probes["pba_toggle"] = ProbeStats("memory_region_set_enabled", events=3)
        w.meta.checks.append(Check("pba_vs_trace", expected=3, observed=3, ok=True))
    path = out / "run.json"
    data = json.loads(path.read_text())
    data["stack"] = {"release": "trixie"}
    for key in ("host", "qemu", "workload"):
        data[key]["added_later"] = 1
    data["probes"]["pba_toggle"]["attach_ns"] = 123
    data["checks"][0]["window"] = [0, 1]
    path.write_text(json.dumps(data))
    run = load_run(out)
    assert run.meta.probes["pba_toggle"].events == 3
    assert run.meta.checks[0].name == "pba_vs_trace" and run.meta.checks_ok
    assert not hasattr(run.meta, "stack")


def test_a_field_of_the_wrong_shape_is_a_named_error(tmp_path):
    out = tmp_path / "r1"
    with RunWriter(out, meta()):
        pass
    data = json.loads((out / "run.json").read_text())
    data["host"] = "not an object"
    (out / "run.json").write_text(json.dumps(data))
    with pytest.raises(RunStoreError, match=r"malformed field.*HostInfo is str"):
        load_run(out)


def _killed_writer(out) -> None:
    """A recording into ``out`` killed outright after writing 3 chunks."""
    script = textwrap.dedent(
        f"""
        import sys, pandas as pd
        from vfiobench.store import RunWriter, RunMeta
        w = RunWriter({str(out)!r}, RunMeta(run_id="r1", variant="stock", source="synthetic")).__enter__()
        for i in range(3):
            w.append("workload", pd.DataFrame({{"ts_ns": [i]}}))
        print("written", flush=True)
        sys.stdin.read()
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline().strip() == b"written"
        os.kill(proc.pid, signal.SIGKILL)


def test_recording_again_into_a_killed_runs_place_keeps_it_and_says_where(tmp_path, caplog):
    out = tmp_path / "r1"
    _killed_writer(out)
    recovered = "partial run of an interrupted recording, recovered there"
    with pytest.raises(RunStoreError, match=recovered), RunWriter(out, meta()):
        pass
    assert "its partial run is recovered there" in caplog.text and str(out) in caplog.text
    run = load_run(out)  # in place, compacted, nothing lost
    assert run.meta.status == "partial" and "interrupted" in (run.meta.error or "")
    assert run.table("workload")["ts_ns"].tolist() == [0, 1, 2] and run.meta.tables == {"workload": 3}
    assert run.meta.ended_utc is not None and not list(out.glob("*.parts"))
    assert not (out / "writer.json").exists()


def test_a_live_writers_directory_is_not_taken(tmp_path):
    out = tmp_path / "r1"
    with RunWriter(out, meta()) as w:
        w.append("workload", pd.DataFrame({"ts_ns": [1]}))
        busy = f"pid {os.getpid()} is recording into it"
        with pytest.raises(RunStoreError, match=busy), RunWriter(out, meta()):
            pass
        assert load_run(out).meta.status == "partial"  # read in place while recording
    assert load_run(out).meta.status == "complete"
