"""Real probes on the C stand-in, recorded through the real CLI (``python -m vfiobench record``).

Needs root, BCC, tracefs and gcc; skips with the reason otherwise. Every count is exact.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from probe_helpers import StandIn

from vfiobench.qemu.binary import ElfFile
from vfiobench.store import load_run

pytestmark = [pytest.mark.root, pytest.mark.bpf, pytest.mark.usefixtures("bpf_ready")]

N = 37  # SET_IRQS ioctls and PBA toggles the target makes (odd, prime)
OTHER = 5  # toggles of a second region ("vfio-bar2")
DELAY_US = 2000  # time memory_region_set_enabled sleeps inside
ENOTTY = 25


class Recorder:
    """``python -m vfiobench record ...`` as a child process, started and waited for its attach line."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "vfiobench", "record", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stderr is not None
        self.err_lines: list[str] = []
        while True:
            line = self.proc.stderr.readline()
            if not line:
                out, err = self.proc.communicate()
                pytest.fail(f"record exited before attaching: {''.join(self.err_lines)}{err}{out}")
            self.err_lines.append(line)
            if "attached" in line:
                return

    def wait(self, timeout: float = 60) -> tuple[int, str, str]:
        out, err = self.proc.communicate(timeout=timeout)
        return self.proc.returncode, out, "".join(self.err_lines) + err


def test_exact_counts_pid_filter_durations(tmp_path: Path, standin_bin: Path, spawn: type[StandIn]) -> None:
    target = spawn(standin_bin, "both", N, DELAY_US, OTHER)
    decoy = spawn(standin_bin, "both", N, DELAY_US, OTHER)  # same binary, same calls: must not count
    out = tmp_path / "run"
    rec = Recorder("--pid", str(target.pid), "--out", str(out), "--variant", "standin")
    target.go()
    decoy.go()
    assert target.wait_done() == N and decoy.wait_done() == N
    time.sleep(0.5)  # the recorder resolves region names while the target is alive
    target.finish()
    rc, stdout, stderr = rec.wait()
    decoy.finish()
    assert rc == 0, stderr
    assert "stopped (target exited)" in stdout

    run = load_run(out)
    meta = run.meta
    assert meta.status == "complete" and meta.variant == "standin" and meta.kind == "probed"
    assert meta.qemu.path == str(standin_bin) and meta.qemu.build_id == ElfFile(standin_bin).build_id
    assert meta.qemu.cmdline[:2] == [str(standin_bin), "both"]
    # set_enabled starts with QEMU's fast-path cmp (single-stepped): the probe sits on the je at +4
    assert meta.probes["pba_toggle"].target.endswith("memory_region_set_enabled+0x4")
    # skipped program runs: counted where the kernel counts them (their number depends on what else
    # runs BPF on these CPUs meanwhile), None ("not measured") where it does not
    from vfiobench.store import kernel_counts_misses

    if kernel_counts_misses():
        assert all(isinstance(p.missed, int) and p.missed >= 0 for p in meta.probes.values())
    else:
        assert all(p.missed is None for p in meta.probes.values())
    assert meta.probes["transaction_commit"].target.endswith("memory_region_transaction_commit+0x0")

    ioctl = run.table("set_irqs_ioctl")
    assert len(ioctl) == N
    assert list(ioctl.columns[:10]) == [
        "ts_ns",
        "dur_ns",
        "pid",
        "tid",
        "fd",
        "ret",
        "index",
        "start",
        "count",
        "flags",
    ]
    assert set(ioctl["pid"]) == {target.pid} and set(ioctl["tid"]) == {target.pid}
    assert (ioctl["ret"] == -ENOTTY).all() and ioctl["fd"].nunique() == 1
    assert (
        ioctl["start"].tolist() == list(range(N))
        and (ioctl["index"] == 2).all()
        and (ioctl["count"] == 1).all()
    )
    # trigger (DATA_EVENTFD|ACTION_TRIGGER) on even calls, mask (DATA_NONE|ACTION_MASK) on odd ones
    assert ioctl["flags"].tolist() == [0x24 if i % 2 == 0 else 0x09 for i in range(N)]
    assert (ioctl["dur_ns"] > 0).all() and (ioctl["dur_ns"] < 50_000_000).all()

    pba = run.table("pba_toggle")
    assert len(pba) == N + OTHER
    assert int(pba["is_pba"].sum()) == N and pba["mr"].nunique() == 2
    on_pba = pba[pba["is_pba"]]
    assert on_pba["enabled"].tolist() == [i % 2 == 0 for i in range(N)]
    # usleep(2 ms) inside: at least the delay, and nothing like a lost return (bounded)
    assert (pba["dur_ns"] >= DELAY_US * 1000).all() and (pba["dur_ns"] < DELAY_US * 1000 + 100_000_000).all()
    regions = run.table("pba_regions").set_index("name")
    assert regions.loc["msix-pba", "is_pba"] and not regions.loc["vfio-bar2", "is_pba"]
    assert regions.loc["msix-pba", "name_offset"] == 88  # offsetof(MemoryRegion, name) in standin.c

    commit = run.table("transaction_commit")
    assert len(commit) == N + OTHER and (commit["depth"] == 0).all()
    # set_enabled tail-jumps into commit: each commit runs inside its set_enabled call
    p = pba.sort_values("ts_ns").reset_index(drop=True)
    c = commit.sort_values("ts_ns").reset_index(drop=True)
    assert (c["ts_ns"] >= p["ts_ns"]).all()
    assert (c["ts_ns"] + c["dur_ns"] <= p["ts_ns"] + p["dur_ns"]).all()

    for name, rows in (("set_irqs_ioctl", N), ("pba_toggle", N + OTHER), ("transaction_commit", N + OTHER)):
        assert meta.probes[name].events == rows and meta.probes[name].lost == 0
        assert meta.tables[name] == rows


