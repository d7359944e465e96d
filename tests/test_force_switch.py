"""The force switch (``VFIOBENCH_TEST_REQUIRE``, tests/conftest.py) in an inner pytest run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

INNER = """
import pytest

@pytest.mark.lab
def test_needs_the_lab():
    pytest.skip("no lab image here")

@pytest.mark.browser
def test_needs_a_browser():
    pytest.skip("no chromium here")

@pytest.fixture
def bpf_ready():
    pytest.skip("needs root to load eBPF programs")

@pytest.mark.bpf
def test_skips_in_a_fixture(bpf_ready):
    pass

def test_plain():
    pass
"""


def run_inner(tmp_path: Path, require: str | None) -> subprocess.CompletedProcess[str]:
    shutil.copy(HERE / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    lab: x\n    browser: x\n    bpf: x\n")
    env = {k: v for k, v in os.environ.items() if k != "VFIOBENCH_TEST_REQUIRE"}
    if require is not None:
        env["VFIOBENCH_TEST_REQUIRE"] = require
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rA", "-p", "no:cacheprovider", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )


def test_without_the_switch_skips_stay_skips(tmp_path: Path) -> None:
    r = run_inner(tmp_path, None)
    assert r.returncode == 0 and "1 passed, 3 skipped" in r.stdout, r.stdout


def test_a_required_category_turns_its_skips_into_failures_with_the_reason(tmp_path: Path) -> None:
    r = run_inner(tmp_path, "lab,bpf")
    assert r.returncode == 1, r.stdout
    # a skip in a fixture (setup) fails as an error, one in the test body as a failure
    assert "1 failed, 1 passed, 1 skipped, 1 error" in r.stdout
    assert "VFIOBENCH_TEST_REQUIRE=bpf,lab forbids this skip" in r.stdout
    assert "no lab image here" in r.stdout and "needs root to load eBPF programs" in r.stdout


def test_all_forbids_every_skip(tmp_path: Path) -> None:
    r = run_inner(tmp_path, "all")
    assert r.returncode == 1 and "2 failed, 1 passed, 1 error" in r.stdout, r.stdout


def test_an_unknown_category_is_a_usage_error(tmp_path: Path) -> None:
    r = run_inner(tmp_path, "lab,labb")
    assert r.returncode == 4 and "unknown labb" in r.stderr, r.stderr


def test_ci_forbids_every_skip() -> None:
    """.ci/run sets the switch, so nothing in CI can skip for a missing prerequisite."""
    assert "export VFIOBENCH_TEST_REQUIRE=all" in (HERE.parent / ".ci" / "run").read_text()
