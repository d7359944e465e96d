"""``vfiobench query`` over a generated multi-host tree (host=/date= partitions), checked against
the same numbers computed with pandas from the run store's own loader."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from vfiobench.cli import main
from vfiobench.errors import RunStoreError, VfioBenchError
from vfiobench.fleet.query import EXAMPLES, fleet_query
from vfiobench.sample import write_run
from vfiobench.store import load_runs

#: host -> [(date, run_id, variant, probed, vm)]; "r1" exists on two hosts (run ids are per host).
TREE = {
    "h1": [
        ("2026-12-06", "r1", "stock", True, "db"),
        ("2026-12-07", "r2", "stock", False, "db"),
        ("2026-12-07", "r3", "pba-always-on", True, "web"),
    ],
    "h2": [
        ("2026-12-07", "r1", "pba-always-on", True, "cache"),
        ("2026-12-07", "r4", "pba-always-on", False, "cache"),
        ("2026-12-07", "r5", "stock", True, None),  # no -name: the VM is its variant
    ],
}
CYCLES = {"h1": 31, "h2": 37}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fleet")
    rng = np.random.default_rng(7)
    for host, runs in TREE.items():
        for i, (date, run_id, variant, probed, vm) in enumerate(runs):
            d = root / f"host={host}" / f"date={date}"
            t0 = 10**12 * (i + 1)
            write_run(
                d,
                run_id=run_id,
                variant=variant,
                probed=probed,
                repetition=i,
                cycles=CYCLES[host],
                t0=t0,
                rng=rng,
            )
            if vm is not None:  # as QEMU started by libvirt would have it
                meta = json.loads((d / run_id / "run.json").read_text())
                meta["qemu"]["cmdline"] += ["-name", f"guest={vm},debug-threads=on"]
                (d / run_id / "run.json").write_text(json.dumps(meta))
    return root


def expected_frame(root: Path) -> pd.DataFrame:
    """Per run, from the run store's pandas loader: host, vm, interrupts, PBA toggles, medians."""
    rows = []
    for run in load_runs(root):
        rel = run.path.relative_to(root).parts
        host = rel[0].removeprefix("host=")
        vm = next((row[4] for row in TREE[host] if row[1] == run.run_id), None) or run.variant
        workload = run.table("workload")
        toggles = run.table("pba_toggle") if run.has_table("pba_toggle") else None
        rows.append(
            {
                "host": host,
                "vm": vm,
                "kind": run.meta.kind,
                "interrupts": int(workload["delivered"].sum()),
                "latency_ns": workload.loc[workload["delivered"], "latency_ns"].to_numpy(),
                "pba_toggles": None if toggles is None else int(toggles["is_pba"].sum()),
                "toggle_ns": None if toggles is None else toggles.loc[toggles["is_pba"], "dur_ns"].to_numpy(),
                "ioctl_ns": run.table("set_irqs_ioctl")["dur_ns"].to_numpy() if toggles is not None else None,
            }
        )
    return pd.DataFrame(rows)


def test_the_runs_view_has_the_partitions_and_the_vm(fleet: Path) -> None:
    runs = fleet_query(
        fleet, "SELECT host, date, run_id, run_dir, vm, device, variant FROM runs ORDER BY run_dir"
    )
    assert len(runs) == sum(len(r) for r in TREE.values())
    assert runs["run_dir"].is_unique and not runs["run_id"].is_unique  # r1 on both hosts
    h1r1 = runs[runs["run_dir"] == "host=h1/date=2026-12-06/r1"].iloc[0]
    assert (h1r1["host"], h1r1["date"], h1r1["vm"], h1r1["device"]) == (
        "h1",
        "2026-12-06",
        "db",
        "0000:00:04.0",
    )
    assert runs.loc[runs["run_dir"].str.endswith("r5"), "vm"].isna().all()


def test_a_table_view_counts_each_runs_rows_once(fleet: Path) -> None:
    got = fleet_query(
        fleet, "SELECT host, run_id, count(*) AS n FROM workload GROUP BY ALL ORDER BY host, run_id"
    )
    assert got.to_dict("records") == [
        {"host": h, "run_id": row[1], "n": CYCLES[h]}
        for h in sorted(TREE)
        for row in sorted(TREE[h], key=lambda r: r[1])
    ]


