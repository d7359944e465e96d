"""Packaging: pyproject.toml and environment.yml agree; the wheel ships py.typed and the notebooks;
notebooks are committed without outputs."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import nbformat
import pytest

REPO = Path(__file__).resolve().parent.parent
REQ = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:>=\s*([0-9][0-9A-Za-z.]*))?\s*$")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(req: str) -> tuple[str, str | None]:
    """``"numpy>=1.26"`` -> ``("numpy", "1.26")``; only ``>=`` bounds are allowed (no pins, no markers)."""
    m = REQ.match(req)
    if not m:
        raise ValueError(f"unsupported requirement {req!r}: use 'name>=version'")
    return _norm(m.group(1)), m.group(2)


def pyproject_requirements(text: str) -> dict[str, str | None]:
    """Runtime dependencies plus every optional extra, name -> lower bound."""
    project = tomllib.loads(text)["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs.extend(extra)
    out = dict(parse_requirement(r) for r in reqs)
    out["python"] = project["requires-python"].removeprefix(">=")
    return out


def environment_requirements(text: str) -> dict[str, str | None]:
    """The conda ``dependencies:`` list and its ``pip:`` sub-list (packages conda-forge lacks),
    name -> lower bound; the project itself (``-e .``) and ``pip`` are not requirements."""
    out: dict[str, str | None] = {}
    in_deps = False
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith(" "):
            in_deps = line.startswith("dependencies:")
            continue
        item = re.match(r"^(?:  |      )- (.+?)\s*(?:#.*)?$", line)  # conda items, and pip's
        if not in_deps or not item or item.group(1).endswith(":") or item.group(1) in ("pip", "-e ."):
            continue
        name, bound = parse_requirement(item.group(1))
        out[name] = bound
    return out


def test_parsers_read_what_they_should() -> None:
    assert parse_requirement("pandas-stubs>=2.2") == ("pandas-stubs", "2.2")
    with pytest.raises(ValueError):
        parse_requirement("numpy==1.26")
    env = (
        "name: x\ndependencies:\n  - python>=3.11\n  - NumPy>=1.26  # c\n  - pip\n"
        "  - pip:\n      - -e .\n      - qemu.qmp>=0.0.3\nother:\n  - z\n"
    )
    assert environment_requirements(env) == {"python": "3.11", "numpy": "1.26", "qemu-qmp": "0.0.3"}


#: In environment.yml but not pyproject.toml: packages pip cannot provide, and where pip users get them.
SYSTEM_PACKAGES: dict[str, str] = {"bcc": "python3-bpfcc"}


def test_conda_users_get_bcc_and_pip_users_get_it_from_the_system() -> None:
    env = environment_requirements((REPO / "environment.yml").read_text())
    py = pyproject_requirements((REPO / "pyproject.toml").read_text())
    setup = (REPO / ".ci" / "setup-system").read_text()
    for name, debian in SYSTEM_PACKAGES.items():
        assert name in env and name not in py
        assert debian in setup  # installed by make test's system step
    assert "dist-packages/bcc" in (REPO / "Makefile").read_text()  # and linked into the venv


def test_pyproject_and_environment_yml_list_the_same_packages_and_bounds() -> None:
    py = pyproject_requirements((REPO / "pyproject.toml").read_text())
    env = environment_requirements((REPO / "environment.yml").read_text())
    for name in SYSTEM_PACKAGES:
        env.pop(name)
    assert sorted(set(py) - set(env)) == [], "in pyproject.toml but not environment.yml"
    assert sorted(set(env) - set(py)) == [], "in environment.yml but not pyproject.toml"
    differ = {k: (py[k], env[k]) for k in py if py[k] != env[k]}
    assert differ == {}, "lower bounds differ (pyproject, environment.yml)"
    assert all(v for v in py.values()), "every dependency needs a lower bound"


def test_installed_versions_meet_the_lower_bounds() -> None:
    from importlib.metadata import PackageNotFoundError, version

    from packaging.version import Version

    py = pyproject_requirements((REPO / "pyproject.toml").read_text())
    low = []
    for name, bound in py.items():
        if name == "python":
            have = ".".join(map(str, sys.version_info[:3]))
        else:
            try:
                have = version(name)
            except PackageNotFoundError:
                continue  # an extra not installed here (e.g. jupyterlab)
        if bound and Version(have) < Version(bound):
            low.append(f"{name} {have} < {bound}")
    assert low == []


def test_wheel_ships_py_typed_and_the_report_notebooks(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "vfiobench", src / "vfiobench", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(
        REPO / "notebooks", src / "notebooks", ignore=shutil.ignore_patterns(".ipynb_checkpoints")
    )
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        str(tmp_path),
        str(src),
    ]
    subprocess.run(cmd, check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("vfiobench-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
    assert "vfiobench/py.typed" in names
    data = {n.split("/data/", 1)[1] for n in names if ".data/data/" in n}
    assert {"share/vfiobench/notebooks/run.ipynb", "share/vfiobench/notebooks/compare.ipynb"} <= data


def test_report_finds_notebooks_installed_from_a_wheel() -> None:
    import sysconfig

    from vfiobench import report

    assert report.NOTEBOOK_DIRS[0] == REPO / "notebooks"
    # a wheel's data files land in the scheme's data directory (sys.prefix in a venv)
    assert report.NOTEBOOK_DIRS[1] == Path(sysconfig.get_path("data")) / "share" / "vfiobench" / "notebooks"
    assert report.notebook_path("run.ipynb", report.NOTEBOOK_DIRS[0]) == REPO / "notebooks" / "run.ipynb"


def _tracked_notebooks() -> list[Path]:
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    out = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    return [REPO / p for p in out]


def test_notebooks_in_git_have_no_outputs_or_execution_counts() -> None:
    tracked = _tracked_notebooks()
    assert {p.name for p in tracked} >= {"run.ipynb", "compare.ipynb"}
    for path in tracked:
        committed = subprocess.run(
            ["git", "show", f"HEAD:{path.relative_to(REPO)}"], cwd=REPO, capture_output=True, text=True
        )
        versions = [path.read_text(encoding="utf-8")]
        if committed.returncode == 0:
            versions.append(committed.stdout)
        for text in versions:
            nb = nbformat.reads(text, as_version=4)
            nbformat.validate(nb)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    assert cell.outputs == [], f"{path.name}: cell {cell.get('id')} has outputs"
                    assert cell.execution_count is None, f"{path.name}: cell {cell.get('id')} has a count"
            assert "papermill" not in nb.metadata, f"{path.name}: executed copy committed"
            assert nb.metadata.get("kernelspec", {}).get("name") == "vfiobench"
