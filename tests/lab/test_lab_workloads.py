"""Workload names and parameters (no driver imported)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from vfiobench.errors import LabError
from vfiobench.lab.workloads import WorkloadParams


def test_workload_params_are_validated() -> None:
    for bad, match in [
        (WorkloadParams("spin"), "unknown workload"),
        (WorkloadParams(vectors=[]), "distinct"),
        (WorkloadParams(cycles=0), "at least 1"),
        (WorkloadParams(cycles=None), "cycles or a duration"),
        (WorkloadParams("burst", burst=0), "burst"),
    ]:
        with pytest.raises(LabError, match=match):
            bad.validate()


def test_names_import_without_the_driver() -> None:
    # the spec parser, the checks and the CLI import this module: it adds no numpy and no qtest client
    # (measured beyond what `import vfiobench` itself loads)
    code = (
        "import json, sys, vfiobench; before = set(sys.modules); import vfiobench.lab.workloads; "
        "print(json.dumps(sorted(m for m in set(sys.modules) - before "
        "if m.split('.')[0] in ('vfiobench', 'numpy', 'pandas', 'socket'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert set(json.loads(out)) <= {"vfiobench.lab", "vfiobench.lab.workloads", "vfiobench.errors"}, out
