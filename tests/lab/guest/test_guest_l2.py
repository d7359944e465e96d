"""The L2 QEMU launcher, with the fake qtest peer as a stand-in QEMU (runs anywhere)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from vfiobench.errors import LabError
from vfiobench.lab.guest.l2 import L2Qemu, l2_cmdline
from vfiobench.lab.guest.run import run_workload
from vfiobench.lab.workloads import WorkloadParams

FAKE = Path(__file__).with_name("lab_fake_qtest.py")


def test_l2_qemu_listens_first_and_ends_the_process(tmp_path: Path) -> None:
    def cmd(sock: Path) -> list[str]:
        return [sys.executable, str(FAKE), str(sock)]

    with L2Qemu(cmd, tmp_path) as l2:
        assert l2.session is not None
        res = run_workload(l2.session, WorkloadParams("mask-every-irq", cycles=3))
        assert res.counters["delivered"] == 3
        proc = l2.proc
    assert proc is not None and proc.poll() is not None
    assert not (tmp_path / "qtest.sock").exists()


def test_l2_qemu_that_dies_is_reported_with_its_output(tmp_path: Path) -> None:
    def cmd(sock: Path) -> list[str]:
        return [sys.executable, "-c", "import sys; print('vfio: no iommu_group found'); sys.exit(1)"]

    with pytest.raises(LabError, match="no iommu_group found"), L2Qemu(cmd, tmp_path, start_timeout_s=20):
        pass


def test_l2_cmdline_is_the_verified_one() -> None:
    cmd = l2_cmdline("qemu-system-x86_64", "kvm", "/tmp/q.sock", "0000:00:03.0", ["-D", "t.log"])
    assert cmd[:5] == ["qemu-system-x86_64", "-accel", "kvm", "-S", "-qtest"]
    assert "unix:/tmp/q.sock" in cmd and "vfio-pci,host=0000:00:03.0" in cmd
    assert cmd[cmd.index("-qtest-log") + 1] == "/dev/null"
    assert np.array(cmd[-2:]).tolist() == ["-D", "t.log"]