def test_example_top_vms_by_toggles_per_interrupt(fleet: Path) -> None:
    got = fleet_query(fleet, EXAMPLES["toggles-per-interrupt"])
    exp = expected_frame(fleet)
    exp = exp[exp["pba_toggles"].notna()]
    per_vm = exp.groupby(["host", "vm"]).agg(
        runs=("kind", "size"), interrupts=("interrupts", "sum"), toggles=("pba_toggles", "sum")
    )
    per_vm["toggles_per_interrupt"] = per_vm["toggles"] / per_vm["interrupts"]
    per_vm = per_vm.reset_index().sort_values(
        ["toggles_per_interrupt", "host", "vm"], ascending=[False, True, True]
    )
    assert list(got["vm"]) == list(per_vm["vm"]) and list(got["host"]) == list(per_vm["host"])
    assert list(got["runs"]) == list(per_vm["runs"])
    assert list(got["interrupts"]) == list(per_vm["interrupts"])
    assert np.allclose(got["toggles_per_interrupt"], per_vm["toggles_per_interrupt"], rtol=0, atol=1e-12)
    # stock toggles the PBA twice per interrupt; always-on once at setup in the whole run
    top = got.iloc[0]
    assert top["toggles_per_interrupt"] == 2.0
    assert got.loc[got["vm"] == "web", "toggles_per_interrupt"].item() == pytest.approx(1 / CYCLES["h1"])


def test_example_per_host_medians(fleet: Path) -> None:
    got = fleet_query(fleet, EXAMPLES["host-medians"]).set_index("host")
    exp = expected_frame(fleet)
    for host, runs in exp.groupby("host"):
        free = runs[runs["kind"] == "probe-free"]
        probed = runs[runs["kind"] == "probed"]
        assert got.loc[host, "latency_p50_us"] == np.median(np.concatenate(list(free["latency_ns"]))) / 1e3
        assert (
            got.loc[host, "pba_toggle_p50_us"] == np.median(np.concatenate(list(probed["toggle_ns"]))) / 1e3
        )
        assert got.loc[host, "set_irqs_p50_us"] == np.median(np.concatenate(list(probed["ioctl_ns"]))) / 1e3
    assert list(got.index) == sorted(TREE)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["query", *argv])
    return rc, out.getvalue(), err.getvalue()


def test_cli_prints_the_example_as_csv_and_json(fleet: Path) -> None:
    rc, out, _ = run_cli("--example", "host-medians", str(fleet), "--format", "csv")
    assert rc == 0
    got = pd.read_csv(io.StringIO(out))
    assert list(got.columns) == ["host", "latency_p50_us", "pba_toggle_p50_us", "set_irqs_p50_us"]
    assert np.allclose(
        got.drop(columns="host"), fleet_query(fleet, EXAMPLES["host-medians"]).drop(columns="host")
    )
    rc, out, _ = run_cli(
        "SELECT host, count(*) AS runs FROM runs GROUP BY host ORDER BY host", str(fleet), "--format", "json"
    )
    assert rc == 0 and json.loads(out) == [{"host": "h1", "runs": 3}, {"host": "h2", "runs": 3}]
    rc, out, _ = run_cli("SELECT count(*) AS n FROM runs", str(fleet))
    assert rc == 0 and out.split() == ["n", "6"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["SELECT nope FROM runs", "DIR"],
            'the query failed: Binder Error: Referenced column "nope" not found',
        ),
        (["SELECT 1", "DIR", "--example", "host-medians"], "give either SQL or --example, not both"),
        (["--example", "nope", "DIR"], "unknown example 'nope'"),
        (["DIR"], "no SQL given"),
    ],
)
def test_cli_bad_input_is_one_line(fleet: Path, argv: list[str], message: str) -> None:
    rc, out, err = run_cli(*(str(fleet) if a == "DIR" else a for a in argv))
    assert rc == 2 and out == ""
    assert err.startswith(f"vfiobench: error: {message}") and err.count("\n") == 1, err


def test_a_directory_without_runs_is_a_named_error(tmp_path: Path) -> None:
    (tmp_path / "host=h1").mkdir()
    with pytest.raises(RunStoreError, match="no runs below it"):
        fleet_query(tmp_path, "SELECT 1")
    rc, _, err = run_cli("SELECT 1", str(tmp_path / "missing"))
    assert rc == 2 and "no such directory" in err
    assert isinstance(RunStoreError("x"), VfioBenchError)
