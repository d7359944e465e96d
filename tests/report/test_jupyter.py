"""``make notebook``: JupyterLab starts (as root too), prints the URL, offers the vfiobench kernel."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vfiobench.report import jupyter

REPO = Path(__file__).resolve().parents[2]


def test_the_command_line_allows_root_and_serves_the_notebooks() -> None:
    argv = jupyter.lab_argv(REPO / "notebooks", 8899, "t0k", open_browser=False, as_root=True)
    assert argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert "--allow-root" in argv and "--no-browser" in argv and "--ServerApp.port=8899" in argv
    assert f"--ServerApp.root_dir={REPO / 'notebooks'}" in argv
    assert "--allow-root" not in jupyter.lab_argv(REPO, 1, "t", as_root=False)


@pytest.mark.notebook
@pytest.mark.timeout(300)
def test_jupyterlab_starts_and_lists_the_vfiobench_kernelspec(tmp_path: Path) -> None:
    """Start it as `make notebook` does (on a free port, no browser), ask its HTTP API, stop it."""
    if importlib.util.find_spec("jupyterlab") is None:
        pytest.skip("jupyterlab not installed (pip install -e '.[notebook]')")
    port = jupyter.free_port(0)
    log = tmp_path / "jupyterlab.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "vfiobench.report.jupyter", "--port", str(port), "--no-browser"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            start_new_session=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith(f"JupyterLab: open http://localhost:{port}/lab?token="), line
        token = line.strip().rsplit("token=", 1)[1]
        url = f"http://127.0.0.1:{port}/api/kernelspecs?token={token}"
        deadline = time.monotonic() + 180
        specs = None
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(url, timeout=5) as resp:
                    specs = json.loads(resp.read())
                break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(1)
        assert specs is not None, f"JupyterLab never answered (exit {proc.poll()})"
        assert "vfiobench" in specs["kernelspecs"], sorted(specs["kernelspecs"])
        argv0 = specs["kernelspecs"]["vfiobench"]["spec"]["argv"][0]
        assert Path(argv0).parent == Path(sys.executable).parent  # this environment's interpreter
        with pytest.raises(urllib.error.HTTPError):  # the token is required
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/kernelspecs", timeout=5)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.returncode not in (0, -signal.SIGTERM):
            pytest.fail(f"JupyterLab exited {proc.returncode}: {log.read_text()[-2000:]}")
