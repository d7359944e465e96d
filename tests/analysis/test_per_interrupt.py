import numpy as np
import pandas as pd
import pytest

from vfiobench.analysis.per_interrupt import (
    account_events,
    df_cost_breakdown,
    df_per_cycle,
    df_per_interrupt,
    interrupt_count,
)
from vfiobench.errors import AnalysisError
from vfiobench.store import RunSet, load_run, load_runs

US = 1000


def calls(rows, extra):
    df = pd.DataFrame(rows, columns=["ts_ns", "dur_ns", "tid"])
    df[["ts_ns", "dur_ns"]] *= US
    for k, v in extra.items():
        df[k] = v
    return df


def stock_tables():
    """Two cycles, hand-built (times in µs). See the expected values in the tests below."""
    workload = pd.DataFrame(
        {
            "cycle": [0, 1],
            "vector": 0,
            "start_ts_ns": [1000 * US, 2000 * US],
            "trigger_ts_ns": [1200 * US, 2200 * US],
            "delivered_ts_ns": [1800 * US, 2900 * US],
            "latency_ns": [600 * US, 700 * US],
            "delivered": True,
        }
    )
    # setup ioctl at 500 (before the first cycle: outside the window), then one per cycle
    ioctl = calls([(500, 50, 1), (1100, 100, 1), (2100, 120, 1)], {"fd": 15, "ret": 0})
    svs = calls([(510, 30, 1), (1120, 60, 1), (2110, 80, 1)], {"vector": 0, "fd": 19, "msix": True, "ret": 0})
    toggles = calls([(1300, 400, 1), (1750, 20, 1), (2300, 500, 1)], {"mr": 7, "enabled": True})
    toggles["is_pba"] = [True, False, True]
    # two commits nested in the PBA toggles, two on the RCU thread, one after the last delivery
    commits = calls(
        [(1350, 300, 1), (2400, 350, 1), (2500, 10, 2), (2520, 10, 2), (3500, 10, 2)], {"depth": 0}
    )
    return {
        "workload": workload,
        "set_irqs_ioctl": ioctl,
        "set_vector_signal": svs,
        "pba_toggle": toggles,
        "transaction_commit": commits,
    }


def test_per_interrupt_hand_computed(make_run):
    make_run("s1", "stock", stock_tables(), labels={"repetition": 1}, lost=0)
    free = pd.DataFrame(
        {"cycle": range(4), "start_ts_ns": np.arange(4) * 10_000, "delivered": [True, True, True, False]}
    )
    root = make_run("f1", "stock", {"workload": free}, kind="probe-free").parent
    df = df_per_interrupt(load_runs(root)).set_index("run_id")
    s = df.loc["s1"]
    assert s["interrupts"] == 2 and s["interrupts_source"] == "workload"
    assert s["set_irqs_per_irq"] == 1.0 and s["set_vector_signal_per_irq"] == 1.0
    assert s["pba_toggles_per_irq"] == 1.0 and s["region_toggles_per_irq"] == 0.5
    assert s["commits_per_irq"] == 2.0
    assert s["events_outside"] == 3  # setup ioctl + its set_vector_signal + the late RCU commit
    # inclusive µs per interrupt
    assert s["set_irqs_us_per_irq"] == pytest.approx(110)
    assert s["set_vector_signal_us_per_irq"] == pytest.approx(70)
    assert s["pba_toggle_us_per_irq"] == pytest.approx(450)
    assert s["region_toggle_us_per_irq"] == pytest.approx(10)
    assert s["commit_us_per_irq"] == pytest.approx(335)
    # exclusive: nested calls subtracted from their parents
    assert s["set_irqs_excl_us_per_irq"] == pytest.approx(40)
    assert s["set_vector_signal_excl_us_per_irq"] == pytest.approx(70)
    assert s["pba_toggle_excl_us_per_irq"] == pytest.approx(125)
    assert s["commit_excl_us_per_irq"] == pytest.approx(335)
    assert s["total_us_per_irq"] == pytest.approx(580)
    assert s["repetition"] == 1 and s["kind"] == "probed"
    # probe-free: only delivered cycles count, probe columns are NaN (not 0)
    f = df.loc["f1"]
    assert f["interrupts"] == 3
    assert np.isnan(f["set_irqs_per_irq"]) and np.isnan(f["total_us_per_irq"])


