"""The series' cover letter: its evidence made from runs, plain text within 72 columns."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from vfiobench.analysis.compare import make_comparison
from vfiobench.analysis.inference import run_level
from vfiobench.cli import main
from vfiobench.qemu.patchset import series_files
from vfiobench.report.cover_letter import WIDTH, cover_letter, fmt_level
from vfiobench.sample import generate
from vfiobench.store import load_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cover")
    generate(root, cycles=40, repetitions=6)
    return root


def test_letter_is_a_series_cover_with_the_runs_numbers(runs: Path) -> None:
    cmp = make_comparison(load_runs(runs), baseline="stock")
    files = series_files(10)
    text = cover_letter(cmp, files, ["vfiobench run data/specs/auto-sample.toml --out OUT"])
    head, body = text.split("\n\n", 1)
    assert head.splitlines()[0].startswith("From 0000000000000000000000000000000000000000 ")
    assert f"Subject: [PATCH 0/{len(files)}] vfio/pci: " in head
    assert all(len(line) <= WIDTH for line in body.splitlines()), max(body.splitlines(), key=len)
    assert "Evidence\n--------" in body and "To reproduce:\n\n  vfiobench run " in body
    assert "vfiobench (2):\n  vfio/pci: remember the eventfd" in body
    assert " 3 files changed, " in body
    # the stock row: mean SET_IRQS per interrupt over probed runs, and its path cost as a level
    pi = cmp.per_interrupt()
    stock = pi[(pi["variant"] == "stock") & (pi["kind"] == "probed")]
    row = next(line for line in body.splitlines() if line.startswith("stock ") and "[" in line)
    assert f"{stock['set_irqs_per_irq'].mean():.3g}"[:3] in row
    assert fmt_level(run_level(stock["path_us_per_irq"].to_numpy())) in row
    # the latency p50 of stock: a level over the probe-free runs' own p50s
    p50 = []
    for r in cmp.runs:
        if r.variant == "stock" and r.meta.kind == "probe-free":
            w = r.table("workload")
            p50.append(float(np.quantile(w.loc[w["delivered"], "latency_ns"] / 1e6, 0.5)))
    lat = next(
        line
        for line in body.splitlines()[body.splitlines().index(row) :]
        if "latency" not in line and line.startswith("stock ") and line != row
    )
    assert fmt_level(run_level(p50)) in lat
    assert math.isfinite(run_level(p50).center)


def test_cli_writes_the_letter_for_one_experiment(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cover.patch"
    assert main(["report", str(runs), "--no-runs", "--cover-letter", str(out)]) == 0
    assert out.read_text().startswith("From 0000000000000000000000000000000000000000 ")
    assert main(["report", str(runs), "--no-runs", "--experiment", "nope", "--cover-letter", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("vfiobench: error: no run of experiment 'nope' in ")


def test_index_links_a_cover_letter_written_beside_it(runs: Path, tmp_path: Path) -> None:
    from vfiobench.report.index import write_index

    assert 'href="cover-letter.patch"' not in write_index([], tmp_path).read_text()
    assert (
        main(["report", str(runs), "--no-runs", "--cover-letter", str(tmp_path / "cover-letter.patch")]) == 0
    )
    assert 'href="cover-letter.patch"' in write_index([], tmp_path).read_text()


def test_letter_says_which_port_of_the_series_the_runs_used(runs: Path) -> None:
    """The letter is about the newest series (10.2); runs of trixie's QEMU 10.0 used the 10.0 port."""
    from vfiobench.report.cover_letter import port_line

    cmp = make_comparison(load_runs(runs), baseline="stock")
    assert port_line(cmp, "10.2") is None  # the synthetic runs' QEMU says no version
    for r in cmp.runs:
        r.meta.qemu.version = "QEMU emulator version 10.0.13 (Debian 1:10.0.13+ds-0+deb13u1, vfiobench)"
    line = port_line(cmp, "10.2")
    assert line is not None and " ".join(line.split()) == (
        "The series applies to QEMU 10.2, the newest Debian source vfiobench builds; these runs "
        "used its port to QEMU 10.0 (vfiobench/qemu/series/10/), the same change on that tree."
    )
    text = cover_letter(cmp, series_files("10.2"), ["vfiobench run X"], "10.2")
    assert line in text and all(len(x) <= WIDTH for x in text.split("\n\n", 1)[1].splitlines())
    assert port_line(cmp, "10") is None and port_line(cmp, "") is None  # the runs' own series
    for r in cmp.runs:
        r.meta.qemu.version = "QEMU emulator version 10.2.2 (Debian 1:10.2.2+ds-1, vfiobench)"
    assert port_line(cmp, "10.2") is None


