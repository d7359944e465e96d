"""The report notebooks: thin, one typed and commented parameters cell, and they run under papermill."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
from reportfixtures import STOCK_LOSSY, edit_meta, sample_runs

from vfiobench import report
from vfiobench.analysis.runinfo import df_checks, df_lost_events

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
REPO = NOTEBOOKS.parent
NAMES = ("run.ipynb", "compare.ipynb")


def _code_cells(name: str) -> list[Any]:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("name", NAMES)
def test_exactly_one_parameters_cell_first_typed_and_commented(name: str) -> None:
    cells = _code_cells(name)
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", [])]
    assert tagged == [0], f"{name}: parameters cell must be the one and only tagged cell, first"
    tree = ast.parse(cells[0].source)
    declared = [
        n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    ]
    others = [n for n in tree.body if not isinstance(n, ast.AnnAssign | ast.ImportFrom)]
    assert declared and not others, f"{name}: parameters must be annotated assignments"
    # papermill --help-notebook must see each one with its type and its comment
    inspected = pm.inspect_notebook(str(NOTEBOOKS / name))
    assert sorted(inspected) == sorted(declared)
    for p in inspected.values():
        assert p["inferred_type_name"] not in ("None", ""), p
        assert p["help"].strip(), f"{name}: parameter {p['name']} has no comment"


@pytest.mark.parametrize("name", NAMES)
def test_cells_only_call_package_functions(name: str) -> None:
    """Thin notebooks: imports from vfiobench, then one call (or assignment of a call) per statement,
    each calling vfiobench.report.pages (``nbk``) or a function imported from vfiobench. No defs, loops,
    ifs."""
    imported = {"nbk"}
    for cell in _code_cells(name)[1:]:
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.ImportFrom):
                assert node.module and node.module.split(".")[0] == "vfiobench", ast.unparse(node)
                imported |= {a.asname or a.name for a in node.names}
                continue
            value = node.value if isinstance(node, ast.Assign | ast.Expr) else None
            assert isinstance(value, ast.Call), f"{name}: not a package call: {ast.unparse(node)}"
            func = value.func
            root = func.value if isinstance(func, ast.Attribute) else func
            assert isinstance(root, ast.Name) and root.id in imported, f"{name}: {ast.unparse(node)}"


def test_report_passes_exactly_the_notebook_parameters(tmp_path: Path) -> None:
    runs = sample_runs(tmp_path / "runs", cycles=5)
    run_params = set(pm.inspect_notebook(str(NOTEBOOKS / "run.ipynb")))
    compare_params = set(pm.inspect_notebook(str(NOTEBOOKS / "compare.ipynb")))
    for page in report.plan_run_pages([runs], tmp_path / "out"):
        assert set(page.parameters) <= run_params
    page = report.plan_compare_page([runs], tmp_path / "out", baseline="stock", variants=None)
    assert set(page.parameters) <= compare_params


def _execute(name: str, tmp_path: Path, params: dict[str, Any]) -> tuple[nbformat.NotebookNode, str]:
    out = tmp_path / f"out-{name}"
    with report.kernel_for_this_python() as kernel:
        error = report.execute(NOTEBOOKS / name, out, params, kernel)
    assert error is None, error
    nb = nbformat.read(out, as_version=4)
    html = "".join(
        o.get("data", {}).get("text/html", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs
    )
    return nb, html


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_runs(tmp_path_factory.mktemp("sample") / "runs")


def _outputs(nb: nbformat.NotebookNode, kind: str) -> list[Any]:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind]


@pytest.mark.notebook
def test_run_notebook_executes_under_papermill(runs: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "lab-run"
    shutil.copytree(runs / STOCK_LOSSY, run_dir)
    edit_meta(run_dir, source="lab")
    nb, html = _execute("run.ipynb", tmp_path, {"run_dir": str(run_dir), "title": "My title"})
    assert nb.metadata.papermill.parameters == {"run_dir": str(run_dir), "title": "My title"}
    assert "<h1>My title</h1>" in html
    assert "SYNTHETIC DATA" not in html  # source: lab
    assert "4 events were lost" in html
    assert "memory_region_transaction_commit" in html  # the probe target that lost them
    assert "7.2.0 (synthetic)" in html and "mask-every-irq" in html
    assert "PBA toggles / irq" in html and "interrupt latency (end to end)" in html
    assert html.count("Bokeh.embed.embed_items") >= 5  # histogram, CDF, latency, rates, cost breakdown
    assert html.count("/* BEGIN bokeh.min.js */") == 1  # inlined once, not per figure, never a CDN
    assert _outputs(nb, "error") == []
    assert [o for o in _outputs(nb, "stream") if o.name == "stderr"] == []


@pytest.mark.notebook
def test_compare_notebook_executes_under_papermill(runs: Path, tmp_path: Path) -> None:
    params = {"runs": [str(runs)], "baseline": "stock", "variants": ["stock", "pba-always-on"]}
    nb, html = _execute("compare.ipynb", tmp_path, params)
    assert "SYNTHETIC DATA" in html
    assert "A/B comparison: stock (baseline) vs pba-always-on" in html
    assert "pba-always-on: " in html and "fewer µs per interrupt" in html
    assert "lower interrupt latency" in html
    assert "overhead_ratio" in html
    assert html.count("Bokeh.embed.embed_items") >= 8
    # BokehJS itself is inlined exactly once per page, however many figures there are
    assert html.count("/* BEGIN bokeh.min.js */") == 1
    assert _outputs(nb, "error") == []
    stderr = [o for o in _outputs(nb, "stream") if o.name == "stderr"]
    assert stderr == [], json.dumps(stderr)[:2000]


@pytest.mark.notebook
@pytest.mark.skipif(not (NOTEBOOKS.parent / "data/sample").is_dir(), reason="data/sample/ not generated")
def test_notebook_defaults_point_at_the_sample(tmp_path: Path) -> None:
    """Run with no parameters at all (papermill's cwd is notebooks/): the defaults must work."""
    for name in NAMES:
        _execute(name, tmp_path, {})


@pytest.mark.notebook
@pytest.mark.skipif(not (REPO / "data/sample").is_dir(), reason="data/sample/ not generated")
@pytest.mark.parametrize("name", [*NAMES, "explore.ipynb"])
def test_notebook_defaults_work_from_the_repository_root(name: str, tmp_path: Path) -> None:
    """`papermill notebooks/<name> out.ipynb` run from the repository root, no parameters at all."""
    import papermill as pm

    out = tmp_path / f"root-{name}"
    with report.kernel_for_this_python() as kernel:
        pm.execute_notebook(
            str(NOTEBOOKS / name), str(out), kernel_name=kernel, cwd=str(REPO), progress_bar=False
        )
    nb = nbformat.read(out, as_version=4)
    assert _outputs(nb, "error") == []


def test_a_wrong_path_from_the_papermill_command_is_one_paragraph(tmp_path: Path) -> None:
    """The kernel's error output for a bad parameter is the message, not a traceback wall."""
    papermill = Path(sys.executable).parent / "papermill"
    if not papermill.is_file():
        pytest.skip(f"{papermill} not installed")
    with report.kernel_for_this_python() as kernel:
        done = subprocess.run(
            [str(papermill), "notebooks/run.ipynb", str(tmp_path / "out.ipynb"), "-k", kernel,
             "-p", "run_dir", "data/no-such-run", "--no-progress-bar"],
            cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert done.returncode != 0
    kernel_part = done.stderr.split('Exception encountered at "In [', 1)[1]
    assert "parameter run_dir: data/no-such-run not found" in kernel_part
    assert "Traceback" not in kernel_part and "---->" not in kernel_part and "File " not in kernel_part
    assert len([line for line in kernel_part.splitlines() if line.strip()]) <= 3, kernel_part


# ------------------------------------------------------------ vfiobench.report.pages helpers (no kernel)


@pytest.fixture
def nbk_fresh() -> Any:
    from vfiobench.report import pages as nbk

    nbk.reset_for_tests()
    yield nbk
    nbk.reset_for_tests()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"baseline": "stock", "variants": "stock"}, "parameter variants must be a list of strings or None"),
        ({"baseline": "", "variants": None}, "parameter baseline must be a non-empty string"),
        ({"baseline": "stock", "variants": ["stock", 3]}, "non-empty list of non-empty strings"),
        ({"baseline": "stock", "variants": ["nope"]}, "unknown variant 'nope'"),
    ],
)
def test_open_runs_rejects_bad_parameters_with_a_message_box(
    nbk_fresh: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kwargs: dict[str, Any], message: str
) -> None:
    from vfiobench.errors import ReportError

    shown: list[tuple[str, Any]] = []
    from vfiobench.report.pages import display

    monkeypatch.setattr(display, "show_html", lambda markup, metadata=None: shown.append((markup, metadata)))
    runs = sample_runs(tmp_path / "runs", cycles=5)
    with pytest.raises(ReportError, match=re.escape(message)):
        nbk_fresh.open_runs(str(runs), **kwargs)
    markup, metadata = shown[-1]  # the box, displayed before raising, marked for vfiobench.report
    assert "This report stopped." in markup and message.replace("'", "&#x27;") in markup
    assert metadata == {nbk_fresh.ERROR_OUTPUT_MARKER: True}