def test_window_all_counts_setup_and_late_calls(make_run):
    rs = load_runs(make_run("s1", "stock", stock_tables()))
    df = df_per_interrupt(rs, window="all")
    assert df["set_irqs_per_irq"].iloc[0] == 1.5
    assert df["commits_per_irq"].iloc[0] == 2.5
    assert df["events_outside"].iloc[0] == 0
    with pytest.raises(AnalysisError, match="window"):
        df_per_interrupt(rs, window="cycles")


def test_per_cycle_bills_calls_to_their_cycle(make_run):
    rs = load_runs(make_run("s1", "stock", stock_tables()))
    c = df_per_cycle(rs)
    assert c["cycle"].tolist() == [0, 1]
    assert c["commits"].tolist() == [1, 3]
    assert c["region_toggles"].tolist() == [1, 0]
    assert c["pba_toggle_us"].tolist() == pytest.approx([400, 500])
    assert c["total_us"].tolist() == pytest.approx([520, 640])
    assert c["total_us"].mean() == pytest.approx(df_per_interrupt(rs)["total_us_per_irq"].iloc[0])
    assert c["latency_ns"].tolist() == [600 * US, 700 * US]


def test_cost_breakdown_stacks_to_the_total(make_run):
    make_run("s1", "stock", stock_tables())
    t = stock_tables()
    t["pba_toggle"] = t["pba_toggle"].iloc[[1]]  # always-on: no PBA toggles left
    t["transaction_commit"] = t["transaction_commit"].iloc[[]]
    root = make_run("a1", "pba-always-on", t).parent
    rs = load_runs(root)
    per = df_per_interrupt(rs)
    b = df_cost_breakdown(per)
    assert list(b.columns) == ["variant", "operation", "label", "us_per_irq", "runs"]
    totals = b.groupby("variant")["us_per_irq"].sum()
    assert totals["stock"] == pytest.approx(580)
    assert totals["pba-always-on"] == pytest.approx(
        per.set_index("variant").loc["pba-always-on", "total_us_per_irq"]
    )
    assert b[(b.variant == "pba-always-on") & (b.operation == "pba_toggle")]["us_per_irq"].iloc[0] == 0
    # also straight from a run set
    pd.testing.assert_frame_equal(df_cost_breakdown(rs), b)


def test_interrupt_count_falls_back_to_params(make_run):
    r = load_run(make_run("p1", "stock", {}, params={"cycles": 37, "delivered": 35}))
    assert interrupt_count(r) == (35, "params:delivered")
    r2 = load_run(make_run("p2", "stock", {}, params={"cycles": 37}))
    assert interrupt_count(r2) == (37, "params:cycles")
    r3 = load_run(make_run("p3", "stock", {}, params={"mode": "mask"}))
    with pytest.raises(AnalysisError, match="no workload table"):
        interrupt_count(r3)


def test_histogram_mode_table_contributes_counts_and_time(make_run):
    # in-kernel histogram: 6 ioctls of exactly 100 ns (bucket 100 is [100, 101))
    hist = pd.DataFrame({"bucket": [100], "count": [6]})
    rs = RunSet([load_run(make_run("h1", "stock", {"set_irqs_ioctl": hist}, params={"cycles": 3}))])
    df = df_per_interrupt(rs)
    assert df["set_irqs_per_irq"].iloc[0] == 2.0
    assert df["set_irqs_us_per_irq"].iloc[0] == pytest.approx(0.2)
    assert np.isnan(df["pba_toggles_per_irq"].iloc[0])  # not probed