def test_endbr64_functions_are_probed_past_it(
    tmp_path: Path, standin_cet_bin: Path, spawn: type[StandIn]
) -> None:
    target = spawn(standin_cet_bin, "toggle", N, 0, 0)
    out = tmp_path / "run"
    rec = Recorder(
        "--pid", str(target.pid), "--probe", "pba_toggle", "--probe", "transaction_commit", "--out", str(out)
    )
    target.go()
    target.wait_done()
    time.sleep(0.3)
    target.finish()
    rc, _, stderr = rec.wait()
    assert rc == 0, stderr
    run = load_run(out)
    # endbr64 (4 bytes), then QEMU's fast-path cmp (4 bytes): the probe sits on the je at +8
    assert "memory_region_set_enabled+0x8" in run.meta.probes["pba_toggle"].target
    assert "memory_region_transaction_commit+0x4" in run.meta.probes["transaction_commit"].target
    assert "single-stepped" not in run.meta.probes["pba_toggle"].target
    assert len(run.table("pba_toggle")) == N and len(run.table("transaction_commit")) == N


def test_histogram_mode_counts_exactly(tmp_path: Path, standin_bin: Path, spawn: type[StandIn]) -> None:
    target = spawn(standin_bin, "both", N, DELAY_US, 0)
    out = tmp_path / "run"
    rec = Recorder("--pid", str(target.pid), "--histogram", "--out", str(out))
    target.go()
    target.wait_done()
    target.finish()
    rc, _, stderr = rec.wait()
    assert rc == 0, stderr
    run = load_run(out)
    for name in ("set_irqs_ioctl", "pba_toggle", "transaction_commit"):
        h = run.table(name)
        assert list(h.columns) == ["bucket", "count", "lo_ns", "hi_ns"]
        assert int(h["count"].sum()) == N == run.meta.probes[name].events
        assert run.meta.probes[name].mode == "histogram"
    pba = run.table("pba_toggle")
    assert (pba["hi_ns"] > DELAY_US * 1000).all() and (pba["lo_ns"] < DELAY_US * 1000 + 100_000_000).all()
    # 2**6 sub-buckets per power of two: each bucket is at most 1/64 of its lower bound wide
    assert ((pba["hi_ns"] - pba["lo_ns"]) * 64 <= pba["lo_ns"]).all()


