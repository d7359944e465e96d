"""The compare page per group of comparable runs (a cell on the page): never pooled, warm-ups aside,
headline numbers, patch links.

The runs are built by hand with exact, constant per-cycle values, so every headline number is known
in advance: a cell's ratio is the ratio of the values written into *that* cell's runs, and would be
something else if runs of two cells (or a warm-up) were pooled.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from reportfixtures import sample_runs

from vfiobench.analysis.compare import Comparison, split_groups
from vfiobench.analysis.headline import df_headline
from vfiobench.analysis.runinfo import df_group_checks
from vfiobench.cli import main
from vfiobench.errors import ReportError
from vfiobench.qemu.build import build_key
from vfiobench.qemu.patchset import available_patches, resolve_patches
from vfiobench.store import Check, ProbeStats, QemuInfo, RunMeta, RunSet, RunWriter, WorkloadInfo, load_runs

US = 1_000
MS = 1_000_000
CYCLES = 31
VERSION = "7.2+dfsg-7+deb12u18"


def fake_build(root: Path, patches: list[str], *, key: str | None = None) -> str:
    """Path of a binary in a build cache directory named like `vfiobench qemu build` names it."""
    key = key or build_key(VERSION, resolve_patches(patches))
    return str(root / f"build-{VERSION}-{key}" / "bin" / "qemu-system-x86_64")


def make_run(
    root: Path,
    run_id: str,
    *,
    variant: str,
    workload: str,
    accel: str | None,
    kind: str,
    set_irqs: int,
    toggles: int,
    call_us: float,
    latency_us: float,
    warmup: bool = False,
    order: int = 0,
    qemu_path: str = "/usr/bin/qemu-system-x86_64",
    patches: list[str] | None = None,
    failed_check: bool = False,
) -> Path:
    """One run of CYCLES 1 ms cycles; per cycle ``set_irqs`` ioctls and ``toggles`` PBA toggles of
    ``call_us`` each (probed runs only), every interrupt delivered ``latency_us`` after its trigger."""
    labels: dict[str, Any] = {"repetition": 0, "warmup": warmup, "order": order, "cell": run_id}
    if accel is not None:
        labels["accel"] = accel
    meta = RunMeta(
        run_id=run_id,
        variant=variant,
        source="lab",
        kind="probed" if kind == "probed" else "probe-free",
        qemu=QemuInfo(path=qemu_path, version="QEMU 7.2.22", build_id="ab" * 20, patches=patches or []),
        workload=WorkloadInfo(name=workload, params={"cycles": CYCLES}),
        labels=labels,
        checks=[Check("workload: delivered == expected", CYCLES, CYCLES - failed_check, not failed_check)],
    )
    t0 = 10 * MS
    wl = pd.DataFrame(
        {
            "cycle": range(CYCLES),
            "vector": 0,
            "start_ts_ns": [t0 + i * MS for i in range(CYCLES)],
            "trigger_ts_ns": [t0 + i * MS + 100 * US for i in range(CYCLES)],
            "delivered_ts_ns": [t0 + i * MS + 100 * US + int(latency_us * US) for i in range(CYCLES)],
            "latency_ns": int(latency_us * US),
            "cycle_ns": MS,
            "mask_rtt_ns": -1,
            "unmask_rtt_ns": -1,
            "delivered": True,
        }
    )
    dur = int(call_us * US)
    with RunWriter(root / run_id, meta) as w:
        w.append("workload", wl)
        if kind == "probed":
            calls = [(t0 + i * MS + 200 * US + j * 350 * US) for i in range(CYCLES) for j in range(set_irqs)]
            w.append(
                "set_irqs_ioctl",
                pd.DataFrame({"ts_ns": calls, "dur_ns": dur, "pid": 7, "tid": 7, "fd": 15, "ret": 0}),
            )
            flips = [(t0 + i * MS + 500 * US + j * 100 * US) for i in range(CYCLES) for j in range(toggles)]
            w.append(
                "pba_toggle",
                pd.DataFrame(
                    {"ts_ns": flips, "dur_ns": dur, "tid": 7, "mr": 1, "enabled": True, "is_pba": True}
                ).astype({"ts_ns": "int64", "dur_ns": "int64", "tid": "int64", "mr": "uint64"}),
            )
            w.meta.probes = {
                "set_irqs_ioctl": ProbeStats("tracepoint:syscalls:ioctl", len(calls)),
                "pba_toggle": ProbeStats("uprobe:memory_region_set_enabled", len(flips)),
            }
        w.meta.status = "complete"
    return root / run_id


#: (workload, stock µs per call, fix µs per call, stock latency µs, fix latency µs)
CELLS = {
    "mask-every-irq": (10.0, 10.0, 500.0, 250.0),  # stock 2 ioctls + 2 toggles (40 µs), fix 2 ioctls (20 µs)
    "no-mask": (300.0, 100.0, 90.0, 60.0),  # stock 2 ioctls (600 µs), fix 2 ioctls (200 µs)
}


#: Repetitions per variant and cell: enough for an interval (vfiobench.analysis.inference.MIN_RUNS).
REPS = 6


def two_cell_runs(root: Path, *, with_warmup: bool = True) -> Path:
    """stock and fix in two cells (mask-every-irq and no-mask, both kvm), REPS repetitions, probed
    and probe-free; plus one wild warm-up of stock in the mask-every-irq cell."""
    order = 0
    for rep in range(REPS):
        for variant in ("stock", "fix"):
            for workload, (stock_us, fix_us, stock_lat, fix_lat) in CELLS.items():
                toggles = 2 if (variant == "stock" and workload == "mask-every-irq") else 0
                patches = ["pba-always-on"] if variant == "fix" else []
                for kind in ("probed", "probe-free"):
                    make_run(
                        root,
                        f"{variant}-{workload}-r{rep}-{kind}",
                        variant=variant,
                        workload=workload,
                        accel="kvm",
                        kind=kind,
                        set_irqs=2,
                        toggles=toggles,
                        call_us=stock_us if variant == "stock" else fix_us,
                        latency_us=stock_lat if variant == "stock" else fix_lat,
                        order=order,
                        patches=patches,
                        qemu_path=fake_build(
                            root.parent / "cache", ["pba-always-on"] if variant == "fix" else []
                        ),
                    )
                    order += 1
    if with_warmup:
        for kind in ("probed", "probe-free"):
            make_run(
                root,
                f"stock-mask-every-irq-w0-{kind}",
                variant="stock",
                workload="mask-every-irq",
                accel="kvm",
                kind=kind,
                set_irqs=9,
                toggles=9,
                call_us=500.0,
                latency_us=50_000.0,
                warmup=True,
            )
    return root


@pytest.fixture
def nbk(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The notebook helpers with their output captured instead of displayed."""
    from vfiobench.report import pages
    from vfiobench.report.pages import display, groups

    shown: list[str] = []
    pages.reset_for_tests()
    monkeypatch.setattr(display, "show_html", lambda markup, metadata=None: shown.append(markup))
    monkeypatch.setattr(groups, "show_html", lambda markup, metadata=None: shown.append(markup))
    pages.shown = shown  # type: ignore[attr-defined]
    yield pages
    pages.reset_for_tests()


