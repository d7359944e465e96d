"""Adaptive repetitions: a cell stops once every variant's interval is narrow enough, or at max.

The runs carry known per-run values (:func:`experiment_doubles.alternating`): a constant baseline
and variants at ``base·exp(±s)``, so each variant's relative half-width after ``n`` runs is known
in closed form (``exp(t(0.975, n-1)·s/sqrt(n-1)) - 1`` for even ``n``). With target 0.10:

====  ======  ======  ======  ======  ======  ======  ======
  s    n=6     n=7     n=8     n=9     n=10    n=11    n=12
====  ======  ======  ======  ======  ======  ======  ======
0.09  0.109   0.0931  0.0838  0.0756  0.0702  0.0652  0.0615
0.11  0.135   0.115   0.103   0.0932  0.0865  0.0802  0.0757
0.30  0.412   0.345   0.308   0.275   0.254   0.234   0.220
====  ======  ======  ======  ======  ======  ======  ======

so a cell holding s = 0.09 and s = 0.11 stops after 9 repetitions (0.11 is the last to cross), and a
cell holding s = 0.30 never gets there and stops at max = 12.
"""

import json
import math

import pytest
from experiment_doubles import ADAPTIVE_SPEC, SPEC, RecordingBackend, ValueBackend, alternating
from scipy import stats

from vfiobench.experiment import make_plan, parse_spec, run_experiment
from vfiobench.experiment.plan import recorded_plan, round_runs
from vfiobench.experiment.runner import run_statuses
from vfiobench.store import load_runs

BASE = 2e6  # ns: large, so rounding to whole ns moves no width by more than 1e-6


def values(kvm_b=0.09, kvm_c=0.11, tcg=0.30):
    const = lambda rep: BASE  # noqa: E731
    return {
        ("A", "kvm"): const,
        ("A", "tcg"): const,
        ("B", "kvm"): alternating(BASE / 2, kvm_b),
        ("C", "kvm"): alternating(BASE / 3, kvm_c),
        ("B", "tcg"): alternating(BASE / 2, tcg),
        ("C", "tcg"): alternating(BASE / 3, tcg),
    }


def expected_width(s, n):
    """The closed form, computed independently of vfiobench."""
    e = [s if i % 2 == 0 else -s for i in range(n)]
    mean = sum(e) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in e) / (n - 1))
    return math.exp(stats.t.ppf(0.975, n - 1) * sd / math.sqrt(n)) - 1


def measured(runs):
    """(variant, accel) -> how many measured probe-free and probed runs."""
    out = {}
    for r in runs:
        if not r.meta.labels["warmup"]:
            key = (r.variant, r.meta.labels["accel"])
            out[key] = out.get(key, 0) + 1
    return out


def test_closed_form_matches_the_table():
    assert [round(expected_width(0.11, n), 4) for n in (8, 9)] == [0.1033, 0.0932]
    assert round(expected_width(0.30, 12), 3) == 0.220


def test_cells_stop_where_the_rule_says(tmp_path):
    spec = parse_spec(ADAPTIVE_SPEC, "ad.toml")
    backend = ValueBackend(values())
    state = run_experiment(spec, tmp_path, backend, progress=False)
    assert not state.todo
    counts = measured(load_runs(tmp_path / "runs"))
    # 2 kinds per repetition: kvm stops after 9 repetitions, tcg runs to max (12)
    assert counts == {(v, "kvm"): 18 for v in "ABC"} | {(v, "tcg"): 24 for v in "ABC"}
    # one boot per round: warm-up, 12 measured rounds; rounds 9..11 hold the tcg cell only
    assert len(backend.batches) == 1 + 12
    assert [len(b) for b in backend.batches] == [12] * 10 + [6] * 3
    assert all("-tcg-" in i for b in backend.batches[10:] for i in b)
    by_cell = {c.label: c for c in state.cells}
    kvm, tcg = by_cell["bookworm · mask-every-irq · kvm"], by_cell["bookworm · mask-every-irq · tcg"]
    assert (kvm.repetitions, kvm.reason) == (9, "target reached")
    assert (tcg.repetitions, tcg.reason) == (12, "max reached")
    assert kvm.half_width == pytest.approx(expected_width(0.11, 9), abs=1e-5)
    assert tcg.half_width == pytest.approx(expected_width(0.30, 12), abs=1e-5)


