"""The package's shape: a cheap top level, one-way layers, no import cycles.

``import vfiobench`` and ``vfiobench --help`` must not load the heavy layers (the lab copies the
package into a VM without pandas/pyarrow; a CLI should start fast). The import graph is read from
the source with :mod:`ast` (every import counts: module level, inside functions, under
``TYPE_CHECKING``), so a lazy import cannot hide a cycle or a layer violation.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "vfiobench"
HEAVY = ("pandas", "pyarrow", "bokeh", "bcc", "scipy", "papermill", "nbconvert", "duckdb")


def loaded_after(code: str) -> list[str]:
    """Heavy top-level modules present in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    return out.split()


def test_import_vfiobench_loads_no_heavy_layer() -> None:
    assert loaded_after("import vfiobench") == []


def test_cli_help_loads_no_heavy_layer() -> None:
    code = (
        "import contextlib, io\nfrom vfiobench.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
    )
    assert loaded_after(code) == []
    for command in ("record", "doctor", "report", "run", "lab", "qemu", "exporter", "query"):
        sub = code.replace("['--help']", f"[{command!r}, '--help']")
        assert loaded_after(sub) == [], command


def test_top_level_names_load_on_first_use() -> None:
    code = "import vfiobench as vb\nassert callable(vb.load) and vb.Runs.__name__ == 'Runs'"
    assert "pandas" in loaded_after(code)


def module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the vfiobench modules it imports (a submodule named in ``from pkg import sub`` is
    an edge to ``pkg.sub``, not to ``pkg``)."""
    modules = {module_name(p): p for p in PKG.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative import
                    anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join([*anchor, base] if base else anchor)
                subs = {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in modules}
                deps |= subs
                if base in modules and len(subs) < len(node.names):
                    deps.add(base)
        graph[name] = deps - {name}
    return graph


def test_the_import_graph_is_read() -> None:
    graph = import_graph()
    assert "vfiobench.schema" in graph["vfiobench.probes.catalog"]
    assert graph["vfiobench.schema"] == set()  # the leaf


def test_no_import_cycles() -> None:
    """The top level is a facade over every layer (its names load lazily, see above): its own
    edges are left out, so a module that reads ``vfiobench.__version__`` is not a cycle."""
    graph = import_graph()
    graph["vfiobench"] = set()
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as e:
        pytest.fail(f"import cycle: {' -> '.join(e.args[1])}")


@pytest.mark.parametrize(
    ("layer", "forbidden"),
    [
        ("vfiobench.schema", ("vfiobench.",)),
        ("vfiobench.analysis", ("vfiobench.probes", "vfiobench.lab", "vfiobench.report", "vfiobench.plots")),
        (
            "vfiobench.store",
            (
                "vfiobench.probes",
                "vfiobench.lab",
                "vfiobench.analysis",
                "vfiobench.report",
                "vfiobench.fleet",
            ),
        ),
        (
            "vfiobench.probes",
            ("vfiobench.analysis", "vfiobench.report", "vfiobench.plots", "vfiobench.api", "vfiobench.fleet"),
        ),
        (
            "vfiobench.fleet",
            ("vfiobench.analysis", "vfiobench.report", "vfiobench.plots", "vfiobench.lab", "vfiobench.api"),
        ),
        ("vfiobench.plots", ("vfiobench.report", "vfiobench.probes", "vfiobench.lab")),
    ],
)
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    bad = sorted(
        f"{mod} imports {dep}"
        for mod, deps in import_graph().items()
        if mod == layer or mod.startswith(layer + ".")
        for dep in deps
        if any(dep == f or dep.startswith(f) for f in forbidden)
        and not (layer == "vfiobench.schema" and dep == "vfiobench.errors")
    )
    assert bad == []
