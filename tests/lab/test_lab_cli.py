"""`vfiobench lab` argument errors: one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--vectors", "a,b"], "--vectors 'a,b' is not a comma-separated list of integers"),
        (["--vectors", "9"], "vectors [9] do not exist"),
        (["--cycles", "0"], "cycles=0 must be at least 1"),
        (["--qemu", "/nonexistent/qemu-system-x86_64"], "no such QEMU binary"),
    ],
)
def test_lab_run_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    from vfiobench.cli import main

    assert main(["lab", "run", *args, "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("vfiobench: error: ") and message in err[0]
    assert not (tmp_path / "r").exists()