def test_lab_style_run_measure_phase_and_starts_from_mask_rtt(make_run):
    """Lab runs: no start_ts_ns (cycle starts = trigger - mask_rtt) and a measure phase in run.json."""
    t = stock_tables()
    w = t["workload"].drop(columns=["start_ts_ns"])
    w["mask_rtt_ns"] = [150 * US, 150 * US]  # starts: 1050 and 2050 µs
    t["workload"] = w
    # the measure phase begins at 400 µs: the setup ioctl at 500 is now inside, billed to cycle 0
    phases = {
        "setup": {"start_ns": 0, "end_ns": 400 * US},
        "measure": {"start_ns": 400 * US, "end_ns": 3000 * US},
    }
    rs = load_runs(make_run("lab1", "stock", t, params={"phases": phases}))
    c = df_per_cycle(rs)
    assert c["set_irqs"].tolist() == [2, 1]
    assert c["commits"].tolist() == [1, 3]
    per = df_per_interrupt(rs)
    assert per["set_irqs_per_irq"].iloc[0] == 1.5
    assert per["events_outside"].iloc[0] == 1  # only the RCU commit at 3500 µs


def test_histogram_mode_pba_probe_cannot_single_out_the_pba(make_run):
    hist = pd.DataFrame({"bucket": [100], "count": [4], "lo_ns": [100], "hi_ns": [101]})
    rs = RunSet([load_run(make_run("h2", "stock", {"pba_toggle": hist}, params={"cycles": 2}))])
    df = df_per_interrupt(rs)
    assert np.isnan(df["pba_toggles_per_irq"].iloc[0])
    assert df["region_toggles_per_irq"].iloc[0] == 2.0


def test_per_cycle_values_of_histogram_mode_operations_are_unknown(make_run):
    t = stock_tables()
    t["transaction_commit"] = pd.DataFrame({"bucket": [100], "count": [8], "lo_ns": [100], "hi_ns": [101]})
    rs = load_runs(make_run("h3", "stock", t))
    c = df_per_cycle(rs)
    assert c["commits"].isna().all() and c["total_us"].isna().all()  # not 0: unknown per cycle
    assert c["set_irqs"].tolist() == [1, 1]
    per = df_per_interrupt(rs)
    assert per["commits_per_irq"].iloc[0] == 4.0  # the histogram still counts per run


def test_background_work_is_billed_apart_from_the_interrupts_path(make_run):
    """The two commits on thread 2 (QEMU's RCU thread) run on no thread that served the interrupt:
    background. Everything on thread 1 (the ioctls, the toggles and the commits inside them) is the
    path. Exclusive µs in the window: 80 + 140 + 100 + 20 + 150 + 650 on thread 1, 20 on thread 2."""
    rs = load_runs(make_run("s1", "stock", stock_tables()))
    row = df_per_interrupt(rs).iloc[0]
    assert row["total_us_per_irq"] == pytest.approx(1160 / 2)
    assert row["path_us_per_irq"] == pytest.approx(1140 / 2)
    assert row["background_us_per_irq"] == pytest.approx(20 / 2)
    cyc = df_per_cycle(rs)
    assert cyc["background_us"].tolist() == pytest.approx([0.0, 20.0])
    assert (cyc["path_us"] + cyc["background_us"]).tolist() == pytest.approx(cyc["total_us"].tolist())


def test_a_run_whose_guest_never_masks_has_only_background(make_run):
    """no-mask: no SET_IRQS, no PBA toggle, so no thread serves the interrupt through QEMU's MSI-X
    emulation; the commits it still sees (timers, RCU) are background, not cost per interrupt."""
    tables = stock_tables()
    tables = {
        "workload": tables["workload"],
        "set_irqs_ioctl": tables["set_irqs_ioctl"].iloc[:0],
        "pba_toggle": tables["pba_toggle"].iloc[:0],
        "transaction_commit": calls([(1500, 10, 2), (2500, 12, 3)], {"depth": 0}),
    }
    row = df_per_interrupt(load_runs(make_run("n1", "stock", tables))).iloc[0]
    assert row["path_us_per_irq"] == 0.0
    assert row["background_us_per_irq"] == pytest.approx(22 / 2)


