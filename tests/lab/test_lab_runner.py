"""The host side of a lab boot, without booting: planning cells, preparing the 9p share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import vfiobench
from vfiobench.errors import LabError
from vfiobench.lab.runner import plan_cells, prepare_share


def test_plan_cells_and_bad_input() -> None:
    cells = plan_cells(["kvm", "tcg"], ["mask-every-irq", "no-mask"], cycles=5, probes=False)
    assert [c.id for c in cells] == [
        "kvm-mask-every-irq-probe-free",
        "kvm-no-mask-probe-free",
        "tcg-mask-every-irq-probe-free",
        "tcg-no-mask-probe-free",
    ]
    with pytest.raises(LabError, match="unknown accelerator"):
        plan_cells(["hvf"], ["no-mask"])
    with pytest.raises(LabError, match="unknown workload"):
        plan_cells(["kvm"], ["spin"])
    with pytest.raises(LabError, match=r"vectors \[4\] do not exist"):
        plan_cells(["kvm"], ["no-mask"], vectors=[0, 4])
    with pytest.raises(LabError, match="no such QEMU binary"):
        plan_cells(["kvm"], ["no-mask"], qemu="/nonexistent/qemu")


def test_prepare_share_copies_a_light_package_and_custom_qemu(tmp_path: Path) -> None:
    fake_qemu = tmp_path / "qemu-custom"
    fake_qemu.write_bytes(b"\x7fELF")
    cells = plan_cells(
        ["kvm"], ["mask-every-irq"], cycles=5, qemu=str(fake_qemu), qemu_args=["-global", "x=1"]
    )
    share = tmp_path / "share"
    share.mkdir()
    job = prepare_share(share, cells, 4)
    # L1 imports the copy: it is found first, knows its version, and its top level loads nothing heavy
    probe = (
        "import json, sys, vfiobench; print(json.dumps([vfiobench.__file__, vfiobench.__version__, "
        "sorted(m for m in sys.modules if m.split('.')[0] in ('pandas', 'pyarrow', 'bokeh', 'bcc'))]))"
    )
    env = {**os.environ, "PYTHONPATH": str(share / "pkg")}
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    ).stdout
    where, version, heavy = json.loads(out)
    assert where == str(share / "pkg" / "vfiobench" / "__init__.py")
    assert version == vfiobench.__version__ and heavy == []  # no top-level imports in L1
    assert (share / "pkg" / "vfiobench" / "lab" / "init-lab.sh").is_file()
    assert not list((share / "pkg").rglob("__pycache__"))
    c = job["cells"][0]
    assert c["qemu"] == "/share/bin/qemu-0" and (share / "bin" / "qemu-0").read_bytes() == b"\x7fELF"
    assert c["qemu_args"] == ["-L", "/usr/share/qemu", "-global", "x=1"]
    assert json.loads((share / "job.json").read_text()) == job
    assert "python3 -m vfiobench.lab.job /share/job.json" in (share / "job.sh").read_text()