def test_open_run_reports_a_missing_run(nbk_fresh: Any, tmp_path: Path) -> None:
    from vfiobench.errors import RunStoreError

    with pytest.raises(RunStoreError, match="no such run directory"):
        nbk_fresh.open_run(str(tmp_path / "nope"))
    with pytest.raises(Exception, match="parameter run_dir must be a non-empty string"):
        nbk_fresh.open_run(None)


def test_error_box_and_tables_escape_html(nbk_fresh: Any) -> None:
    import pandas as pd

    from vfiobench.errors import ReportError

    box = nbk_fresh.error_html(ReportError("run <x> & y", "do <this>"))
    assert "run &lt;x&gt; &amp; y" in box and "What to do: do &lt;this&gt;." in box
    df = pd.DataFrame(
        {
            "name": ["<b>"],
            "n": [1234567],
            "f": [0.000123456],
            "big": [12345.6],
            "nan": [float("nan")],
            "k": [6261.4],
            "kk": [7472.0],
        }
    )
    html = nbk_fresh.table_html(df)
    assert "&lt;b&gt;" in html and "<td><b>" not in html
    assert "<td>1,234,567</td>" in html and "<td>0.0001235</td>" in html
    assert "<td>12,346</td>" in html and "<td>–</td>" in html
    assert "<td>6,261</td><td>7,472</td>" in html  # thousands alike, integral or not
    assert "(nothing)" in nbk_fresh.table_html(df.iloc[0:0], empty="(nothing)")


