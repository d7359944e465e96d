"""The L1 launcher's process handling, with a stand-in for QEMU (runs anywhere, no VM booted)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from vfiobench.errors import LabError
from vfiobench.lab.image import Image
from vfiobench.lab.vm import L1VM, MARK_JOB_DONE, MARK_JOB_START, VmConfig, l1_cmdline

# A fake "qemu-system-x86_64": writes the console markers to the -serial file, records its pid and
# a child's pid, then either exits (like a guest powering off) or hangs (like a stuck guest).
FAKE_QEMU = textwrap.dedent(
    """\
    #!{python}
    import os, subprocess, sys, time
    args = sys.argv[1:]
    console = args[args.index("-serial") + 1].removeprefix("file:")
    child = subprocess.Popen(["sleep", "300"])
    with open(os.environ["FAKE_PIDS"], "w") as f:
        f.write(f"{{os.getpid()}} {{child.pid}}")
    with open(console, "a") as c:
        c.write("[    0.863952] HugeTLB: registered 2.00 MiB page size\\n"); c.flush()
        if os.environ.get("FAKE_MODE") == "hung-boot":
            time.sleep(300)
        c.write("vfiobench-lab: init up 1.0\\n"); c.flush()
        c.write("vfiobench-lab: job start 1.1\\n"); c.flush()
        if os.environ.get("FAKE_MODE") == "hang":
            time.sleep(300)
        c.write("vfiobench-lab: job done rc=0 1.2\\n")
    print("qemu says goodbye", file=sys.stderr)
    child.kill()
    sys.exit(0)
    """
)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Image, VmConfig, Path]:
    exe = tmp_path / "fake-qemu"
    exe.write_text(FAKE_QEMU.format(python=sys.executable))
    exe.chmod(0o755)
    img_dir = tmp_path / "img"
    img_dir.mkdir()
    for name in ("l1.img", "vmlinuz", "initrd.img"):
        (img_dir / name).write_bytes(b"")
    pids = tmp_path / "pids"
    monkeypatch.setenv("FAKE_PIDS", str(pids))
    return Image(img_dir, {}), VmConfig(qemu=str(exe), timeout_s=30), pids


def test_cmdline_is_the_verified_one(tmp_path: Path) -> None:
    img = Image(tmp_path, {})
    cmd = l1_cmdline(img, tmp_path / "share", tmp_path / "s.sock", tmp_path / "c.log", VmConfig())
    joined = " ".join(cmd)
    assert "-accel tcg,thread=single" in joined and "-cpu max" in joined
    assert "-machine q35,kernel-irqchip=split" in joined
    assert "-device intel-iommu,intremap=on,caching-mode=on" in joined
    assert "-device ivshmem-doorbell,chardev=ivs,vectors=4" in joined
    assert f"local,path={tmp_path / 'share'},mount_tag=share,security_model=none" in joined
    assert "snapshot=on" in joined and "-no-reboot" in joined
    assert f"file:{tmp_path / 'c.log'}" in joined


def test_clean_power_off_records_boot_times(fake: tuple[Image, VmConfig, Path], tmp_path: Path) -> None:
    img, cfg, _ = fake
    console = tmp_path / "console.log"
    with L1VM(img, tmp_path, console, cfg) as vm:
        assert vm.ivshmem is not None and vm.ivshmem.path.exists()  # listening before QEMU starts
        assert vm.wait() == 0
    assert vm.times.job_start_s is not None and vm.times.job_done_s is not None
    assert MARK_JOB_START in console.read_text() and MARK_JOB_DONE in console.read_text()
    assert "goodbye" in vm.qemu_stderr()


def test_hung_guest_is_killed_after_the_timeout(
    fake: tuple[Image, VmConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img, cfg, pids = fake
    monkeypatch.setenv("FAKE_MODE", "hang")
    t0 = time.monotonic()
    vm = L1VM(img, tmp_path, tmp_path / "console.log", cfg)
    with pytest.raises(LabError, match=r"did not power off within 2 s.*job start") as e, vm:
        vm.wait(timeout_s=2)
    assert time.monotonic() - t0 < 20
    assert "console.log" in str(e.value)
    qemu_pid, child_pid = map(int, pids.read_text().split())
    assert not alive(qemu_pid)
    for _ in range(50):  # the whole process group went, the stand-in's child too
        if not alive(child_pid):
            break
        time.sleep(0.1)
    assert not alive(child_pid)


def test_ctrl_c_ends_every_process(fake: tuple[Image, VmConfig, Path], tmp_path: Path) -> None:
    img, cfg, pids = fake
    script = textwrap.dedent(
        f"""
        import signal
        from pathlib import Path
        from vfiobench.lab.image import Image
        signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started with SIGINT ignored
        from vfiobench.lab.vm import L1VM, VmConfig
        img = Image(Path({str(img.path)!r}), {{}})
        with L1VM(img, Path({str(tmp_path)!r}), Path({str(tmp_path / "c.log")!r}),
                  VmConfig(qemu={cfg.qemu!r}, timeout_s=300)) as vm:
            print("waiting", flush=True)
            vm.wait()
        """
    )
    env = dict(os.environ, FAKE_MODE="hang")
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"waiting"
        for _ in range(100):
            if pids.exists() and pids.read_text():
                break
            time.sleep(0.05)
        qemu_pid, child_pid = map(int, pids.read_text().split())
        assert alive(qemu_pid)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
        assert b"KeyboardInterrupt" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    for _ in range(50):
        if not alive(qemu_pid) and not alive(child_pid):
            break
        time.sleep(0.1)
    assert not alive(qemu_pid) and not alive(child_pid)


def test_missing_qemu_is_a_named_error(tmp_path: Path) -> None:
    vm = L1VM(Image(tmp_path, {}), tmp_path, tmp_path / "c.log", VmConfig(qemu="no-such-qemu-binary"))
    with pytest.raises(LabError, match="not found"), vm:
        pass


def test_hung_boot_is_killed_long_before_the_batch_timeout(
    fake: tuple[Image, VmConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A guest whose kernel stops before the job starts is killed at the boot deadline (2 s here),
    not at the batch's timeout (30 s): one line that says so and how to retry."""
    img, cfg, pids = fake
    cfg.boot_timeout_s = 2
    monkeypatch.setenv("FAKE_MODE", "hung-boot")
    t0 = time.monotonic()
    vm = L1VM(img, tmp_path, tmp_path / "console.log", cfg)
    with pytest.raises(LabError, match=r"did not start its job within 2 s .*HugeTLB") as e, vm:
        vm.wait()
    assert time.monotonic() - t0 < 15 < cfg.timeout_s
    assert "re-run to retry" in str(e.value)
    assert not alive(int(pids.read_text().split()[0]))


def test_a_started_job_is_not_held_to_the_boot_deadline(
    fake: tuple[Image, VmConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job started (its marker is on the console) and runs past the boot deadline: only the
    batch timeout applies."""
    img, cfg, _ = fake
    cfg.boot_timeout_s = 1
    monkeypatch.setenv("FAKE_MODE", "hang")  # job start written, then no power-off
    vm = L1VM(img, tmp_path, tmp_path / "console.log", cfg)
    with pytest.raises(LabError, match=r"did not power off within 4 s"), vm:
        vm.wait(timeout_s=4)
