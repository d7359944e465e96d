"""What ships for deployment: rules promtool accepts and whose behaviour its unit tests pin down,
and a systemd unit that systemd accepts and whose command line the CLI parses."""

from __future__ import annotations

import contextlib
import io
import shlex
import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest
from fleet_helpers import FLEET, require_tool

from vfiobench.cli import build_parser, main

HERE = Path(__file__).resolve().parent


@pytest.mark.prometheus
def test_promtool_accepts_the_shipped_rules() -> None:
    promtool = require_tool("promtool")
    out = subprocess.run(
        [promtool, "check", "rules", str(FLEET / "rules.yml"), str(FLEET / "alerts.yml")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS: 6 rules found" in out.stdout and "SUCCESS: 3 rules found" in out.stdout


@pytest.mark.prometheus
def test_the_rules_behave_as_promtools_unit_tests_say() -> None:
    """tests/fleet/rules_test.yml: recorded rates and per-interrupt ratios of a masking VM and a calm
    one, the masking alert pending then firing, a missing symbol alerting and missing kprobes not."""
    promtool = require_tool("promtool")
    out = subprocess.run(
        [promtool, "test", "rules", "rules_test.yml"], capture_output=True, text=True, cwd=HERE
    )
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.prometheus
def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """The same unit tests with one expected rate changed must fail (the harness checks values)."""
    promtool = require_tool("promtool")
    text = (
        (HERE / "rules_test.yml")
        .read_text()
        .replace("../../vfiobench", str(FLEET.parent.parent / "vfiobench"))
    )
    bad = text.replace("value: 20\n", "value: 21\n", 1)
    assert bad != text
    (tmp_path / "bad.yml").write_text(bad)
    out = subprocess.run([promtool, "test", "rules", "bad.yml"], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode != 0 and "vm:vfiobench_pba_toggles:rate1m" in out.stdout + out.stderr


def test_rule_and_unit_files_ship_in_the_package() -> None:
    files = {p.name for p in resources.files("vfiobench.fleet").iterdir()}
    assert {"alerts.yml", "rules.yml", "vfiobench-exporter.service"} <= files


def print_unit(*args: str) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["exporter", *args, "--print-unit"]) == 0
    return out.getvalue()


def test_print_unit_runs_this_vfiobench_with_the_given_options(tmp_path: Path) -> None:
    pattern = "qemu-kvm|x%$y"
    unit = print_unit("--listen", ":9477", "--all-qemu", "--exe-pattern", pattern, "--interval", "2.5")
    [exec_start] = [ln for ln in unit.splitlines() if ln.startswith("ExecStart=")]
    # systemd's % and $ escapes undone, the command line is this Python running vfiobench ...
    argv = shlex.split(exec_start.removeprefix("ExecStart=").replace("%%", "%").replace("$$", "$"))
    assert argv[1:3] == ["-m", "vfiobench"] and Path(argv[0]).exists()
    # ... with options that parse to what was asked
    args = build_parser().parse_args(argv[3:])
    assert (args.command, args.listen, args.all_qemu, args.exe_pattern, args.interval) == (
        "exporter",
        ":9477",
        True,
        pattern,
        2.5,
    )
    assert print_unit(*argv[4:]) == unit  # printing the unit of the unit's own command: the same
    assert "--pid 1 2" in print_unit("--listen", "127.0.0.1:1", "--pid", "1", "2")


def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is missing (Debian package systemd)")
    path = tmp_path / "vfiobench-exporter.service"
    path.write_text(print_unit("--listen", ":9477", "--all-qemu"))
    out = subprocess.run([analyze, "verify", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.strip() == "", out.stderr  # no warning about the unit either
    broken = tmp_path / "broken.service"
    broken.write_text(path.read_text().replace("Restart=on-failure", "Restart=sometimes"))
    out = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True)
    assert "restart specifier" in out.stderr  # the check reads the file