def test_metadata_records_rule_widths_and_reasons(tmp_path):
    spec = parse_spec(ADAPTIVE_SPEC, "ad.toml")
    run_experiment(spec, tmp_path, ValueBackend(values()), progress=False)
    data = json.loads((tmp_path / "experiment.json").read_text())
    reps = data["repetitions"]
    assert reps["rule"] == {"min": 6, "max": 12, "target": 0.10, "metrics": ["latency_ns"]}
    assert "within ±10%" in reps["description"]
    cells = {c["cell"]: c for c in reps["cells"]}
    assert list(cells) == ["bookworm · mask-every-irq · kvm", "bookworm · mask-every-irq · tcg"]
    kvm = cells["bookworm · mask-every-irq · kvm"]
    assert (kvm["status"], kvm["reason"], kvm["repetitions"]) == ("stopped", "target reached", 9)
    widths = {w["variant"]: w for w in kvm["widths"]}
    assert set(widths) == {"B", "C"}
    assert widths["B"]["half_width"] == pytest.approx(expected_width(0.09, 9), abs=1e-5)
    assert widths["C"]["half_width"] == pytest.approx(expected_width(0.11, 9), abs=1e-5)
    assert widths["B"]["kind"] == "ratio" and widths["B"]["runs_variant"] == 9
    assert widths["B"]["estimate"] == pytest.approx(2.0, rel=1e-2)
    tcg = cells["bookworm · mask-every-irq · tcg"]
    assert (tcg["status"], tcg["reason"], tcg["repetitions"]) == ("stopped", "max reached", 12)
    # every planned run is in the manifest, and on disk, and follows from the recorded counts
    assert len(data["runs"]) == 12 + 9 * 12 + 3 * 6
    assert sorted(data["runs"]) == sorted(r.run_id for r in load_runs(tmp_path / "runs"))
    counts = {(c["workload"], c["accel"], c["release"]): c["repetitions"] for c in reps["cells"]}
    assert [r.run_id for r in recorded_plan(spec, counts)] == data["runs"]


def test_a_target_never_reached_stops_every_cell_at_max(tmp_path):
    spec = parse_spec(ADAPTIVE_SPEC.replace("max = 12", "max = 8"))
    state = run_experiment(spec, tmp_path, ValueBackend(values(kvm_b=0.3, kvm_c=0.3)), progress=False)
    assert [(c.repetitions, c.reason) for c in state.cells] == [(8, "max reached")] * 2
    assert len(measured(load_runs(tmp_path / "runs"))) == 6
    assert set(measured(load_runs(tmp_path / "runs")).values()) == {16}


def test_a_target_reached_at_min_adds_no_round(tmp_path):
    spec = parse_spec(ADAPTIVE_SPEC)
    state = run_experiment(spec, tmp_path, ValueBackend(values(0.01, 0.01, 0.01)), progress=False)
    assert [(c.repetitions, c.reason) for c in state.cells] == [(6, "target reached")] * 2
    assert len(state.plan) == len(make_plan(spec)) == 12 * 7