@pytest.mark.parametrize(
    ("sig", "duration"),
    [(signal.SIGINT, ["--duration", "60"]), (signal.SIGTERM, []), (signal.SIGINT, [])],
    ids=["ctrl-c-before-duration", "sigterm", "ctrl-c-without-duration"],
)
def test_interrupt_keeps_every_event_and_marks_a_cut_short_run_partial(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn], sig: signal.Signals, duration: list[str]
) -> None:
    """A run cut short (Ctrl-C before --duration, SIGTERM) is partial; Ctrl-C is how a recording
    without --duration is meant to end, so that one is complete. Either way nothing is lost."""
    total = 1001
    target = spawn(standin_bin, "toggle", total, DELAY_US, 0)  # ~2.2 s of calls
    out = tmp_path / "run"
    rec = Recorder("--pid", str(target.pid), "--probe", "pba_toggle", "--out", str(out), *duration)
    target.go()
    time.sleep(0.8)
    rec.proc.send_signal(sig)
    rc, stdout, stderr = rec.wait()
    assert "Traceback" not in stderr
    run = load_run(out)
    if duration or sig == signal.SIGTERM:
        assert rc == 130, stderr
        assert "interrupted" in stderr
        assert run.meta.status == "partial" and "KeyboardInterrupt" in (run.meta.error or "")
    else:
        assert rc == 0, stderr
        assert "stopped (Ctrl-C); run complete" in stdout
        assert run.meta.status == "complete" and run.meta.error is None
    pba = run.table("pba_toggle")
    assert 0 < len(pba) < total
    assert run.meta.probes["pba_toggle"].events == len(pba)
    assert np.all(np.diff(pba["ts_ns"].to_numpy()) > 0)
    assert not list(out.glob("*.parts"))  # compacted into pba_toggle.parquet
    target.wait_done()


