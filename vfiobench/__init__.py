"""vfiobench: a workbench for the VFIO PCI passthrough MSI-X interrupt path in QEMU/KVM.

Layers, each importing only the ones below it::

    schema ─► probes (BCC) ─► store (run.json + Parquet) ─► analysis (pandas) ─► plots (Bokeh) ─► report

The top level is small and cheap: ``import vfiobench`` (and ``vfiobench --help``) loads neither
pandas, pyarrow, bokeh nor bcc; the names below import their layer when first used.

* :func:`load` → :class:`Runs`, the one interactive way in (filter, latency, per_interrupt,
  compare, timeline, plots);
* :func:`load_run` → :class:`Run`, one run directory (run.json and its tables);
* :func:`record` / :class:`Recording` → a :class:`Run` recorded from a notebook, its figure updated
  in place while recording;
* :class:`VfioBenchError`, the base of every expected failure.

Example:
    >>> import vfiobench as vb
    >>> runs = vb.load("data/sample")                                  # doctest: +SKIP
    >>> runs.filter(kind="probed").latency("pba_toggle")               # doctest: +SKIP
    >>> vb.load_run("data/sample/<run_id>").table("pba_toggle")        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from importlib import metadata
from typing import TYPE_CHECKING, Any

from vfiobench.errors import VfioBenchError

if TYPE_CHECKING:
    from vfiobench.api import Runs, load
    from vfiobench.recording import Recording, record
    from vfiobench.store import Run, load_run

try:
    __version__ = metadata.version("vfiobench")
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: Lazily imported names: attribute -> module.
_LAZY: dict[str, str] = {
    "load": "vfiobench.api",
    "Runs": "vfiobench.api",
    "load_run": "vfiobench.store",
    "Run": "vfiobench.store",
    "record": "vfiobench.recording",
    "Recording": "vfiobench.recording",
}

#: Subpackages reachable as attributes (``vb.api.show``, ``vb.analysis.df_ab``), imported on first use.
_SUBMODULES: tuple[str, ...] = ("analysis", "api", "plots", "schema", "store")

__all__ = ["Recording", "Run", "Runs", "VfioBenchError", "__version__", "load", "load_run", "record"]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"vfiobench.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'vfiobench' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_SUBMODULES))