@pytest.mark.parametrize(
    "fail_on",
    ["ad-A-mask-every-irq-kvm-r3-p", "ad-B-mask-every-irq-kvm-r7-f", "ad-C-mask-every-irq-tcg-r10-p"],
)
def test_interrupted_adaptive_experiment_resumes_to_the_same_runs(tmp_path, fail_on):
    spec = parse_spec(ADAPTIVE_SPEC)
    straight = ValueBackend(values())
    run_experiment(spec, tmp_path / "straight", straight, progress=False)

    first = ValueBackend(values(), fail_on=fail_on)
    with pytest.raises(RuntimeError, match="mid-round"):
        run_experiment(spec, tmp_path / "resumed", first, progress=False)
    assert fail_on not in first.executed
    record = json.loads((tmp_path / "resumed" / "experiment.json").read_text())["repetitions"]
    status = {c["accel"]: (c["status"], c["repetitions"]) for c in record["cells"]}
    if "-r10-" in fail_on:  # kvm had stopped at 9; tcg was waiting for round 10
        assert status == {"kvm": ("stopped", 9), "tcg": ("running", 10)}
    elif "-r7-" in fail_on:  # interrupted in round 7: both were waiting for it
        assert status == {"kvm": ("running", 7), "tcg": ("running", 7)}
    else:  # interrupted before min: nothing evaluated yet
        assert status == {}

    second = ValueBackend(values())
    state = run_experiment(spec, tmp_path / "resumed", second, progress=False)
    assert not state.todo
    assert set(first.executed).isdisjoint(second.executed)  # nothing recorded twice
    assert second.executed[0] == fail_on  # it resumes with the interrupted run
    assert sorted(first.executed + second.executed) == sorted(straight.executed)
    runs = {r.run_id for r in load_runs(tmp_path / "resumed" / "runs")}
    assert runs == {r.run_id for r in load_runs(tmp_path / "straight" / "runs")}
    assert len(list((tmp_path / "resumed" / "runs" / ".retry").iterdir())) == 1
    ok = json.loads((tmp_path / "straight" / "experiment.json").read_text())["repetitions"]["cells"]
    again = json.loads((tmp_path / "resumed" / "experiment.json").read_text())["repetitions"]["cells"]
    assert again == ok

    third = ValueBackend(values())
    run_experiment(spec, tmp_path / "resumed", third, progress=False)
    assert third.executed == []


def test_round_runs_keep_their_place_in_the_full_plan():
    spec = parse_spec(ADAPTIVE_SPEC)
    full = round_runs(spec, 9)
    tcg = round_runs(spec, 9, only=[("mask-every-irq", "tcg", "bookworm")])
    assert [r.run_id for r in tcg] == [r.run_id for r in full if r.accel == "tcg"]
    assert [r.index for r in tcg] == [r.index for r in full if r.accel == "tcg"]
    assert full[0].index == (1 + 9) * 12  # after the warm-up and 9 rounds of 12 runs
    assert [r.variant.name for r in tcg if r.kind == "probed"] == ["A", "B", "C"]


def test_fixed_repetitions_record_a_fixed_rule(tmp_path):
    spec = parse_spec(SPEC)
    state = run_experiment(spec, tmp_path, RecordingBackend(), progress=False)
    assert [(c.label, c.repetitions, c.reason) for c in state.cells] == [
        ("bookworm · mask-every-irq · tcg", 2, "fixed")
    ]
    reps = json.loads((tmp_path / "experiment.json").read_text())["repetitions"]
    assert reps["rule"] == {"min": 2, "max": 2, "target": None, "metrics": ["us_per_irq"]}
    assert len(run_statuses(make_plan(spec), tmp_path / "runs")) == 18


