"""QEMU trace-log (log backend) parsing and per-phase counting (runs anywhere)."""

from __future__ import annotations

from pathlib import Path

from vfiobench.qemu.trace import (
    count_events,
    counts_by_phase,
    df_trace_events,
    parse_line,
    trace_args,
)

SETUP = (
    "1234@1700000000.000100:vfio_msix_early_setup 0000:00:03.0 PCI MSI-X CAP @0x40, BAR 1, "
    "offset 0x0, entries 4\n"
    "1234@1700000000.000200:vfio_msix_vector_do_use  (0000:00:03.0) vector 0 used\n"
    "1234@1700000000.000300:vfio_msix_pba_disable  (0000:00:03.0)\n"
)
CYCLE = (
    "1234@1700000000.{u}1:vfio_msix_vector_release  (0000:00:03.0) vector 0 released\n"
    "1234@1700000000.{u}2:vfio_msix_pba_enable  (0000:00:03.0)\n"
    "1234@1700000000.{u}3:vfio_msi_interrupt  (0000:00:03.0) vector 0 0x100000/0x41\n"
    "1234@1700000000.{u}4:vfio_msix_vector_do_use  (0000:00:03.0) vector 0 used\n"
    "1234@1700000000.{u}5:vfio_msix_pba_disable  (0000:00:03.0)\n"
)


def test_parse_line_with_and_without_timestamp() -> None:
    ev = parse_line("1234@1700000000.000123:vfio_msi_interrupt  (0000:00:03.0) vector 0 0x100000/0x41\n", 99)
    assert ev is not None
    assert (ev.offset, ev.pid, ev.wall_ts_ns, ev.name) == (
        99,
        1234,
        1_700_000_000_000_123_000,
        "vfio_msi_interrupt",
    )
    assert ev.args == "(0000:00:03.0) vector 0 0x100000/0x41"
    bare = parse_line("vfio_msix_pba_enable  (0000:00:03.0)")
    assert bare is not None and (bare.pid, bare.wall_ts_ns, bare.name) == (-1, -1, "vfio_msix_pba_enable")
    assert parse_line("qemu-system-x86_64: -device vfio-pci: warning: something") is None
    assert parse_line("") is None
    # QEMU 10/11: -msg timestamp=on prefixes an ISO 8601 UTC time and no pid (seen in the lab's log)
    iso = parse_line("2023-11-14T22:13:20.000123Z vfio_msix_vector_release  (0000:00:02.0) vector 0 released")
    assert iso is not None
    assert (iso.pid, iso.wall_ts_ns, iso.name) == (-1, 1_700_000_000_000_123_000, "vfio_msix_vector_release")
    assert iso.args == "(0000:00:02.0) vector 0 released"


def write_log(tmp_path: Path, cycles: int) -> tuple[Path, int, int]:
    log = tmp_path / "trace.log"
    body = SETUP
    setup_end = len(body.encode())
    for i in range(cycles):
        body += CYCLE.format(u=f"{100 + i:05d}")
    measure_end = len(body.encode())
    body += "1234@1700000001.000000:vfio_msix_disable  (0000:00:03.0)\n"
    body += "1234@1700000001.000001:vfio_msix_vector_rel"  # torn last line: not counted
    log.write_text(body)
    return log, setup_end, measure_end


def test_counts_by_phase_cut_by_byte_offset(tmp_path: Path) -> None:
    log, setup_end, measure_end = write_log(tmp_path, 13)
    phases = counts_by_phase(log, {"setup": (0, setup_end), "measure": (setup_end, measure_end)})
    assert phases["setup"] == {
        "vfio_msix_early_setup": 1,
        "vfio_msix_vector_do_use": 1,
        "vfio_msix_pba_disable": 1,
    }
    assert phases["measure"] == {
        "vfio_msix_vector_release": 13,
        "vfio_msix_pba_enable": 13,
        "vfio_msi_interrupt": 13,
        "vfio_msix_vector_do_use": 13,
        "vfio_msix_pba_disable": 13,
    }
    everything = count_events(log)
    assert everything["vfio_msix_disable"] == 1 and "vfio_msix_vector_rel" not in everything
    assert sum(everything.values()) == 3 + 5 * 13 + 1


def test_missing_log_gives_empty_counts(tmp_path: Path) -> None:
    assert counts_by_phase(tmp_path / "none.log", {"measure": (0, 10)}) == {"measure": {}}


def test_df_trace_events_columns(tmp_path: Path) -> None:
    log, _, _ = write_log(tmp_path, 2)
    df = df_trace_events(log)
    assert list(df.columns) == ["offset", "pid", "wall_ts_ns", "event", "args"]
    assert len(df) == 3 + 10 + 1
    assert df["offset"].is_monotonic_increasing and df["offset"].iloc[0] == 0
    assert (df["pid"] == 1234).all()


def test_trace_args() -> None:
    assert trace_args("/tmp/t.log") == [
        "-trace",
        "vfio_msix*",
        "-trace",
        "vfio_msi_interrupt",
        "-trace",
        "kvm_irqchip_commit_routes",
        "-D",
        "/tmp/t.log",
        "-msg",
        "timestamp=on",
    ]