def _reference_accounting(ts, dur, tid, op, starts, end, n_ops, begin, background):
    """account_events the slow, obvious way: a search per call, direct_parents, bincounts."""
    from vfiobench.analysis.nesting import direct_parents

    cyc = np.searchsorted(starts, ts, side="right") - 1
    if begin is None:
        outside = cyc < 0
    else:
        outside = ts < begin
        cyc = np.maximum(cyc, 0)
    if end is not None:
        outside |= ts > end
    shape = (starts.size, n_ops)
    key = np.where(outside, -1, cyc * n_ops + op)

    def billed(keys, weights=None):
        ok = keys >= 0
        w = None if weights is None else weights[ok]
        return np.bincount(keys[ok], weights=w, minlength=starts.size * n_ops).reshape(shape)

    child, parent = direct_parents(ts, dur, tid)
    counts, incl = billed(key), billed(key, dur)
    excl = incl - billed(key[parent], dur[child])
    bkey = np.where(background, key, -1)
    bg = (billed(bkey, dur) - billed(bkey[parent], dur[child])).sum(1)
    return counts, incl, excl, bg, int(outside.sum())


def test_account_events_equals_the_reference_on_random_nested_calls() -> None:
    """Random threads of properly nested calls (the shape entry/return pairing gives), cut into
    per-table ascending runs as runs store them, windows with and without a begin, and background
    calls: the compiled billing loop agrees with the numpy reference to the nanosecond."""
    rng = np.random.default_rng(7)
    n_ops = 5
    for trial in range(200):
        ts_l: list[int] = []
        dur_l: list[int] = []
        tid_l: list[int] = []

        def calls(lo: int, hi: int, depth: int, thread: int) -> None:
            t = lo
            while t < hi and rng.random() < 0.8:
                a = t + int(rng.integers(0, 20))
                b = min(hi, a + int(rng.integers(0, 60)))
                if a > b or a >= hi:
                    return
                ts_l.append(a)  # noqa: B023 (the lists are this trial's, filled right here)
                dur_l.append(b - a)  # noqa: B023
                tid_l.append(100 + thread)  # noqa: B023
                if depth < 3 and b - a > 2:
                    calls(a, b, depth + 1, thread)
                t = b + int(rng.integers(0, 5))

        for thread in range(int(rng.integers(1, 4))):
            t0 = int(rng.integers(0, 50))
            calls(t0, t0 + 2000, 0, thread)
        n = len(ts_l)
        if n == 0:
            continue
        ts = np.array(ts_l, dtype=np.int64)
        dur = np.array(dur_l, dtype=np.int64)
        tid = np.array(tid_l, dtype=np.int64)
        op = rng.integers(0, n_ops, n).astype(np.int64)
        # per-table ascending runs: group by op, each group in time order
        perm = np.lexsort((ts, op)) if trial % 3 else rng.permutation(n)
        ts, dur, tid, op = ts[perm], dur[perm], tid[perm], op[perm]
        background = tid == 102
        starts = np.sort(rng.choice(np.arange(0, 2100), size=int(rng.integers(1, 40)), replace=False))
        begin = None if trial % 2 else int(rng.integers(-10, 100))
        end = None if trial % 5 == 0 else int(rng.integers(500, 2100))
        got = account_events(ts, dur, tid, op, starts, end, n_ops, begin, background)
        want = _reference_accounting(ts, dur, tid, op, starts, end, n_ops, begin, background)
        for g, w in zip(got[:4], want[:4], strict=True):
            np.testing.assert_array_equal(g, w)
        assert got[4] == want[4]


def test_account_events_rejects_operation_codes_out_of_range() -> None:
    with pytest.raises(ValueError, match="operation codes"):
        account_events([1], [1], [1], [3], [0], None, 3)


def test_account_events_follows_nesting_deeper_than_its_first_stack() -> None:
    """200 calls each inside the previous (deeper than the billing loop's first stack of 64)."""
    n = 200
    ts = np.arange(n, dtype=np.int64)
    dur = 1000 - 2 * ts  # call k spans [k, 1000 - k]
    op = np.zeros(n, dtype=np.int64)
    counts, incl, excl, _, outside = account_events(ts, dur, np.zeros(n), op, [0], None, 1)
    assert outside == 0 and counts[0, 0] == n
    assert incl[0, 0] == dur.sum()
    assert excl[0, 0] == dur[0]  # exclusive times of a chain sum to the outermost call