@pytest.fixture(scope="module")
def two_cells(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return two_cell_runs(tmp_path_factory.mktemp("cells") / "runs")


def _row(df: pd.DataFrame, cell: str, variant: str) -> pd.Series:
    hit = df[(df["group"] == cell) & (df["variant"] == variant)]
    assert len(hit) == 1, (cell, variant, df[["group", "variant"]])
    return hit.iloc[0]


# ------------------------------------------------------------------------------------------ grouping


def test_runs_of_two_cells_are_never_pooled_and_warmups_are_left_out(nbk: Any, two_cells: Path) -> None:
    cmp = nbk.open_comparison(load_runs(two_cells), baseline="stock")
    assert [c.label for c in cmp.groups] == ["mask-every-irq · kvm", "no-mask · kvm"]
    assert cmp.warmups_excluded == 2 and len(cmp.runs) == 8 * REPS  # 2 variants x 2 cells x 2 kinds
    for cell in cmp.groups:
        assert len(cell.runs) == 4 * REPS
        assert {r.meta.workload.name for r in cell.runs} == {cell.values["workload"]}
        assert not any(r.meta.labels["warmup"] for r in cell.runs)
    head = df_headline(cmp)
    assert len(head) == 4
    mask, nomask = "mask-every-irq · kvm", "no-mask · kvm"
    # each cell's ratio is its own: 40/20 = 2 with toggles, 600/200 = 3 without; pooled they would mix
    assert _row(head, mask, "fix")["us_ratio"] == pytest.approx(2.0)
    assert _row(head, nomask, "fix")["us_ratio"] == pytest.approx(3.0)
    assert _row(head, mask, "fix")["latency_ratio"] == pytest.approx(2.0)
    assert _row(head, nomask, "fix")["latency_ratio"] == pytest.approx(1.5)
    assert _row(head, mask, "stock")["interrupts"] == 2 * REPS * CYCLES  # probed + probe-free, no warm-up


def test_including_warmups_changes_the_numbers_of_their_cell_only(nbk: Any, two_cells: Path) -> None:
    cmp = nbk.open_comparison(load_runs(two_cells), baseline="stock", include_warmup=True)
    assert cmp.warmups_excluded == 0 and len(cmp.runs) == 8 * REPS + 2
    head = df_headline(cmp)
    stock = _row(head, "mask-every-irq · kvm", "stock")
    assert stock["runs_probed"] == REPS + 1 and stock["interrupts"] == (2 * REPS + 2) * CYCLES
    assert stock["set_irqs_per_irq"] == pytest.approx((2 * REPS + 9) / (REPS + 1))
    assert _row(head, "no-mask · kvm", "stock")["set_irqs_per_irq"] == pytest.approx(2.0)


def test_group_by_reads_workload_and_labels_and_missing_keys_form_one_group(nbk: Any, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for i, (workload, accel) in enumerate([("a", "kvm"), ("a", "tcg"), ("a", None), ("b", None)]):
        make_run(root, f"r{i}", variant="stock", workload=workload, accel=accel, kind="probe-free",
                 set_irqs=0, toggles=0, call_us=1, latency_us=1)  # fmt: skip
    runs = load_runs(root)
    cells = split_groups(runs, ["workload", "accel"])
    assert [c.label for c in cells] == ["a · kvm", "a · tcg", "a", "b"]
    assert [c.values["accel"] for c in cells] == ["kvm", "tcg", None, None]
    assert [c.label for c in split_groups(runs, ["accel"])] == ["kvm", "tcg", "all runs"]
    assert [len(c.runs) for c in split_groups(runs, ["accel"])] == [1, 1, 2]
    assert len(split_groups(runs, [])) == 1


def test_synthetic_sample_runs_form_one_cell(nbk: Any, tmp_path: Path) -> None:
    runs = load_runs(sample_runs(tmp_path / "runs", cycles=5))
    cmp = nbk.open_comparison(runs, baseline="stock")
    assert len(cmp.groups) == 1 and len(cmp.groups[0].runs) == len(runs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"group_by": "workload"}, "group_by must be a list of strings"),
        ({"group_by": ["workload", 3]}, "group_by must hold non-empty strings"),
        ({"include_warmup": "yes"}, "include_warmup must be true or false"),
        ({"group_by": ["workload", "acel"]}, "group_by key 'acel' is recorded by none of the runs"),
    ],
)
def test_bad_grouping_parameters_stop_with_a_message(
    nbk: Any, two_cells: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ReportError, match=message):
        nbk.open_comparison(load_runs(two_cells), baseline="stock", **kwargs)
    assert html.escape(message) in nbk.shown[-1]


