"""The report notebooks: thin, one typed and commented parameters cell, and they run under papermill."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import nbformat
import papermill as pm
import pytest
from reportfixtures import write_pair, write_run

from vfiobench import report

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
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
    """Thin notebooks: imports from vfiobench, assignments of calls, calls. No defs, loops or logic."""
    for cell in _code_cells(name)[1:]:
        for node in ast.parse(cell.source).body:
            if isinstance(node, ast.ImportFrom):
                assert node.module and node.module.split(".")[0] == "vfiobench", ast.unparse(node)
                continue
            value = node.value if isinstance(node, ast.Assign | ast.Expr) else None
            assert isinstance(value, ast.Call), f"{name}: not a package call: {ast.unparse(node)}"
            func = value.func
            assert isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name), ast.unparse(node)
            assert func.value.id == "nbk", (
                f"{name}: calls something other than vfiobench.notebook: {ast.unparse(node)}"
            )


def test_report_passes_exactly_the_notebook_parameters(tmp_path: Path) -> None:
    runs = write_pair(tmp_path / "runs")
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


@pytest.mark.notebook
def test_run_notebook_executes_under_papermill(tmp_path: Path) -> None:
    run_dir = write_run(tmp_path / "runs", "lab-run", "stock", seed=5, cycles=50, lost=7, source="lab")
    nb, html = _execute("run.ipynb", tmp_path, {"run_dir": str(run_dir), "title": "My title"})
    assert nb.metadata.papermill.parameters == {"run_dir": str(run_dir), "title": "My title"}
    assert "<h1>My title</h1>" in html
    assert "SYNTHETIC DATA" not in html  # source: lab
    assert "7 events were lost" in html
    assert "syscalls:sys_enter_ioctl" in html  # probe target in the lost-events table
    assert "7.2.0" in html and "qtest-mask" in html
    assert "PBA toggles / irq" in html and "interrupt latency (end to end)" in html
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    stderr = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"]
    assert errors == [] and stderr == []


@pytest.mark.notebook
def test_compare_notebook_executes_under_papermill(tmp_path: Path) -> None:
    runs = write_pair(tmp_path / "runs")
    nb, html = _execute("compare.ipynb", tmp_path, {"runs": str(runs), "baseline": "stock"})
    assert "SYNTHETIC DATA" in html
    assert "A/B comparison: " in html
    assert "pba-always-on: " in html and "fewer µs per interrupt" in html
    assert "lower interrupt latency" in html
    stderr = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"]
    assert stderr == [], json.dumps(stderr)[:2000]
