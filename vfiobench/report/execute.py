"""Execute a report notebook with papermill, and say in one line why it stopped if it did."""

from __future__ import annotations

import logging
import os
import sysconfig
from pathlib import Path
from typing import Any

from vfiobench.errors import ReportError, VfioBenchError

#: Where the report notebooks are looked for: the repository's ``notebooks/`` (a source checkout or
#: an editable install), then ``<data>/share/vfiobench/notebooks`` where a wheel installs them (the
#: environment's data directory, or the user's for ``pip install --user``).
NOTEBOOK_DIRS: tuple[Path, ...] = (
    Path(__file__).resolve().parents[2] / "notebooks",
    Path(sysconfig.get_path("data")) / "share" / "vfiobench" / "notebooks",
    Path(sysconfig.get_path("data", f"{os.name}_user")) / "share" / "vfiobench" / "notebooks",
)
RUN_NOTEBOOK = "run.ipynb"
COMPARE_NOTEBOOK = "compare.ipynb"
#: Per-cell execution timeout in seconds.
CELL_TIMEOUT_S = 600


def notebook_path(name: str, notebooks_dir: Path | None = None) -> Path:
    """Path of a report notebook.

    Raises:
        ReportError: the notebook is not there (e.g. vfiobench installed without its notebooks/).
    """
    dirs = (notebooks_dir,) if notebooks_dir is not None else NOTEBOOK_DIRS
    for d in dirs:
        if (d / name).is_file():
            return d / name
    where = " or ".join(str(d / name) for d in dirs)
    raise ReportError(f"{where}: report notebook not found", "pass --notebooks DIR pointing at notebooks/")


def execute(notebook: Path, out_ipynb: Path, parameters: dict[str, Any], kernel: str) -> str | None:
    """Execute ``notebook`` with papermill into ``out_ipynb``, in the notebook's directory.

    Returns:
        ``None`` when every cell ran, else the one-line message of the exception that stopped the
        notebook (the executed notebook is written either way).

    Raises:
        ReportError: the kernel could not be started.
    """
    import papermill as pm
    from jupyter_client.kernelspec import NoSuchKernel
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    pm_logger = logging.getLogger("papermill")
    level = pm_logger.level
    pm_logger.setLevel(logging.ERROR)  # "Black is not installed", "Executing notebook with kernel"...
    try:
        pm.execute_notebook(
            str(notebook),
            str(out_ipynb),
            parameters=parameters,
            kernel_name=kernel,
            progress_bar=False,
            cwd=str(notebook.parent),
            execution_timeout=CELL_TIMEOUT_S,
            request_save_on_cell_execute=False,
            # the kernel process's own log (ipykernel >= 7 warns about TCP to localhost on every start,
            # and logs the shutdown interrupt as an error); notebook errors come through the protocol
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except pm.PapermillExecutionError as e:
        message = str(e.evalue) if is_expected(e.ename) else f"{e.ename}: {e.evalue}"
        return " ".join(message.split())  # one line, whatever the exception's text
    except (CellTimeoutError, DeadKernelError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return f"{type(e).__name__}: {first}" if first else type(e).__name__
    except NoSuchKernel as e:
        raise ReportError(f"no Jupyter kernel {kernel!r} ({e})", "run `make report` to register it") from None
    finally:
        pm_logger.setLevel(level)
    return None


def is_expected(ename: str) -> bool:
    """True for the names of :class:`VfioBenchError` and its subclasses (their message stands alone)."""
    names: set[str] = set()
    todo: list[type[BaseException]] = [VfioBenchError]
    while todo:
        cls = todo.pop()
        names.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    return ename in names
