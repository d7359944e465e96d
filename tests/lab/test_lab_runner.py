"""The host side of a lab boot, without booting: planning cells, preparing the 9p share."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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


def test_prepare_share_copies_package_with_light_init_and_custom_qemu(tmp_path: Path) -> None:
    fake_qemu = tmp_path / "qemu-custom"
    fake_qemu.write_bytes(b"\x7fELF")
    cells = plan_cells(
        ["kvm"], ["mask-every-irq"], cycles=5, qemu=str(fake_qemu), qemu_args=["-global", "x=1"]
    )
    share = tmp_path / "share"
    share.mkdir()
    job = prepare_share(share, cells, 4)
    init = (share / "pkg" / "vfiobench" / "__init__.py").read_text()
    assert "import" not in init.split('"""')[-1]  # no top-level imports in L1
    assert (share / "pkg" / "vfiobench" / "lab" / "init-lab.sh").is_file()
    assert not list((share / "pkg").rglob("__pycache__"))
    c = job["cells"][0]
    assert c["qemu"] == "/share/bin/qemu-0" and (share / "bin" / "qemu-0").read_bytes() == b"\x7fELF"
    assert c["qemu_args"] == ["-L", "/usr/share/qemu", "-global", "x=1"]
    assert json.loads((share / "job.json").read_text()) == job
    assert "python3 -m vfiobench.lab.job /share/job.json" in (share / "job.sh").read_text()
