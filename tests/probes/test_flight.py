"""The flight recorder's parts on hand-built rows (no BPF): trigger syntax, the bounded ring, windows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vfiobench import schema
from vfiobench.cli import main
from vfiobench.errors import VfioBenchError
from vfiobench.probes.flight import CHUNK_OVERHEAD, Capture, CaptureWriter, EventRing, FlightRecorder
from vfiobench.probes.trigger import SECOND, parse_duration, parse_size, parse_trigger
from vfiobench.store import RunMeta, load_run, load_runs

MS = 1_000_000
PROBES = [schema.SET_IRQS, schema.PBA_TOGGLE, schema.COMMIT]


def rows(name: str, ts_ns: Any, dur_ns: Any = 1_000, **cols: Any) -> np.ndarray[Any, Any]:
    ts = np.atleast_1d(np.asarray(ts_ns, dtype=np.int64))
    out = np.zeros(ts.size, dtype=schema.TABLE_DTYPES[name])
    out["ts_ns"] = ts
    out["dur_ns"] = dur_ns
    for k, v in cols.items():
        out[k] = v
    return out


# ---- syntax -------------------------------------------------------------------------------------------


def test_durations_and_sizes() -> None:
    assert parse_duration("2s") == 2 * SECOND
    assert parse_duration("500ms") == 500 * MS
    assert parse_duration("200us") == parse_duration("200µs") == 200_000
    assert parse_duration("1.5") == 1_500_000_000 and parse_duration("7ns") == 7
    assert parse_size("64M") == 64 << 20 and parse_size("1G") == 1 << 30 and parse_size("4096") == 4096
    for bad in ("", "fast", "2 weeks", "-1s"):
        with pytest.raises(VfioBenchError):
            parse_duration(bad)
    for bad in ("0", "-5M", "12X"):
        with pytest.raises(VfioBenchError):
            parse_size(bad)


def test_a_trigger_reads_probe_field_op_value() -> None:
    t = parse_trigger("pba_toggle.dur > 5ms", PROBES)
    assert t.probe == schema.PBA_TOGGLE and len(t.clauses) == 1
    c = t.clauses[0]
    assert (c.column, c.op, c.value) == ("dur_ns", ">", 5 * MS)
    assert parse_trigger("pba_toggle.dur>5 ms", PROBES).clauses == t.clauses  # spaces are free
    batch = rows(schema.PBA_TOGGLE, [1, 2, 3], dur_ns=[5 * MS, 5 * MS + 1, 10])
    assert t.mask(batch).tolist() == [False, True, False]


def test_prefixes_units_flags_and_conjunctions() -> None:
    t = parse_trigger("set_irqs.dur >= 200us and set_irqs.ret != 0", PROBES)
    assert t.probe == schema.SET_IRQS
    assert [(c.column, c.op, c.value) for c in t.clauses] == [("dur_ns", ">=", 200_000), ("ret", "!=", 0)]
    batch = rows(schema.SET_IRQS, [1, 2, 3], dur_ns=[200_000, 300_000, 100], ret=[0, -25, -25])
    assert t.mask(batch).tolist() == [False, True, False]
    flag = parse_trigger("pba_toggle.dur > 1ms AND pba_toggle.is_pba == true", PROBES)
    assert flag.clauses[1].value is True
    assert parse_trigger("transaction_commit.dur > 1500", PROBES).clauses[0].value == 1500  # bare: ns
    ev = parse_trigger("irq_path.event == host_irq", [schema.IRQ_PATH])
    events = np.array([("host_irq",), ("kvm_msi",)], dtype=[("event", "<U16")])
    assert ev.mask(events).tolist() == [True, False]


@pytest.mark.parametrize(
    ("expr", "says"),
    [
        ("pba_toggle.dur >> 5ms", "cannot read"),
        ("pba_toggle > 5ms", "cannot read"),
        ("nope.dur > 1ms", "not among the recorded probes"),
        ("set_vector_signal.dur > 1ms", "record it with --probe set_vector_signal"),
        ("pba_toggle.size > 1", "has no such column"),
        ("pba_toggle.dur > 5 parsecs", "not a duration"),
        ("pba_toggle.dur > 5 ms 3", "cannot read"),
        ("pba_toggle.dur > 5parsecs", "not a duration"),
        ("pba_toggle.is_pba == maybe", "not a flag"),
        ("pba_toggle.dur > 1ms and set_irqs_ioctl.dur > 1ms", "names both"),
        ("irq_path.event == lunch", "not an event"),
        ("set_irqs_ioctl.fd == three", "not a number"),
    ],
)
def test_a_bad_trigger_says_what_is_wrong(expr: str, says: str) -> None:
    with pytest.raises(VfioBenchError) as e:
        parse_trigger(expr, [*PROBES, schema.IRQ_PATH])
    assert says in str(e.value)
    assert "\n" not in str(e.value)


def test_an_ambiguous_prefix_is_refused() -> None:
    with pytest.raises(VfioBenchError, match="ambiguous"):
        parse_trigger("set_.dur > 1ms", [schema.SET_IRQS, schema.SET_VECTOR_SIGNAL])


# ---- the ring -----------------------------------------------------------------------------------------


def test_the_ring_keeps_the_age_window_and_drops_older_chunks() -> None:
    ring = EventRing(keep_ns=100, max_bytes=1 << 30)
    for t in range(0, 1000, 10):  # one row per batch, 10 ns apart: coalesced into one chunk
        ring.push(schema.COMMIT, rows(schema.COMMIT, t))
    assert ring.events == 100  # small batches merge, so nothing has aged out of its chunk yet
    big = rows(schema.COMMIT, np.arange(1000, 1000 + 5000))  # 120 kB: its own chunk
    ring.push(schema.COMMIT, big)
    kept = ring.window(0, 10**9)[schema.COMMIT]
    assert kept["ts_ns"].min() == 1000 and kept.size == 5000  # the old chunk ended before newest - 100


def test_the_byte_bound_holds_after_every_push_and_drops_oldest_first() -> None:
    itemsize = schema.TABLE_DTYPES[schema.PBA_TOGGLE].itemsize
    bound = 200 * itemsize + 2 * CHUNK_OVERHEAD
    ring = EventRing(keep_ns=10 * SECOND, max_bytes=bound)
    t = 0
    for n in (37, 101, 53, 211, 7, 301):
        ring.push(schema.PBA_TOGGLE, rows(schema.PBA_TOGGLE, np.arange(t, t + n)))
        t += n
        assert ring.nbytes <= bound
    kept = ring.window(0, t)[schema.PBA_TOGGLE]["ts_ns"]
    assert kept.max() == t - 1 and kept.tolist() == list(range(int(kept.min()), t))  # the newest, no gaps
    assert ring.evicted_until_ns == kept.min() - 1


def test_the_event_bound_across_probes_drops_the_oldest_rows_of_any_probe() -> None:
    ring = EventRing(keep_ns=10 * SECOND, max_bytes=1 << 30, max_events=50)
    ring.push(schema.SET_IRQS, rows(schema.SET_IRQS, np.arange(0, 30)))
    ring.push(schema.COMMIT, rows(schema.COMMIT, np.arange(100, 130)))
    assert ring.events == 50
    w = ring.window(0, 1000)
    assert w[schema.SET_IRQS]["ts_ns"].tolist() == list(range(10, 30))
    assert w[schema.COMMIT].size == 30


def test_a_pinned_window_outlives_the_age_bound() -> None:
    ring = EventRing(keep_ns=100, max_bytes=1 << 30)
    ring.push(schema.COMMIT, rows(schema.COMMIT, np.arange(0, 3000)))
    ring.pinned_from_ns = 0
    ring.push(schema.COMMIT, rows(schema.COMMIT, np.arange(3000, 6000)))
    assert ring.window(0, 10**6)[schema.COMMIT].size == 6000
    ring.pinned_from_ns = None
    ring.push(schema.COMMIT, rows(schema.COMMIT, np.arange(6000, 9000)))
    assert ring.window(0, 10**6)[schema.COMMIT]["ts_ns"].min() == 6000


# ---- the recorder -------------------------------------------------------------------------------------


def feed(recorder: FlightRecorder, name: str, batch: np.ndarray[Any, Any]) -> str | None:
    """One poll: the batch is drained, then the poll that began after its newest call ended."""
    recorder.observe(name, batch)
    return recorder.after_poll(int((batch["ts_ns"] + batch["dur_ns"]).max()) + 1)


def recorder(saved: list[Capture], **kw: Any) -> FlightRecorder:
    trig = parse_trigger("pba_toggle.dur > 5ms", PROBES)
    opts: dict[str, Any] = {"before_ns": SECOND, "after_ns": SECOND, "max_bytes": 1 << 30, "settle_ns": 0}
    opts.update(kw)
    return FlightRecorder([trig], save=lambda c: saved.append(_frozen(c)), **opts)


def _frozen(c: Capture) -> Capture:
    import copy

    out = copy.copy(c)
    out.tables = dict(c.tables)
    return out


def fast(t0_ns: int, n: int, step_ns: int = MS) -> np.ndarray[Any, Any]:
    return rows(schema.PBA_TOGGLE, t0_ns + step_ns * np.arange(n), dur_ns=2_000)


def test_one_slow_call_saves_exactly_its_window_and_stops() -> None:
    saved: list[Capture] = []
    rec = recorder(saved)
    t = 10 * SECOND
    assert feed(rec, schema.PBA_TOGGLE, fast(t, 11)) is None  # far before: 1.5 s ahead of the window
    t += 1_500 * MS
    assert feed(rec, schema.PBA_TOGGLE, fast(t, 23)) is None  # inside the window, before
    t += 23 * MS
    slow = rows(schema.PBA_TOGGLE, t, dur_ns=50 * MS)
    assert feed(rec, schema.PBA_TOGGLE, slow) is None and rec.open is not None
    t += 51 * MS
    assert feed(rec, schema.PBA_TOGGLE, fast(t, 17)) is None  # inside, after
    t += 1_500 * MS
    why = feed(rec, schema.PBA_TOGGLE, fast(t, 13))  # far after: the poll is past the window's end
    assert why == "1 trigger saved"
    (cap,) = saved
    assert cap.event["dur_ns"] == 50 * MS and cap.complete and cap.matches == 1
    assert (cap.events_before, cap.events_after) == (23, 17)
    assert cap.tables[schema.PBA_TOGGLE].size == 23 + 1 + 17
    assert rec.events[schema.PBA_TOGGLE] == 11 + 23 + 1 + 17 + 13
    assert rec.summary[schema.PBA_TOGGLE].total == 11 + 23 + 1 + 17 + 13  # the whole period


def test_re_arming_saves_up_to_max_triggers_and_counts_matches_inside_a_window() -> None:
    saved: list[Capture] = []
    rec = recorder(saved, max_triggers=2, before_ns=10 * MS, after_ns=10 * MS)
    t = SECOND
    for k in range(3):
        batch = fast(t, 5)
        batch["dur_ns"][2] = 6 * MS
        batch["dur_ns"][3] = 7 * MS  # a second match, 1 ms later: inside the same window
        why = feed(rec, schema.PBA_TOGGLE, batch)
        t += 100 * MS
        why = feed(rec, schema.PBA_TOGGLE, fast(t, 1)) or why
        t += 100 * MS
        if k == 1:
            assert why == "2 triggers saved"
    assert [c.index for c in saved] == [1, 2]
    assert [c.matches for c in saved] == [2, 2]
    assert not rec.armed


def test_a_match_after_a_window_but_before_it_was_saved_still_fires() -> None:
    saved: list[Capture] = []
    rec = recorder(saved, max_triggers=0, before_ns=MS, after_ns=MS)
    a = rows(schema.PBA_TOGGLE, [SECOND, SECOND + 10 * MS], dur_ns=[6 * MS, 6 * MS])
    rec.observe(schema.PBA_TOGGLE, a)  # both drained in one batch: the second is outside the first window
    rec.after_poll(SECOND + 100 * MS)
    assert [c.event["ts_ns"] for c in saved] == [SECOND]
    assert rec.open is not None and rec.open.event["ts_ns"] == SECOND + 10 * MS


def test_a_window_the_byte_bound_cut_is_saved_marked_incomplete() -> None:
    saved: list[Capture] = []
    itemsize = schema.TABLE_DTYPES[schema.PBA_TOGGLE].itemsize
    bound = 50 * itemsize + CHUNK_OVERHEAD
    rec = recorder(saved, max_bytes=bound)
    feed(rec, schema.PBA_TOGGLE, fast(SECOND, 1000, step_ns=100_000))
    t = SECOND + 100 * MS
    feed(rec, schema.PBA_TOGGLE, rows(schema.PBA_TOGGLE, t, dur_ns=10 * MS))
    feed(rec, schema.PBA_TOGGLE, fast(t + 2 * SECOND, 1))
    (cap,) = saved
    assert not cap.complete and "size bound" in cap.note
    # the bound holds 50 rows: the call that closed the window and the 49 newest before it
    assert cap.tables[schema.PBA_TOGGLE].size == 49
    assert cap.tables[schema.PBA_TOGGLE]["dur_ns"].max() == 10 * MS


def test_finish_saves_an_open_window_cut_short() -> None:
    saved: list[Capture] = []
    rec = recorder(saved)
    feed(rec, schema.PBA_TOGGLE, rows(schema.PBA_TOGGLE, SECOND, dur_ns=9 * MS))
    assert saved == []
    rec.finish()
    assert len(saved) == 1 and not saved[0].complete and "ended before the window" in saved[0].note


def test_losses_since_the_window_start_are_charged_to_it() -> None:
    saved: list[Capture] = []
    lost = {schema.PBA_TOGGLE: 0}
    rec = recorder(saved, lost=lambda: lost)
    rec.after_poll(SECOND)
    lost[schema.PBA_TOGGLE] = 5  # lost long before the window
    rec.after_poll(3 * SECOND)
    lost[schema.PBA_TOGGLE] = 12  # lost inside it
    feed(rec, schema.PBA_TOGGLE, rows(schema.PBA_TOGGLE, 5 * SECOND, dur_ns=9 * MS))
    feed(rec, schema.PBA_TOGGLE, fast(7 * SECOND, 1))
    assert saved[0].lost == {schema.PBA_TOGGLE: 7}


def test_a_capture_is_written_as_a_run_labelled_with_its_trigger(tmp_path: Path) -> None:
    base = RunMeta(run_id="fr", variant="stock", source="synthetic")
    writer = CaptureWriter(tmp_path / "fr", base, SECOND, SECOND)
    rec = recorder([], max_triggers=2)
    rec.save = writer
    feed(rec, schema.PBA_TOGGLE, fast(SECOND, 3))
    feed(rec, schema.PBA_TOGGLE, rows(schema.PBA_TOGGLE, SECOND + 10 * MS, dur_ns=8 * MS))
    feed(rec, schema.PBA_TOGGLE, fast(SECOND + 30 * MS, 5))
    feed(rec, schema.PBA_TOGGLE, fast(4 * SECOND, 1))
    rec.finish()
    assert writer.close() == [tmp_path / "fr" / "trigger-1"]
    run = load_run(tmp_path / "fr" / "trigger-1")
    assert run.meta.status == "complete" and run.run_id == "fr-trigger-1" and run.variant == "stock"
    assert run.meta.labels["trigger"] == "pba_toggle.dur > 5ms"
    assert run.meta.labels["trigger_event"]["dur_ns"] == 8 * MS
    assert (run.meta.labels["events_before_trigger"], run.meta.labels["events_after_trigger"]) == (3, 5)
    assert run.meta.probes[schema.PBA_TOGGLE].events == len(run.table(schema.PBA_TOGGLE)) == 9
    assert run.meta.started_utc < run.meta.ended_utc  # type: ignore[operator]
    assert len(load_runs(tmp_path / "fr")) == 1


# ---- the command line (errors before anything is attached) -------------------------------------------


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--trigger", "pba_toggle.dur >> 5ms"], "cannot read 'pba_toggle.dur >> 5ms'"),
        (["--trigger", "set_irqs_ioctl.dur > 5ms"], "not among the recorded probes"),
        (["--trigger", "pba_toggle.dur > 5ms", "--window", "soon"], "--window 'soon' is not a duration"),
        (["--trigger", "pba_toggle.dur > 5ms", "--ring-bytes", "lots"], "--ring-bytes 'lots' is not a size"),
        (["--trigger", "pba_toggle.dur > 5ms", "--max-triggers", "-1"], "--max-triggers -1 must be 0"),
    ],
)
def test_bad_flight_options_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], says: str
) -> None:
    rc = main(["record", "--pid", "1", "--probe", "pba_toggle", "--out", str(tmp_path / "x"), *args])
    err = capsys.readouterr().err
    assert rc == 2 and says in err
    assert err.startswith("vfiobench: error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "x").exists()