def test_only_warmups_so_far_is_a_message_not_an_empty_page(nbk: Any, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for v in ("stock", "fix"):
        make_run(root, v, variant=v, workload="a", accel="kvm", kind="probe-free", set_irqs=0, toggles=0,
                 call_us=1, latency_us=1, warmup=True)  # fmt: skip
    with pytest.raises(ReportError, match="all 2 runs are warm-up runs"):
        nbk.open_comparison(load_runs(root), baseline="stock")
    cmp = nbk.open_comparison(load_runs(root), baseline="stock", include_warmup=True)
    assert len(cmp.runs) == 2


# ------------------------------------------------------------------------------------------ headline


def test_headline_numbers_on_hand_built_runs(nbk: Any, two_cells: Path) -> None:
    cmp = nbk.open_comparison(load_runs(two_cells), baseline="stock")
    head = df_headline(cmp)
    assert list(head["variant"]) == ["stock", "fix", "stock", "fix"]  # the baseline first in each cell
    stock = _row(head, "mask-every-irq · kvm", "stock")
    fix = _row(head, "mask-every-irq · kvm", "fix")
    assert (stock["runs_probed"], stock["runs_probe_free"]) == (REPS, REPS)
    assert stock["set_irqs_per_irq"] == 2.0 and fix["set_irqs_per_irq"] == 2.0
    assert stock["pba_toggles_per_irq"] == 2.0 and fix["pba_toggles_per_irq"] == 0.0
    assert stock["us_per_irq"] == pytest.approx(40.0) and fix["us_per_irq"] == pytest.approx(20.0)
    # 2 ioctls per 1 ms cycle, windows of CYCLES ms: 2000 per second
    assert stock["set_irqs_per_s"] == pytest.approx(2000.0)
    assert stock["e2e_p50_us"] == 500.0 and fix["e2e_p50_us"] == 250.0
    assert fix["us_significant"] and fix["latency_significant"]
    assert fix["us_ci_low"] == pytest.approx(2.0) and fix["us_ci_high"] == pytest.approx(2.0)
    assert fix["us_p_value"] < 0.001
    assert stock["lost_events"] == 0 and stock["checks_total"] == 2 * REPS and stock["checks_failed"] == 0
    view = nbk.headline_view(cmp)
    assert list(view.iloc[0][["cell", "variant"]]) == ["mask-every-irq · kvm", "stock (baseline)"]
    assert view.iloc[1]["µs / irq vs baseline [95% CI]"] == "2.00 [2.00, 2.00]"
    assert view.iloc[3]["e2e vs baseline [95% CI]"] == "1.50 [1.50, 1.50]"
    assert view.iloc[0]["µs / irq vs baseline [95% CI]"] == "baseline"
    assert "comparisons have fewer than" not in nbk.headline_html(cmp)  # REPS runs per side everywhere


def test_verdicts_are_given_per_cell_and_marked_for_the_index(
    nbk: Any, two_cells: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from vfiobench.report.markers import VERDICTS_MARKER
    from vfiobench.report.pages import headline

    meta: list[dict[str, Any]] = []
    monkeypatch.setattr(headline, "show_html", lambda markup, metadata=None: meta.append(metadata or {}))
    monkeypatch.setattr(headline, "show", lambda fig: None)
    cmp = nbk.open_comparison(load_runs(two_cells), baseline="stock")
    nbk.show_group_verdicts(cmp)
    lines = meta[0][VERDICTS_MARKER]
    assert "[mask-every-irq · kvm] fix: 2.0x fewer µs per interrupt [2.0, 2.0], p<0.001" in lines
    assert "[no-mask · kvm] fix: 3.0x fewer µs per interrupt [3.0, 3.0], p<0.001" in lines
    assert len(lines) == 4  # 2 cells x 2 metrics


def test_failed_checks_are_listed_with_their_cell_and_run(nbk: Any, tmp_path: Path) -> None:
    root = tmp_path / "runs"
    for v in ("stock", "fix"):
        make_run(root, v, variant=v, workload="a", accel="tcg", kind="probe-free", set_irqs=0, toggles=0,
                 call_us=1, latency_us=1, failed_check=v == "fix")  # fmt: skip
    cmp = nbk.open_comparison(load_runs(root), baseline="stock")
    box = nbk.failed_checks_html(cmp)
    assert "1 ground-truth check FAILED" in box and "<td>a · tcg</td><td>fix</td><td>fix</td>" in box
    assert "workload: delivered == expected" in box
    view = nbk.headline_view(cmp)
    assert list(view["checks"]) == ["1/1 ok", "1 of 1 FAILED"]
    # one run per side: the page says there is no interval, and the table says why
    assert "1 of 1 comparisons have fewer than 6 runs on a side" in nbk.headline_html(cmp)
    assert view.iloc[1]["e2e vs baseline [95% CI]"] == "1.00 (too few runs)"
    per_cell = df_group_checks(cmp)
    assert per_cell[
        ["variant", "runs", "checks", "passed", "failed", "failed_checks"]
    ].to_numpy().tolist() == [
        ["stock", 1, 1, 1, 0, ""],
        ["fix", 1, 1, 0, 1, "workload: delivered == expected (1 runs)"],
    ]
    ok = RunSet(r for r in cmp.runs if r.variant == "stock")
    assert nbk.failed_checks_html(Comparison(ok, "stock", (), split_groups(ok, []))) == ""


# ------------------------------------------------------------------------------------- patch links


def test_patch_text_comes_from_the_build_directory_when_it_is_here(tmp_path: Path) -> None:
    from vfiobench.report.patches import patch_texts

    path = fake_build(tmp_path, ["pba-always-on"])
    bdir = Path(path).parent.parent
    meta = RunMeta(
        run_id="r", variant="fix", source="lab", qemu=QemuInfo(path=path, patches=["pba-always-on"])
    )
    shipped = {p.name: p.text.decode() for p in available_patches()}
    (p,) = patch_texts(meta)
    assert (p.origin, p.matches_build, p.text) == ("package", True, shipped["pba-always-on"])
    # the build's own copy wins: it is exactly what was applied
    (bdir / "patches").mkdir(parents=True)
    (bdir / "patches" / "01-pba-always-on.patch").write_text("applied text\n")
    (bdir / "build.json").write_text(json.dumps({"patches": [{"name": "pba-always-on"}]}))
    (p,) = patch_texts(meta)
    assert (p.origin, p.text) == ("build", "applied text\n")
    digest = hashlib.sha256(b"applied text\n").hexdigest()
    assert p.filename == f"pba-always-on-{digest[:12]}.patch"
    # a binary built from another text: the shipped text is shown, flagged as not what was built
    other = fake_build(tmp_path, [], key="0123456789abcdef")
    (p,) = patch_texts(RunMeta(run_id="r", variant="fix", source="lab",
                                qemu=QemuInfo(path=other, patches=["pba-always-on"])))  # fmt: skip
    assert (p.origin, p.matches_build) == ("package", False)
    (p,) = patch_texts(RunMeta(run_id="r", variant="x", source="lab", qemu=QemuInfo(patches=["nope.patch"])))
    assert (p.origin, p.text) == ("missing", None)


@pytest.mark.notebook
def test_compare_page_links_each_patch_to_its_text_beside_the_html(two_cells: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert main(["report", str(two_cells), "--compare", "--no-runs", "--out", str(out), "--quiet"]) == 0
    page = (out / "compare.html").read_text()
    links = re.findall(r'href="(patches/[^"]+\.patch)"', page)
    assert links, "no patch link on the page"
    shipped = {p.name: p.text for p in available_patches()}
    for link in set(links):
        target = out / link
        assert target.is_file(), link
        assert target.read_bytes() == shipped["pba-always-on"]
    assert sorted(p.name for p in (out / "patches").iterdir()) == sorted({Path(x).name for x in links})
    # the page answers per cell: both cells' rows, the warm-ups left out, verdicts per cell on the index
    assert "mask-every-irq · kvm" in page and "no-mask · kvm" in page
    assert "2 warm-up runs (labels.warmup) are left out" in page
    assert "2.00 [2.00, 2.00]" in page and "3.00 [3.00, 3.00]" in page
    index = (out / "index.html").read_text()
    assert "[no-mask · kvm] fix: 3.0x fewer µs per interrupt" in index
    shutil.rmtree(out)


def test_report_passes_grouping_and_counts_only_compared_runs_on_the_index(
    two_cells: Path, tmp_path: Path
) -> None:
    from vfiobench import report

    page = report.plan_compare_page([two_cells], tmp_path, baseline="stock", variants=None)
    assert page.parameters["include_warmup"] is False and "group_by" not in page.parameters
    assert page.checks == f"{8 * REPS}/{8 * REPS} ok"  # the two warm-ups' checks are not counted
    page = report.plan_compare_page(
        [two_cells], tmp_path, baseline="stock", variants=None, group_by=["workload"], include_warmup=True
    )
    assert page.parameters["group_by"] == ["workload"] and page.parameters["include_warmup"] is True
    assert page.checks == f"{8 * REPS + 2}/{8 * REPS + 2} ok"


@pytest.mark.notebook
def test_report_group_by_and_include_warmup_options(two_cells: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    args = ["report", str(two_cells), "--compare", "--no-runs", "--out", str(out), "--quiet"]
    assert main([*args, "--group-by", "workload", "--include-warmup"]) == 0
    page = (out / "compare.html").read_text()
    assert "Compared within each cell of <b>workload</b>: 2 cells" in page
    assert "mask-every-irq · kvm" not in page and "warm-up runs (labels.warmup) are left out" not in page
    assert f"{8 * REPS + 2} runs ({4 * REPS + 1} probed, {4 * REPS + 1} probe-free)" in page


def test_verdicts_colour_improvements_and_regressions_apart(nbk: Any, two_cells: Path) -> None:
    from vfiobench.report.pages.headline import verdict_lines

    better = nbk.open_comparison(load_runs(two_cells), baseline="stock")
    assert {cls for _, _, cls in verdict_lines(better)} == {"vfb-good"}
    worse = nbk.open_comparison(load_runs(two_cells), baseline="fix")
    lines = verdict_lines(worse)
    assert {cls for _, _, cls in lines} == {"vfb-bad"}
    assert any("stock: 2.0x more µs per interrupt" in text for _, text, _ in lines)


def test_builds_list_each_variant_binary_and_embed_the_patch_text(two_cells: Path) -> None:
    from vfiobench.analysis.runinfo import df_builds
    from vfiobench.report.pages.builds import builds_html
    from vfiobench.report.patches import write_patch_files

    runs = load_runs(two_cells)
    builds = df_builds(runs, ["stock", "fix"])
    assert list(builds["variant"])[:2] == ["stock", "stock"]  # the warm-ups ran /usr/bin's binary
    fix = builds[builds["variant"] == "fix"].iloc[0]
    assert fix["patches"] == "pba-always-on" and fix["qemu_path"].endswith("/bin/qemu-system-x86_64")
    text = next(p.text for p in available_patches() if p.name == "pba-always-on").decode()
    offline = builds_html(runs)
    assert "href=" not in offline and html.escape(text) in offline  # no folder: the text is embedded
    assert "the binary's cache key recomputes from this text" in offline
    linked = builds_html(runs, "patches")
    (name,) = set(re.findall(r'href="patches/([^"]+)"', linked))
    written = write_patch_files([r.meta for r in runs], two_cells.parent / "out")
    assert [p.name for p in written] == [name] and written[0].read_text() == text


def test_cells_follow_plan_order_across_experiments(nbk: Any, tmp_path: Path) -> None:
    """Cells come in plan order (experiment, then run order), not in the order directories sort."""
    root = tmp_path / "runs"
    spec = [("a-late", "x", "zz", 3), ("b-first", "x", "yy", 0), ("c", "y", "kvm", 1), ("d", "x", "tcg", 2)]
    for run_id, experiment, workload, order in spec:
        make_run(root, run_id, variant="stock", workload=workload, accel=None, kind="probe-free",
                 set_irqs=0, toggles=0, call_us=1, latency_us=1, order=order)  # fmt: skip
        meta_path = root / run_id / "run.json"
        meta = json.loads(meta_path.read_text())
        meta["labels"]["experiment"] = experiment
        meta_path.write_text(json.dumps(meta))
    cells = split_groups(load_runs(root), ["workload"])
    # experiment x first (by plan order: yy, tcg, zz), then experiment y
    assert [c.label for c in cells] == ["yy", "tcg", "zz", "kvm"]
