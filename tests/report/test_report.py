"""vfiobench.report and ``vfiobench report``: pages, index, errors, kernel selection, offline HTML."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output
from reportfixtures import ALWAYS_ON_FREE, STOCK, STOCK_LOSSY, edit_meta, sample_runs

from vfiobench import report
from vfiobench.cli import main
from vfiobench.report import kernel as report_kernel
from vfiobench.report.markers import ERROR_OUTPUT_MARKER


def external_refs(html: str) -> list[str]:
    """What the page would fetch from the network (tags' src/href, CSS url()/@import)."""
    return report.external_resources(html)


def visible_text(html: str) -> str:
    body = html[html.index("<body") :]
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", body, flags=re.S)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body))
    return re.sub(r" ([;.,])", r"\1", text)  # "lost</span>; 2" reads "lost; 2"


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


def test_external_resources_finds_fetches_but_not_links_data_urls_or_script_text() -> None:
    page = """<html><head><script src="https://cdn.example/bokeh.js"></script>
    <link rel="stylesheet" href="//fonts.example/x.css"><style>@import "https://a.example/y.css";
    .x{background:url(https://b.example/z.png)} .y{background:url("data:image/svg+xml,http://www.w3.org")}</style>
    </head><body><a href="https://docs.example/">docs</a>
    <img srcset="https://c.example/1.png 1x, local.png 2x">
    <script>t.src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-svg.js"</script><div style="background:url('http://d.example/w')"></div>
    </body></html>"""
    assert sorted(report.external_resources(page)) == sorted(
        [
            "https://cdn.example/bokeh.js",
            "//fonts.example/x.css",
            "https://a.example/y.css",
            "https://b.example/z.png",
            "https://c.example/1.png",
            "http://d.example/w",
        ]
    )


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
    runs = sample_runs(tmp_path / "runs", cycles=5)
    other = tmp_path / "other" / STOCK
    shutil.copytree(runs / STOCK, other)
    edit_meta(other, run_id="copied")
    pages = report.plan_run_pages([runs, other, tmp_path / "missing"], tmp_path / "out")
    names = [p.name for p in pages]
    assert len(names) == 8 + 2 and len(set(names)) == len(names)
    assert names[-2:] == [f"{STOCK}-2", "missing"]  # same directory name twice: made unique
    by_name = {p.name: p for p in pages}
    assert by_name[STOCK_LOSSY].variant == "stock" and by_name[STOCK_LOSSY].lost_events == 4
    assert by_name[STOCK].lost_events == 0 and by_name[STOCK].checks == "2/2 ok"
    assert by_name[f"{STOCK}-2"].run_id == "copied"
    assert by_name["missing"].variant is None and by_name["missing"].status is None
    assert by_name["missing"].parameters == {"run_dir": str((tmp_path / "missing").absolute())}
    assert all(p.html.parent == tmp_path / "out" and p.html.suffix == ".html" for p in pages)


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
    """Jupyter looks in tmp_path/jp first, and the kernel name report.kernel wants is one nobody else has.

    (This venv's own share/jupyter/kernels may hold a real 'vfiobench' spec from `make`; renaming the
    wanted kernel keeps the tests independent of it.)
    """
    jp = tmp_path / "jp"
    jp.mkdir()
    monkeypatch.setenv("JUPYTER_PATH", str(jp))
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("JUPYTER_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(report_kernel, "KERNEL_NAME", f"vfiobench-test-{os.getpid()}")
    return jp


def test_registered_vfiobench_kernel_for_this_python_is_used(isolated_jupyter: Path) -> None:
    _spec(isolated_jupyter, report_kernel.KERNEL_NAME, sys.executable)
    assert report_kernel.find_kernel() == report_kernel.KERNEL_NAME
    with report_kernel.kernel_for_this_python() as name:
        assert name == report_kernel.KERNEL_NAME


def test_foreign_vfiobench_kernel_is_not_used_and_a_private_one_is_registered(isolated_jupyter: Path) -> None:
    from jupyter_client.kernelspec import KernelSpecManager

    other_venv = isolated_jupyter / "othervenv" / "bin"
    other_venv.mkdir(parents=True)
    (other_venv / "python").symlink_to(sys.executable)  # same base interpreter, another environment
    _spec(isolated_jupyter, report_kernel.KERNEL_NAME, str(other_venv / "python"))
    assert report_kernel.find_kernel() is None
    with report_kernel.kernel_for_this_python() as name:
        assert name != report_kernel.KERNEL_NAME and name.startswith("vfiobench-")
        spec = KernelSpecManager().get_kernel_spec(name)
        assert spec.argv[0] == sys.executable
        private = Path(spec.resource_dir)
        assert private.is_dir()
    assert not private.exists()
    assert os.environ["JUPYTER_PATH"] == str(isolated_jupyter)


def test_kernel_registered_by_make_is_recognised() -> None:
    if not (Path(sys.prefix) / "share/jupyter/kernels/vfiobench/kernel.json").is_file():
        pytest.skip("no 'vfiobench' kernelspec in this environment (`make report` registers it)")
    assert report_kernel.find_kernel("vfiobench") == "vfiobench"


@pytest.mark.notebook
def test_execute_with_no_kernelspec_at_all_runs_this_interpreter(
    isolated_jupyter: Path, tmp_path: Path
) -> None:
    """A notebook whose metadata names a kernel nobody registered still runs (no NoSuchKernel)."""
    nb = new_notebook(cells=[new_code_cell("import sys\nprint(sys.executable)")])
    nb.metadata["kernelspec"] = {"name": report_kernel.KERNEL_NAME, "display_name": "x", "language": "python"}
    src, out = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, src)
    assert report_kernel.find_kernel() is None
    with report_kernel.kernel_for_this_python() as kernel:
        assert report.execute(src, out, {}, kernel) is None
    executed = nbformat.read(out, as_version=4)
    assert executed.cells[0].outputs[0].text.strip() == sys.executable


# ------------------------------------------------------------------------------------- the command


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sample_runs(tmp_path_factory.mktemp("sample") / "runs")


@pytest.mark.notebook
def test_report_command_renders_one_page_per_run_and_the_index(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    lab = tmp_path / "lab-run"
    shutil.copytree(runs / STOCK, lab)
    edit_meta(lab, source="lab", host={"kernel_release": "6.1.0-27-amd64", "cpu_model": "AMD EPYC 7B13"})
    args = [str(lab), str(runs / STOCK_LOSSY), str(runs / ALWAYS_ON_FREE)]
    assert main(["report", *args, "--out", str(out), "--quiet"]) == 0
    pages = ("lab-run", STOCK_LOSSY, ALWAYS_ON_FREE)
    traces = [f"{n}.pftrace" for n in ("lab-run", STOCK_LOSSY)]  # probed runs; the probe-free one has none
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{n}.{ext}" for n in pages for ext in ("html", "ipynb")] + ["index.html", *traces]
    )
    index = (out / "index.html").read_text()
    for n in pages:
        assert f'href="{n}.html"' in index and f'href="{n}.ipynb"' in index
    assert "pba-always-on" in index and "probe-free" not in index.split("<table")[0]

    page = (out / "lab-run.html").read_text()
    text = visible_text(page)
    assert "SYNTHETIC DATA" not in text  # source: lab
    for expected in (
        "Run r1-stock-probed · stock",
        "7.2.0 (synthetic)",
        "0" * 40,  # build-id
        "qemu-system-x86_64 -accel kvm -S -qtest",
        "6.1.0-27-amd64",
        "AMD EPYC 7B13",
        "mask-every-irq",
        "complete",
        "kprobe:vfio_msi_set_vector_signal",  # lost-event table names each probe's target
    ):
        assert expected in text, expected
    assert "No events lost." in text and "All 2 ground-truth checks passed." in text
    assert "probed run; no probe events lost; 2 of 2 ground-truth checks passed." in text
    assert "PBA toggles / irq" in text and "interrupt latency (end to end)" in text
    # labels and workload parameters read as key/value tables, not one JSON blob
    assert "<th>repetition</th>" in page and "<th>cycles</th>" in page
    # the run's Perfetto trace lies beside the page, linked from it and from the index
    assert (out / "lab-run.pftrace").stat().st_size > 0 and 'href="lab-run.pftrace" download' in page
    assert 'href="lab-run.pftrace" download' in index
    assert "open_run" not in page and "import" not in text  # no code cells
    assert page.count('class="bk-root"') + page.count("data-root-id") >= 4  # Bokeh figures embedded
    assert external_refs(page) == []

    lossy = visible_text((out / f"{STOCK_LOSSY}.html").read_text())
    assert "SYNTHETIC DATA" in lossy and "4 events were lost" in lossy
    free = visible_text((out / f"{ALWAYS_ON_FREE}.html").read_text())
    assert "this run is probe-free" in free and "No probe calls recorded" in free


@pytest.mark.notebook
def test_report_compare_renders_the_ab_page(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    assert main(["report", str(runs), "--compare", "--no-runs", "--out", str(out), "--quiet"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "compare.ipynb", "index.html"]
    page = (out / "compare.html").read_text()
    text = visible_text(page)
    assert "A/B comparison: stock (baseline) vs pba-always-on" in text and "SYNTHETIC DATA" in text
    # 2 runs a side: the estimate, and no interval or p-value (6 a side needed)
    assert re.search(
        r"pba-always-on: [0-9.]+x fewer µs per interrupt; too few runs for an interval \(2 vs 2", text
    )
    assert "comparisons have fewer than 6 runs on a side" in text
    assert "lower interrupt latency" in text
    assert "4 events were lost" in text and "All 8 ground-truth checks passed." in text
    assert (
        "8 runs (4 probed, 4 probe-free); 4 probe events lost in 1 of 8 runs; "
        "8 of 8 ground-truth checks passed." in text
    )
    assert "overhead_ratio" in text
    # every variant's build, command line, host and workload parameters are on the page
    assert "x-pba-always-on.patch" in text and "vfio-pci,host=0000:00:04.0,x-pba-always-on=on" in text
    assert "mask-every-irq" in text and '"cycles": 30' in text.replace("&quot;", '"')
    assert external_refs(page) == []
    index = (out / "index.html").read_text()
    assert 'href="compare.html"' in index and "stock vs pba-always-on" in index
    # the verdict lines are copied onto the index page
    assert re.search(r"compare</a>: pba-always-on: [0-9.]+x fewer µs per interrupt", index)
    assert "lower interrupt latency (median)" in index
    # the executed notebook is kept beside the HTML, with its code and its outputs
    executed = nbformat.read(out / "compare.ipynb", as_version=4)
    assert any("nbk.open_runs" in c.source for c in executed.cells)
    assert all(c.get("execution_count") for c in executed.cells if c.cell_type == "code")


@pytest.mark.notebook
def test_missing_and_corrupt_runs_still_get_a_page_and_a_one_line_error(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "run.json").write_text("{not json")
    missing = tmp_path / "no-such-run"
    out = tmp_path / "reports"
    rc = main(["report", str(runs / STOCK), str(corrupt), str(missing), "--out", str(out), "--quiet"])
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
        # sections after the failing cell never ran and are not shown
        assert "What was measured" not in text and "Probes and lost events" not in text
        assert (out / f"{name}.ipynb").is_file()
    index = (out / "index.html").read_text()
    assert "2 stopped" in index and "not valid JSON" in index
    good = visible_text((out / f"{STOCK}.html").read_text())
    assert "This report stopped." not in good and "What was measured" in good


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
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
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
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(
        ["report", str(runs), "--out", str(tmp_path / "o"), "--notebooks", str(tmp_path / "nowhere"), "-q"]
    )
    assert rc == 2
    err = capsys.readouterr().err
    assert "run.ipynb: report notebook not found" in err and err.count("\n") == 1


@pytest.mark.notebook
def test_interrupted_batch_still_writes_the_index_of_finished_pages(runs: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"

    def interrupt_after_first(page: report.Page, done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        report.render_batch([runs / STOCK, runs / STOCK_LOSSY], out, on_page=interrupt_after_first)
    index = (out / "index.html").read_text()
    assert f'href="{STOCK}.html"' in index and STOCK_LOSSY not in index
    assert (out / f"{STOCK}.html").is_file() and not (out / f"{STOCK_LOSSY}.html").exists()


def run_notebook(tmp_path: Path, *cells: Any) -> Path:
    """A notebooks/ directory whose run.ipynb is a parameters cell followed by ``cells``."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    params = new_code_cell('run_dir: str = ""  # run')
    params.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[params, *cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "py", "language": "python"}
    nbformat.write(nb, nbdir / "run.ipynb")
    return nbdir


@pytest.mark.notebook
def test_an_unexpected_exception_is_shown_as_one_message_not_a_traceback(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbdir = run_notebook(
        tmp_path,
        new_code_cell("print('first cell ran')"),
        new_code_cell("def helper():\n    raise ValueError('boom:\\n  second line')\nhelper()"),
        new_markdown_cell("## NEVER-SHOWN"),
    )
    out = tmp_path / "reports"
    assert main(["report", str(runs / STOCK), "--notebooks", str(nbdir), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err == f"vfiobench: error: {out / STOCK}.html: ValueError: boom: second line\n"
    page = (out / f"{STOCK}.html").read_text()
    text = visible_text(page)
    assert "first cell ran" in text and "This report stopped." in text and "ValueError: boom:" in text
    assert "Traceback" not in page and "helper()" not in page and "NEVER-SHOWN" not in text


@pytest.mark.notebook
def test_a_kernel_that_dies_gives_a_page_and_a_one_line_error(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbdir = run_notebook(tmp_path, new_code_cell("import os\nos._exit(3)"))
    out = tmp_path / "reports"
    assert main(["report", str(runs / STOCK), "--notebooks", str(nbdir), "--out", str(out), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"vfiobench: error: {out / STOCK}.html: DeadKernelError") and err.count("\n") == 1
    text = visible_text((out / f"{STOCK}.html").read_text())
    assert "This report stopped." in text and "DeadKernelError" in text
    assert "DeadKernelError" in (out / "index.html").read_text()


def test_unwritable_output_directory_is_a_one_line_error(
    runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    assert main(["report", str(runs / STOCK), "--out", str(blocker / "reports"), "-q"]) == 2
    err = capsys.readouterr().err
    where = blocker / "reports"
    expected = f"{where}: cannot create the output directory (Not a directory) (choose another --out)"
    assert err == f"vfiobench: error: {expected}\n"


@pytest.mark.notebook
def test_parallel_batch_renders_the_same_pages_in_the_same_order(runs: Path, tmp_path: Path) -> None:
    paths = [runs / STOCK, runs / STOCK_LOSSY, runs / ALWAYS_ON_FREE]
    serial = report.render_batch(paths, tmp_path / "serial", compare=True)
    parallel = report.render_batch(paths, tmp_path / "parallel", compare=True, jobs=2)
    assert [p.name for p in parallel.pages] == [p.name for p in serial.pages]  # planned order kept
    assert [p.name for p in serial.pages] == ["compare", STOCK, STOCK_LOSSY, ALWAYS_ON_FREE]
    assert not serial.failed and not parallel.failed
    assert [p.lost_events for p in parallel.pages] == [p.lost_events for p in serial.pages]
    assert [p.verdicts for p in parallel.pages] == [p.verdicts for p in serial.pages]
    for a, b in zip(serial.pages, parallel.pages, strict=True):
        assert visible_text(a.html.read_text()) == visible_text(b.html.read_text()), a.name
    index = (tmp_path / "parallel" / "index.html").read_text()
    assert index.index("compare.html") < index.index(f"{STOCK}.html") < index.index(f"{ALWAYS_ON_FREE}.html")


def test_jobs_must_be_positive(runs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(runs / STOCK), "--out", str(tmp_path), "--jobs", "0", "-q"]) == 2
    assert capsys.readouterr().err == "vfiobench: error: --jobs must be at least 1, not 0\n"


@pytest.mark.notebook
def test_representative_run_pages_render_one_per_variant_and_kind_and_list_every_run(
    runs: Path, tmp_path: Path
) -> None:
    """8 synthetic runs (2 variants x probed/probe-free x 2 repetitions): 4 pages, all 8 on the index."""
    out = tmp_path / "reports"
    assert main(["report", str(runs), "--run-pages", "representative", "--out", str(out), "--quiet"]) == 0
    pages = sorted(p.stem for p in out.glob("*.html") if p.name != "index.html")
    assert pages == sorted(
        ["r1-stock-probed", "r1-stock-probe-free", ALWAYS_ON_FREE, "r1-pba-always-on-probed"]
    )
    index = (out / "index.html").read_text()
    assert "4 pages, 4 more runs listed without a page" in index
    assert index.count("not rendered (one page per cell, variant and kind)") == 4
    assert STOCK_LOSSY in index and f'href="{STOCK_LOSSY}.html"' not in index  # listed, no page