def test_dry_run_prints_the_plan_up_to_min_and_the_rule(tmp_path, capsys):
    from vfiobench.cli import main

    spec_path = tmp_path / "ad.toml"
    spec_path.write_text(ADAPTIVE_SPEC)
    assert main(["run", str(spec_path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len([line for line in lines if " todo " in line]) == 12 * 7  # warm-up and min = 6 rounds
    assert lines[12 * 7] == (
        "ad: 84 runs (1 warm-up + 6 to 12 repetitions a cell: stop once every variant's 95% interval "
        "of latency_ns is within ±10% (relative half-width))"
    )
    assert lines[12 * 7 + 1] == (
        "then rounds r6..r11, one at a time, only for the cells whose rule is not met yet (6 runs a "
        "cell a round; a cell stops when its rule is met or at 12 repetitions): up to 72 more runs, "
        "156 in all"
    )
    run_experiment(parse_spec(ADAPTIVE_SPEC), tmp_path / "out", ValueBackend(values()), progress=False)
    assert main(["run", str(spec_path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    tail = capsys.readouterr().out.splitlines()[12 * 7 + 2 :]
    assert tail[0] == "already on disk beyond r5: 54 runs"  # kvm r6..r8, tcg r6..r11
    assert tail[1].startswith(
        "  bookworm · mask-every-irq · kvm: 9 repetitions, widest ±9.3%: target reached"
    )
    assert tail[2].startswith("  bookworm · mask-every-irq · tcg: 12 repetitions, widest ±22.0%: max reached")


def test_the_ab_page_shows_the_rule_and_where_each_cell_stopped(tmp_path):
    from vfiobench.analysis.compare import make_comparison
    from vfiobench.analysis.precision import df_stopping
    from vfiobench.report import pages as nbk

    run_experiment(parse_spec(ADAPTIVE_SPEC), tmp_path, ValueBackend(values()), progress=False)
    cmp = make_comparison(load_runs(tmp_path / "runs"), baseline="A")
    rows = df_stopping(cmp)
    lat = rows[rows["metric"] == "latency_ns"].set_index("group")
    assert list(lat.index) == ["bookworm · mask-every-irq · kvm", "bookworm · mask-every-irq · tcg"]
    assert list(lat["reason"]) == ["target reached", "max reached"]
    assert list(lat["repetitions"]) == [9, 12]
    # the page's own intervals are the rule's: same runs, same statistics
    assert list(lat["half_width"]) == pytest.approx(list(lat["recorded_half_width"]), abs=1e-9)
    assert list(lat["widest_variant"]) == ["C", "B"]  # tcg: B and C equally wide, the first one
    view = nbk.stopping_view(cmp)
    assert list(view.columns) == [
        "cell", "repetitions", "stopped", "rule's widest ± when it stopped",
        "widest ± interrupt latency (median)",
    ]  # fmt: skip
    assert view.iloc[0].tolist() == [
        "bookworm · mask-every-irq · kvm",
        "9",
        "target reached",
        "±9.3%",
        "±9.3% (C)",
    ]
    assert view.iloc[1].tolist()[:4] == ["bookworm · mask-every-irq · tcg", "12", "max reached", "±22.0%"]
    html = nbk.stopping_html(cmp)
    assert "6 to 12 repetitions a cell: stop once every variant&#x27;s 95% interval of latency_ns" in html
    assert "target reached" in html and "max reached" in html

    # runs of no experiment: the page's widths only, and says why
    (tmp_path / "experiment.json").unlink()
    assert "No experiment record" in nbk.stopping_html(
        make_comparison(load_runs(tmp_path / "runs"), baseline="A")
    )


def test_the_ab_page_shows_a_fixed_count_as_fixed(tmp_path):
    from vfiobench.analysis.compare import make_comparison
    from vfiobench.report import pages as nbk

    spec = parse_spec(
        ADAPTIVE_SPEC.replace(
            'repetitions = { min = 6, max = 12, target = 0.10, metric = "latency_ns" }', "repetitions = 6"
        )
    )
    assert not spec.repetitions.adaptive
    run_experiment(spec, tmp_path, ValueBackend(values()), progress=False)
    view = nbk.stopping_view(make_comparison(load_runs(tmp_path / "runs"), baseline="A"))
    assert view.iloc[0].tolist() == ["bookworm · mask-every-irq · kvm", "6", "fixed", "–", "±13.5% (C)"]
    assert "6 repetitions a cell (fixed)" in nbk.stopping_html(
        make_comparison(load_runs(tmp_path / "runs"), baseline="A")
    )