def test_lost_events_and_checks_frames(nbk_fresh: Any, tmp_path: Path) -> None:
    from vfiobench.store import load_run, load_runs

    runs = sample_runs(tmp_path / "runs", cycles=5)
    lossy = df_lost_events(load_run(runs / STOCK_LOSSY))
    assert list(lossy.columns) == [
        "run_id",
        "variant",
        "probe",
        "target",
        "mode",
        "events",
        "lost",
        "lost_pct",
        "missed",
    ]
    commit = lossy[lossy["probe"] == "transaction_commit"].iloc[0]
    assert commit["lost"] == 4 and commit["missed"] == 2
    assert commit["lost_pct"] == pytest.approx(100 * 4 / (commit["events"] + 4))
    assert "4 events were lost" in nbk_fresh.lost_events_html(load_run(runs / STOCK_LOSSY))
    assert "skipped 2 probe-program runs" in nbk_fresh.lost_events_html(load_run(runs / STOCK_LOSSY))
    free = load_run(runs / "r1-stock-probe-free")
    assert "this run is probe-free" in nbk_fresh.lost_events_html(free)
    many = nbk_fresh.lost_events_html(load_runs(runs))
    assert "per run and probe (16 rows)" in many  # 4 probed runs x 4 probes, folded
    # summed per variant and probe: stock's commits lost 4 events, in 1 run
    assert re.search(
        r"<td>stock</td><td>transaction_commit</td><td>[^<]*</td><td>stream</td><td>[0-9,]+</td>"
        r"<td>4</td><td>1</td><td>[0-9.]+</td><td>2</td>",
        many,
    )
    # runs recorded before misses were measured show NA, not a reassuring 0
    legacy = load_run(runs / STOCK_LOSSY)
    for p in legacy.meta.probes.values():
        p.missed = None
    unmeasured = df_lost_events(legacy)
    assert unmeasured["missed"].isna().all()
    assert "skipped" not in nbk_fresh.lost_events_html(legacy)
    checks = df_checks(load_runs(runs))
    assert len(checks) == 8 and checks["ok"].all()
    assert "No ground-truth checks recorded" in nbk_fresh.checks_html(free)


def test_bokeh_html_inlines_bokehjs_once_per_kernel(nbk_fresh: Any) -> None:
    from bokeh.plotting import figure

    figs = []
    for _ in range(2):
        f = figure(width=200, height=100)
        f.line([1, 2], [1, 2])
        figs.append(f)
    first, second = (nbk_fresh.bokeh_html(f) for f in figs)
    assert first.count("/* BEGIN bokeh.min.js */") == 1
    assert "/* BEGIN bokeh.min.js */" not in second
    assert "data-root-id" in first and "data-root-id" in second
    assert "cdn.bokeh.org" not in first + second


@pytest.mark.notebook
def test_run_notebook_shows_a_failed_recording(runs: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "failed-run"
    shutil.copytree(runs / "r1-stock-probed", run_dir)
    edit_meta(run_dir, status="failed", error="QemuError: QEMU exited with status 1 <stderr>")
    nb, html = _execute("run.ipynb", tmp_path, {"run_dir": str(run_dir)})
    assert 'class="vfb-status vfb-status-failed">failed<' in html
    assert "Recording error: QemuError: QEMU exited with status 1 &lt;stderr&gt;" in html
    assert _outputs(nb, "error") == []  # the page still renders everything that was recorded
