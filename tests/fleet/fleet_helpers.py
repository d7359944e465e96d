"""Helpers of the fleet tests: the exporter as a process, a real Prometheus server on loopback.

(A uniquely named module: conftest.py files of other test directories would shadow a plain
``conftest`` import.)
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent.parent
FLEET = REPO / "vfiobench" / "fleet"


def require_tool(name: str) -> str:
    """The path of ``name`` (Debian's prometheus package), or skip with the reason."""
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is missing (Debian package prometheus; .ci/setup-system installs it)")
    return path


def wait_for(what: str, check: object, timeout: float = 30.0, every: float = 0.1) -> object:
    """Call ``check()`` until it returns something truthy; fail naming ``what`` at the timeout."""
    deadline = time.monotonic() + timeout
    while True:
        got = check()  # type: ignore[operator]
        if got:
            return got
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM ``proc`` and wait for it (SIGKILL after 30 s)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=10) as r:
        return str(r.read().decode("utf-8"))


class ExporterProcess:
    """``vfiobench exporter --listen 127.0.0.1:0 ARGS`` in its own process; stderr in a log file.

    ``prefix``: a command that runs it (``unshare --user``: as an unprivileged user).
    """

    def __init__(self, args: Sequence[str], log: Path, *, prefix: Sequence[str] = ()) -> None:
        self.log = log
        self.out = log.open("w")
        self.proc = subprocess.Popen(
            [*prefix, sys.executable, "-m", "vfiobench", "exporter", "--listen", "127.0.0.1:0", *args],
            stdout=self.out,
            stderr=subprocess.STDOUT,
            cwd=REPO,
        )
        found = wait_for(
            "the exporter's listening line", lambda: self._grep(r"listening on http://([\d.:]+)/")
        )
        self.address = str(found)

    def _grep(self, pattern: str) -> str | None:
        m = re.search(pattern, self.text())
        if m is None and self.proc.poll() is not None:
            pytest.fail(f"the exporter exited ({self.proc.returncode}):\n{self.text()}")
        return m.group(1) if m else None

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 30.0) -> None:
        wait_for(f"{text!r} in the exporter's log", lambda: text in self.text(), timeout)

    def metrics(self) -> str:
        return http_get(f"http://{self.address}/metrics")

    def close(self) -> int:
        """SIGTERM (the exporter detaches its probes), wait, return the exit code."""
        stop(self.proc)
        self.out.close()
        return int(self.proc.returncode)


class PrometheusServer:
    """Debian's ``prometheus`` on loopback: a temporary config and data directory, 1 s scrapes,
    the shipped recording and alerting rules loaded."""

    def __init__(self, tmp: Path, targets: Sequence[str]) -> None:
        binary = require_tool("prometheus")
        self.port = free_port()
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "1s"},
            "rule_files": [str(FLEET / "rules.yml"), str(FLEET / "alerts.yml")],
            "scrape_configs": [{"job_name": "vfiobench", "static_configs": [{"targets": list(targets)}]}],
        }
        cfg = tmp / "prometheus.yml"
        cfg.write_text(json.dumps(config))  # JSON is YAML
        self.log = (tmp / "prometheus.log").open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={cfg}",
                f"--storage.tsdb.path={tmp / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_for("prometheus to be ready", self._ready, timeout=60)

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"prometheus exited ({self.proc.returncode}); see {self.log.name}")
        try:
            http_get(f"http://127.0.0.1:{self.port}/-/ready")
        except OSError:
            return False
        return True

    def query(self, promql: str) -> list[tuple[dict[str, str], float]]:
        """An instant query: ``(labels, value)`` per series."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        body = json.loads(http_get(url))
        assert body["status"] == "success", body
        return [(r["metric"], float(r["value"][1])) for r in body["data"]["result"]]

    def value(self, promql: str) -> float | None:
        """The value of a query that returns one series (None when it returns none)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return result[0][1] if result else None

    def wait_value(self, promql: str, expected: float, timeout: float = 30.0) -> float | None:
        """Wait until ``promql`` reaches ``expected`` (or the timeout); returns the last value."""
        last: list[float | None] = [None]

        def reached() -> bool:
            last[0] = self.value(promql)
            return last[0] is not None and last[0] >= expected

        deadline = time.monotonic() + timeout
        while not reached() and time.monotonic() < deadline:
            time.sleep(0.25)
        return last[0]

    def close(self) -> None:
        stop(self.proc)
        self.log.close()


def copy_as(binary: Path, name: str, directory: Path) -> Path:
    """A copy of ``binary`` named ``name`` (an executable whose name --all-qemu can match)."""
    out = directory / name
    shutil.copy2(binary, out)
    os.chmod(out, 0o755)
    return out