def test_runs_of_two_releases_name_each_stack_port_and_part(runs: Path, tmp_path: Path) -> None:
    """Runs recorded in two parts (bookworm's QEMU 7.2, trixie's 10.0): the stack paragraph pairs
    each release with its QEMU and kernel, the port paragraph names both ports with the versions
    that took them, and the commands run both parts and report over both."""
    import json

    from vfiobench.report.cover_letter import port_line, reproduce_commands, stack_line

    cmp = make_comparison(load_runs(runs), baseline="stock")
    for i, r in enumerate(cmp.runs):
        old = i % 2 == 0
        r.meta.labels.update(release="bookworm" if old else "trixie", experiment="auto")
        r.meta.qemu.version = f"QEMU emulator version {'7.2.22' if old else '10.0.13'} (Debian, vfiobench)"
        r.meta.host.kernel_release = "6.1.0-57-amd64" if old else "6.12.118+deb13-amd64"
    assert " ".join(stack_line(cmp).split()) == (
        "Stack: bookworm: QEMU 7.2.22 built from Debian bookworm's source, L1 Linux 6.1.0-57-amd64; "
        "trixie: QEMU 10.0.13 built from Debian trixie's source, L1 Linux 6.12.118+deb13-amd64; the "
        "same recipe for every variant; L2 accelerator kvm."
    )
    port = port_line(cmp, "10.2")
    assert port is not None and "ports to QEMU 7.2 (vfiobench/qemu/series/7/) and QEMU 10.0" in " ".join(
        port.split()
    )
    # the experiment's record, in two parts beside the runs
    parts = [("data/specs/auto-sample.toml", "aaaa"), ("data/specs/auto-sample-bookworm.toml", "bbbb")]
    for k, (spec, digest) in enumerate(parts):
        name = "auto.experiment.json" if k == 0 else f"auto.{digest}.experiment.json"
        (runs / name).write_text(json.dumps({"name": "auto", "path": spec, "digest": digest}))
    try:
        commands = reproduce_commands(cmp, "auto", tmp_path / "0000-cover-letter.patch")
    finally:
        for p in runs.glob("auto*.experiment.json"):
            p.unlink()
    assert commands[-6:] == [
        "vfiobench run data/specs/auto-sample-bookworm.toml \\",
        "    --out data/experiments/auto-sample-bookworm",
        "vfiobench report \\",
        "    data/experiments/auto-sample/runs \\",
        "    data/experiments/auto-sample-bookworm/runs \\",
        "    --no-runs --experiment auto --cover-letter 0000-cover-letter.patch",
    ]
    assert "vfiobench run data/specs/auto-sample.toml \\" in commands
    assert all(len(c) + 2 <= WIDTH for c in commands)


def test_runs_of_the_series_own_tree_and_of_a_port_say_which_used_which(runs: Path) -> None:
    """trixie-backports' runs took the series itself (QEMU 10.2.2, built from sid's source), bookworm's
    took the 7.2 backport: the port paragraph names each, the stack paragraph the source's suite,
    and the evidence tables start with the newest release, KVM before TCG."""
    from vfiobench.report.cover_letter import evidence_tables, port_line, stack_line

    cmp = make_comparison(load_runs(runs), baseline="stock")
    for i, r in enumerate(cmp.runs):
        old = i % 2 == 0
        r.meta.labels.update(
            release="bookworm" if old else "trixie-backports",
            qemu_source="1:7.2+dfsg-7+deb12u18 (bookworm)"
            if old
            else "1:10.2.2+ds-1 (sid; not served by the mirror: trixie-backports' 1:11.1.3+ds-2~bpo13+1)",
        )
        r.meta.qemu.version = f"QEMU emulator version {'7.2.22' if old else '10.2.2'} (Debian, vfiobench)"
        r.meta.host.kernel_release = "6.1.0-57-amd64" if old else "7.3.4+deb13-amd64"
    port = port_line(cmp, "10.2")
    assert port is not None and " ".join(port.split()) == (
        "The series applies to QEMU 10.2, the newest Debian source vfiobench builds, and the "
        "trixie-backports runs used it; the bookworm runs used its port to QEMU 7.2 "
        "(vfiobench/qemu/series/7/), the same change on that tree."
    )
    stack = " ".join(stack_line(cmp).split())
    assert "trixie-backports: QEMU 10.2.2 built from Debian sid's source in a trixie-backports build" in stack
    assert "bookworm: QEMU 7.2.22 built from Debian bookworm's source, L1" in stack
    regrouped = make_comparison(cmp.runs, baseline="stock")
    heads = [block.splitlines()[0] for block in evidence_tables(regrouped)]
    assert [h.split(":")[0] for h in heads] == [
        "mask-every-irq, kvm (trixie-backports)",
        "mask-every-irq, kvm (bookworm)",
    ], heads
