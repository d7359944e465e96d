"""notebooks/explore.ipynb: one parameters cell, runs top to bottom under papermill (the report's own
kernel and execution), and the timeline view it saves renders and links in headless Chromium.

The browser checks reuse tests/test_browser.py (same Content-Security-Policy, same probe script that
reports JavaScript errors, outside fetches and undrawn Bokeh roots). A screenshot of the linked view
is kept as ``reports/timeline.png`` for the README.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
from reportfixtures import sample_runs

from vfiobench import report
from vfiobench.store import load_runs

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "explore.ipynb"
SAMPLE = REPO / "data" / "sample"
SCREENSHOT = REPO / "reports" / "timeline.png"


def test_one_typed_commented_parameters_cell_first() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [i for i, c in enumerate(code) if "parameters" in c.metadata.get("tags", [])] == [0]
    tree = ast.parse(code[0].source)
    declared = [
        n.target.id for n in tree.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)
    ]
    inspected = pm.inspect_notebook(str(NOTEBOOK))
    assert sorted(inspected) == sorted(declared) == ["baseline", "runs_path", "timeline_html", "variant"]
    for p in inspected.values():
        assert p["inferred_type_name"] not in ("None", "") and p["help"].strip(), p
    assert all(not c.outputs and c.execution_count is None for c in code), "commit the notebook stripped"


def _execute(tmp_path: Path, params: dict[str, Any]) -> tuple[nbformat.NotebookNode, str]:
    out = tmp_path / "explore-out.ipynb"
    with report.kernel_for_this_python() as kernel:
        error = report.execute(NOTEBOOK, out, params, kernel)
    assert error is None, error
    nb = nbformat.read(out, as_version=4)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert [o for o in outputs if o.output_type == "error"] == []
    stderr = [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    assert stderr == [], json.dumps(stderr)[:2000]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    return nb, html


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """The tour run on data/sample (or generated sample runs), saving its timeline view."""
    tmp = tmp_path_factory.mktemp("explore")
    runs = SAMPLE if SAMPLE.is_dir() else sample_runs(tmp / "runs")
    page = tmp / "timeline.html"
    _, html = _execute(tmp, {"runs_path": str(runs), "timeline_html": str(page)})
    return html, page


@pytest.mark.notebook
def test_tour_runs_top_to_bottom(executed: tuple[str, Path]) -> None:
    html, page = executed
    assert re.search(r"Runs\(\d+ runs: ", html), "the runs table"
    assert "pba-stock-mask-every-irq-kvm-r0-p" in html
    assert "p99_ns" in html and "pba_toggles_per_irq" in html
    assert "pba-always-on: " in html and "lower interrupt latency" in html  # the A/B verdict
    assert "stage_pba_on_ns" in html and "share_of_median" in html  # timeline and stage summary
    assert html.count("Bokeh.embed.embed_items") == 8  # one per show() in the tour
    assert html.count("/* BEGIN bokeh.min.js */") == 1  # inlined once, never from a CDN
    assert "cdn.bokeh.org" not in html
    assert page.is_file() and "vfb-points" in page.read_text()


@pytest.mark.notebook
@pytest.mark.skipif(not SAMPLE.is_dir(), reason="data/sample/ not generated (python -m vfiobench.sample)")
def test_defaults_point_at_the_sample(tmp_path: Path) -> None:
    """No parameters at all (papermill's cwd is notebooks/): the defaults must work."""
    _, html = _execute(tmp_path, {})
    assert f"Runs({len(load_runs(SAMPLE))} runs" in html


# ------------------------------------------------------------------------------------------ browser

LINK_JS = """
<script>
window.addEventListener('load', () => setTimeout(() => {
  const doc = Bokeh.documents[0];
  const points = doc.get_model_by_name('vfb-points');
  const gantt = doc.get_model_by_name('vfb-gantt');
  const keys = () => [...new Set(gantt.data.key)];
  const before = keys();
  const initial = points.data.key[points.selected.indices[0]];
  const pick = points.data.key.length - 1;
  points.selected.indices = [pick];
  setTimeout(() => {  // CustomJS callbacks run asynchronously in Bokeh 3
    const after = keys();
    const fig = doc.get_model_by_name('vfb-gantt-figure');
    const pre = document.createElement('pre');
    pre.id = 'vfb-linked';
    pre.textContent = JSON.stringify({before, after, picked: points.data.key[pick], initial,
      rows: gantt.data.key.length, title: fig.title.text});
    document.body.appendChild(pre);
  }, 500);
}, 1500));
</script>
"""


@pytest.fixture(scope="module")
def browser() -> Any:
    import test_browser  # the project's headless Chromium check (CSP, probe script, offline)

    if not Path(test_browser.CHROMIUM).is_file():
        pytest.skip(f"{test_browser.CHROMIUM} not installed (Debian package chromium)")
    return test_browser


@pytest.mark.browser
@pytest.mark.notebook
def test_timeline_view_renders_offline(executed: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    _, page = executed
    roots = set(re.findall(r'data-root-id="([^"]+)"', page.read_text())) or {"embedded"}
    seen = browser.inspect(page, tmp_path)
    assert seen["errors"] == [] and seen["violations"] == []
    assert [r for r in seen["resources"] if not r.startswith(("file:", "data:", "blob:"))] == []
    assert seen["bokeh"] and seen["documents"] == 1
    assert len(seen["roots"]) == len(roots)
    for root in seen["roots"]:
        assert root["canvases"] >= 2, root  # scatter and Gantt
        assert root["inked"] > 5000, f"timeline view {root['id']} is blank"


@pytest.mark.browser
@pytest.mark.notebook
def test_picking_a_point_shows_its_timeline(executed: tuple[str, Path], browser: Any, tmp_path: Path) -> None:
    """Selecting a scatter point in the page replaces the Gantt's rows by that interrupt's (CustomJS)."""
    _, page = executed
    linked = tmp_path / "linked.html"
    head, tail = page.read_text().rsplit("</body>", 1)  # the last one: BokehJS itself has the string
    linked.write_text(head + LINK_JS + "</body>" + tail, encoding="utf-8")
    probe = browser.instrument(linked, tmp_path / "probe-linked.html")
    dom = browser._browse(probe, tmp_path, "--dump-dom", "--window-size=1280,1200").stdout
    m = re.search(r'<pre id="vfb-linked">(.*?)</pre>', dom, re.S)
    assert m, "the link script never reported"
    got = json.loads(m.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    assert got["before"] == [got["initial"]]  # starts on the slowest
    assert got["after"] == [got["picked"]] and got["picked"] != got["initial"]
    assert got["rows"] > 5
    run_id, irq = got["picked"].split("#")
    assert got["title"].startswith(f"{run_id} interrupt #{irq} ")


@pytest.mark.browser
@pytest.mark.notebook
def test_screenshot_of_the_timeline_view_for_the_readme(
    executed: tuple[str, Path], browser: Any, tmp_path: Path
) -> None:
    from PIL import Image

    _, page = executed
    shot = tmp_path / "timeline.png"
    # the page as a reader sees it (still offline: _browse runs Chromium without a network)
    browser._browse(page, tmp_path, f"--screenshot={shot}", "--window-size=1280,1000")
    with Image.open(shot) as img:
        crop = img.convert("RGB").crop((0, 0, 1110, min(img.height, 850)))
    colours = crop.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "screenshot is blank"
    SCREENSHOT.parent.mkdir(exist_ok=True)
    crop.save(SCREENSHOT, optimize=True)
    print(f"saved {SCREENSHOT} ({SCREENSHOT.stat().st_size} bytes)")
