"""vfiobench.report and ``vfiobench report``: pages, index, errors, kernel selection, offline HTML."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from reportfixtures import write_pair, write_run

from vfiobench import report
from vfiobench.cli import main
from vfiobench.notebook import ERROR_OUTPUT_MARKER

EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


def external_refs(html: str) -> list[str]:
    """src/href attributes that point off the page (http, https or protocol-relative)."""
    return [m.group(0) for m in EXTERNAL.finditer(html)]


def visible_text(html: str) -> str:
    body = html[html.index("<body") :]
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", body, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))


# ------------------------------------------------------------------------------------- pure parts


def _failed_nb(with_box: bool) -> nbformat.NotebookNode:
    err = new_output(
        "error",
        ename="RunStoreError",
        evalue="/x: no such run directory",
        traceback=["TB-LINE-1", "TB-LINE-2"],
    )
    outputs = [new_output("stream", name="stdout", text="before\n")]
    if with_box:
        outputs.append(
            new_output(
                "display_data", data={"text/html": "<div>BOX</div>"}, metadata={ERROR_OUTPUT_MARKER: True}
            )
        )
    outputs.append(err)
    marker = new_markdown_cell("An Exception was encountered")
    marker.metadata["tags"] = ["papermill-error-cell-tag"]
    failing = new_code_cell("secret_source_text()", outputs=outputs)
    later = new_markdown_cell("## SECTION-NEVER-RUN")
    return new_notebook(cells=[marker, new_markdown_cell("## Intro"), failing, later])


def test_reviewer_notebook_keeps_the_box_and_drops_traceback_markers_and_later_cells() -> None:
    nb = report.reviewer_notebook(_failed_nb(with_box=True))
    text = json.dumps(nb)
    assert "BOX" in text and "before" in text
    assert "TB-LINE" not in text
    assert "An Exception was encountered" not in text
    assert "SECTION-NEVER-RUN" not in text
    assert [c.cell_type for c in nb.cells] == ["markdown", "code"]


def test_reviewer_notebook_turns_an_unexpected_error_into_a_one_line_message() -> None:
    nb = report.reviewer_notebook(_failed_nb(with_box=False))
    html_outputs = [o for o in nb.cells[-1].outputs if o.output_type == "display_data"]
    assert len(html_outputs) == 1
    assert "RunStoreError: /x: no such run directory" in html_outputs[0].data["text/html"]
    assert "TB-LINE" not in json.dumps(nb)


def test_to_html_has_no_code_no_prompts_and_nothing_external() -> None:
    cell = new_code_cell(
        "visible_code_marker = 1",
        outputs=[new_output("display_data", data={"text/html": "<p>OUTPUT-MARKER</p>"})],
        execution_count=3,
    )
    html = report.to_html(new_notebook(cells=[new_markdown_cell("# Title"), cell]), "t")
    assert "OUTPUT-MARKER" in html
    assert "visible_code_marker" not in html
    assert "In&nbsp;[3]" not in html and "In [3]" not in html
    assert external_refs(html) == []
    # nbconvert's lab template loads require.js and MathJax from a CDN unless told not to
    assert "require.min.js" not in html and "mathjax" not in html.lower()


def test_index_lists_every_page_with_variant_status_and_lost_events(tmp_path: Path) -> None:
    ok = report.Page(
        "run",
        "r<1>",
        tmp_path / "r1.html",
        tmp_path / "r1.ipynb",
        {},
        variant="stock",
        status="complete",
        source="lab",
        lost_events=12345,
        checks="3/3 ok",
    )
    bad = report.Page(
        "run", "gone", tmp_path / "gone.html", tmp_path / "gone.ipynb", {}, error="/x: no such run directory"
    )
    html = report.index_html([ok, bad])
    assert 'href="r1.html"' in html and 'href="r1.ipynb"' in html and 'href="gone.html"' in html
    assert "r&lt;1&gt;" in html  # escaped
    assert "stock" in html and "complete" in html and "12,345" in html and "3/3 ok" in html
    assert "stopped: /x: no such run directory" in html and "1 stopped" in html
    assert "SYNTHETIC" not in html
    synth = report.index_html(
        [report.Page("run", "s", tmp_path / "s.html", tmp_path / "s.ipynb", {}, source="synthetic")]
    )
    assert "SYNTHETIC DATA" in synth


def test_plan_run_pages_expands_directories_and_keeps_bad_paths(tmp_path: Path) -> None:
    runs = write_pair(tmp_path / "runs")
    (tmp_path / "other").mkdir()
    dup = write_run(tmp_path / "other", "stock-r0", "stock", seed=3, cycles=10)
    pages = report.plan_run_pages([runs, dup, tmp_path / "missing"], tmp_path / "out")
    assert [p.name for p in pages] == ["always-on-r0", "stock-r0", "stock-r0-2", "missing"]
    by_name = {p.name: p for p in pages}
    assert by_name["always-on-r0"].variant == "pba-always-on"
    assert by_name["always-on-r0"].lost_events == 3
    assert by_name["stock-r0"].checks == "1/1 ok"
    assert by_name["missing"].variant is None
    assert by_name["missing"].parameters == {"run_dir": str((tmp_path / "missing").absolute())}
    assert all(p.html.parent == tmp_path / "out" for p in pages)


# ------------------------------------------------------------------------------------------ kernel


def _spec(dir_: Path, name: str, argv0: str) -> None:
    d = dir_ / "kernels" / name
    d.mkdir(parents=True)
    (d / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [argv0, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": name,
                "language": "python",
            }
        )
    )


@pytest.fixture
def isolated_jupyter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jupyter sees only tmp_path/jp (plus this venv's own share/jupyter, which has no 'vfiobench')."""
    jp = tmp_path / "jp"
    jp.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(jp))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    if (Path(sys.prefix) / "share/jupyter/kernels/vfiobench").exists():
        pytest.skip("this venv registers a 'vfiobench' kernelspec itself; isolation impossible")
    return jp