def test_duration_with_an_idle_target_gives_empty_tables(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    target = spawn(standin_bin, "toggle", N, 0, 0)  # never told to go
    out = tmp_path / "run"
    rec = Recorder("--pid", str(target.pid), "--duration", "0.5", "--out", str(out))
    rc, stdout, stderr = rec.wait()
    assert rc == 0, stderr
    assert "stopped (duration)" in stdout
    run = load_run(out)
    assert run.meta.status == "complete"
    for name in ("set_irqs_ioctl", "pba_toggle", "transaction_commit"):
        assert run.meta.probes[name].events == 0
        table = run.table(name)
        assert len(table) == 0 and {"ts_ns", "dur_ns", "tid"} <= set(table.columns)


def test_real_qemu_pam_toggles_through_the_python_api(tmp_path: Path) -> None:
    """Debian's QEMU itself: the probe sits on the ``je`` at +7 (its first instruction, a ``cmp``,
    would be single-stepped) and region names come from the real ``MemoryRegion``.

    A q35 guest's firmware-area PAM registers are toggled over qtest; QEMU's ``mch_update_pam``
    re-applies all 13 PAM segments on each write, two ``memory_region_set_enabled`` calls per segment
    (disable the old alias, enable the new one): 26 calls per write.
    """
    import shutil
    import socket

    from vfiobench.probes.tracer import Tracer
    from vfiobench.store import RunMeta, RunWriter

    qemu = shutil.which("qemu-system-x86_64")
    if qemu is None:
        pytest.skip("qemu-system-x86 is not installed")
    sock = tmp_path / "qtest.sock"
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(str(sock))
    srv.listen(1)
    proc = subprocess.Popen(
        [
            qemu,
            "-machine",
            "q35",
            "-accel",
            "tcg",
            "-S",
            "-display",
            "none",
            "-nodefaults",
            "-m",
            "64",
            "-qtest",
            f"unix:{sock}",
            "-qtest-log",
            "/dev/null",
        ],
    )
    conn, _ = srv.accept()
    f = conn.makefile("rw")

    def qtest(line: str) -> str:
        f.write(line + "\n")
        f.flush()
        return f.readline().strip()

    try:
        meta = RunMeta(run_id="qemu-pam", variant="stock", source="host")
        probes = ["pba_toggle", "transaction_commit"]
        with (
            RunWriter(tmp_path / "run", meta) as writer,
            Tracer(proc.pid, probes=probes, writer=writer) as tracer,
        ):
            for i in range(N):
                assert qtest("outl 0xcf8 0x80000090") == "OK"
                assert qtest(f"outb 0xcfd {0x30 if i % 2 == 0 else 0x00}") == "OK"  # PAM1
            deadline = time.monotonic() + 5
            while tracer.counts["pba_toggle"] < 26 * N and time.monotonic() < deadline:
                tracer.poll()
                time.sleep(0.01)
    finally:
        f.close()
        conn.close()
        srv.close()
        proc.kill()
        proc.wait()
    run = load_run(tmp_path / "run")
    assert "memory_region_set_enabled+0x7" in run.meta.probes["pba_toggle"].target
    assert run.meta.qemu.version.startswith("QEMU emulator version") and run.meta.qemu.build_id
    pba = run.table("pba_toggle")
    assert len(pba) == 26 * N and not pba["is_pba"].any()
    regions = run.table("pba_regions")
    names = dict(zip(regions["mr"], regions["name"], strict=True))
    assert {names[m] for m in pba["mr"]} == {"pam-pci", "pam-ram"}
    assert sum(names[m] == "pam-ram" for m in pba["mr"]) == N
    # each segment: disable the old alias, then enable the new one
    assert pba["enabled"].tolist() == [False, True] * (13 * N)
    assert len(run.table("transaction_commit")) >= 26 * N


def test_chunks_land_while_recording(tmp_path: Path, standin_bin: Path, spawn: type[StandIn]) -> None:
    """Python API: rows are appended to the in-progress run as they arrive, not only at the end."""
    from vfiobench.probes.tracer import Tracer
    from vfiobench.store import RunMeta, RunWriter

    target = spawn(standin_bin, "toggle", N, 0, 0)
    meta = RunMeta(run_id="chunks", variant="standin", source="host")
    with RunWriter(tmp_path / "run", meta) as writer:
        with Tracer(target.pid, probes=["pba_toggle"], writer=writer, flush_seconds=0.05) as tracer:
            target.go()
            target.wait_done()
            deadline = time.monotonic() + 5
            parts = writer.path / "pba_toggle.parts"
            while not list(parts.glob("part-*.parquet")) and time.monotonic() < deadline:
                tracer.poll()
                time.sleep(0.02)
            assert list(parts.glob("part-*.parquet")), "no chunk written while recording"
            mid = load_run(tmp_path / "run")  # the in-progress run loads, as partial
            assert mid.meta.status == "partial" and len(mid.table("pba_toggle")) == N
        target.finish()
    run = load_run(tmp_path / "run")
    assert run.meta.status == "complete" and len(run.table("pba_toggle")) == N


def test_ctrl_c_mid_batch_loses_nothing(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SIGINT arriving just after a batch left the ring is held off until the batch is queued.

    The signal is sent from inside ``RingReader.read``, after the consumer position moved: the one
    moment where an interrupt would drop rows the ring no longer holds.
    """
    import os

    from vfiobench.probes.ringbuf import RingReader
    from vfiobench.probes.tracer import Tracer
    from vfiobench.store import RunMeta, RunWriter

    read = RingReader.read

    def read_then_interrupt(self: RingReader) -> np.ndarray:
        batch = read(self)
        if batch.size:
            os.kill(os.getpid(), signal.SIGINT)
        return batch

    target = spawn(standin_bin, "toggle", N, 0, 0)
    monkeypatch.setattr(RingReader, "read", read_then_interrupt)
    meta = RunMeta(run_id="mid-batch", variant="standin", source="host")
    with (
        pytest.raises(KeyboardInterrupt, match="SIGINT"),
        RunWriter(tmp_path / "run", meta) as writer,
        Tracer(target.pid, probes=["pba_toggle"], writer=writer) as tracer,
    ):
        target.go()
        assert target.wait_done() == N  # all N events wait in the ring, unread
        tracer.run(duration=30)
    target.finish()
    run = load_run(tmp_path / "run")
    assert run.meta.status == "partial" and "SIGINT" in (run.meta.error or "")
    assert len(run.table("pba_toggle")) == run.meta.probes["pba_toggle"].events == N


def test_after_a_kill_the_next_record_into_the_same_out_says_where_the_run_is(
    tmp_path: Path, standin_bin: Path, spawn: type[StandIn]
) -> None:
    total = 1001
    target = spawn(standin_bin, "toggle", total, DELAY_US, 0)
    out = tmp_path / "run"
    rec = Recorder("--pid", str(target.pid), "--probe", "pba_toggle", "--out", str(out))
    target.go()
    time.sleep(3.0)  # past the first 2 s flush: chunks are on disk
    rec.proc.kill()
    rec.wait()
    again = subprocess.run(
        [sys.executable, "-m", "vfiobench", "record", "--pid", str(target.pid), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 2 and "Traceback" not in again.stderr
    lines = again.stderr.splitlines()
    assert any(f"vfiobench: {out}: the recording into it was interrupted" in ln for ln in lines), lines
    assert lines[-1].startswith(f"vfiobench: error: {out}: already exists (the partial run"), lines
    run = load_run(out)
    assert run.meta.status == "partial" and "interrupted" in (run.meta.error or "")
    assert 0 < len(run.table("pba_toggle")) <= total
    target.wait_done()
