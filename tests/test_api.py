"""The interactive facade: ``vb.load(...)`` and the ``Runs`` methods, on small synthetic sample runs."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bokeh.models import ColumnDataSource, CustomJS
from bokeh.plotting import figure
from reportfixtures import edit_meta, sample_runs

import vfiobench as vb
from vfiobench import api
from vfiobench.errors import AnalysisError, RunStoreError

CYCLES = 20  # per run; 2 repetitions x 2 variants x probed/probe-free = 8 runs


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_runs(tmp_path_factory.mktemp("api") / "runs", cycles=CYCLES)


@pytest.fixture
def runs(root: Path) -> api.Runs:
    return vb.load(root)


def test_load_is_exported_and_rejects_a_missing_path(tmp_path: Path) -> None:
    assert vb.load is api.load and "load" in vb.__all__
    with pytest.raises(RunStoreError, match="no such directory"):
        vb.load(tmp_path / "nope")


def test_repr_and_jupyter_table(runs: api.Runs, root: Path, tmp_path: Path) -> None:
    assert len(runs) == 8
    assert repr(runs) == "Runs(8 runs: pba-always-on ×4, stock ×4; probe-free 4, probed 4; source synthetic)"
    page = runs._repr_html_()
    assert all(f"<td>{r}</td>" in page for r in runs.run_ids)
    assert "Synthetic data, not a measurement." in page
    assert list(runs.summary().columns) == list(api.SUMMARY_COLUMNS)
    assert runs.summary()["interrupts"].tolist() == [CYCLES] * 8
    # labels come from the runs' own files: escaped, never markup
    import shutil

    shutil.copytree(root / "r1-stock-probed", tmp_path / "odd")
    edit_meta(tmp_path / "odd", variant="<b>odd</b>", source="lab")
    odd = vb.load(tmp_path / "odd")
    assert "&lt;b&gt;odd&lt;/b&gt;" in odd._repr_html_() and "<b>odd</b>" not in odd._repr_html_()
    assert "Synthetic" not in odd._repr_html_()
    assert repr(vb.load(tmp_path / "odd").filter(variant="none")) == "Runs(0 runs)"


def test_filter_by_one_value_a_list_and_labels(runs: api.Runs) -> None:
    assert runs.filter(variant="stock", kind="probed").run_ids == ["r1-stock-probed", "r2-stock-probed"]
    both = runs.filter(variant=["stock", "pba-always-on"], kind="probe-free", repetition=2)
    assert both.run_ids == ["r2-pba-always-on-probe-free", "r2-stock-probe-free"]
    assert len(runs.filter(accel="kvm", workload="mask-every-irq", source="synthetic")) == 8
    assert len(runs.filter(accel="tcg")) == 0
    assert len(runs.filter(repetition=[1, 2])) == 8
    assert runs.filter(variant="stock").variants == ["stock"]


def test_latency_per_operation_counts_and_percentiles(runs: api.Runs) -> None:
    pba = runs.latency("pba_toggle").set_index("variant")
    # stock toggles twice per cycle; always-on enables the PBA once per probed run, at setup
    assert pba.loc["stock", "count"] == 2 * CYCLES * 2
    assert pba.loc["pba-always-on", "count"] == 2
    durations = runs.table("pba_toggle").query("variant == 'stock'")["dur_ns"]
    assert pba.loc["stock", "p50_ns"] == pytest.approx(float(np.median(durations)))
    irq = runs.latency()
    assert set(irq[["variant", "kind"]].itertuples(index=False, name=None)) == {
        ("stock", "probed"),
        ("pba-always-on", "probed"),
        ("stock", "probe-free"),
        ("pba-always-on", "probe-free"),
    }
    assert (irq["count"] == 2 * CYCLES).all()
    assert runs.latency("set_irqs", by=["run_id"])["count"].tolist() == [2 * CYCLES + 1] * 4
    hist = runs.histogram("commit")
    assert (
        hist.groupby("variant")["count"].sum().to_dict()
        == runs.latency("commit").set_index("variant")["count"].to_dict()
    )
    assert runs.cdf("pba_toggle")["cdf"].max() == pytest.approx(1.0)
    with pytest.raises(AnalysisError, match="unknown operation 'toggles'") as e:
        runs.latency("toggles")
    assert "pba_toggle" in str(e.value)
    with pytest.raises(AnalysisError, match="probe-free runs have none"):
        runs.filter(kind="probe-free").latency("pba_toggle")


def test_per_interrupt_and_compare(runs: api.Runs) -> None:
    pi = runs.per_interrupt().set_index("run_id")
    assert pi.loc["r1-stock-probed", "pba_toggles_per_irq"] == 2.0
    assert pi.loc["r1-pba-always-on-probed", "pba_toggles_per_irq"] == 0.0
    assert np.isnan(pi.loc["r1-stock-probe-free", "pba_toggles_per_irq"])
    assert set(runs.cost_breakdown()["variant"]) == {"stock", "pba-always-on"}
    ab = runs.compare("stock", "pba-always-on")
    assert ab["metric"].tolist() == ["latency_ns", "us_per_irq"]
    assert (ab["variant"] == "pba-always-on").all() and (ab["ratio"] > 1).all()
    assert ab["verdict"].str.startswith("pba-always-on: ").all()
    assert runs.compare("stock")["variant"].tolist() == ["pba-always-on"] * 2
    with pytest.raises(AnalysisError, match="unknown variant 'nope'"):
        runs.compare("stock", "nope")


def test_timeline_slowest_and_events(runs: api.Runs) -> None:
    probed = runs.filter(kind="probed")
    tl = probed.timeline()
    assert tl is probed.timeline()  # computed once per Runs
    assert len(tl) == 4 * CYCLES and tl["complete"].all()
    slow = probed.slowest(3)
    lat = slow["latency_ns"].astype("int64").tolist()
    assert lat == sorted(lat, reverse=True) and lat[0] == int(tl["latency_ns"].max())
    s = probed.stage_summary()
    assert {"stage", "median_ns", "p99_ns"} <= set(s.columns)
    assert set(s.loc[s["variant"] == "pba-always-on", "to_milestone"]).isdisjoint({"pba_on", "pba_off"})
    row = tl.iloc[7]
    ev = probed.events(str(row["run_id"]), int(row["irq"]))
    assert (ev["ts_ns"] >= int(row["trigger_ts_ns"])).all()
    assert (ev["ts_ns"] <= int(row["delivered_ts_ns"])).all()
    assert {"set_irqs_ioctl", "set_vector_signal"} <= set(ev["table"])
    assert probed.events()["irq"].nunique() == 1  # the slowest
    with pytest.raises(AnalysisError, match="give both run_id and irq"):
        probed.events(irq=3)


def _sources(model: object) -> list[ColumnDataSource]:
    return list(model.select({"type": ColumnDataSource}))  # type: ignore[attr-defined]


def test_plots_return_bokeh_models(runs: api.Runs) -> None:
    probed = runs.filter(kind="probed")
    for fig in (
        runs.plot_latency("pba_toggle"),
        runs.plot_cdf(),
        probed.plot_cost_breakdown(),
        runs.plot_compare("stock"),
        probed.plot_timeline(),
        probed.plot_slowest(5),
        probed.plot_stages(),
    ):
        assert isinstance(fig, figure) and fig.renderers
    stages = probed.plot_stages()
    assert ("stock", "median") in stages.x_range.factors and (
        "pba-always-on",
        "p99",
    ) in stages.x_range.factors
    slow = probed.plot_slowest(5)
    assert len(slow.y_range.factors) == 5
    gantt = probed.plot_timeline("r1-stock-probed", 3)
    (src,) = [s for s in _sources(gantt) if "lane" in s.data]
    assert (
        "probe: pba_toggle" in src.data["lane"] and "PBA enable call → PBA enable commit" in src.data["lane"]
    )
    assert "r1-stock-probed interrupt #3" in gantt.title.text
    view = probed.plot_timeline_view()
    names = {s.name for s in _sources(view)}
    assert {"vfb-points", "vfb-segments", "vfb-gantt"} <= names
    (points,) = [s for s in _sources(view) if s.name == "vfb-points"]
    assert len(points.data["key"]) == 4 * CYCLES
    assert points.selected.indices == [int(np.argmax(points.data["latency_us"]))]
    assert any(isinstance(cb, CustomJS) for cb in points.selected.js_property_callbacks["change:indices"])


def test_save_html_is_self_contained(runs: api.Runs, tmp_path: Path) -> None:
    out = api.save_html(runs.filter(kind="probed").plot_stages(), tmp_path / "x" / "stages.html", "t")
    page = Path(out).read_text()
    assert "cdn.bokeh.org" not in page and "/* BEGIN bokeh.min.js */" in page


def test_every_public_method_has_an_example() -> None:
    members = [m for name, m in inspect.getmembers(api.Runs) if not name.startswith("_") and callable(m)]
    members += [api.load, api.show, api.save_html]
    assert len(members) > 20
    for m in members:
        assert ">>>" in (m.__doc__ or ""), f"{m.__qualname__} has no >>> example"


def test_frames_are_what_the_analysis_layer_returns(runs: api.Runs) -> None:
    from vfiobench.analysis import df_per_interrupt

    pd.testing.assert_frame_equal(runs.per_interrupt(), df_per_interrupt(runs))


def test_lab_like_runs_of_one_variant_are_split_by_accel(root: Path, tmp_path: Path) -> None:
    """Lab runs are all "stock", one per accel and workload: summaries must not pool them."""
    import shutil

    for name, accel in (("r1-stock-probed", "kvm"), ("r2-stock-probed", "tcg")):
        shutil.copytree(root / name, tmp_path / name)
        edit_meta(tmp_path / name, labels={"accel": accel})
    lab = vb.load(tmp_path)
    tl = lab.timeline()
    assert list(tl.columns[:5]) == ["run_id", "variant", "kind", "workload", "accel"]
    s = lab.stage_summary()
    assert set(s["accel"]) == {"kvm", "tcg"}
    assert (s.groupby("accel")["count"].max() == CYCLES).all()
    assert lab.plot_stages().x_range.factors[:2] == [("stock · kvm", "median"), ("stock · kvm", "p99")]


def test_compare_never_pools_cells() -> None:
    """On the real sample (cells: experiment x release x workload x accel), nothing leaves its cell."""
    sample = Path(__file__).resolve().parent.parent / "data" / "sample"
    if not sample.is_dir():
        pytest.skip("data/sample/ is absent (not a clone of the repository)")
    runs = vb.load(sample).filter(variant=["stock", "pba-always-on", "auto"])
    ab = runs.compare("stock", metrics=("us_per_irq",))
    # cells of several experiments carry the experiment's name: two experiments are never pooled
    assert ab["cell"].tolist() == [
        "auto · bookworm · mask-every-irq · kvm",
        "auto · bookworm · no-mask · kvm",
        "auto · trixie-backports · mask-every-irq · kvm",
        "auto · trixie-backports · mask-every-irq · tcg",
        "auto · trixie-backports · no-mask · kvm",
        "auto · trixie-backports · no-mask · tcg",
        "pba · mask-every-irq · kvm",
        "pba · mask-every-irq · tcg",
        "pba · no-mask · kvm",
        "pba · no-mask · tcg",
        "pba-disable · mask-no-pba · kvm",
        "pba-disable · mask-no-pba · tcg",
        "stack · trixie-backports · mask-every-irq · kvm",
    ]
    # each cell holds its own probed runs per variant of 101 interrupts, not the pool's: 10 a side
    # in bookworm's pba experiments and in stack, 6 in the two parts of the auto experiment
    reps = [6] * 6 + [10] * 7
    assert ab["runs_baseline"].tolist() == reps and ab["n_baseline"].tolist() == [r * 101 for r in reps]
    by_cell = ab.set_index("cell")
    masked = by_cell.loc["pba · mask-every-irq · tcg"]
    assert masked["ratio"] > 3 and masked["enough_runs"] and masked["significant"]
    assert by_cell.loc["pba-disable · mask-no-pba · tcg"]["significant"]  # pba-disable's own cell