def test_registered_vfiobench_kernel_for_this_python_is_used(isolated_jupyter: Path) -> None:
    _spec(isolated_jupyter, "vfiobench", sys.executable)
    assert report.find_kernel() == "vfiobench"
    with report.kernel_for_this_python() as name:
        assert name == "vfiobench"


def test_foreign_vfiobench_kernel_is_not_used_and_a_private_one_is_registered(isolated_jupyter: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    other_venv = isolated_jupyter / "othervenv" / "bin"
    other_venv.mkdir(parents=True)
    (other_venv / "python").symlink_to(sys.executable)  # same base interpreter, another environment
    _spec(isolated_jupyter, "vfiobench", str(other_venv / "python"))
    assert report.find_kernel() is None
    with report.kernel_for_this_python() as name:
        assert name.startswith("vfiobench-")
        spec = KernelSpecManager().get_kernel_spec(name)
        assert spec.argv[0] == sys.executable
        private = Path(spec.resource_dir)
        assert private.is_dir()
    assert not private.exists()
    assert os.environ["JUPYTER_PATH"] == str(isolated_jupyter)


@pytest.mark.notebook
def test_execute_with_no_kernelspec_at_all_runs_this_interpreter(
    isolated_jupyter: Path, tmp_path: Path
) -> None:
    """A notebook whose metadata names a kernel nobody registered still runs (no NoSuchKernel)."""
    nb = new_notebook(cells=[new_code_cell("import sys\nprint(sys.executable)")])
    nb.metadata["kernelspec"] = {"name": "vfiobench", "display_name": "vfiobench", "language": "python"}
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    assert report.find_kernel() is None
    with report.kernel_for_this_python() as kernel:
        assert report.execute(src, out, {}, kernel) is None
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[0].outputs[0].text.strip() == sys.executable


# ------------------------------------------------------------------------------------- the command


@pytest.mark.notebook
def test_report_command_renders_runs_compare_and_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = write_pair(tmp_path / "runs")
    out = tmp_path / "reports"
    assert main(["report", str(runs), "--compare", "--out", str(out), "--quiet"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(
        [f"{n}.{ext}" for n in ("always-on-r0", "stock-r0", "compare") for ext in ("html", "ipynb")]
        + ["index.html"]
    )
    index = (out / "index.html").read_text()
    for n in ("always-on-r0", "stock-r0", "compare"):
        assert f'href="{n}.html"' in index
    assert "pba-always-on" in index and "SYNTHETIC DATA" in index

    stock = (out / "stock-r0.html").read_text()
    text = visible_text(stock)
    assert "SYNTHETIC DATA" in text
    for expected in (
        "stock-r0",
        "7.2.0",
        "ab" * 20,
        "qemu-system-x86_64 -S",
        "6.1.0-test",
        "Test CPU @ 2GHz",
        "qtest-mask",
        "complete",
    ):
        assert expected in text, expected
    assert "No events lost." in text
    assert "All 1 ground-truth checks passed." in text
    assert "nbk.open_run" not in stock and "import" not in text  # no code cells
    assert external_refs(stock) == []

    always = visible_text((out / "always-on-r0.html").read_text())
    assert "3 events were lost" in always

    compare = visible_text((out / "compare.html").read_text())
    assert "pba-always-on: " in compare and "fewer µs per interrupt" in compare
    assert (
        "A/B comparison: stock vs pba-always-on" in compare
        or "A/B comparison: pba-always-on vs stock" in compare
    )
    # the executed notebook is kept beside the HTML, with its code
    executed = nbformat.read(out / "compare.ipynb", as_version=4)
    assert any("nbk.open_runs" in c.source for c in executed.cells)
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")


@pytest.mark.notebook
def test_missing_and_corrupt_runs_still_get_a_page_and_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = write_pair(tmp_path / "runs")
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.json").write_text("{not json")
    missing = tmp_path / "no-such-run"
    out = tmp_path / "reports"
    rc = main(["report", str(runs / "stock-r0"), str(corrupt), str(missing), "--out", str(out), "--quiet"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("vfiobench: error: ")
    assert "corrupt.html" in err[0] and "not valid JSON" in err[0] and "1 more page" in err[0]
    assert "Traceback" not in err[0]

    for name, message in (("corrupt", "not valid JSON"), ("no-such-run", "no such run directory")):
        page = (out / f"{name}.html").read_text()
        text = visible_text(page)
        assert "This report stopped." in text and message in text
        assert "Traceback" not in page and "An Exception was encountered" not in page
        assert "Run metadata" not in text and "Probes and lost events" not in text  # never-run sections
        assert (out / f"{name}.ipynb").is_file()
    index = (out / "index.html").read_text()
    assert "2 stopped" in index and "not valid JSON" in index
    assert "This report stopped." not in visible_text((out / "stock-r0.html").read_text())


@pytest.mark.notebook
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--variants", "stock,nope"], "unknown variant 'nope'"),
        (["--baseline", "missing-baseline"], "baseline variant 'missing-baseline' is not among the runs"),
        (["--variants", "stock"], "needs at least two variants"),
    ],
)
def test_bad_compare_parameters_stop_the_page_with_the_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    runs = write_pair(tmp_path / "runs")
    out = tmp_path / "reports"
    rc = main(["report", str(runs), "--compare", "--no-runs", "--out", str(out), "--quiet", *args])
    assert rc == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    page = (out / "compare.html").read_text()
    assert message in visible_text(page).replace("&#x27;", "'")
    assert "Traceback" not in page
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "compare.ipynb", "index.html"]


def test_report_without_notebooks_dir_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = write_pair(tmp_path / "runs")
    rc = main(
        ["report", str(runs), "--out", str(tmp_path / "o"), "--notebooks", str(tmp_path / "nowhere"), "-q"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "run.ipynb: report notebook not found" in err and err.count("\n") == 1
