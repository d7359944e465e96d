"""The Jupyter kernel a report runs in: always this interpreter, so never another venv's vfiobench.

papermill must start a kernel that runs *this* interpreter (the environment vfiobench is installed
in). :func:`kernel_for_this_python` uses the ``vfiobench`` kernelspec when it points at this
interpreter (``make`` registers it in ``.venv``) and otherwise registers a private one for
``sys.executable`` in a temporary directory for the duration of the batch (written by
:mod:`ipykernel.kernelspec`), so a venv never meets ``NoSuchKernel``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

#: The kernelspec ``make`` registers (``python -m ipykernel install --prefix .venv --name vfiobench``).
KERNEL_NAME = "vfiobench"


def _same_interpreter(argv0: str) -> bool:
    """True when a kernelspec's ``argv[0]`` runs this interpreter's environment.

    Paths are compared without resolving symlinks: every venv's ``python`` is a symlink to the
    same base interpreter, and a kernel from another venv must not match.
    """
    if not os.path.isabs(argv0):
        return False
    here = Path(sys.executable).absolute()
    there = Path(argv0)
    if not there.exists():
        return False
    return os.path.normpath(there.parent) == os.path.normpath(here.parent) and there.name.startswith("python")


def find_kernel(name: str | None = None) -> str | None:
    """Return ``name`` (default :data:`KERNEL_NAME`) when that kernelspec runs this interpreter, else None."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    name = name or KERNEL_NAME
    try:
        spec = KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        return None
    return name if spec.argv and _same_interpreter(spec.argv[0]) else None


def write_kernelspec(kernels_dir: Path, name: str) -> Path:
    """Write a kernelspec ``kernels_dir/name/`` that starts this interpreter's ``ipykernel_launcher``.

    The spec (``kernel.json`` and the logos) comes from :func:`ipykernel.kernelspec.write_kernel_spec`;
    only the display name and the debugger flag are ours.
    """
    from ipykernel.kernelspec import write_kernel_spec

    kernels_dir.mkdir(parents=True, exist_ok=True)
    overrides = {"display_name": f"vfiobench ({sys.executable})", "metadata": {"debugger": False}}
    return Path(write_kernel_spec(kernels_dir / name, overrides=overrides))


@contextlib.contextmanager
def kernel_for_this_python() -> Iterator[str]:
    """Yield the name of a kernelspec that runs ``sys.executable``, registering one if needed.

    Uses the ``vfiobench`` kernelspec when it runs this interpreter. Otherwise writes a private
    kernelspec into a temporary directory, prepends it to ``JUPYTER_PATH`` while the context is
    open (papermill's kernel manager reads it when it starts each kernel), and removes it after.
    """
    found = find_kernel()
    if found is not None:
        yield found
        return
    tmp = Path(tempfile.mkdtemp(prefix="vfiobench-kernel-"))
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:10]
    name = f"vfiobench-{digest}"
    write_kernelspec(tmp / "kernels", name)
    old = os.environ.get("JUPYTER_PATH")
    os.environ["JUPYTER_PATH"] = str(tmp) + (os.pathsep + old if old else "")
    try:
        yield name
    finally:
        if old is None:
            os.environ.pop("JUPYTER_PATH", None)
        else:
            os.environ["JUPYTER_PATH"] = old
        shutil.rmtree(tmp, ignore_errors=True)
